"""What a run's steps do, and which trigger each action fits (SPEC R-AUTO-4).

Each action is declared once: the triggers it fits, how its parameters are checked, and what
it does, through the billing services (which lock, validate and emit the events). `execute`
raises `Skip` when the action no longer applies (the subscription is already canceled, the
invoice no longer open): the step is recorded as skipped with that reason. A service's
ValidationError fails the step with its message.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email

from automations import mail
from automations.choices import ActionKind, Trigger
from billing import events, money, timeline
from billing.choices import CollectionMethod, InvoiceStatus, PriceType, SubscriptionStatus
from billing.models import Customer, Invoice, Price, Subscription
from billing.models.jobs import MAX_CUSTOM_RETRIES, MAX_RETRY_GAP_DAYS
from billing.serializers import serialize
from billing.validators import validate_currency

ALL = frozenset(Trigger.values)
PAYMENT_FAILED = frozenset({Trigger.SUBSCRIPTION_PAYMENT_FAILED})
ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)
MAX_MEMO = 2000
MAX_DELAY_DAYS = 365


class Skip(Exception):
    """The action no longer applies to the object as it is now; the message says why."""


@dataclass
class Context:
    """What a step's action works with: the step, its run and the triggering object now."""

    step: object
    run: object
    target: object  # the invoice, subscription or customer, fresh from the database
    now: object

    @property
    def invoice(self) -> Invoice:
        return self.target

    @property
    def subscription(self) -> Subscription | None:
        if isinstance(self.target, Subscription):
            return self.target
        if isinstance(self.target, Invoice) and self.target.subscription_id:
            return self.target.subscription
        return None

    @property
    def customer(self) -> Customer:
        return self.target if isinstance(self.target, Customer) else self.target.customer


@dataclass(frozen=True)
class ActionType:
    """One action: the triggers it fits, its parameters' check, and what it does."""

    kind: str
    triggers: frozenset
    clean: Callable  # clean(params, account=, livemode=) → params, ValidationError by param
    execute: Callable[[Context], str]  # → a short note for the run's page
    # The run ends as soon as this action has run (cancel subscription, reference 000).
    ends_run: bool = False


# --- parameters -----------------------------------------------------------------------------


def _no_params(params, **_):
    return {}


def _clean_retry_policy(params, **_):
    days = params.get("retry_days")
    if isinstance(days, str):
        try:
            days = [int(part) for part in days.replace(",", " ").split()]
        except ValueError:
            raise ValidationError(
                {"retry_days": "Give whole numbers of days, e.g. 3, 5, 7."}
            ) from None
    if not isinstance(days, list) or any(
        isinstance(day, bool) or not isinstance(day, int) for day in days
    ):
        raise ValidationError({"retry_days": "Give whole numbers of days, e.g. 3, 5, 7."})
    if not days:
        raise ValidationError({"retry_days": "Enter at least one retry."})
    if len(days) > MAX_CUSTOM_RETRIES:
        raise ValidationError(
            {"retry_days": f"At most {MAX_CUSTOM_RETRIES} retries (8 attempts in all)."}
        )
    if any(not 1 <= day <= MAX_RETRY_GAP_DAYS for day in days):
        raise ValidationError(
            {"retry_days": f"Each retry comes 1 to {MAX_RETRY_GAP_DAYS} days after the previous."}
        )
    return {"retry_days": days}


def _clean_email(params, **_):
    to = (params.get("to") or "").strip()
    if not to:
        raise ValidationError({"to": "Enter the team member's email address."})
    try:
        validate_email(to)
    except ValidationError:
        raise ValidationError({"to": "Enter a valid email address."}) from None
    memo = (params.get("memo") or "").strip()
    if not memo:
        raise ValidationError({"memo": "Write the memo the team member receives."})
    if len(memo) > MAX_MEMO:
        raise ValidationError({"memo": f"At most {MAX_MEMO} characters."})
    return {"to": to, "memo": memo}


