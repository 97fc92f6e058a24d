"""Invoices: build, finalize, collect (with retries), void, mark uncollectible.

SPEC R-INV-*. Every function runs inside the caller's transaction or its own, emits the events
of what changed, and schedules or cancels the due jobs that follow (finalization one hour after
creation, payment retries, the overdue notice).
"""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction

from billing import batching, events, money, prepared, timeline
from billing.choices import (
    AccountType,
    AfterRetriesInvoice,
    AfterRetriesSubscription,
    AutomaticTaxStatus,
    BalanceTransactionType,
    BillingReason,
    CollectionMethod,
    InvoiceNumbering,
    InvoiceStatus,
    LineItemType,
    PaymentIntentStatus,
    SubscriptionStatus,
)
from billing.clocks import now_for
from billing.models import (
    Account,
    Coupon,
    Customer,
    CustomerBalanceTransaction,
    Discount,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    PaymentIntent,
    PaymentMethod,
    Price,
    RecoverySettings,
    Subscription,
)
from billing.models.accounts import account_invoice_prefix
from billing.prepared import Prepared
from billing.serializers import _related, serialize
from billing.services import connect
from billing.services.accounts import changed_attributes
from billing.validators import validate_metadata

# SPEC R-INV-2: a renewal invoice waits about an hour as a draft before it is finalized.
FINALIZATION_DELAY = timedelta(hours=1)


class CardError(Exception):
    """A payment the caller asked for failed (Stripe's 402 `card_error`); carries Stripe's error."""

    def __init__(self, error: dict):
        self.error = error
        super().__init__(error.get("message", "Your card was declined."))


_RECOVERY_SETTINGS = Prepared(
    lambda account_id, livemode: RecoverySettings.objects.filter(
        account_id=account_id, livemode=livemode
    )
)


def recovery_settings_read(account_id: str, livemode: bool) -> tuple:
    """`recovery_settings`' query as a read for `prepared.ahead`."""
    return (_RECOVERY_SETTINGS, "first", (account_id, livemode))


def recovery_settings(account, livemode: bool) -> RecoverySettings:
    """The account's (or account id's) revenue-recovery settings for a mode (defaults until
    someone saves them); read once per batch."""
    account_id = getattr(account, "pk", account)

    def read():
        found = prepared.run(recovery_settings_read(account_id, livemode))
        return found or RecoverySettings(account_id=account_id, livemode=livemode)

    return batching.cached(("recovery_settings", account_id, livemode), read)


def emit_updated(event_type: str, obj, before: dict, *, also=(), **options) -> dict:
    """Emit the events in `also`, then `event_type` with `previous_attributes`: what changed
    since `before` (serialized). The object is serialized once for all of them, and that
    rendering is returned: the `before` of a change that follows at once."""
    after = serialize(obj)
    for other_type in also:
        events.emit(other_type, obj, payload=after, **options)
    changed = changed_attributes(before, after)
    if changed:
        events.emit(event_type, obj, previous_attributes=changed, payload=after, **options)
    return after


# --- building --------------------------------------------------------------------------------


_CUSTOMER_DISCOUNTS = Prepared(
    lambda customer_id: Discount.objects.filter(customer=customer_id).select_related("coupon")
)


def customer_discounts_read(customer_id: str) -> tuple:
    """The query `_discounts_of` asks for a customer, as a read for `prepared.ahead`."""
    return (_CUSTOMER_DISCOUNTS, "all", (customer_id,))


def _discounts_of(customer) -> list:
    """`customer.discounts` with their coupons: the prefetched rows if any, else one query
    compiled once (each row's `customer` is this customer, as the related manager sets it)."""
    manager = customer.discounts
    cache = getattr(customer, "_prefetched_objects_cache", {})
    if manager.field.remote_field.cache_name in cache or not isinstance(customer.pk, str):
        return list(_related(manager, "coupon"))
    rows = prepared.run(customer_discounts_read(customer.pk))
    for row in rows:
        manager.field.set_cached_value(row, customer)
    return rows


def _discount_in_force(subscription: Subscription | None, customer, at):
    """The subscription's discount at `at`, else the customer's (Stripe's precedence).

    Read through `.all()` so that discounts prefetched with `discounts__coupon` cost no query."""
    scopes = []
    if subscription is not None:
        scopes.append(list(_related(subscription.discounts, "coupon")))
    scopes.append([d for d in _discounts_of(customer) if d.subscription_id is None])
    for discounts in scopes:
        for discount in sorted(discounts, key=lambda d: d.start, reverse=True):
            if discount.start <= at and (discount.end is None or discount.end > at):
                return discount
    return None


def _discount_amount(discount, discountable: int, currency: str) -> int:
    if discount is None or discountable <= 0:
        return 0
    coupon = discount.coupon
    if coupon.percent_off is not None:
        return min(discountable, money.percent_of(discountable, coupon.percent_off))
    if coupon.currency == currency:
        return min(discountable, coupon.amount_off)
    return 0


def compute_totals(invoice: Invoice) -> Invoice:
    """Subtotal, discount and total from the lines (the balance is applied at finalization)."""
    lines = list(invoice.lines.all())
    invoice.subtotal = sum(line.amount for line in lines)
    discountable = sum(line.amount for line in lines if line.discountable and line.amount > 0)
    at = invoice.period_end if invoice.subscription_id else invoice.created
    discount = _discount_in_force(invoice.subscription, invoice.customer, at)
    invoice.total_discount_amount = _discount_amount(discount, discountable, invoice.currency)
    invoice.total = invoice.subtotal - invoice.total_discount_amount
    invoice.amount_due = max(invoice.total, 0)
    invoice.amount_remaining = invoice.amount_due - invoice.amount_paid
    return invoice


