"""Which customer email each engine event or due job sends, and when (SPEC R-MAIL-1 … R-MAIL-4).

Event handlers (registered in notifications/subscribers.py) and due-job handlers (registered
here with the timeline) decide; `sending.queue_email` logs and delivers. Every handler re-reads
the current state and does nothing when the email no longer applies (invoice paid, trial over,
card replaced), and every email has a de-duplication key naming its cause, so running a handler
twice sends nothing twice.

Renewal reminders ride on the engine's `invoice.upcoming` event rather than a job of our own:
Stripe sends the renewal email "according to the days configured for upcoming renewal events",
and the engine already schedules that event from the same setting, skips `send_invoice`
subscriptions and ones ending at period end, and moves it when a period changes. A second job
would duplicate all of that and could disagree with the webhook merchants receive.
"""

from datetime import UTC, datetime, timedelta

from django.db import transaction

from billing import timeline
from billing.choices import (
    CollectionMethod,
    InvoiceStatus,
    PaymentIntentStatus,
    SubscriptionStatus,
)
from billing.clocks import now_for
from billing.models import Invoice, PaymentMethod, Subscription
from billing.models.subscriptions import LIVE_STATUSES
from billing.money import format_amount
from notifications.choices import EmailKind, LinkDestination, LinkPurpose
from notifications.models import EmailLog
from notifications.services.links import issue_link
from notifications.services.rendering import format_date, zone_for
from notifications.services.sending import is_logged, queue_email
from notifications.services.settings import email_settings

# R-MAIL-2: the trial-ending reminder goes this long before the trial ends.
TRIAL_REMINDER_BEFORE = timedelta(days=7)

TRIAL_JOB = "email_trial_ending"
ACTION_REMINDER_JOB = "email_payment_action_reminder"
INVOICE_REMINDER_JOB = "email_invoice_reminder"
EXPIRING_CARD_JOB = "email_expiring_card"


def _ts(moment) -> int:
    return int(moment.timestamp())


def _plan_name(subscription) -> str:
    if subscription is None:
        return ""
    names = [
        item.price.product.name for item in subscription.items.select_related("price__product")
    ]
    return ", ".join(dict.fromkeys(names)) or "your subscription"


def _links(subscription, settings, *, now, kind, payment: bool) -> dict:
    """The payment-update and management links an email carries (R-MAIL-4, R-MAIL-7)."""
    links = {"payment_link": "", "manage_link": ""}
    if subscription is None:
        return links
    if payment and subscription.collection_method != CollectionMethod.SEND_INVOICE:
        if settings.payment_link_destination == LinkDestination.CUSTOM:
            links["payment_link"] = settings.payment_link_url
        else:
            _, links["payment_link"] = issue_link(
                subscription, LinkPurpose.PAYMENT_UPDATE, now=now, email_kind=kind
            )
    if settings.manage_link_destination == LinkDestination.CUSTOM:
        links["manage_link"] = settings.manage_link_url
    elif settings.manage_link_destination == LinkDestination.HOSTED and subscription.status not in (
        SubscriptionStatus.CANCELED,
        SubscriptionStatus.INCOMPLETE_EXPIRED,
    ):
        _, links["manage_link"] = issue_link(
            subscription, LinkPurpose.MANAGE, now=now, email_kind=kind
        )
    return links


def _send(
    kind,
    *,
    customer,
    dedup_key,
    context,
    subscription=None,
    settings,
    event=None,
    object_id="",
    payment_link=False,
) -> EmailLog | None:
    """The common tail of every customer email: links, customer and dates, then the log."""
    if customer is None or customer.deleted_at is not None or is_logged(dedup_key):
        return None
    account = customer.account
    now = now_for(customer)
    zone = zone_for(customer, account)
    full = {
        "customer_name": customer.name or customer.email,
        "plan_name": _plan_name(subscription),
        "today": format_date(now, zone),
        **_links(subscription, settings, now=now, kind=kind, payment=payment_link),
        **context,
    }
    return queue_email(
        kind,
        account=account,
        livemode=customer.livemode,
        to=customer.email,
        dedup_key=dedup_key,
        context=full,
        customer=customer,
        event=event,
        object_id=object_id,
        # The settlement merchant's branding for a subscription on behalf of a connected
        # account (SPEC R-CON-6), as the hosted pages show it.
        brand_account=subscription.on_behalf_of
        if subscription is not None and subscription.on_behalf_of_id
        else None,
    )