def _clean_survey(params, **_):
    url = (params.get("survey_url") or "").strip()
    if url:
        try:
            URLValidator(schemes=["https", "http"])(url)
        except ValidationError:
            raise ValidationError({"survey_url": "Enter a full URL (https://…)."}) from None
    return {"survey_url": url}


def _clean_create_subscription(params, *, account, livemode):
    price_id = params.get("price") or ""
    price = (
        Price.objects.select_related("product")
        .filter(pk=price_id, account=account, livemode=livemode)
        .first()
    )
    if price is None:
        raise ValidationError({"price": "Choose a price of this account and mode."})
    if price.type != PriceType.RECURRING:
        raise ValidationError({"price": "A subscription needs a recurring price."})
    product = params.get("product") or price.product_id
    if product != price.product_id:
        raise ValidationError({"price": "This price belongs to another product."})
    return {"product": price.product_id, "price": price.pk}


def _clean_credit(params, **_):
    currency = (params.get("currency") or "").lower()
    try:
        validate_currency(currency)
    except ValidationError:
        raise ValidationError({"currency": "Choose a currency."}) from None
    amount = params.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationError({"amount": "Enter an amount greater than zero."})
    return {"amount": amount, "currency": currency}


# --- what they do ---------------------------------------------------------------------------


def _open_invoice(ctx: Context) -> Invoice:
    invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=ctx.target.pk)
    if invoice.status != InvoiceStatus.OPEN:
        raise Skip(f"The invoice is {invoice.status}.")
    return invoice


def _set_retry_policy(ctx: Context) -> str:
    """Replace the account's retry schedule for this invoice (SPEC R-INV-9): the next attempt
    is set now and announced in `invoice.updated`; the engine asks `engine.retry_schedule`
    for the attempts after it."""
    from billing.services.invoices import emit_updated

    invoice = _open_invoice(ctx)
    if not invoice.auto_advance:
        raise Skip("The invoice is no longer collected automatically.")
    days = list(ctx.step.params["retry_days"])
    ctx.run.retry_days = days
    ctx.run.save(update_fields=["retry_days"])
    before = serialize(invoice)
    retries_done = max(invoice.attempt_count - 1, 0)
    if retries_done < len(days):
        invoice.next_payment_attempt = ctx.now + timedelta(days=days[retries_done])
        timeline.schedule("payment_retry", invoice, at=invoice.next_payment_attempt)
    else:
        invoice.next_payment_attempt = None
        timeline.cancel("payment_retry", invoice)
    invoice.save(update_fields=["next_payment_attempt"])
    emit_updated("invoice.updated", invoice, before)
    if invoice.next_payment_attempt is None:
        return "No retry left in the policy."
    return f"Next attempt {invoice.next_payment_attempt:%Y-%m-%d %H:%M} UTC."


def _subscription(ctx: Context) -> Subscription:
    subscription = ctx.subscription
    if subscription is None:
        raise Skip("The invoice has no subscription.")
    subscription.refresh_from_db(fields=["status"])
    if subscription.status in ENDED:
        raise Skip(f"The subscription is {subscription.status}.")
    return subscription


def _mark_unpaid(ctx: Context) -> str:
    from billing.services.subscriptions import mark_unpaid

    mark_unpaid(_subscription(ctx))
    return "Subscription marked unpaid."


def _cancel_subscription(ctx: Context) -> str:
    from billing.services.subscriptions import cancel_subscription

    cancel_subscription(_subscription(ctx), cancellation_details={"reason": "payment_failed"})
    return "Subscription canceled."


def _mark_uncollectible(ctx: Context) -> str:
    from billing.services.invoices import mark_uncollectible

    mark_uncollectible(_open_invoice(ctx))
    return "Invoice marked uncollectible."