def build_invoice(
    customer,
    *,
    subscription=None,
    billing_reason: str,
    currency: str,
    period_start,
    period_end,
    lines: list[dict],
    collection_method: str = CollectionMethod.CHARGE_AUTOMATICALLY,
    days_until_due: int | None = None,
    auto_advance: bool = True,
    include_pending_items: bool = True,
    metadata=None,
    description: str = "",
    created=None,
    application=None,
) -> tuple[Invoice, list[InvoiceLineItem], list[InvoiceItem]]:
    """An unsaved draft invoice with its unsaved lines — `lines` (dicts of InvoiceLineItem
    fields) plus the customer's pending invoice items for this subscription — and totals.

    Writes nothing: `create_invoice` saves what this builds, and the `invoice.upcoming` preview
    renders it as it is. The lines are placed in the invoice's prefetch cache so totals and
    serialization read them without a query.
    """
    now = created or now_for(customer)
    invoice = Invoice(
        account_id=customer.account_id,
        livemode=customer.livemode,
        customer=customer,
        subscription=subscription,
        status=InvoiceStatus.DRAFT,
        billing_reason=billing_reason,
        collection_method=collection_method,
        currency=currency,
        auto_advance=auto_advance,
        period_start=period_start,
        period_end=period_end,
        created=now,
        test_clock_id=customer.test_clock_id,
        metadata=metadata or {},
        description=description,
        on_behalf_of_id=getattr(subscription, "on_behalf_of_id", None),
        transfer_data_destination_id=getattr(subscription, "transfer_data_destination_id", None),
        # Invoices of a subscription the platform created as the account are the platform's too
        # (SPEC R-CON-5).
        application_id=(
            application.pk
            if application is not None
            else getattr(subscription, "application_id", None)
        ),
        default_payment_method_id=getattr(subscription, "default_payment_method_id", None),
    )
    if collection_method == CollectionMethod.SEND_INVOICE and days_until_due is not None:
        invoice.due_date = now + timedelta(days=days_until_due)
    rows = [
        InvoiceLineItem(
            account_id=customer.account_id,
            livemode=customer.livemode,
            invoice=invoice,
            subscription=subscription,
            currency=currency,
            created=now,
            **line,
        )
        for line in lines
    ]
    pending_items = _pending_items(customer, subscription) if include_pending_items else []
    for item in pending_items:
        rows.append(
            InvoiceLineItem(
                account_id=customer.account_id,
                livemode=customer.livemode,
                invoice=invoice,
                type=LineItemType.INVOICEITEM,
                subscription=subscription,
                price=item.price,
                description=item.description,
                amount=item.amount,
                currency=item.currency,
                quantity=item.quantity,
                proration=item.proration,
                discountable=item.discountable,
                period_start=item.period_start,
                period_end=item.period_end,
                created=now,
            )
        )
    batching.cache_rows(invoice, "lines", rows)
    compute_totals(invoice)
    return invoice, rows, pending_items


def _pending_items(customer, subscription) -> list[InvoiceItem]:
    """The customer's invoice items waiting for this subscription's next invoice (or for a
    manual invoice); a subscription loaded with `pending_invoice_items` prefetched answers
    without a query."""
    if subscription is not None and hasattr(subscription, "pending_invoice_items"):
        return [item for item in subscription.pending_invoice_items if item.invoice_id is None]
    return list(
        InvoiceItem.objects.filter(
            customer=customer, invoice__isnull=True, subscription=subscription
        ).select_related("price__product")
    )


def create_invoice(customer, **options) -> Invoice:
    """A draft invoice (see `build_invoice` for the options), saved; emits `invoice.created`."""
    invoice, rows, pending_items = build_invoice(customer, **options)
    batching.insert(invoice)
    batching.insert(*rows)
    for item in pending_items:
        item.invoice = invoice
        batching.save(item, update_fields=["invoice"])
    events.emit("invoice.created", invoice)
    return invoice


@transaction.atomic
def create_invoice_item(
    customer,
    *,
    price=None,
    amount: int | None = None,
    currency: str | None = None,
    quantity: int = 1,
    description: str = "",
    subscription=None,
    metadata=None,
    request_id=None,
) -> InvoiceItem:
    """A pending charge for the customer's next invoice: a one-off price, or an amount."""
    if customer.deleted_at is not None:
        raise ValidationError({"customer": "This customer has been deleted."})
    if (price is None) == (amount is None):
        raise ValidationError({"price": "Give either a price or an amount."})
    if not isinstance(quantity, int) or quantity < 1:
        raise ValidationError({"quantity": "Quantity must be at least 1."})
    if subscription is not None and subscription.customer_id != customer.pk:
        raise ValidationError({"subscription": "This subscription belongs to another customer."})
    if price is not None:
        if price.account_id != customer.account_id or price.livemode != customer.livemode:
            raise ValidationError({"price": "No such price."})
        amount, currency = price.unit_amount * quantity, price.currency
        description = description or f"{quantity} × {price.product.name}"
    else:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise ValidationError({"amount": "The amount is a whole number of minor units."})
        if not currency:
            raise ValidationError({"currency": "An amount needs a currency."})
    if metadata:
        validate_metadata(metadata)
    now = now_for(customer)
    item = InvoiceItem.objects.create(
        account_id=customer.account_id,
        livemode=customer.livemode,
        customer=customer,
        subscription=subscription,
        price=price,
        amount=amount,
        currency=currency.lower(),
        quantity=quantity,
        description=description,
        period_start=now,
        period_end=now,
        metadata=metadata or {},
        created=now,
    )
    events.emit("invoiceitem.created", item, request_id=request_id)
    return item


@transaction.atomic
def create_manual_invoice(
    customer,
    *,
    collection_method: str = CollectionMethod.CHARGE_AUTOMATICALLY,
    days_until_due: int | None = None,
    auto_advance: bool = False,
    description: str = "",
    metadata=None,
    subscription: Subscription | None = None,
    pending_invoice_items_behavior: str = "include",
    application=None,
    request_id=None,
) -> Invoice:
    """A draft `manual` invoice gathering the customer's pending invoice items: those of
    `subscription` when given (its prorations, one-off items), else those of no subscription.

    `application` is the platform creating it while acting as the connected account (SPEC
    R-CON-5: it may then add a fee); an invoice of a subscription keeps the subscription's.

    With `pending_invoice_items_behavior="exclude"` it gathers nothing and may be empty (its
    currency is the subscription's, else the customer's, else the account's default). Like
    Stripe, a manual invoice is a draft until finalized (`auto_advance` finalizes it in about an
    hour)."""
    if customer.deleted_at is not None:
        raise ValidationError({"customer": "This customer has been deleted."})
    if pending_invoice_items_behavior not in ("include", "exclude"):
        raise ValidationError({"pending_invoice_items_behavior": "Use include or exclude."})
    if subscription is not None and subscription.customer_id != customer.pk:
        raise ValidationError({"subscription": "This subscription belongs to another customer."})
    include = pending_invoice_items_behavior == "include"
    currencies = set()
    if include:
        pending = InvoiceItem.objects.filter(
            customer=customer, invoice__isnull=True, subscription=subscription
        )
        currencies = set(pending.values_list("currency", flat=True))
        if not currencies:
            raise ValidationError(
                {
                    "customer": "Nothing to invoice: add invoice items first, or pass "
                    "pending_invoice_items_behavior=exclude for an empty draft."
                }
            )
        if len(currencies) > 1:
            raise ValidationError({"currency": "Pending items are in several currencies."})
    if collection_method not in CollectionMethod.values:
        raise ValidationError({"collection_method": "Use charge_automatically or send_invoice."})
    if collection_method == CollectionMethod.SEND_INVOICE and days_until_due is None:
        raise ValidationError({"days_until_due": "send_invoice invoices need days_until_due."})
    if metadata:
        validate_metadata(metadata)
    if currencies:
        currency = currencies.pop()
    elif subscription is not None:
        currency = subscription.currency
    else:
        currency = customer.currency or customer.account.default_currency
    now = now_for(customer)
    invoice = create_invoice(
        customer,
        subscription=subscription,
        billing_reason=BillingReason.MANUAL,
        currency=currency,
        period_start=now,
        period_end=now,
        lines=[],
        collection_method=collection_method,
        days_until_due=days_until_due,
        auto_advance=auto_advance,
        include_pending_items=include,
        metadata=metadata,
        description=description,
        application=application if subscription is None else None,
    )
    if subscription is not None:
        # build_invoice takes the subscription's settings; a manual invoice keeps the caller's.
        invoice.default_payment_method_id = None
        batching.save(invoice, update_fields=["default_payment_method"])
    if auto_advance:
        schedule_finalization(invoice)
    return invoice