def _invoice_context(invoice: Invoice, zone) -> dict:
    return {
        "invoice_number": invoice.number or invoice.pk,
        "amount_due": format_amount(
            invoice.amount_remaining or invoice.amount_due, invoice.currency
        ),
        "amount_paid": format_amount(invoice.amount_paid, invoice.currency),
        "total": format_amount(invoice.total, invoice.currency),
        "due_date": format_date(invoice.due_date, zone),
        "next_attempt_date": format_date(invoice.next_payment_attempt, zone),
    }


def _load_invoice(invoice_id):
    return (
        Invoice.objects.select_related(
            "account", "customer__account", "subscription__customer", "payment_intent"
        )
        .filter(pk=invoice_id)
        .first()
    )


def _load_subscription(subscription_id):
    return (
        Subscription.objects.select_related("account", "customer__account")
        .filter(pk=subscription_id)
        .first()
    )


def _load_card(payment_method_id):
    return (
        PaymentMethod.objects.select_related("customer__account")
        .filter(pk=payment_method_id)
        .first()
    )


# ---- invoices ---------------------------------------------------------------------------------


def _automation_took(trigger: str, object_id: str) -> bool:
    """Whether an automation handles this trigger for this object, so the account's default
    email for it is not sent (SPEC R-AUTO-6). The automations app is installed before this one,
    so its subscribers have matched the event by the time ours run."""
    from automations import engine as automations

    return automations.taken(trigger, object_id)


@transaction.atomic
def payment_failed(event) -> EmailLog | None:
    """A failed automatic payment: tell the customer and link to the payment-update page."""
    invoice = _load_invoice(event.object_id)
    if invoice is None or invoice.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
        return None
    if _automation_took("subscription_payment_failed", invoice.pk):
        return None
    settings = email_settings(invoice.account_id, invoice.livemode)
    if not settings.payment_failed:
        return None
    data = event.data.get("object", {})
    attempt = data.get("attempt_count", invoice.attempt_count)
    context = _invoice_context(invoice, zone_for(invoice.customer, invoice.account))
    if data.get("next_payment_attempt"):
        context["next_attempt_date"] = format_date(
            datetime.fromtimestamp(data["next_payment_attempt"], UTC),
            zone_for(invoice.customer, invoice.account),
        )
    return _send(
        EmailKind.PAYMENT_FAILED,
        customer=invoice.customer,
        subscription=invoice.subscription,
        dedup_key=f"payment_failed:{invoice.pk}:{attempt}",
        context=context,
        settings=settings,
        event=event,
        object_id=invoice.pk,
        payment_link=True,
    )


def _action_pending(invoice: Invoice, intent_id: str | None) -> bool:
    intent = invoice.payment_intent
    return (
        invoice.status == InvoiceStatus.OPEN
        and intent is not None
        and intent.pk == intent_id
        and intent.status == PaymentIntentStatus.REQUIRES_ACTION
    )


def _send_action_email(invoice, settings, *, cycle: str, event=None) -> EmailLog | None:
    context = _invoice_context(invoice, zone_for(invoice.customer, invoice.account))
    context["is_reminder"] = cycle != "0"
    return _send(
        EmailKind.PAYMENT_ACTION_REQUIRED,
        customer=invoice.customer,
        subscription=invoice.subscription,
        dedup_key=f"payment_action_required:{invoice.pk}:{invoice.payment_intent_id}:{cycle}",
        context=context,
        settings=settings,
        event=event,
        object_id=invoice.pk,
        payment_link=True,
    )