def _details(ctx: Context) -> list[str]:
    """The trigger's details, for the team memo."""
    customer = ctx.customer
    lines = [
        f"Automation: {ctx.run.automation.name}",
        f"Trigger: {Trigger(ctx.run.trigger).label}",
        f"Customer: {customer.name or customer.email or customer.pk} ({customer.pk})",
    ]
    if customer.email:
        lines.append(f"Customer email: {customer.email}")
    if isinstance(ctx.target, Invoice):
        invoice = ctx.target
        lines.append(f"Invoice: {invoice.number or invoice.pk} ({invoice.pk}), {invoice.status}")
        lines.append(f"Amount due: {money.format_amount(invoice.amount_due, invoice.currency)}")
        if invoice.due_date:
            lines.append(f"Due date: {invoice.due_date:%Y-%m-%d}")
        if invoice.attempt_count:
            lines.append(f"Payment attempts: {invoice.attempt_count}")
    subscription = ctx.subscription
    if subscription is not None:
        lines.append(f"Subscription: {subscription.pk} ({subscription.status})")
    if ctx.run.event_id:
        lines.append(f"Event: {ctx.run.event_id}")
    return lines


def _email_team(ctx: Context) -> str:
    params = ctx.step.params
    body = params["memo"] + "\n\n" + "\n".join(_details(ctx))
    subject = f"{ctx.run.automation.name}: {Trigger(ctx.run.trigger).label}"
    entry = mail.send_team_memo(
        account=ctx.customer.account,
        livemode=ctx.run.livemode,
        to=params["to"],
        subject=subject,
        body=body,
        dedup_key=f"automation:{ctx.step.pk}",
        customer=ctx.customer,
    )
    if entry is None:
        return f"Memo to {params['to']} was already sent."
    if entry.reason:
        return f"Memo to {params['to']} logged, not sent: {entry.reason}"
    return f"Memo sent to {params['to']}."


def _cancellation_confirmation(ctx: Context) -> str:
    subscription = ctx.target
    survey = ctx.step.params.get("survey_url", "")
    entry, included = mail.send_cancellation_confirmation(
        subscription, dedup_key=f"automation:{ctx.step.pk}", survey_url=survey
    )
    note = "Cancellation confirmation sent." if entry is not None else "Already sent."
    if entry is not None and entry.reason:
        note = f"Cancellation confirmation logged, not sent: {entry.reason}"
    if survey and not included:
        note += " (The email service does not take a survey link yet: it was left out.)"
    return note


def _will_be_due(ctx: Context) -> str:
    invoice = _open_invoice(ctx)
    if invoice.collection_method != CollectionMethod.SEND_INVOICE:
        raise Skip("The invoice is not sent for manual payment.")
    events.emit("invoice.will_be_due", invoice)
    return "invoice.will_be_due sent."


def _create_subscription(ctx: Context) -> str:
    from billing.services.subscriptions import create_subscription

    price = Price.objects.filter(pk=ctx.step.params["price"], active=True).first()
    if price is None:
        raise Skip("The price is no longer active.")
    subscription = create_subscription(ctx.customer, items=[{"price": price}])
    return f"Subscription {subscription.pk} created ({subscription.status})."


def _credit_balance(ctx: Context) -> str:
    from billing.services.customers import create_balance_transaction

    params = ctx.step.params
    create_balance_transaction(
        ctx.customer,
        amount=-params["amount"],
        currency=params["currency"],
        description=f"Credit from the automation “{ctx.run.automation.name}”",
    )
    return f"Credited {money.format_amount(params['amount'], params['currency'])}."