@transaction.atomic
def delete_invoice_item(item: InvoiceItem, *, request_id=None) -> None:
    """Delete a pending invoice item (one no invoice has taken yet); `invoiceitem.deleted`."""
    item = InvoiceItem.objects.select_for_update().select_related("customer").get(pk=item.pk)
    if item.invoice_id is not None:
        raise ValidationError(
            {"invoiceitem": "This invoice item is on an invoice already and cannot be deleted."}
        )
    events.emit("invoiceitem.deleted", item, request_id=request_id)
    item.delete()


# What `update_invoice` may change on an invoice in each status (Stripe: drafts are fully
# editable; finalized invoices keep their amounts and terms).
UPDATABLE = {
    "description": (InvoiceStatus.DRAFT, InvoiceStatus.OPEN),
    "auto_advance": (InvoiceStatus.DRAFT, InvoiceStatus.OPEN),
    "application_fee_amount": (InvoiceStatus.DRAFT, InvoiceStatus.OPEN),
    "days_until_due": (InvoiceStatus.DRAFT,),
    "due_date": (InvoiceStatus.DRAFT,),
    "transfer_data": (InvoiceStatus.DRAFT,),
    "on_behalf_of": (InvoiceStatus.DRAFT,),
}


@transaction.atomic
def update_invoice(
    invoice: Invoice,
    *,
    description: str | None = None,
    metadata: dict | str | None = None,
    auto_advance: bool | None = None,
    days_until_due: int | None = None,
    due_date=None,
    application_fee_amount=...,
    transfer_data=...,
    on_behalf_of=...,
    request_id=None,
) -> Invoice:
    """Change an invoice as Stripe's `POST /v1/invoices/{id}` does; `invoice.updated`.

    `metadata` merges (a key set to "" is removed, "" clears all) in every status. Description
    and `auto_advance` change on drafts and open invoices, the due date (`days_until_due` or
    `due_date`, `send_invoice` only) and Connect's `transfer_data` / `on_behalf_of` on drafts.
    `application_fee_amount` (drafts and open invoices, None unsets) cannot exceed the
    invoice's total (SPEC R-CON-4) and needs a connected account to take it from: the invoice's
    account acting through `Stripe-Account`, or `transfer_data[destination]`. The fee's
    collection itself is issue #8.
    """
    from billing.services.subscriptions import _connected_account

    invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)
    given = {
        "description": description is not None,
        "auto_advance": auto_advance is not None,
        "days_until_due": days_until_due is not None,
        "due_date": due_date is not None,
        "application_fee_amount": application_fee_amount is not ...,
        "transfer_data": transfer_data is not ...,
        "on_behalf_of": on_behalf_of is not ...,
    }
    for name, statuses in UPDATABLE.items():
        if given[name] and invoice.status not in statuses:
            allowed = " or ".join(str(status) for status in statuses)
            raise ValidationError(
                {
                    name: f"{name} can only be changed on {allowed} invoices; this one is "
                    f"{invoice.status}."
                }
            )
    now = now_for(invoice)
    before = serialize(invoice)
    if metadata is not None:
        if metadata == "":
            merged = {}
        else:
            merged = {**invoice.metadata, **metadata}
            merged = {key: value for key, value in merged.items() if value != ""}
        try:
            validate_metadata(merged)
        except ValidationError as error:
            raise ValidationError({"metadata": error.messages}) from None
        invoice.metadata = merged
    if description is not None:
        invoice.description = description
    if given["days_until_due"] and given["due_date"]:
        raise ValidationError(
            {"due_date": "You may only specify one of these parameters: days_until_due, due_date."}
        )
    if (given["days_until_due"] or given["due_date"]) and (
        invoice.collection_method != CollectionMethod.SEND_INVOICE
    ):
        param = "days_until_due" if given["days_until_due"] else "due_date"
        raise ValidationError({param: "Only send_invoice invoices have a due date."})
    if given["days_until_due"]:
        if isinstance(days_until_due, bool) or not isinstance(days_until_due, int):
            raise ValidationError({"days_until_due": "Must be a whole number of days."})
        if days_until_due < 0:
            raise ValidationError({"days_until_due": "Must be a whole number of days."})
        # Counted from the invoice's creation, as when it was created with days_until_due.
        invoice.due_date = invoice.created + timedelta(days=days_until_due)
    if given["due_date"]:
        if due_date <= now:
            raise ValidationError({"due_date": "The due date must be in the future."})
        invoice.due_date = due_date
    if given["on_behalf_of"]:
        found = _connected_account(invoice.account_id, on_behalf_of, "on_behalf_of")
        invoice.on_behalf_of = found
    if given["transfer_data"]:
        destination = None
        if transfer_data not in (None, ""):
            if not transfer_data.get("destination"):
                raise ValidationError(
                    {
                        "transfer_data[destination]": "Missing required param: "
                        "transfer_data[destination]."
                    }
                )
            destination = _connected_account(
                invoice.account_id, transfer_data["destination"], "transfer_data[destination]"
            )
        invoice.transfer_data_destination = destination
    if given["application_fee_amount"]:
        fee = application_fee_amount
        if fee is not None:
            if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
                raise ValidationError(
                    {"application_fee_amount": "Must be a non-negative whole amount."}
                )
            if fee > invoice.total:
                # SPEC R-CON-4: the platform's fee never exceeds what the invoice collects.
                raise ValidationError(
                    {
                        "application_fee_amount": f"The application fee ({fee}) cannot exceed "
                        f"the invoice total ({invoice.total})."
                    }
                )
            account = Account.objects.only("type").get(pk=invoice.account_id)
            if account.type != AccountType.CONNECTED and not invoice.transfer_data_destination_id:
                raise ValidationError(
                    {
                        "application_fee_amount": "An application fee needs a connected account "
                        "to take it from: act as it (Stripe-Account header) or set "
                        "transfer_data[destination]."
                    }
                )
        invoice.application_fee_amount = fee
    if given["auto_advance"]:
        invoice.auto_advance = auto_advance
    invoice.save()
    if given["application_fee_amount"] and invoice.payment_intent_id:
        PaymentIntent.objects.filter(pk=invoice.payment_intent_id).exclude(
            status=PaymentIntentStatus.SUCCEEDED
        ).update(application_fee_amount=invoice.application_fee_amount)
    if given["auto_advance"]:
        if not auto_advance:
            # No more automatic finalization or collection (SPEC R-AUTO-2 ends its runs too).
            timeline.cancel("finalize_invoice", invoice)
            timeline.cancel("payment_retry", invoice)
            if invoice.next_payment_attempt is not None:
                invoice.next_payment_attempt = None
                invoice.save(update_fields=["next_payment_attempt"])
        elif invoice.status == InvoiceStatus.DRAFT:
            schedule_finalization(invoice)
    emit_updated("invoice.updated", invoice, before, request_id=request_id)
    return invoice