@transaction.atomic
def payment_action_required(event) -> EmailLog | None:
    """3-D Secure needed: ask the customer to confirm, then remind every N days (R-INV-5)."""
    invoice = _load_invoice(event.object_id)
    if invoice is None or not _action_pending(invoice, invoice.payment_intent_id):
        return None
    settings = email_settings(invoice.account_id, invoice.livemode)
    if not settings.payment_action_required:
        return None
    sent = _send_action_email(invoice, settings, cycle="0", event=event)
    if settings.payment_action_reminders:
        timeline.schedule(
            ACTION_REMINDER_JOB,
            invoice,
            at=now_for(invoice) + timedelta(days=settings.payment_action_reminder_days),
        )
    return sent


@timeline.handler(ACTION_REMINDER_JOB, target=_load_invoice)
def _action_reminder_due(invoice: Invoice, job) -> None:
    """A reminder while the payment still waits for the customer's confirmation."""
    if not _action_pending(invoice, invoice.payment_intent_id):
        return
    settings = email_settings(invoice.account_id, invoice.livemode)
    if not (settings.payment_action_required and settings.payment_action_reminders):
        return
    _send_action_email(invoice, settings, cycle=str(_ts(job.due_at)))
    timeline.schedule(
        ACTION_REMINDER_JOB,
        invoice,
        at=job.due_at + timedelta(days=settings.payment_action_reminder_days),
    )


@transaction.atomic
def invoice_finalized(event) -> EmailLog | None:
    """A `send_invoice` invoice is finalized: email it (as Stripe does, not for automatic
    collection), and plan the unpaid-invoice reminders of a subscription's invoice."""
    invoice = _load_invoice(event.object_id)
    if invoice is None or invoice.collection_method != CollectionMethod.SEND_INVOICE:
        return None
    if _automation_took("invoice_finalized", invoice.pk):
        return None
    settings = email_settings(invoice.account_id, invoice.livemode)
    sent = None
    if settings.finalized_invoices:
        sent = _send(
            EmailKind.INVOICE_FINALIZED,
            customer=invoice.customer,
            subscription=invoice.subscription,
            dedup_key=f"invoice_finalized:{invoice.pk}",
            context=_invoice_context(invoice, zone_for(invoice.customer, invoice.account)),
            settings=settings,
            event=event,
            object_id=invoice.pk,
        )
    if (
        settings.invoice_reminders
        and invoice.subscription_id
        and invoice.due_date
        and invoice.status == InvoiceStatus.OPEN
    ):
        timeline.schedule(
            INVOICE_REMINDER_JOB,
            invoice,
            at=invoice.due_date + timedelta(days=settings.invoice_reminder_days),
        )
    return sent


@timeline.handler(INVOICE_REMINDER_JOB, target=_load_invoice)
def _invoice_reminder_due(invoice: Invoice, job) -> None:
    """An unpaid recurring `send_invoice` invoice: remind, every N days, at most M times."""
    if invoice.status != InvoiceStatus.OPEN or invoice.amount_remaining <= 0:
        return
    settings = email_settings(invoice.account_id, invoice.livemode)
    if not settings.invoice_reminders:
        return
    sent_before = EmailLog.objects.filter(
        kind=EmailKind.INVOICE_REMINDER, dedup_key__startswith=f"invoice_reminder:{invoice.pk}:"
    ).count()
    if sent_before >= settings.invoice_reminder_count:
        return
    _send(
        EmailKind.INVOICE_REMINDER,
        customer=invoice.customer,
        subscription=invoice.subscription,
        dedup_key=f"invoice_reminder:{invoice.pk}:{_ts(job.due_at)}",
        context={
            **_invoice_context(invoice, zone_for(invoice.customer, invoice.account)),
            "reminder_number": sent_before + 1,
        },
        settings=settings,
        object_id=invoice.pk,
    )
    if sent_before + 1 < settings.invoice_reminder_count:
        timeline.schedule(
            INVOICE_REMINDER_JOB,
            invoice,
            at=job.due_at + timedelta(days=settings.invoice_reminder_days),
        )