REGISTRY: dict[str, ActionType] = {
    spec.kind: spec
    for spec in (
        ActionType(
            ActionKind.SET_RETRY_POLICY, PAYMENT_FAILED, _clean_retry_policy, _set_retry_policy
        ),
        ActionType(ActionKind.MARK_SUBSCRIPTION_UNPAID, PAYMENT_FAILED, _no_params, _mark_unpaid),
        ActionType(
            ActionKind.CANCEL_SUBSCRIPTION,
            PAYMENT_FAILED,
            _no_params,
            _cancel_subscription,
            ends_run=True,
        ),
        ActionType(
            ActionKind.MARK_INVOICE_UNCOLLECTIBLE,
            frozenset(
                {
                    Trigger.SUBSCRIPTION_PAYMENT_FAILED,
                    Trigger.INVOICE_FINALIZED,
                    Trigger.INVOICE_OVERDUE,
                }
            ),
            _no_params,
            _mark_uncollectible,
        ),
        ActionType(ActionKind.EMAIL_TEAM_MEMBER, ALL, _clean_email, _email_team),
        ActionType(
            ActionKind.SEND_CANCELLATION_CONFIRMATION,
            frozenset({Trigger.SUBSCRIPTION_CANCELED}),
            _clean_survey,
            _cancellation_confirmation,
        ),
        ActionType(
            ActionKind.SEND_WILL_BE_DUE_WEBHOOK,
            frozenset({Trigger.INVOICE_DUE_DATE_APPROACHING}),
            _no_params,
            _will_be_due,
        ),
        ActionType(
            ActionKind.CREATE_SUBSCRIPTION,
            frozenset({Trigger.CUSTOMER_CREATED}),
            _clean_create_subscription,
            _create_subscription,
        ),
        ActionType(
            ActionKind.CREDIT_CUSTOMER_BALANCE,
            frozenset({Trigger.CUSTOMER_CREATED}),
            _clean_credit,
            _credit_balance,
        ),
    )
}


def get(kind) -> ActionType:
    """The action type of `kind`; an unknown kind is a programming or data error."""
    try:
        return REGISTRY[kind]
    except (KeyError, TypeError):
        raise ValueError(f"unknown action {kind!r}") from None


def fitting(trigger: str) -> list[str]:
    """The actions that fit `trigger`, in the order the builder offers them."""
    return [kind for kind, spec in REGISTRY.items() if trigger in spec.triggers]


def _delay(action, trigger) -> int:
    from automations import triggers

    value = action.get("delay_days", 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError({"delay_days": "Enter a whole number of days."})
    if trigger in Trigger.values and triggers.get(trigger).from_due_date:
        if abs(value) > MAX_DELAY_DAYS:
            raise ValidationError({"delay_days": f"At most {MAX_DELAY_DAYS} days."})
    elif not 0 <= value <= MAX_DELAY_DAYS:
        raise ValidationError({"delay_days": f"Enter 0 to {MAX_DELAY_DAYS} days."})
    return value


def clean(actions, trigger: str, *, account, livemode: bool) -> list[dict]:
    """Normalized actions for `trigger`, or a ValidationError naming the field at fault
    (`actions.1.kind`). The server decides which action fits which trigger (SPEC R-AUTO-4)."""
    if not isinstance(actions, list) or not actions:
        raise ValidationError({"actions": "Add at least one action."})
    cleaned, errors = [], {}
    previous = None
    for position, action in enumerate(actions):
        prefix = f"actions.{position}"
        kind = action.get("kind") if isinstance(action, dict) else None
        try:
            spec = get(kind)
        except ValueError:
            errors[f"{prefix}.kind"] = [f"Unknown action {kind!r}."]
            continue
        if trigger in Trigger.values and trigger not in spec.triggers:
            errors[f"{prefix}.kind"] = [
                f"“{ActionKind(kind).label}” does not fit the trigger “{Trigger(trigger).label}”."
            ]
            continue
        try:
            delay = _delay(action, trigger)
        except ValidationError as error:
            errors.update({f"{prefix}.{k}": v for k, v in error.message_dict.items()})
            continue
        if previous is not None and delay < previous:
            errors[f"{prefix}.delay_days"] = [
                "Actions run in order: this one cannot come before the one above it."
            ]
        previous = delay
        try:
            params = spec.clean(action.get("params") or {}, account=account, livemode=livemode)
        except ValidationError as error:
            errors.update({f"{prefix}.{k}": v for k, v in error.message_dict.items()})
            continue
        cleaned.append({"kind": spec.kind, "delay_days": delay, "params": params})
    ends = [i for i, a in enumerate(cleaned) if get(a["kind"]).ends_run]
    if ends and ends[0] != len(cleaned) - 1 and not errors:
        errors[f"actions.{ends[0]}.kind"] = [
            "Canceling the subscription ends the run: make it the last action."
        ]
    if errors:
        raise ValidationError(errors)
    return cleaned