def schedule_finalization(invoice: Invoice) -> None:
    """Finalize (and collect) about an hour after creation (SPEC R-INV-2).

    The webhook hold: a renewal invoice whose `invoice.created` some enabled endpoint listens
    to waits up to 72 hours; the delivery that completes the set of 2xx answers brings the job
    forward to an hour after it (billing.webhooks.hold).
    """
    # Imported here: the webhooks package imports the models and timeline this module uses.
    from billing.webhooks import hold

    delay = hold.finalization_delay(invoice) or FINALIZATION_DELAY
    timeline.schedule("finalize_invoice", invoice, at=invoice.created + delay)


# --- finalizing ---------------------------------------------------------------------------


_NUMBERING = Prepared(
    lambda account_id: Account.objects.only("invoice_numbering", "country").filter(pk=account_id)
)


def invoice_numbering_read(account_id: str) -> tuple:
    """`invoice_numbering`'s query as a read for `prepared.ahead`."""
    return (_NUMBERING, "first", (account_id,))


def invoice_numbering(account_id: str) -> str:
    """How the account numbers invoices now (`Account.invoice_numbering_in_force`); read once
    per batch."""

    def read():
        return prepared.run(invoice_numbering_read(account_id)).invoice_numbering_in_force

    return batching.cached(("invoice_numbering", account_id), read)


def _next_number(invoice: Invoice) -> str:
    """The invoice's number, PREFIX-0001, in one of Stripe's two schemes.

    For each customer: the customer's prefix and `next_invoice_sequence`, on the customer's
    row, which finalizing locks anyway (its balance). Across the account: the account's prefix
    and its counter for the mode, bumped under a row lock held until commit, so every other
    finalization of the account waits for this one's transaction."""
    if invoice_numbering(invoice.account_id) == InvoiceNumbering.CUSTOMER:
        customer = batching.lock(Customer, invoice.customer_id)
        sequence = customer.next_invoice_sequence
        customer.next_invoice_sequence = sequence + 1
        batching.save(customer, update_fields=["next_invoice_sequence"])
        return f"{customer.invoice_prefix}-{sequence:04d}"
    field = "invoice_sequence_live" if invoice.livemode else "invoice_sequence_test"
    sequence = batching.next_in_sequence(Account, invoice.account_id, field)
    return f"{account_invoice_prefix(invoice.account_id)}-{sequence:04d}"


def _apply_customer_balance(invoice: Invoice, now) -> None:
    """Use the customer's credit (negative balance) or add what they owe (positive balance)."""
    customer = batching.lock(Customer, invoice.customer_id)
    invoice.starting_balance = customer.balance
    if invoice.total < 0:
        # A credit (prorations of a downgrade, a cancellation with `prorate`): Stripe adds it
        # to the customer's balance (more negative), for their next invoices.
        applied = -invoice.total
    elif customer.balance == 0:
        invoice.ending_balance = customer.balance
        return
    elif customer.balance < 0:
        applied = -min(-customer.balance, invoice.total) if invoice.total > 0 else 0
    else:
        applied = customer.balance
    if applied == 0:
        invoice.ending_balance = customer.balance
        return
    invoice.amount_due = max(invoice.total + applied, 0)
    invoice.amount_remaining = invoice.amount_due - invoice.amount_paid
    customer.balance -= applied
    invoice.ending_balance = customer.balance
    batching.save(customer, update_fields=["balance"])
    batching.insert(
        CustomerBalanceTransaction(
            account_id=customer.account_id,
            livemode=customer.livemode,
            customer=customer,
            amount=-applied,
            currency=invoice.currency,
            type=BalanceTransactionType.APPLIED_TO_INVOICE,
            ending_balance=customer.balance,
            invoice=invoice,
            created=now,
        )
    )