@transaction.atomic
def receipt(event) -> EmailLog | None:
    """A paid invoice's receipt (a $0 invoice, e.g. a trial's first, gets none)."""
    invoice = _load_invoice(event.object_id)
    if invoice is None or invoice.amount_paid <= 0:
        return None
    settings = email_settings(invoice.account_id, invoice.livemode)
    if not settings.receipts:
        return None
    zone = zone_for(invoice.customer, invoice.account)
    return _send(
        EmailKind.RECEIPT,
        customer=invoice.customer,
        subscription=invoice.subscription,
        dedup_key=f"receipt:{invoice.pk}",
        context={
            **_invoice_context(invoice, zone),
            "paid_date": format_date(invoice.paid_at, zone),
        },
        settings=settings,
        event=event,
        object_id=invoice.pk,
    )


# ---- subscriptions ----------------------------------------------------------------------------


def _trial_key(subscription) -> str:
    return f"trial_ending:{subscription.pk}:{_ts(subscription.trial_end)}"


def _send_trial_reminder(subscription, settings, *, event=None) -> EmailLog | None:
    zone = zone_for(subscription.customer, subscription.account)
    return _send(
        EmailKind.TRIAL_ENDING,
        customer=subscription.customer,
        subscription=subscription,
        dedup_key=_trial_key(subscription),
        context={
            "trial_end_date": format_date(subscription.trial_end, zone),
            "has_payment_method": _has_payment_method(subscription),
        },
        settings=settings,
        event=event,
        object_id=subscription.pk,
        payment_link=True,
    )


def _has_payment_method(subscription) -> bool:
    from notifications.services.links import has_payment_method

    return has_payment_method(subscription)


@transaction.atomic
def plan_trial_reminder(event) -> EmailLog | None:
    """R-MAIL-2: the trial-ending reminder 7 days before the trial ends, at once when less
    remains (a trial shorter than 7 days: at its start), and again for each new trial end."""
    subscription = _load_subscription(event.object_id)
    if (
        subscription is None
        or subscription.status != SubscriptionStatus.TRIALING
        or subscription.trial_end is None
    ):
        return None
    settings = email_settings(subscription.account_id, subscription.livemode)
    if not settings.trial_ending or is_logged(_trial_key(subscription)):
        return None
    remind_at = subscription.trial_end - TRIAL_REMINDER_BEFORE
    if remind_at <= now_for(subscription):
        timeline.cancel(TRIAL_JOB, subscription)
        return _send_trial_reminder(subscription, settings, event=event)
    # Replaces the job planned for an earlier trial end (a trial that was moved).
    timeline.schedule(TRIAL_JOB, subscription, at=remind_at)
    return None


@timeline.handler(TRIAL_JOB, target=_load_subscription)
def _trial_reminder_due(subscription: Subscription, job) -> None:
    """The planned trial-ending reminder, if the subscription is still in that trial."""
    if subscription.status != SubscriptionStatus.TRIALING or subscription.trial_end is None:
        return
    if subscription.trial_end - TRIAL_REMINDER_BEFORE > job.due_at:
        return  # the trial was extended; its own job is planned
    settings = email_settings(subscription.account_id, subscription.livemode)
    if settings.trial_ending:
        _send_trial_reminder(subscription, settings)