@batching.atomic
def finalize_invoice(invoice: Invoice, *, collect: bool = True, request_id=None):
    """Draft → open (SPEC R-INV-3): number it, apply the balance, set the due date; collect it
    at once when it charges automatically. A failed finalization sends
    `invoice.finalization_failed` and leaves the invoice a draft."""
    invoice = batching.lock(Invoice, invoice.pk, related=("customer",))
    if invoice.status != InvoiceStatus.DRAFT:
        raise ValidationError({"invoice": "This invoice is already finalized."})
    if connect.holds_invoice(invoice):
        raise ValidationError(
            {
                "on_behalf_of": f"The account {invoice.on_behalf_of_id} has disconnected from "
                "your platform: reconnect it, or remove on_behalf_of from this invoice, before "
                "finalizing it."
            }
        )
    now = now_for(invoice)
    before = serialize(invoice)
    if invoice.automatic_tax_enabled and not (invoice.customer.address or {}).get("country"):
        invoice.automatic_tax_status = AutomaticTaxStatus.REQUIRES_LOCATION_INPUTS
        invoice.last_finalization_error = {
            "type": "invalid_request_error",
            "code": "customer_tax_location_invalid",
            "message": "The customer's location is not recognized: automatic tax needs it.",
        }
        batching.save(invoice)
        events.emit("invoice.finalization_failed", invoice, request_id=request_id)
        timeline.cancel("finalize_invoice", invoice)
        return invoice
    if invoice.automatic_tax_enabled:
        invoice.automatic_tax_status = AutomaticTaxStatus.COMPLETE
    invoice.last_finalization_error = None
    # A draft held for a disconnected account's reconnection is held no longer (SPEC R-CON-7).
    invoice.awaiting_reconnection = False
    invoice.number = _next_number(invoice)
    invoice.status = InvoiceStatus.OPEN
    invoice.finalized_at = now
    _apply_customer_balance(invoice, now)
    if invoice.application_fee_amount is None and invoice.subscription_id:
        # SPEC R-CON-3/4: the subscription's percentage, unless the invoice names its own fee.
        invoice.application_fee_amount = connect.cycle_fee(invoice, invoice.subscription)
    if invoice.collection_method == CollectionMethod.SEND_INVOICE:
        # Due `days_until_due` days after finalization (SPEC R-SUB-9); Stripe's default is 30.
        days = invoice.subscription.days_until_due if invoice.subscription_id else None
        if invoice.subscription_id or invoice.due_date is None:
            invoice.due_date = now + timedelta(days=30 if days is None else days)
    batching.save(invoice)
    timeline.cancel("finalize_invoice", invoice)
    finalized = emit_updated(
        "invoice.updated", invoice, before, also=["invoice.finalized"], request_id=request_id
    )
    if invoice.amount_due == 0:
        return _mark_paid(invoice, now=now, request_id=request_id, before=finalized)
    if invoice.collection_method == CollectionMethod.SEND_INVOICE:
        timeline.schedule("invoice_overdue", invoice, at=invoice.due_date)
    elif not collect:
        _payment_intent_for(invoice, now, request_id)
        batching.save(invoice, update_fields=["payment_intent"])
    elif invoice.auto_advance:
        attempt_payment(invoice, off_session=True, request_id=request_id, before=finalized)
    return invoice


# --- collecting --------------------------------------------------------------------------


def _check_payment_method(payment_method, customer_id) -> None:
    """Only the customer's own cards may pay its invoices."""
    if payment_method is not None and payment_method.customer_id != customer_id:
        raise ValidationError(
            {"payment_method": "This payment method is not attached to the invoice's customer."}
        )


def _payment_method_for(invoice: Invoice):
    """R-TRIAL-7's order: the invoice's, the subscription's, then the customer's default."""
    if invoice.default_payment_method_id:
        return invoice.default_payment_method
    if invoice.subscription_id and invoice.subscription.default_payment_method_id:
        return invoice.subscription.default_payment_method
    return invoice.customer.invoice_settings_default_payment_method


def _transfer_amount(invoice: Invoice) -> int | None:
    """What a destination charge sends on when its subscription transfers a share
    (`transfer_data[amount_percent]`), fixed when the payment is created (Stripe's
    `transfer_data.amount`); None transfers the amount less the fee."""
    if not invoice.transfer_data_destination_id or not invoice.subscription_id:
        return None
    percent = invoice.subscription.transfer_data_amount_percent
    if percent is None:
        return None
    return money.percent_of(invoice.amount_remaining, percent)


def _payment_intent_for(invoice: Invoice, now, request_id) -> PaymentIntent:
    """The invoice's PaymentIntent, made on the first attempt and reused by later ones."""
    if invoice.payment_intent_id:
        intent = batching.lock(PaymentIntent, invoice.payment_intent_id)
        # The invoice may hold an older copy (read to render an event): what follows — the
        # payloads, `pay_invoice`'s verdict — must see the intent this attempt changes.
        invoice.payment_intent = intent
        return intent
    intent = PaymentIntent(
        account_id=invoice.account_id,
        livemode=invoice.livemode,
        customer=invoice.customer,
        invoice=invoice,
        amount=invoice.amount_remaining,
        currency=invoice.currency,
        description=f"Invoice {invoice.number}",
        application_fee_amount=invoice.application_fee_amount,
        on_behalf_of_id=invoice.on_behalf_of_id,
        transfer_data_destination_id=invoice.transfer_data_destination_id,
        transfer_data_amount=_transfer_amount(invoice),
        created=now,
    )
    intent.ensure_client_secret()
    batching.insert(intent)
    invoice.payment_intent = intent
    events.emit("payment_intent.created", intent, request_id=request_id)
    return intent


def _mark_paid(invoice: Invoice, *, now, request_id=None, before: dict | None = None) -> Invoice:
    """Open → paid. `before`: the invoice as rendered before the change that paid it (an
    attempt's count, its new payment), so its `invoice.updated` reports all of it."""
    if before is None:
        before = serialize(invoice)
    invoice.amount_paid = invoice.amount_due
    invoice.amount_remaining = 0
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = now
    invoice.next_payment_attempt = None
    batching.save(invoice)
    timeline.cancel(None, invoice)
    emit_updated(
        "invoice.updated",
        invoice,
        before,
        also=["invoice.paid", "invoice.payment_succeeded"],
        request_id=request_id,
    )
    if invoice.subscription_id:
        from billing.services.subscriptions import invoice_settled

        invoice_settled(invoice, now=now, request_id=request_id)
    return invoice


def attempt_payment(
    invoice: Invoice,
    *,
    payment_method=None,
    off_session: bool = True,
    request_id=None,
    before: dict | None = None,
) -> Invoice:
    """Charge the invoice through the gateway (SPEC R-INV-4, R-INV-5, R-INV-9).

    Success pays it; a decline records the attempt and schedules the next retry (or applies the
    end-of-retries settings); a card that needs authentication waits for the customer.

    As Stripe counts `attempt_count` "from the perspective of the retry schedule", an attempt
    made on request (`off_session=False`: `/pay`, the dashboard, the hosted page) counts only
    when it is the invoice's first: a later one that fails leaves the retry schedule, and what
    happens after its last retry, as they were.

    `before`: the invoice as the caller rendered it, unchanged since (finalization's own
    event), spared a second rendering.
    """
    from billing.gateway import get_gateway

    invoice = batching.lock(Invoice, invoice.pk, related=("customer",))
    # Written off, but money the customer or the merchant offers still settles it (as in
    # Stripe): on request only, never by the retry schedule, which stopped.
    written_off = invoice.status == InvoiceStatus.UNCOLLECTIBLE and not off_session
    if invoice.status != InvoiceStatus.OPEN and not written_off:
        raise ValidationError({"invoice": f"This invoice is {invoice.status}: it cannot be paid."})
    _check_payment_method(payment_method, invoice.customer_id)
    now = now_for(invoice)
    if before is None:
        before = serialize(invoice)
    method = payment_method or _payment_method_for(invoice)
    intent = _payment_intent_for(invoice, now, request_id)
    # Outside the retry schedule: an attempt on request after the first one (see above), or
    # on a written-off invoice, which counts as settled for its subscription already.
    on_request = not off_session and (invoice.attempt_count > 0 or written_off)
    invoice.attempted = True
    if not on_request:
        invoice.attempt_count += 1
    if method is None:
        result_status = "failed"
        error = {
            "type": "invalid_request_error",
            "code": "invoice_no_customer_payment_method",
            "message": "The customer has no default payment method.",
        }
        next_action = None
    else:
        intent.payment_method = method
        result = get_gateway(invoice.account_id).charge(
            amount=intent.amount,
            currency=intent.currency,
            payment_method=method,
            off_session=off_session,
        )
        result_status, error, next_action = result.status, result.error, result.next_action

    if result_status == "succeeded":
        intent.status = PaymentIntentStatus.SUCCEEDED
        intent.amount_received = intent.amount
        intent.last_payment_error = None
        intent.next_action = None
        batching.save(intent)
        batching.save(invoice)
        events.emit("payment_intent.succeeded", intent, request_id=request_id)
        connect.settle_payment(intent, invoice, now=now, request_id=request_id)
        return _mark_paid(invoice, now=now, request_id=request_id, before=before)

    if result_status == "requires_action":
        intent.status = PaymentIntentStatus.REQUIRES_ACTION
        intent.next_action = next_action
        batching.save(intent)
        invoice.next_payment_attempt = None
        batching.save(invoice)
        events.emit("payment_intent.requires_action", intent, request_id=request_id)
        emit_updated(
            "invoice.updated",
            invoice,
            before,
            also=["invoice.payment_action_required"],
            request_id=request_id,
        )
        if not written_off:
            _subscription_payment_problem(invoice, now=now, request_id=request_id)
        return invoice

    intent.status = PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
    intent.last_payment_error = error
    batching.save(intent)
    if on_request:
        batching.save(invoice)
        events.emit("payment_intent.payment_failed", intent, request_id=request_id)
        emit_updated(
            "invoice.updated",
            invoice,
            before,
            also=["invoice.payment_failed"],
            request_id=request_id,
        )
        return invoice
    if _automation_takes_failure(invoice, now=now):
        # SPEC R-AUTO-6, R-INV-9: the automation replaces the default retries; its "set retry
        # policy" sets next_payment_attempt in a following invoice.updated.
        invoice.next_payment_attempt = None
    else:
        _schedule_retry_or_give_up(invoice, now=now)
    batching.save(invoice)
    events.emit("payment_intent.payment_failed", intent, request_id=request_id)
    emit_updated(
        "invoice.updated", invoice, before, also=["invoice.payment_failed"], request_id=request_id
    )
    _subscription_payment_problem(invoice, now=now, request_id=request_id)
    if invoice.next_payment_attempt is None and invoice.status == InvoiceStatus.OPEN:
        _after_last_retry(invoice, now=now, request_id=request_id)
    return invoice


def _automation_takes_failure(invoice: Invoice, *, now) -> bool:
    """Whether an automation on "subscription payment fails" takes this first failed attempt
    of a subscription invoice (matched now, in this transaction, before the events go out)."""
    if invoice.attempt_count != 1 or not invoice.subscription_id:
        return False
    from automations import engine as automations

    return automations.claim(automations.PAYMENT_FAILED, invoice, now=now) is not None


def _is_first_invoice_of_incomplete(invoice: Invoice) -> bool:
    return (
        invoice.billing_reason == BillingReason.SUBSCRIPTION_CREATE
        and invoice.subscription_id is not None
        and invoice.subscription.status == SubscriptionStatus.INCOMPLETE
    )


def _schedule_retry_or_give_up(invoice: Invoice, *, now) -> None:
    """Set `next_payment_attempt` from the retry schedule, or clear it after the last attempt."""
    if _is_first_invoice_of_incomplete(invoice) or not invoice.auto_advance:
        # A first invoice is not retried: the subscription expires after 23 hours (R-SUB-2).
        invoice.next_payment_attempt = None
        return
    from automations import engine as automations

    # An automation's retry policy replaces the account's schedule for its invoice (R-INV-9).
    schedule = automations.retry_schedule(invoice)
    if schedule is None:
        schedule = recovery_settings(invoice.account_id, invoice.livemode).retry_schedule
    retries_done = invoice.attempt_count - 1
    if retries_done < len(schedule):
        invoice.next_payment_attempt = now + timedelta(days=schedule[retries_done])
        timeline.schedule("payment_retry", invoice, at=invoice.next_payment_attempt)
    else:
        invoice.next_payment_attempt = None
        timeline.cancel("payment_retry", invoice)


def _subscription_payment_problem(invoice: Invoice, *, now, request_id) -> None:
    if invoice.subscription_id:
        from billing.services.subscriptions import invoice_payment_failed

        invoice_payment_failed(invoice, now=now, request_id=request_id)


def _after_last_retry(invoice: Invoice, *, now, request_id) -> None:
    """SPEC R-SUB-4: the settings decide what becomes of the invoice and the subscription."""
    if invoice.billing_reason == BillingReason.SUBSCRIPTION_CREATE and (
        invoice.subscription_id is None
        or invoice.subscription.status == SubscriptionStatus.INCOMPLETE
    ):
        return
    if not invoice.auto_advance:
        # Not collected automatically (manual invoices, canceled subscriptions): a failed
        # "pay now" is just that, never the end of an automatic retry schedule.
        return
    from automations import engine as automations

    if automations.taken(automations.PAYMENT_FAILED, invoice.pk):
        # The automation's own actions decide what follows its retries (SPEC R-AUTO-6).
        return
    settings = recovery_settings(invoice.account_id, invoice.livemode)
    if settings.after_retries_invoice == AfterRetriesInvoice.UNCOLLECTIBLE:
        mark_uncollectible(invoice, request_id=request_id)
    if invoice.subscription_id:
        from billing.services.subscriptions import cancel_subscription, mark_unpaid

        subscription = invoice.subscription
        if settings.after_retries_subscription == AfterRetriesSubscription.CANCEL:
            cancel_subscription(subscription, request_id=request_id)
        elif settings.after_retries_subscription == AfterRetriesSubscription.UNPAID:
            mark_unpaid(subscription, request_id=request_id)