@transaction.atomic
def upcoming_renewal(event) -> EmailLog | None:
    """The renewal reminder, on the engine's `invoice.upcoming` (R-INV-6), with the renewal
    date in the customer's time zone (R-MAIL-3). During a trial, when trial reminders are on,
    only the trial reminder goes (R-MAIL-2)."""
    data = event.data.get("object", {})
    subscription = _load_subscription(data.get("subscription") or event.object_id)
    if subscription is None or subscription.collection_method == CollectionMethod.SEND_INVOICE:
        return None
    settings = email_settings(subscription.account_id, subscription.livemode)
    if not settings.upcoming_renewal:
        return None
    if subscription.status == SubscriptionStatus.TRIALING and settings.trial_ending:
        return None
    zone = zone_for(subscription.customer, subscription.account)
    currency = data.get("currency") or subscription.currency
    amount = data.get("amount_due")
    return _send(
        EmailKind.UPCOMING_RENEWAL,
        customer=subscription.customer,
        subscription=subscription,
        dedup_key=f"upcoming_renewal:{subscription.pk}:{_ts(subscription.current_period_end)}",
        context={
            "renewal_date": format_date(subscription.current_period_end, zone),
            "amount_due": format_amount(int(amount), currency) if amount is not None else "",
        },
        settings=settings,
        event=event,
        object_id=subscription.pk,
        payment_link=True,
    )


@transaction.atomic
def subscription_canceled(event) -> EmailLog | None:
    """The subscription has ended (`customer.subscription.deleted`)."""
    subscription = _load_subscription(event.object_id)
    if subscription is None or _automation_took("subscription_canceled", subscription.pk):
        return None
    settings = email_settings(subscription.account_id, subscription.livemode)
    if not settings.subscription_canceled:
        return None
    zone = zone_for(subscription.customer, subscription.account)
    return _send(
        EmailKind.SUBSCRIPTION_CANCELED,
        customer=subscription.customer,
        subscription=subscription,
        dedup_key=f"subscription_canceled:{subscription.pk}",
        context={
            "ended_date": format_date(subscription.ended_at or subscription.canceled_at, zone)
        },
        settings=settings,
        event=event,
        object_id=subscription.pk,
    )


# ---- cards ------------------------------------------------------------------------------------


def _card_dates(card: PaymentMethod) -> tuple[datetime, datetime]:
    """(one month before expiry, expiry): a card is good through the last day of its month."""
    remind_at = datetime(card.card_exp_year, card.card_exp_month, 1, tzinfo=UTC)
    if card.card_exp_month == 12:
        expires_at = datetime(card.card_exp_year + 1, 1, 1, tzinfo=UTC)
    else:
        expires_at = datetime(card.card_exp_year, card.card_exp_month + 1, 1, tzinfo=UTC)
    return remind_at, expires_at


def _subscription_using(card: PaymentMethod):
    """The customer's live, automatically charged subscription this card pays, if any."""
    customer = card.customer
    subscriptions = Subscription.objects.filter(
        customer=customer,
        status__in=LIVE_STATUSES,
        collection_method=CollectionMethod.CHARGE_AUTOMATICALLY,
    ).order_by("created", "pk")
    own = subscriptions.filter(default_payment_method=card).first()
    if own is not None:
        return own
    if customer.invoice_settings_default_payment_method_id == card.pk:
        return subscriptions.filter(default_payment_method__isnull=True).first()
    return None


def plan_expiring_card(card: PaymentMethod | None) -> None:
    """Plan the reminder one month before `card` expires (R-MAIL-1); re-checked when it runs."""
    if card is None or card.customer_id is None or not card.card_exp_year:
        return
    remind_at, expires_at = _card_dates(card)
    now = now_for(card)
    if now >= expires_at:
        return
    timeline.schedule(EXPIRING_CARD_JOB, card, at=max(remind_at, now))


@transaction.atomic
def card_attached(event) -> None:
    """`payment_method.attached`: plan the card's expiry reminder."""
    plan_expiring_card(_load_card(event.object_id))


@transaction.atomic
def customer_updated(event) -> None:
    """`customer.updated` with a new default card: plan that card's expiry reminder."""
    previous = event.data.get("previous_attributes") or {}
    if "invoice_settings" not in previous:
        return
    default = (event.data.get("object", {}).get("invoice_settings") or {}).get(
        "default_payment_method"
    )
    if isinstance(default, dict):
        default = default.get("id")
    if default:
        plan_expiring_card(_load_card(default))