def pay_invoice(invoice: Invoice, *, payment_method=None, request_id=None) -> Invoice:
    """Pay an open or uncollectible invoice now (dashboard "retry now", API `/pay`); a decline
    raises CardError.

    The attempt commits before the error is raised: a declined attempt is recorded (attempt
    count, `invoice.payment_failed`), as Stripe records a failed `/pay`. A caller inside its
    own transaction must catch CardError or lose that record with its rollback.
    """
    with transaction.atomic():
        invoice = attempt_payment(
            invoice, payment_method=payment_method, off_session=False, request_id=request_id
        )
    if invoice.status != InvoiceStatus.PAID:
        intent = invoice.payment_intent
        if intent.status == PaymentIntentStatus.REQUIRES_ACTION:
            return invoice
        raise CardError(intent.last_payment_error or {"message": "Your card was declined."})
    return invoice


def confirm_payment_intent(intent: PaymentIntent, *, payment_method=None, request_id=None):
    """The customer completed 3-D Secure (SPEC R-INV-5): charge again, now authenticated.

    A decline is recorded (committed) before CardError is raised, as in `pay_invoice`.
    """
    with transaction.atomic():
        intent = _confirm(intent, payment_method=payment_method, request_id=request_id)
    if intent.status != PaymentIntentStatus.SUCCEEDED:
        raise CardError(intent.last_payment_error or {"message": "Your card was declined."})
    return intent


def _confirm(intent: PaymentIntent, *, payment_method, request_id) -> PaymentIntent:
    from billing.gateway import get_gateway

    intent = PaymentIntent.objects.select_for_update().get(pk=intent.pk)
    if intent.status == PaymentIntentStatus.SUCCEEDED:
        return intent
    if intent.status == PaymentIntentStatus.CANCELED:
        # Its invoice was voided: nothing is owed any more (Stripe refuses the same way).
        raise ValidationError(
            {
                "payment_intent": "This PaymentIntent was canceled (its invoice is void) and "
                "cannot be confirmed."
            }
        )
    _check_payment_method(payment_method, intent.customer_id)
    method = payment_method or intent.payment_method
    if method is None:
        raise ValidationError({"payment_method": "A payment method is required to confirm."})
    result = get_gateway(intent.account_id).confirm(
        amount=intent.amount, currency=intent.currency, payment_method=method
    )
    invoice = intent.invoice
    if result.status == "succeeded":
        intent.payment_method = method
        intent.status = PaymentIntentStatus.SUCCEEDED
        intent.amount_received = intent.amount
        intent.next_action = None
        intent.last_payment_error = None
        intent.save()
        events.emit("payment_intent.succeeded", intent, request_id=request_id)
        now = now_for(intent)
        if invoice is not None:
            invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        connect.settle_payment(intent, invoice, now=now, request_id=request_id)
        # An uncollectible invoice can still be paid (as in Stripe): the money settles it.
        if invoice is not None and invoice.status in (
            InvoiceStatus.OPEN,
            InvoiceStatus.UNCOLLECTIBLE,
        ):
            _mark_paid(invoice, now=now, request_id=request_id)
        return intent
    intent.status = PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
    intent.last_payment_error = result.error or {"message": "Your card was declined."}
    intent.next_action = None
    intent.save()
    events.emit("payment_intent.payment_failed", intent, request_id=request_id)
    return intent


# --- closing ----------------------------------------------------------------------------


@transaction.atomic
def void_invoice(invoice: Invoice, *, request_id=None) -> Invoice:
    """Open or uncollectible → void: nothing more is owed or collected (Stripe's status
    transitions: a written-off invoice can still be paid until it is voided)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status not in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE):
        raise ValidationError(
            {
                "invoice": "Only open or uncollectible invoices can be voided; "
                f"this one is {invoice.status}."
            }
        )
    before = serialize(invoice)
    invoice.status = InvoiceStatus.VOID
    invoice.voided_at = now_for(invoice)
    invoice.next_payment_attempt = None
    invoice.save()
    timeline.cancel(None, invoice)
    _cancel_intent(invoice)
    emit_updated("invoice.updated", invoice, before, also=["invoice.voided"], request_id=request_id)
    return invoice


@transaction.atomic
def mark_uncollectible(invoice: Invoice, *, request_id=None) -> Invoice:
    """Open → uncollectible: bad debt, no more attempts (SPEC R-INV-8). Like a payment for the
    subscription's status (SPEC R-SUB-3)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != InvoiceStatus.OPEN:
        raise ValidationError(
            {
                "invoice": "Only open invoices can be marked uncollectible; "
                f"this one is {invoice.status}."
            }
        )
    before = serialize(invoice)
    now = now_for(invoice)
    invoice.status = InvoiceStatus.UNCOLLECTIBLE
    invoice.marked_uncollectible_at = now
    invoice.next_payment_attempt = None
    invoice.save()
    timeline.cancel(None, invoice)
    emit_updated(
        "invoice.updated",
        invoice,
        before,
        also=["invoice.marked_uncollectible"],
        request_id=request_id,
    )
    if invoice.subscription_id:
        from billing.services.subscriptions import invoice_settled

        invoice_settled(invoice, now=now, request_id=request_id)
    return invoice


def _cancel_intent(invoice: Invoice) -> None:
    if invoice.payment_intent_id:
        PaymentIntent.objects.filter(pk=invoice.payment_intent_id).exclude(
            status=PaymentIntentStatus.SUCCEEDED
        ).update(status=PaymentIntentStatus.CANCELED, canceled_at=now_for(invoice))


def finalize_or_hold(invoice: Invoice, *, request_id=None) -> Invoice:
    """Finalize (and collect) a subscription's invoice made by an update, a cancellation or a
    resume; one on behalf of a disconnected account is held instead (SPEC R-CON-7)."""
    if connect.holds_invoice(invoice):
        hold_for_reconnection(invoice)
        return invoice
    return finalize_invoice(invoice, request_id=request_id)


def hold_for_reconnection(invoice: Invoice) -> None:
    """Keep a draft whose on_behalf_of account disconnected from being collected until it
    reconnects (SPEC R-CON-7; `connect.reconnect_account` releases it)."""
    before = serialize(invoice)
    invoice.auto_advance = False
    invoice.awaiting_reconnection = True
    batching.save(invoice, update_fields=["auto_advance", "awaiting_reconnection"])
    timeline.cancel("finalize_invoice", invoice)
    emit_updated("invoice.updated", invoice, before)


def stop_collecting(invoice: Invoice, *, request_id=None) -> None:
    """`auto_advance=false` on an open invoice: no more automatic attempts (SPEC R-SUB-6)."""
    if not invoice.auto_advance:
        return
    before = serialize(invoice)
    invoice.auto_advance = False
    invoice.next_payment_attempt = None
    invoice.save(update_fields=["auto_advance", "next_payment_attempt"])
    timeline.cancel(None, invoice)
    emit_updated("invoice.updated", invoice, before, request_id=request_id)


# --- due jobs ---------------------------------------------------------------------------------


def _load_invoice(invoice_id):
    return (
        Invoice.objects.select_for_update().select_related("customer").filter(pk=invoice_id).first()
    )


def _load_invoices(invoice_ids) -> dict[str, Invoice]:
    """Invoices due together, locked, with everything finalizing and charging them reads (for
    batches): lines, customer, subscription (locked) with its items and discounts, the payment
    methods that may be charged and the payment intent. One instance per row, shared. (The
    customer's own discounts are not loaded: finalizing and charging never read them.)"""
    # Customers first, in key order (`batching.lock_in_order`): one instance each, shared.
    customers = batching.lock_in_order(
        Customer,
        Invoice.objects.filter(pk__among=invoice_ids).values_list("customer_id", flat=True),
    )
    invoices = list(
        Invoice.objects.select_for_update().filter(pk__among=invoice_ids).order_by("pk")
    )
    for invoice in invoices:
        invoice.customer = customers[invoice.customer_id]
    lines = batching.prefetch(invoices, "lines")
    batching.attach(lines, "price", Price.objects.select_related("product"))
    subscriptions = batching.lock_in_order(
        Subscription, [invoice.subscription_id for invoice in invoices if invoice.subscription_id]
    )
    items = batching.prefetch(list(subscriptions.values()), "items")
    batching.attach(items, "price", Price.objects.select_related("product"))
    discounts = batching.prefetch(list(subscriptions.values()), "discounts")
    batching.attach(discounts, "coupon", Coupon.objects.all())
    methods = batching.in_bulk(
        PaymentMethod.objects.all(),
        {
            method_id
            for invoice in invoices
            for method_id in (
                invoice.default_payment_method_id,
                invoice.customer.invoice_settings_default_payment_method_id,
                getattr(
                    subscriptions.get(invoice.subscription_id), "default_payment_method_id", None
                ),
            )
            if method_id
        },
    )
    intents = batching.lock_in_order(
        PaymentIntent,
        [invoice.payment_intent_id for invoice in invoices if invoice.payment_intent_id],
    )

    def attach(obj, field: str, found) -> None:
        # Assign only what was found: assigning None would clear the foreign key itself.
        if found is not None:
            setattr(obj, field, found)

    for customer in customers.values():
        attach(
            customer,
            "invoice_settings_default_payment_method",
            methods.get(customer.invoice_settings_default_payment_method_id),
        )
    for subscription in subscriptions.values():
        attach(subscription, "customer", customers.get(subscription.customer_id))
        attach(
            subscription,
            "default_payment_method",
            methods.get(subscription.default_payment_method_id),
        )
    for invoice in invoices:
        attach(invoice, "subscription", subscriptions.get(invoice.subscription_id))
        attach(invoice, "default_payment_method", methods.get(invoice.default_payment_method_id))
        attach(invoice, "payment_intent", intents.get(invoice.payment_intent_id))
    batching.register(*invoices, *customers.values(), *subscriptions.values(), *intents.values())
    return {invoice.pk: invoice for invoice in invoices}


def _collects_alone(invoice: Invoice) -> bool:
    """Whether collecting this invoice may take a path that runs only alone: a decline after
    the last retry (end-of-retries settings), or a paused collection that voids or writes off."""
    if invoice.subscription_id and invoice.subscription.pause_collection_behavior in (
        "mark_uncollectible",
        "void",
    ):
        return True
    schedule = recovery_settings(invoice.account_id, invoice.livemode).retry_schedule
    return invoice.attempt_count >= len(schedule)


def _can_batch(invoice: Invoice, job) -> bool:
    return not _collects_alone(invoice)


@timeline.handler(
    "finalize_invoice", target=_load_invoice, load_many=_load_invoices, can_batch=_can_batch
)
def _finalize_due(invoice: Invoice, job) -> None:
    if invoice.status != InvoiceStatus.DRAFT or not invoice.auto_advance:
        return
    if connect.holds_invoice(invoice):
        # Its on_behalf_of account disconnected since the draft was made (SPEC R-CON-7).
        hold_for_reconnection(invoice)
        return
    paused = invoice.subscription.pause_collection_behavior if invoice.subscription_id else None
    if paused in ("mark_uncollectible", "void"):
        # pause_collection: the invoice is finalized but never collected (SPEC R-SUB-7).
        invoice = finalize_invoice(invoice, collect=False)
        if invoice.status == InvoiceStatus.OPEN:
            (mark_uncollectible if paused == "mark_uncollectible" else void_invoice)(invoice)
        return
    finalize_invoice(invoice)


@timeline.handler(
    "payment_retry", target=_load_invoice, load_many=_load_invoices, can_batch=_can_batch
)
def _retry_due(invoice: Invoice, job) -> None:
    if (
        invoice.status == InvoiceStatus.OPEN
        and invoice.auto_advance
        and invoice.next_payment_attempt == job.due_at
    ):
        if connect.holds_invoice(invoice):
            # No charge on behalf of a disconnected account (SPEC R-CON-7): the retry waits for
            # the reconnection, which schedules it again.
            before = serialize(invoice)
            invoice.awaiting_reconnection = True
            invoice.next_payment_attempt = None
            batching.save(invoice, update_fields=["awaiting_reconnection", "next_payment_attempt"])
            emit_updated("invoice.updated", invoice, before)
            return
        attempt_payment(invoice, off_session=True)


@timeline.handler("invoice_overdue", target=_load_invoice)
def _overdue_due(invoice: Invoice, job) -> None:
    """SPEC R-INV-7: `invoice.overdue` when a sent invoice's due date passes unpaid."""
    if invoice.status == InvoiceStatus.OPEN and invoice.due_date == job.due_at:
        events.emit("invoice.overdue", invoice)