@timeline.handler(EXPIRING_CARD_JOB, target=_load_card)
def _expiring_card_due(card: PaymentMethod, job) -> None:
    """One month before expiry: remind, if the card is still the one a subscription charges."""
    if card.customer_id is None:
        return
    remind_at, expires_at = _card_dates(card)
    now = now_for(card)
    if now >= expires_at or now < remind_at:
        return  # expired already, or the dates changed (the job was planned for other ones)
    subscription = _subscription_using(card)
    if subscription is None:
        return
    settings = email_settings(card.account_id, card.livemode)
    if not settings.expiring_card:
        return
    zone = zone_for(card.customer, card.customer.account)
    _send(
        EmailKind.EXPIRING_CARD,
        customer=card.customer,
        subscription=subscription,
        dedup_key=f"expiring_card:{card.pk}:{card.card_exp_year}-{card.card_exp_month:02d}",
        context={
            "card_brand": card.get_card_brand_display(),
            "card_last4": card.card_last4,
            "card_expiry": f"{card.card_exp_month:02d}/{card.card_exp_year}",
            "expiry_date": format_date(expires_at - timedelta(seconds=1), zone),
        },
        settings=settings,
        object_id=card.pk,
        payment_link=True,
    )


# ---- for automations (#7) ---------------------------------------------------------------------


def send_email(
    kind: str,
    *,
    account,
    livemode: bool,
    to: str,
    dedup_key: str,
    context: dict | None = None,
    customer=None,
    event=None,
    object_id: str = "",
) -> EmailLog | None:
    """Send any kind to any recipient (automations' team memo and cancellation confirmation).

    The test-mode restriction and de-duplication apply as for every email; call it inside the
    transaction that decided it. Returns None when `dedup_key` already has its email.
    """
    zone = zone_for(customer, account)
    full = {"today": format_date(now_for(customer) if customer else None, zone), **(context or {})}
    if customer is not None:
        full.setdefault("customer_name", customer.name or customer.email)
    return queue_email(
        kind,
        account=account,
        livemode=livemode,
        to=to,
        dedup_key=dedup_key,
        context=full,
        customer=customer,
        event=event,
        object_id=object_id,
    )


def send_team_memo(
    *,
    account,
    livemode: bool,
    to: str,
    subject: str,
    body: str,
    dedup_key: str,
    customer=None,
    event=None,
) -> EmailLog | None:
    """A note to a team member about a customer (automation action)."""
    return send_email(
        EmailKind.TEAM_MEMO,
        account=account,
        livemode=livemode,
        to=to,
        dedup_key=dedup_key,
        context={"memo_subject": subject, "memo_body": body, "customer": customer},
        customer=customer,
        event=event,
        object_id=customer.pk if customer else "",
    )


def send_cancellation_confirmation(
    subscription, *, dedup_key: str, to: str | None = None, event=None, survey_url: str = ""
) -> EmailLog | None:
    """Confirm to the customer (or `to`) that a subscription is canceled or will end, with a
    link to the merchant's cancellation survey when an automation gives one."""
    customer = subscription.customer
    zone = zone_for(customer, customer.account)
    ends = (
        subscription.ended_at
        or subscription.cancel_at
        or (subscription.current_period_end if subscription.cancel_at_period_end else None)
    )
    settings = email_settings(subscription.account_id, subscription.livemode)
    return send_email(
        EmailKind.CANCELLATION_CONFIRMATION,
        account=customer.account,
        livemode=subscription.livemode,
        to=to or customer.email,
        dedup_key=dedup_key,
        context={
            "plan_name": _plan_name(subscription),
            "end_date": format_date(ends, zone),
            "already_ended": subscription.status == SubscriptionStatus.CANCELED,
            "survey_url": survey_url,
            **_links(
                subscription,
                settings,
                now=now_for(subscription),
                kind=EmailKind.CANCELLATION_CONFIRMATION,
                payment=False,
            ),
        },
        customer=customer,
        event=event,
        object_id=subscription.pk,
    )
