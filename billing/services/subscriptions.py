"""Subscriptions: create, renew, trials, cancel, pause and resume, and how payments move status.

SPEC R-SUB-*, R-TRIAL-*. Each public verb is atomic, validates before writing anything, emits
the events of what changed, and keeps the subscription's due jobs (trial end, renewal, notices,
incomplete expiry) in step with its state.
"""

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from billing import batching, events, periods, timeline
from billing.choices import (
    AccountType,
    BillingReason,
    CollectionMethod,
    InvoiceStatus,
    MissingPaymentMethodBehavior,
    PaymentBehavior,
    PaymentIntentStatus,
    ProrationBehavior,
    SubscriptionStatus,
)
from billing.clocks import now_for
from billing.models import (
    Account,
    Coupon,
    Customer,
    Discount,
    Invoice,
    InvoiceItem,
    PaymentMethod,
    Price,
    Subscription,
    SubscriptionItem,
)
from billing.serializers import _related, serialize
from billing.services import connect
from billing.services import invoices as invoicing
from billing.validators import validate_metadata

# SPEC R-SUB-2: an incomplete subscription expires 23 hours after creation.
INCOMPLETE_EXPIRY = timedelta(hours=23)
# SPEC R-TRIAL-4: trial_will_end is sent three days before the trial ends.
TRIAL_WILL_END_NOTICE = timedelta(days=3)
MAX_TRIAL_DAYS = 730

ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


def _lock(subscription: Subscription) -> Subscription:
    return batching.lock(Subscription, subscription.pk, related=("customer",))


def _items(subscription: Subscription) -> list[SubscriptionItem]:
    """The subscription's items with their prices and products, oldest first (prefetched
    `items__price__product` costs no query)."""
    return sorted(_related(subscription.items, "price__product"), key=lambda item: item.pk)


def _price_label(price: Price, quantity: int) -> str:
    return f"{quantity} × {price.product.name} (at {price})"


def _item_lines(subscription, items, *, start, end, amount_for=None, description=None):
    """Invoice lines for the subscription's items over [start, end)."""
    lines = []
    for item in items:
        full = item.price.unit_amount * item.quantity
        if item.price.recurring_usage_type == "metered":
            # Metered prices bill reported usage in arrears; no usage is reported to this
            # product, so they bill nothing (and never for a trial, SPEC R-TRIAL-9).
            full = 0
        amount = full if amount_for is None else amount_for(full)
        lines.append(
            {
                "subscription_item": item,
                "price": item.price,
                "quantity": item.quantity,
                "amount": amount,
                "description": description(item)
                if description
                else _price_label(item.price, item.quantity),
                "period_start": start,
                "period_end": end,
            }
        )
    return lines


def _has_payment_method(subscription: Subscription) -> bool:
    """SPEC R-TRIAL-7: any of the four places a payment method may be set."""
    customer = subscription.customer
    return bool(
        subscription.default_payment_method_id
        or subscription.default_source
        or customer.invoice_settings_default_payment_method_id
        or customer.default_source
    )


def _price_interval(subscription: Subscription):
    price = _items(subscription)[0].price
    return price.recurring_interval, price.recurring_interval_count


def _schedule_cycle_jobs(subscription: Subscription) -> None:
    """Renewal at the period's end, and the `invoice.upcoming` notice before it (SPEC R-INV-6)."""
    timeline.schedule("renewal", subscription, at=subscription.current_period_end)
    _schedule_upcoming_notice(subscription, before=subscription.current_period_end)


def _schedule_upcoming_notice(subscription: Subscription, *, before) -> None:
    """`invoice.upcoming` the configured days before the next invoice (a renewal, or the end of
    a trial, as Stripe sends it); none for `send_invoice` or when that moment has passed."""
    if subscription.collection_method == CollectionMethod.SEND_INVOICE:
        timeline.cancel("upcoming_renewal", subscription)
        return
    days = invoicing.recovery_settings(subscription.account_id, subscription.livemode)
    days = days.upcoming_renewal_days
    notice_at = before - timedelta(days=days)
    if days and notice_at > now_for(subscription):
        timeline.schedule("upcoming_renewal", subscription, at=notice_at)
    else:
        timeline.cancel("upcoming_renewal", subscription)


def _schedule_trial_jobs(subscription: Subscription, now) -> None:
    """`trial_will_end` three days before (or at once for short trials), the trial's end, and
    the `invoice.upcoming` of the first paid invoice."""
    notice_at = max(subscription.trial_end - TRIAL_WILL_END_NOTICE, now)
    timeline.schedule("trial_will_end", subscription, at=notice_at)
    timeline.schedule("trial_end", subscription, at=subscription.trial_end)
    _schedule_upcoming_notice(subscription, before=subscription.trial_end)


def _new_invoice(
    subscription: Subscription, *, billing_reason: str, period_start, period_end, lines, **options
) -> Invoice:
    """A draft invoice for the subscription, which becomes its `latest_invoice`."""
    invoice = invoicing.create_invoice(
        subscription.customer,
        subscription=subscription,
        billing_reason=billing_reason,
        currency=subscription.currency,
        period_start=period_start,
        period_end=period_end,
        lines=lines,
        collection_method=subscription.collection_method,
        **options,
    )
    subscription.latest_invoice = invoice
    batching.save(subscription, update_fields=["latest_invoice"])
    return invoice


# --- Connect parameters (SPEC R-CON-1/2/3/6); services/connect.py moves the money ------------


def _percent(value, param: str) -> Decimal | None:
    """A percentage from 0 to 100 with at most two decimals (SPEC R-CON-3), or None."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValidationError({param: "Must be a decimal number from 0 to 100."}) from None
    if not number.is_finite() or not 0 <= number <= 100 or -number.as_tuple().exponent > 2:
        raise ValidationError(
            {param: "Must be a number from 0 to 100 with at most two decimal places."}
        )
    return number


def _connected_account(account_id: str, value, param: str) -> Account | None:
    """The connected account `value` names (an Account or its id), if it belongs to the same
    platform as `account_id` (the platform itself, or the connected account acting); None for
    None or "". Anything else is a ValidationError naming `param`."""
    if value is None or value == "":
        return None
    pk = value.pk if isinstance(value, Account) else value
    owner = Account.objects.filter(pk=account_id).only("id", "type", "platform_id").get()
    if owner.type == AccountType.CONNECTED:
        # A connected account bills for itself (direct charges): it may name itself as the
        # settlement merchant, but not send funds or its customers to a sibling account.
        if param.startswith("transfer_data"):
            raise ValidationError(
                {param: "A connected account cannot transfer its payments to another account."}
            )
        if pk != owner.pk:
            raise ValidationError({param: "A connected account can only be on_behalf_of itself."})
    platform_id = owner.platform_id if owner.type == AccountType.CONNECTED else owner.pk
    found = (
        Account.objects.filter(pk=pk, type=AccountType.CONNECTED, platform_id=platform_id).first()
        if isinstance(pk, str) and "\x00" not in pk
        else None
    )
    if found is None:
        raise ValidationError(
            {
                param: f"No such connected account: '{pk}'. It must be a connected account of "
                "your platform."
            }
        )
    connect.check_still_connected(found, param)
    return found


def _connect_settings(
    subscription: Subscription,
    *,
    application_fee_percent=...,
    transfer_data=...,
    on_behalf_of=...,
) -> dict:
    """The Connect fields (model attribute → value) the parameters ask for, validated against the
    subscription's account and the values it keeps; `...` leaves a parameter unchanged."""
    account_id = subscription.account_id
    values = {}
    if on_behalf_of is not ...:
        values["on_behalf_of"] = _connected_account(account_id, on_behalf_of, "on_behalf_of")
    if transfer_data is not ...:
        if transfer_data in (None, ""):
            values["transfer_data_destination"] = None
            values["transfer_data_amount_percent"] = None
        else:
            if not transfer_data.get("destination"):
                raise ValidationError(
                    {
                        "transfer_data[destination]": "Missing required param: "
                        "transfer_data[destination]."
                    }
                )
            destination = _connected_account(
                account_id, transfer_data["destination"], "transfer_data[destination]"
            )
            if destination.pk == account_id:
                raise ValidationError(
                    {
                        "transfer_data[destination]": "The destination cannot be the account the "
                        "subscription belongs to."
                    }
                )
            values["transfer_data_destination"] = destination
            values["transfer_data_amount_percent"] = _percent(
                transfer_data.get("amount_percent"), "transfer_data[amount_percent]"
            )
    if application_fee_percent is not ...:
        values["application_fee_percent"] = _percent(
            application_fee_percent, "application_fee_percent"
        )
    fee = values.get("application_fee_percent", subscription.application_fee_percent)
    share = values.get("transfer_data_amount_percent", subscription.transfer_data_amount_percent)
    if fee is not None and share is not None:
        # Two ways of splitting the same payment: the transfer's share is what the destination
        # gets, so a fee on top would be recorded but never taken.
        raise ValidationError(
            {
                "application_fee_percent": "Use either application_fee_percent or "
                "transfer_data[amount_percent], not both."
            }
        )
    destination_id = (
        values["transfer_data_destination"].pk
        if values.get("transfer_data_destination") is not None
        else None
        if "transfer_data_destination" in values
        else subscription.transfer_data_destination_id
    )
    if fee is not None and destination_id is None:
        # Stripe's rule: a platform fee needs someone to take it from (direct charges with
        # Stripe-Account, or destination charges).
        owner_type = Account.objects.filter(pk=account_id).values_list("type", flat=True).get()
        if owner_type != AccountType.CONNECTED:
            raise ValidationError(
                {
                    "application_fee_percent": "Can only apply an application_fee_percent when "
                    "the request is made on behalf of a connected account (Stripe-Account "
                    "header) or with transfer_data[destination]."
                }
            )
    return values


# --- creation --------------------------------------------------------------------------------


def _item_price_and_quantity(customer, item: dict, param: str) -> tuple[Price, int]:
    """The price (an object or an id of the customer's account and mode) and the quantity of
    one item, or a ValidationError naming `param[price]` / `param[quantity]`."""
    price = item.get("price")
    if isinstance(price, str):
        price = (
            Price.objects.filter(pk=price, account_id=customer.account_id)
            .select_related("product")
            .first()
        )
    if (
        price is None
        or price.account_id != customer.account_id
        or price.livemode != customer.livemode
    ):
        raise ValidationError({f"{param}[price]": "No such price."})
    if not price.active:
        raise ValidationError({f"{param}[price]": "This price is archived."})
    quantity = item.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise ValidationError({f"{param}[quantity]": "Quantity must be at least 1."})
    return price, quantity


def _validate_items(customer, items) -> list[tuple[Price, int, dict]]:
    if not items:
        raise ValidationError({"items": "A subscription needs at least one item."})
    resolved = []
    seen = set()
    for index, item in enumerate(items):
        param = f"items[{index}]"
        price, quantity = _item_price_and_quantity(customer, item, param)
        if not price.is_recurring:
            raise ValidationError(
                {
                    f"{param}[price]": "Subscription items need recurring prices; "
                    "use add_invoice_items for one-off prices."
                }
            )
        if price.pk in seen:
            raise ValidationError({f"{param}[price]": "This price is already on the subscription."})
        seen.add(price.pk)
        metadata = item.get("metadata") or {}
        validate_metadata(metadata)
        resolved.append((price, quantity, metadata))
    first = resolved[0][0]
    for index, (price, _, _) in enumerate(resolved):
        if price.currency != first.currency:
            raise ValidationError(
                {f"items[{index}][price]": "All prices on a subscription must share a currency."}
            )
        if (price.recurring_interval, price.recurring_interval_count) != (
            first.recurring_interval,
            first.recurring_interval_count,
        ):
            raise ValidationError(
                {f"items[{index}][price]": "All prices on a subscription must share an interval."}
            )
    return resolved


def _validate_one_off_items(customer, add_invoice_items, currency) -> list[tuple[Price, int]]:
    resolved = []
    for index, item in enumerate(add_invoice_items or []):
        param = f"add_invoice_items[{index}]"
        price, quantity = _item_price_and_quantity(customer, item, param)
        if price.is_recurring:
            raise ValidationError({f"{param}[price]": "add_invoice_items takes one-off prices."})
        if price.currency != currency:
            raise ValidationError({f"{param}[price]": "Wrong currency for this subscription."})
        resolved.append((price, quantity))
    return resolved


def _trial_end_from(now, trial_end, trial_period_days):
    if trial_end is not None and trial_period_days is not None:
        raise ValidationError({"trial_end": "Pass trial_end or trial_period_days, not both."})
    if trial_period_days is not None:
        if not isinstance(trial_period_days, int) or not 0 <= trial_period_days <= MAX_TRIAL_DAYS:
            raise ValidationError(
                {"trial_period_days": f"Must be a whole number of days from 0 to {MAX_TRIAL_DAYS}."}
            )
        return now + timedelta(days=trial_period_days) if trial_period_days else None
    if trial_end is None:
        return None
    if trial_end == "now":
        return None
    if not isinstance(trial_end, datetime) or trial_end <= now:
        raise ValidationError({"trial_end": "The trial end must be in the future."})
    if trial_end > now + timedelta(days=MAX_TRIAL_DAYS):
        raise ValidationError({"trial_end": f"A trial can last at most {MAX_TRIAL_DAYS} days."})
    return trial_end


def _check_coupon(coupon: Coupon, owner, param: str = "coupon") -> None:
    if (
        coupon.account_id != owner.account_id
        or coupon.livemode != owner.livemode
        or not coupon.valid
    ):
        raise ValidationError({param: "No such coupon, or it is no longer valid."})


def _apply_coupon(subscription: Subscription, coupon: Coupon, *, now, request_id=None) -> None:
    """A discount of `coupon` on the subscription from `now` (`customer.discount.created`)."""
    discount = Discount.objects.create(
        account_id=subscription.account_id,
        livemode=subscription.livemode,
        coupon=coupon,
        customer=subscription.customer,
        subscription=subscription,
        start=now,
        end=periods.shift(now, "month", 1, coupon.duration_in_months)
        if coupon.duration == "repeating"
        else None,
        created=now,
    )
    coupon.times_redeemed += 1
    coupon.save(update_fields=["times_redeemed"])
    events.emit("customer.discount.created", discount, request_id=request_id)


def _remove_discounts(subscription: Subscription, *, now, request_id=None) -> None:
    """End the subscription's discounts (Stripe deletes them: `customer.discount.deleted`)."""
    for discount in Discount.objects.filter(subscription=subscription).select_related("coupon"):
        if discount.end is not None and discount.end <= now:
            continue
        events.emit("customer.discount.deleted", discount, request_id=request_id)
        discount.delete()


def create_subscription_reads(account_id: str, livemode: bool, customer_id: str) -> list:
    """What `create_subscription` reads for a customer besides its arguments, as reads for
    `prepared.ahead`: a caller that knows them (the API) asks them with its own lookups, in
    one round trip. The customer's row itself is locked by the create (`batching.lock`); a
    caller that read it locked says so with `batching.register_locked`."""
    from billing.webhooks import routing

    return [
        routing.endpoints_read(account_id, livemode),
        invoicing.recovery_settings_read(account_id, livemode),
        invoicing.customer_discounts_read(customer_id),
        invoicing.invoice_numbering_read(account_id),
    ]


# Without a savepoint inside a batch: a caller that runs it in its own batch (the API) rolls
# everything back on any error anyway.
@batching.atomic
@batching.writes_deferred
def create_subscription(
    customer,
    *,
    items: list[dict],
    trial_end=None,
    trial_period_days: int | None = None,
    billing_cycle_anchor: datetime | None = None,
    missing_payment_method: str = MissingPaymentMethodBehavior.CREATE_INVOICE,
    payment_behavior: str = PaymentBehavior.ALLOW_INCOMPLETE,
    collection_method: str = CollectionMethod.CHARGE_AUTOMATICALLY,
    days_until_due: int | None = None,
    default_payment_method: PaymentMethod | None = None,
    add_invoice_items: list[dict] | None = None,
    coupon: Coupon | None = None,
    cancel_at_period_end: bool = False,
    description: str = "",
    metadata: dict | None = None,
    application_fee_percent=None,
    transfer_data: dict | None = None,
    on_behalf_of=None,
    application: Account | None = None,
    request_id: str | None = None,
) -> Subscription:
    """Subscribe `customer` to `items`, with an optional trial and anchor (SPEC R-SUB, R-TRIAL).

    Connect (SPEC R-CON-1/2/3/6): `application_fee_percent`, `transfer_data` (`destination`, an
    account or id, and `amount_percent`) and `on_behalf_of` are validated and stored; each
    invoice takes its fee at finalization and each payment settles through
    `services.connect`. `application` is the platform creating it while acting as the
    connected account (SPEC R-CON-5).

    The first invoice is created, finalized and charged at once (SPEC R-INV-2: synchronous
    first payments are not delayed). With `error_if_incomplete`, a failed first payment raises
    CardError and nothing is written.

    The writes are deferred and flushed together when it returns (`batching.writes_deferred`):
    one at a time, the subscription, its invoice, payment intent, ten events and due jobs took
    ~70 statements. Everything it creates is therefore built in memory, with the relations
    serializing it reads (items) cached on the instances: the rows are not there to be read.
    """
    if customer.deleted_at is not None:
        raise ValidationError({"customer": "This customer has been deleted."})
    now = now_for(customer)
    resolved = _validate_items(customer, items)
    currency = resolved[0][0].currency
    one_offs = _validate_one_off_items(customer, add_invoice_items, currency)
    trial_until = _trial_end_from(now, trial_end, trial_period_days)
    if missing_payment_method not in MissingPaymentMethodBehavior.values:
        raise ValidationError(
            {
                "trial_settings[end_behavior][missing_payment_method]": "Use cancel, pause or "
                "create_invoice."
            }
        )
    if payment_behavior not in PaymentBehavior.values:
        raise ValidationError({"payment_behavior": "Unknown payment behavior."})
    if collection_method not in CollectionMethod.values:
        raise ValidationError({"collection_method": "Use charge_automatically or send_invoice."})
    if collection_method == CollectionMethod.SEND_INVOICE:
        if days_until_due is None or days_until_due < 0:
            raise ValidationError(
                {"days_until_due": "send_invoice subscriptions need days_until_due."}
            )
    elif days_until_due is not None:
        raise ValidationError(
            {"days_until_due": "Only send_invoice subscriptions take days_until_due."}
        )
    if billing_cycle_anchor is not None:
        earliest = trial_until or now
        if billing_cycle_anchor < earliest:
            field = "billing_cycle_anchor"
            raise ValidationError(
                {
                    field: "The anchor must be after the trial end."
                    if trial_until
                    else "The anchor must not be in the past."
                }
            )
    if default_payment_method is not None and default_payment_method.customer_id != customer.pk:
        raise ValidationError(
            {"default_payment_method": "This payment method is not attached to the customer."}
        )
    if coupon is not None:
        _check_coupon(coupon, customer)
    if metadata:
        validate_metadata(metadata)
    connect = _connect_settings(
        Subscription(account_id=customer.account_id),
        application_fee_percent=application_fee_percent,
        transfer_data=transfer_data,
        on_behalf_of=on_behalf_of,
    )

    interval, count = resolved[0][0].recurring_interval, resolved[0][0].recurring_interval_count
    anchor = billing_cycle_anchor or trial_until or now
    subscription = Subscription(
        account_id=customer.account_id,
        livemode=customer.livemode,
        customer=customer,
        status=SubscriptionStatus.INCOMPLETE,
        currency=currency,
        description=description,
        start_date=now,
        current_period_start=now,
        current_period_end=now,
        billing_cycle_anchor=anchor,
        trial_settings_missing_payment_method=missing_payment_method,
        collection_method=collection_method,
        days_until_due=days_until_due,
        default_payment_method=default_payment_method,
        cancel_at_period_end=cancel_at_period_end,
        test_clock_id=customer.test_clock_id,
        metadata=metadata or {},
        application=application,
        created=now,
        **connect,
    )
    sub_items = [
        SubscriptionItem(
            account_id=customer.account_id,
            livemode=customer.livemode,
            subscription=subscription,
            price=price,
            quantity=quantity,
            metadata=item_metadata,
            created=now,
        )
        for price, quantity, item_metadata in resolved
    ]
    batching.insert(subscription)
    batching.insert(*sub_items)
    # A subscription that does not exist yet has no pending invoice items (none can name it):
    # its first invoice gathers none, without asking the database.
    subscription.pending_invoice_items = []
    # Serializing reads the items through the cache. A new subscription has no discount but a
    # coupon's, which `_apply_coupon` writes at once: that one is read from the database.
    batching.cache_rows(subscription, "items", sub_items)
    if coupon is None:
        batching.cache_rows(subscription, "discounts", [])
    else:
        _apply_coupon(subscription, coupon, now=now, request_id=request_id)

    if trial_until is not None:
        # SPEC R-TRIAL-1: trialing, no payment method needed, a $0 invoice at once
        # (R-TRIAL-10: one-off items added at the start are billed on it).
        subscription.status = SubscriptionStatus.TRIALING
        subscription.trial_start = now
        subscription.trial_end = trial_until
        subscription.current_period_end = trial_until
        lines = _item_lines(
            subscription,
            sub_items,
            start=now,
            end=trial_until,
            amount_for=lambda full: 0,
            description=lambda item: f"Trial period for {item.price.product.name}",
        )
    else:
        end = periods.next_boundary(anchor, interval, count, now)
        if billing_cycle_anchor is not None and billing_cycle_anchor > now:
            # SPEC R-TRIAL-5: the time up to the anchor is prorated.
            end = billing_cycle_anchor
            full_end = periods.shift(end, interval, count, -1)
            lines = _item_lines(
                subscription,
                sub_items,
                start=now,
                end=end,
                amount_for=lambda full: periods.prorate(
                    full, part_start=now, part_end=end, start=min(full_end, now), end=end
                ),
            )
        else:
            lines = _item_lines(subscription, sub_items, start=now, end=end)
        subscription.current_period_end = end
    for price, quantity in one_offs:
        lines.append(
            {
                "type": "invoiceitem",
                "price": price,
                "quantity": quantity,
                "amount": price.unit_amount * quantity,
                "description": _price_label(price, quantity),
                "period_start": now,
                "period_end": now,
            }
        )
    batching.save(subscription)
    if not customer.currency:
        # Stripe fixes a customer's currency with their first subscription or invoice. Set on
        # the batch's own (locked) instance of the row, which finalizing reads and saves again
        # (the balance): one instance per row, or the flush would write two versions of it.
        locked = batching.lock(type(customer), customer.pk)
        locked.currency = customer.currency = currency
        batching.save(locked, update_fields=["currency"])
    events.emit("customer.subscription.created", subscription, request_id=request_id)

    invoice = _new_invoice(
        subscription,
        billing_reason=BillingReason.SUBSCRIPTION_CREATE,
        period_start=now,
        period_end=now,
        lines=lines,
        days_until_due=days_until_due,
    )

    if trial_until is not None:
        _schedule_trial_jobs(subscription, now)
    # default_incomplete: finalized but not charged; the merchant confirms the PaymentIntent
    # (or the subscription expires after 23 hours).
    collect = not (payment_behavior == PaymentBehavior.DEFAULT_INCOMPLETE and trial_until is None)
    # The batch's instances: finalizing and paying changed these very objects.
    invoicing.finalize_invoice(invoice, collect=collect, request_id=request_id)

    if subscription.status == SubscriptionStatus.INCOMPLETE:
        if invoice.status == InvoiceStatus.PAID:
            pass  # invoice_settled moved it already
        elif collection_method == CollectionMethod.SEND_INVOICE:
            _set_status(subscription, SubscriptionStatus.ACTIVE, request_id=request_id)
        else:
            intent = invoice.payment_intent
            failed = intent is None or intent.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
            if payment_behavior == PaymentBehavior.ERROR_IF_INCOMPLETE and (
                failed or intent.status == PaymentIntentStatus.REQUIRES_ACTION
            ):
                error = (intent.last_payment_error if intent else None) or {
                    "type": "card_error",
                    "code": "card_declined",
                    "message": "Your card was declined.",
                }
                raise invoicing.CardError(error)
            timeline.schedule("incomplete_expiry", subscription, at=now + INCOMPLETE_EXPIRY)
    if subscription.status == SubscriptionStatus.ACTIVE:
        _schedule_cycle_jobs(subscription)
    return subscription


# --- status moves -------------------------------------------------------------------------


def _set_status(subscription: Subscription, status: str, *, request_id=None, **fields) -> bool:
    """Move to `status` (and set `fields`), emitting `customer.subscription.updated`."""
    if subscription.status == status and not fields:
        return False
    before = serialize(subscription)
    subscription.status = status
    for name, value in fields.items():
        setattr(subscription, name, value)
    batching.save(subscription)
    invoicing.emit_updated(
        "customer.subscription.updated", subscription, before, request_id=request_id
    )
    return True


def invoice_settled(invoice: Invoice, *, now, request_id=None) -> None:
    """An invoice of the subscription was paid or marked uncollectible (SPEC R-SUB-2/3/5)."""
    subscription = _lock(invoice.subscription)
    if subscription.status in ENDED:
        return
    is_latest = subscription.latest_invoice_id == invoice.pk
    if subscription.status == SubscriptionStatus.INCOMPLETE and is_latest:
        timeline.cancel("incomplete_expiry", subscription)
        _set_status(subscription, SubscriptionStatus.ACTIVE, request_id=request_id)
        _schedule_cycle_jobs(subscription)
    elif subscription.status == SubscriptionStatus.PAST_DUE and is_latest:
        _set_status(subscription, SubscriptionStatus.ACTIVE, request_id=request_id)
    elif subscription.status == SubscriptionStatus.UNPAID and is_latest:
        # R-SUB-5: active again only when the latest invoice is settled before its due date.
        if invoice.due_date is None or now <= invoice.due_date:
            _set_status(subscription, SubscriptionStatus.ACTIVE, request_id=request_id)
    elif subscription.status == SubscriptionStatus.PAUSED and is_latest:
        # R-TRIAL-8: a resume invoice was paid; the subscription leaves `paused`.
        _leave_pause(subscription, request_id=request_id)


def invoice_payment_failed(invoice: Invoice, *, now, request_id=None) -> None:
    """A payment attempt failed or needs action: past_due, or stays incomplete (R-SUB-2/3)."""
    subscription = _lock(invoice.subscription)
    if subscription.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        _set_status(subscription, SubscriptionStatus.PAST_DUE, request_id=request_id)


@transaction.atomic
def mark_unpaid(subscription: Subscription, *, request_id=None) -> Subscription:
    """Past due → unpaid: invoices keep coming as drafts, nothing is charged (SPEC R-SUB-5)."""
    subscription = _lock(subscription)
    if subscription.status in ENDED:
        raise ValidationError({"subscription": "This subscription has ended."})
    _set_status(subscription, SubscriptionStatus.UNPAID, request_id=request_id)
    return subscription


@transaction.atomic
def cancel_subscription(
    subscription: Subscription,
    *,
    at_period_end: bool = False,
    cancellation_details: dict | None = None,
    prorate: bool = False,
    invoice_now: bool = False,
    request_id: str | None = None,
) -> Subscription:
    """Cancel now (SPEC R-SUB-6) or at the end of the period (SPEC R-SUB-8).

    As Stripe: `prorate` credits the unused time of the current period as proration invoice
    items of the subscription; `invoice_now` invoices the subscription's pending invoice items
    (those credits included) at once in a final invoice. Without `invoice_now` the credits stay
    pending (`POST /v1/invoices` with `subscription` invoices them).
    """
    subscription = _lock(subscription)
    if subscription.status in ENDED:
        raise ValidationError({"subscription": "This subscription is already canceled."})
    if at_period_end and (prorate or invoice_now):
        raise ValidationError(
            {
                "prorate" if prorate else "invoice_now": "Only an immediate cancellation can "
                "prorate or invoice now."
            }
        )
    now = now_for(subscription)
    details = cancellation_details or {}
    if at_period_end:
        if subscription.cancel_at_period_end:
            return subscription  # already set: keep when it was asked for
        before = serialize(subscription)
        subscription.cancel_at_period_end = True
        subscription.cancel_at = subscription.current_period_end
        subscription.canceled_at = now
        subscription.cancellation_details = {
            "comment": None,
            "feedback": None,
            "reason": "cancellation_requested",
            **details,
        }
        subscription.save()
        invoicing.emit_updated(
            "customer.subscription.updated", subscription, before, request_id=request_id
        )
        timeline.cancel("upcoming_renewal", subscription)
        return subscription
    billing = subscription.status not in (SubscriptionStatus.TRIALING, SubscriptionStatus.PAUSED)
    if prorate and billing and now < subscription.current_period_end:
        start, end = subscription.current_period_start, subscription.current_period_end
        for item in _items(subscription):
            credit = -periods.prorate(
                item.amount, part_start=now, part_end=end, start=start, end=end
            )
            if credit:
                _pending_item(
                    subscription,
                    item.price,
                    item.quantity,
                    credit,
                    now=now,
                    proration=True,
                    end=end,
                )
    if invoice_now and _pending_items_exist(subscription):
        _invoice_pending_items_now(subscription, now=now, request_id=request_id)
        subscription.refresh_from_db()
    _end(
        subscription,
        now=now,
        reason=details.get("reason", "cancellation_requested"),
        details=details,
        request_id=request_id,
    )
    return subscription


def _invoice_pending_items_now(subscription: Subscription, *, now, request_id=None) -> Invoice:
    """Invoice the subscription's pending items (prorations, added items) at once: a
    `subscription_update` invoice, finalized and collected now."""
    invoice = _new_invoice(
        subscription,
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        period_start=now,
        period_end=now,
        lines=[],
    )
    invoicing.finalize_or_hold(invoice, request_id=request_id)
    return invoice


def _pending_items_exist(subscription: Subscription) -> bool:
    return InvoiceItem.objects.filter(subscription=subscription, invoice__isnull=True).exists()


def _end(subscription: Subscription, *, now, reason: str, details=None, request_id=None) -> None:
    """Canceled is final: open invoices stop collecting, due jobs go (SPEC R-SUB-6)."""
    subscription.status = SubscriptionStatus.CANCELED
    subscription.canceled_at = subscription.canceled_at or now
    subscription.ended_at = now
    subscription.cancellation_details = {
        "comment": None,
        "feedback": None,
        **(details or {}),
        "reason": reason,
    }
    subscription.save()
    timeline.cancel(None, subscription)
    for invoice in Invoice.objects.select_for_update().filter(
        subscription=subscription, status=InvoiceStatus.OPEN
    ):
        invoicing.stop_collecting(invoice, request_id=request_id)
    for invoice in Invoice.objects.filter(subscription=subscription, status=InvoiceStatus.DRAFT):
        timeline.cancel(None, invoice)
    events.emit("customer.subscription.deleted", subscription, request_id=request_id)


@transaction.atomic
def resume_subscription(
    subscription: Subscription, *, billing_cycle_anchor: str = "now", request_id: str | None = None
) -> Subscription:
    """Resume a paused subscription (SPEC R-TRIAL-8): `now` starts a new cycle today and
    invoices it; `unchanged` keeps the cycle and invoices the time left in it, prorated. It
    leaves `paused` once that invoice is paid."""
    subscription = _lock(subscription)
    if subscription.status != SubscriptionStatus.PAUSED:
        raise ValidationError({"subscription": "Only a paused subscription can be resumed."})
    if billing_cycle_anchor not in ("now", "unchanged"):
        raise ValidationError({"billing_cycle_anchor": "Use now or unchanged."})
    now = now_for(subscription)
    before = serialize(subscription)
    lines, end = _resume_lines(subscription, billing_cycle_anchor, now)
    if billing_cycle_anchor == "now":
        subscription.billing_cycle_anchor = now
    subscription.current_period_start = now
    subscription.current_period_end = end
    subscription.save()
    invoicing.emit_updated(
        "customer.subscription.updated", subscription, before, request_id=request_id
    )
    invoice = _new_invoice(
        subscription,
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        period_start=now,
        period_end=now,
        lines=lines,
    )
    invoicing.finalize_or_hold(invoice, request_id=request_id)
    return Subscription.objects.get(pk=subscription.pk)


def _resume_lines(subscription: Subscription, billing_cycle_anchor: str, now):
    """The lines of the invoice resuming a paused subscription at `now`, and the end of the
    period it opens: a full cycle from now (`now`) or the rest of the cycle (`unchanged`)."""
    interval, count = _price_interval(subscription)
    items = _items(subscription)
    if billing_cycle_anchor == "now":
        end = periods.shift(now, interval, count, 1)
        return _item_lines(subscription, items, start=now, end=end), end
    end = periods.next_boundary(subscription.billing_cycle_anchor, interval, count, now)
    start = periods.shift(end, interval, count, -1)
    lines = _item_lines(
        subscription,
        items,
        start=now,
        end=end,
        amount_for=lambda full: periods.prorate(
            full, part_start=now, part_end=end, start=start, end=end
        ),
    )
    return lines, end


def preview_resume_invoice(subscription: Subscription, *, billing_cycle_anchor="now") -> dict:
    """The invoice resuming a paused subscription now would create (Stripe's
    `subscription_resume_at=now` preview), built by the code `resume_subscription` uses, never
    saved."""
    if subscription.status != SubscriptionStatus.PAUSED:
        raise ValidationError(
            {"subscription_resume_at": "Only a paused subscription can be previewed resuming."}
        )
    now = now_for(subscription)
    lines, _ = _resume_lines(subscription, billing_cycle_anchor, now)
    invoice, _, _ = invoicing.build_invoice(
        subscription.customer,
        subscription=subscription,
        billing_reason=BillingReason.SUBSCRIPTION_UPDATE,
        currency=subscription.currency,
        period_start=now,
        period_end=now,
        lines=lines,
        collection_method=subscription.collection_method,
        created=now,
    )
    payload = serialize(invoice)
    payload["id"] = None
    for line in payload["lines"]["data"]:
        line["invoice"] = None
    return payload


def _leave_pause(subscription: Subscription, *, request_id=None) -> None:
    _set_status(subscription, SubscriptionStatus.ACTIVE, request_id=request_id)
    events.emit("customer.subscription.resumed", subscription, request_id=request_id)
    _schedule_cycle_jobs(subscription)


@transaction.atomic
def update_subscription(
    subscription: Subscription,
    *,
    trial_end=None,
    cancel_at_period_end: bool | None = None,
    cancel_at=...,
    cancellation_details: dict | None = None,
    default_payment_method=...,
    metadata: dict | None = None,
    description: str | None = None,
    collection_method: str | None = None,
    days_until_due=...,
    missing_payment_method: str | None = None,
    pause_collection=...,
    items: list[dict] | None = None,
    add_invoice_items: list[dict] | None = None,
    coupon=...,
    application_fee_percent=...,
    transfer_data=...,
    on_behalf_of=...,
    proration_behavior: str = ProrationBehavior.CREATE_PRORATIONS,
    request_id: str | None = None,
) -> Subscription:
    """Change a live subscription. Unknown fields are errors; nothing is written on any error.

    `...` (or None for the flags) leaves a field unchanged; None unsets `cancel_at`, `coupon`,
    `days_until_due`, `transfer_data`, `on_behalf_of` and `application_fee_percent`.
    `add_invoice_items` become pending invoice items of the subscription, billed on its next
    invoice (SPEC R-TRIAL-10 for trials).
    """
    subscription = _lock(subscription)
    if subscription.status in ENDED:
        raise ValidationError({"subscription": "A canceled subscription cannot be updated."})
    now = now_for(subscription)
    before = serialize(subscription)
    # --- validate everything first ---------------------------------------------------------
    if proration_behavior not in ProrationBehavior.values:
        raise ValidationError(
            {"proration_behavior": "Use create_prorations, none or always_invoice."}
        )
    if metadata is not None:
        merged = {**subscription.metadata, **metadata}
        merged = {key: value for key, value in merged.items() if value != ""}
        try:
            validate_metadata(merged)
        except ValidationError as error:
            raise ValidationError({"metadata": error.messages}) from None
        subscription.metadata = merged
    if description is not None:
        if not isinstance(description, str) or len(description) > 500:
            raise ValidationError({"description": "Must be a string of at most 500 characters."})
        subscription.description = description
    if default_payment_method is not ...:
        if (
            default_payment_method is not None
            and default_payment_method.customer_id != subscription.customer_id
        ):
            raise ValidationError(
                {"default_payment_method": "This payment method is not attached to the customer."}
            )
        subscription.default_payment_method = default_payment_method
    if pause_collection is not ...:
        if pause_collection is None:
            subscription.pause_collection_behavior = None
            subscription.pause_collection_resumes_at = None
        else:
            behavior = pause_collection.get("behavior")
            if behavior not in ("keep_as_draft", "mark_uncollectible", "void"):
                raise ValidationError(
                    {"pause_collection[behavior]": "Use keep_as_draft, mark_uncollectible or void."}
                )
            subscription.pause_collection_behavior = behavior
            subscription.pause_collection_resumes_at = pause_collection.get("resumes_at")
    _update_collection(subscription, collection_method, days_until_due)
    if missing_payment_method is not None:
        if missing_payment_method not in MissingPaymentMethodBehavior.values:
            raise ValidationError(
                {
                    "trial_settings[end_behavior][missing_payment_method]": "Use cancel, pause "
                    "or create_invoice."
                }
            )
        subscription.trial_settings_missing_payment_method = missing_payment_method
    for name, value in _connect_settings(
        subscription,
        application_fee_percent=application_fee_percent,
        transfer_data=transfer_data,
        on_behalf_of=on_behalf_of,
    ).items():
        setattr(subscription, name, value)
    if coupon is not ... and coupon is not None:
        _check_coupon(coupon, subscription)
    one_offs = _validate_one_off_items(
        subscription.customer, add_invoice_items, subscription.currency
    )
    if cancel_at is not ... and cancel_at_period_end is not None:
        raise ValidationError(
            {
                "cancel_at": "You may only specify one of these parameters: cancel_at, "
                "cancel_at_period_end."
            }
        )
    if cancel_at not in (..., None) and (not isinstance(cancel_at, datetime) or cancel_at <= now):
        raise ValidationError({"cancel_at": "The cancellation time must be in the future."})
    if cancellation_details is not None:
        unknown = set(cancellation_details) - {"comment", "feedback"}
        if unknown:
            raise ValidationError(
                {f"cancellation_details[{sorted(unknown)[0]}]": "Unknown cancellation detail."}
            )
    end_trial_now = False
    if trial_end is not None:
        if subscription.status == SubscriptionStatus.PAUSED:
            raise ValidationError(
                {"trial_end": "Resume the paused subscription before changing its trial."}
            )
        if trial_end == "now":
            if subscription.status != SubscriptionStatus.TRIALING:
                raise ValidationError({"trial_end": "The subscription is not in a trial."})
            end_trial_now = True
        else:
            if not isinstance(trial_end, datetime) or trial_end <= now:
                raise ValidationError({"trial_end": "The trial end must be in the future."})
            if subscription.status != SubscriptionStatus.TRIALING:
                raise ValidationError(
                    {"trial_end": "Only a trialing subscription's trial can be moved."}
                )
            subscription.trial_end = trial_end
            subscription.current_period_end = trial_end
    # --- then write ----------------------------------------------------------------------------
    if cancel_at_period_end is not None:
        subscription.cancel_at_period_end = cancel_at_period_end
        subscription.cancel_at = subscription.current_period_end if cancel_at_period_end else None
        subscription.canceled_at = now if cancel_at_period_end else None
        if not cancel_at_period_end:
            subscription.cancellation_details = {}
        timeline.cancel("subscription_cancel_at", subscription)
    if cancel_at is not ...:
        subscription.cancel_at_period_end = False
        subscription.cancel_at = cancel_at
        subscription.canceled_at = now if cancel_at is not None else None
        if cancel_at is None:
            subscription.cancellation_details = {}
            timeline.cancel("subscription_cancel_at", subscription)
        else:
            subscription.cancellation_details = {
                "comment": None,
                "feedback": None,
                **(subscription.cancellation_details or {}),
                "reason": "cancellation_requested",
            }
            timeline.schedule("subscription_cancel_at", subscription, at=cancel_at)
    if cancellation_details is not None:
        subscription.cancellation_details = {
            "comment": None,
            "feedback": None,
            "reason": None,
            **(subscription.cancellation_details or {}),
            **cancellation_details,
        }
    if coupon is not ...:
        _remove_discounts(subscription, now=now, request_id=request_id)
        if coupon is not None:
            _apply_coupon(subscription, coupon, now=now, request_id=request_id)
    for price, quantity in one_offs:
        _pending_item(subscription, price, quantity, price.unit_amount * quantity, now=now)
    if items is not None:
        _change_items(
            subscription,
            items,
            proration_behavior=proration_behavior,
            now=now,
            request_id=request_id,
        )
    subscription.save()
    invoicing.emit_updated(
        "customer.subscription.updated", subscription, before, request_id=request_id
    )
    if trial_end is not None and not end_trial_now:
        _schedule_trial_jobs(subscription, now)
    live = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)
    if end_trial_now:
        # SPEC R-TRIAL-2: the trial ends at once and a new cycle starts now. A cycle anchored
        # on the trial's end moves with it (reference 004: a new billing cycle begins when the
        # trial ends); an anchor chosen apart from the trial (R-TRIAL-5) stays.
        if subscription.billing_cycle_anchor == subscription.trial_end:
            subscription.billing_cycle_anchor = now
        subscription.trial_end = now
        subscription.current_period_end = now
        subscription.save(update_fields=["trial_end", "current_period_end", "billing_cycle_anchor"])
        timeline.cancel("trial_will_end", subscription)
        timeline.cancel("trial_end", subscription)
        _end_trial(subscription, now=now, request_id=request_id)
    elif subscription.status in live and (
        cancel_at_period_end is False or cancel_at is None or collection_method is not None
    ):
        # Undoing a cancellation brings back the renewal notice it had removed; a new
        # collection method changes whether there is one (SPEC R-INV-6).
        _schedule_cycle_jobs(subscription)
    return Subscription.objects.get(pk=subscription.pk)


def _update_collection(subscription: Subscription, collection_method, days_until_due) -> None:
    """Set `collection_method` and `days_until_due` as Stripe allows (SPEC R-SUB-9): a
    `send_invoice` subscription needs days, a `charge_automatically` one takes none."""
    if collection_method is None and days_until_due is ...:
        return
    if collection_method is not None and collection_method not in CollectionMethod.values:
        raise ValidationError({"collection_method": "Use charge_automatically or send_invoice."})
    method = collection_method or subscription.collection_method
    if method == CollectionMethod.SEND_INVOICE:
        days = subscription.days_until_due if days_until_due is ... else days_until_due
        if days is None or isinstance(days, bool) or not isinstance(days, int) or days < 0:
            raise ValidationError(
                {"days_until_due": "send_invoice subscriptions need days_until_due."}
            )
    else:
        if days_until_due not in (..., None):
            raise ValidationError(
                {"days_until_due": "Only send_invoice subscriptions take days_until_due."}
            )
        days = None
    subscription.collection_method = method
    subscription.days_until_due = days


def _pending_item(subscription, price, quantity, amount, *, now, proration=False, end=None):
    """A pending invoice item of the subscription, billed on its next invoice (one-off prices,
    and prorations: "Remaining time on …" or "Unused time on …")."""
    if proration:
        description = ("Remaining time on " if amount > 0 else "Unused time on ") + _price_label(
            price, quantity
        )
    else:
        description = _price_label(price, quantity)
    item = InvoiceItem.objects.create(
        account_id=subscription.account_id,
        livemode=subscription.livemode,
        customer=subscription.customer,
        subscription=subscription,
        price=price,
        quantity=quantity,
        amount=amount,
        currency=subscription.currency,
        proration=proration,
        description=description,
        period_start=now,
        period_end=end or now,
        created=now,
    )
    if not proration:
        events.emit("invoiceitem.created", item)
    return item


def _change_items(subscription, items, *, proration_behavior, now, request_id) -> list:
    """Add, change (`id` + price/quantity/metadata) or remove (`id` + `deleted`) items; prorate
    each change over the rest of the period. Everything is validated before anything is
    written. Returns the resulting item for each entry of `items` (None for removals)."""
    current = {item.pk: item for item in subscription.items.select_related("price__product")}
    changes = []  # (index, existing item or None, price, quantity, metadata)
    removals = []
    for index, item in enumerate(items):
        existing = current.get(item.get("id"))
        if item.get("id") and existing is None:
            raise ValidationError({f"items[{index}][id]": "No such subscription item."})
        if item.get("deleted"):
            removals.append(existing)
            continue
        wanted = {
            "price": item.get("price") or (existing.price if existing else None),
            "quantity": item.get("quantity", existing.quantity if existing else 1),
        }
        price, quantity = _item_price_and_quantity(subscription.customer, wanted, f"items[{index}]")
        if price.currency != subscription.currency or (
            price.recurring_interval,
            price.recurring_interval_count,
        ) != _price_interval(subscription):
            raise ValidationError(
                {
                    f"items[{index}][price]": "The price's currency or interval differs from the "
                    "subscription's."
                }
            )
        metadata = existing.metadata if existing else {}
        if item.get("metadata") is not None:
            update = item["metadata"]
            if update == "":
                metadata = {}
            else:
                metadata = {**metadata, **update}
                metadata = {key: value for key, value in metadata.items() if value != ""}
            try:
                validate_metadata(metadata)
            except ValidationError as error:
                raise ValidationError({f"items[{index}][metadata]": error.messages}) from None
        changes.append((index, existing, price, quantity, metadata))
    if len(removals) == len(current) and not any(c[1] is None for c in changes):
        raise ValidationError({"items": "A subscription needs at least one item."})
    touched = {item.pk for item in removals} | {c[1].pk for c in changes if c[1] is not None}
    final_prices = [item.price_id for pk, item in current.items() if pk not in touched]
    final_prices += [c[2].pk for c in changes]
    if len(final_prices) != len(set(final_prices)):
        raise ValidationError({"items": "A price can be on a subscription only once."})

    results: list = [None] * len(items)
    start, end = subscription.current_period_start, subscription.current_period_end
    prorations = []
    for index, existing, price, quantity, metadata in changes:
        old_amount = existing.price.unit_amount * existing.quantity if existing else 0
        if existing:
            existing.price, existing.quantity, existing.metadata = price, quantity, metadata
            existing.save(update_fields=["price", "quantity", "metadata"])
            results[index] = existing
        else:
            results[index] = SubscriptionItem.objects.create(
                account_id=subscription.account_id,
                livemode=subscription.livemode,
                subscription=subscription,
                price=price,
                quantity=quantity,
                metadata=metadata,
                created=now,
            )
        difference = price.unit_amount * quantity - old_amount
        if difference:
            prorations.append((price, quantity, difference))
    for item in removals:
        prorations.append((item.price, item.quantity, -item.price.unit_amount * item.quantity))
        item.delete()
    if (
        proration_behavior == ProrationBehavior.NONE
        or subscription.status in (SubscriptionStatus.TRIALING, SubscriptionStatus.PAUSED)
        or not prorations
    ):
        return results
    for price, quantity, difference in prorations:
        amount = periods.prorate(difference, part_start=now, part_end=end, start=start, end=end)
        _pending_item(subscription, price, quantity, amount, now=now, proration=True, end=end)
    if proration_behavior == ProrationBehavior.ALWAYS_INVOICE:
        _invoice_pending_items_now(subscription, now=now, request_id=request_id)
    return results


# --- subscription items (`/v1/subscription_items`): one-item changes of `update_subscription` --

# What `_change_items` calls a parameter, and what the subscription item endpoints call it.
ITEM_PARAMS = {
    "items[0][price]": "price",
    "items[0][quantity]": "quantity",
    "items[0][metadata]": "metadata",
    "items[0][id]": "id",
    "items": "price",
}


def _update_one_item(
    subscription, item: dict, *, proration_behavior, request_id, names=ITEM_PARAMS
) -> None:
    """`update_subscription` with one item change (same validation, prorations and events),
    its errors named as the item endpoints name their parameters."""
    try:
        update_subscription(
            subscription,
            items=[item],
            proration_behavior=proration_behavior,
            request_id=request_id,
        )
    except ValidationError as error:
        if not hasattr(error, "error_dict"):
            raise
        raise ValidationError(
            {names.get(key, key): value for key, value in error.error_dict.items()}
        ) from None


@transaction.atomic
def create_subscription_item(
    subscription: Subscription,
    *,
    price,
    quantity: int = 1,
    metadata: dict | None = None,
    proration_behavior: str = ProrationBehavior.CREATE_PRORATIONS,
    request_id: str | None = None,
) -> SubscriptionItem:
    """Add a price to the subscription, prorated over the rest of the period."""
    item = {"price": price, "quantity": quantity}
    if metadata:
        item["metadata"] = metadata
    _update_one_item(
        subscription, item, proration_behavior=proration_behavior, request_id=request_id
    )
    price_id = price.pk if isinstance(price, Price) else price
    return SubscriptionItem.objects.select_related("price__product", "subscription").get(
        subscription=subscription, price_id=price_id
    )


@transaction.atomic
def update_subscription_item(
    item: SubscriptionItem,
    *,
    price=None,
    quantity: int | None = None,
    metadata: dict | str | None = None,
    proration_behavior: str = ProrationBehavior.CREATE_PRORATIONS,
    request_id: str | None = None,
) -> SubscriptionItem:
    """Change one item's price, quantity or metadata, prorated as a subscription update."""
    change = {"id": item.pk}
    if price is not None:
        change["price"] = price
    if quantity is not None:
        change["quantity"] = quantity
    if metadata is not None:
        change["metadata"] = metadata
    _update_one_item(
        item.subscription, change, proration_behavior=proration_behavior, request_id=request_id
    )
    return SubscriptionItem.objects.select_related("price__product", "subscription").get(pk=item.pk)


@transaction.atomic
def delete_subscription_item(
    item: SubscriptionItem,
    *,
    proration_behavior: str = ProrationBehavior.CREATE_PRORATIONS,
    request_id: str | None = None,
) -> None:
    """Remove one item (never the last: cancel the subscription instead), prorated."""
    _update_one_item(
        item.subscription,
        {"id": item.pk, "deleted": True},
        proration_behavior=proration_behavior,
        request_id=request_id,
        # "A subscription needs at least one item" is about the subscription, not a parameter.
        names={**ITEM_PARAMS, "items": "subscription"},
    )


# --- the cycle: trial end, renewal, notices, expiry (due jobs) ------------------------------


def _end_trial(subscription: Subscription, *, now, request_id=None) -> None:
    """The trial is over (SPEC R-TRIAL-3/5/6): cancel, pause, or start billing."""
    if not _has_payment_method(subscription):
        behavior = subscription.trial_settings_missing_payment_method
        if behavior == MissingPaymentMethodBehavior.CANCEL:
            _end(subscription, now=now, reason="cancellation_requested", request_id=request_id)
            return
        if behavior == MissingPaymentMethodBehavior.PAUSE:
            _set_status(subscription, SubscriptionStatus.PAUSED, request_id=request_id)
            timeline.cancel(None, subscription)
            events.emit("customer.subscription.paused", subscription, request_id=request_id)
            return
    _start_cycle(
        subscription, start=now, now=now, request_id=request_id, status=SubscriptionStatus.ACTIVE
    )


def _cycle_lines(subscription: Subscription, start):
    """The lines of the period that begins at `start`, and its end: up to the next anchor
    boundary, prorated when that is short of a whole period (SPEC R-TRIAL-5)."""
    interval, count = _price_interval(subscription)
    end = periods.next_boundary(subscription.billing_cycle_anchor, interval, count, start)
    full_start = periods.shift(end, interval, count, -1)
    items = _items(subscription)
    if full_start < start:
        lines = _item_lines(
            subscription,
            items,
            start=start,
            end=end,
            amount_for=lambda full: periods.prorate(
                full, part_start=start, part_end=end, start=full_start, end=end
            ),
        )
    else:
        lines = _item_lines(subscription, items, start=start, end=end)
    return lines, end


def _start_cycle(
    subscription: Subscription, *, start, now, request_id=None, status=None
) -> Invoice:
    """Open the period that begins at `start`: a draft invoice now, finalized in about an hour."""
    lines, end = _cycle_lines(subscription, start)
    before = serialize(subscription)
    previous_start = subscription.current_period_start
    subscription.current_period_start = start
    subscription.current_period_end = end
    if status:
        subscription.status = status
    batching.save(subscription)
    invoicing.emit_updated(
        "customer.subscription.updated", subscription, before, request_id=request_id
    )
    unpaid = subscription.status == SubscriptionStatus.UNPAID
    if (
        subscription.pause_collection_resumes_at is not None
        and subscription.pause_collection_resumes_at <= start
    ):
        # Collection resumes by itself at `resumes_at`.
        subscription.pause_collection_behavior = None
        subscription.pause_collection_resumes_at = None
        batching.save(
            subscription, update_fields=["pause_collection_behavior", "pause_collection_resumes_at"]
        )
    # pause_collection (unlike the paused status, R-SUB-7): invoices are still created;
    # keep_as_draft leaves them drafts, the other behaviors act at finalization.
    keep_as_draft = subscription.pause_collection_behavior == "keep_as_draft"
    # R-CON-7: while its on_behalf_of account is disconnected, a renewal stays a draft.
    held = connect.holds_collection(subscription)
    invoice = _new_invoice(
        subscription,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
        period_start=previous_start,
        period_end=start,
        lines=lines,
        # R-SUB-5: an unpaid subscription's new invoices stay drafts, nothing is attempted.
        auto_advance=not (unpaid or keep_as_draft or held),
    )
    if held and not (unpaid or keep_as_draft):
        invoice.awaiting_reconnection = True
        batching.save(invoice, update_fields=["awaiting_reconnection"])
    if invoice.auto_advance:
        invoicing.schedule_finalization(invoice)
    _schedule_cycle_jobs(subscription)
    return invoice


def _load_subscription(subscription_id):
    return (
        Subscription.objects.select_for_update()
        .select_related("customer")
        .filter(pk=subscription_id)
        .first()
    )


def _load_subscriptions(subscription_ids) -> dict[str, Subscription]:
    """Subscriptions due together, locked, with everything their jobs read (for batches):
    items, discounts, the customer and its discounts, and pending invoice items. Prices,
    products and coupons are loaded once each and shared."""
    # Customers first, in key order (`batching.lock_in_order`): one instance each, shared.
    by_customer = batching.lock_in_order(
        Customer,
        Subscription.objects.filter(pk__among=subscription_ids).values_list(
            "customer_id", flat=True
        ),
    )
    subscriptions = list(
        Subscription.objects.select_for_update().filter(pk__among=subscription_ids).order_by("pk")
    )
    for sub in subscriptions:
        sub.customer = by_customer[sub.customer_id]
    customers = list(by_customer.values())
    items = batching.prefetch(subscriptions, "items")
    discounts = batching.prefetch(subscriptions, "discounts")
    discounts += batching.prefetch(customers, "discounts")
    pending = list(
        InvoiceItem.objects.filter(
            subscription_id__among=[sub.pk for sub in subscriptions], invoice__isnull=True
        )
    )
    by_subscription: dict = {}
    by_pk = {sub.pk: sub for sub in subscriptions}
    subscription_field = InvoiceItem._meta.get_field("subscription")
    for item in pending:
        subscription_field.set_cached_value(item, by_pk[item.subscription_id])
        by_subscription.setdefault(item.subscription_id, []).append(item)
    for sub in subscriptions:
        # What `Prefetch("invoice_items", …, to_attr="pending_invoice_items")` would set.
        sub.pending_invoice_items = by_subscription.get(sub.pk, [])
    batching.attach([*items, *pending], "price", Price.objects.select_related("product"))
    batching.attach(discounts, "coupon", Coupon.objects.all())
    batching.register(*subscriptions, *customers)
    return {sub.pk: sub for sub in subscriptions}


def _trial_end_can_batch(subscription: Subscription, job) -> bool:
    """Ending a trial without a payment method may cancel: that path runs alone."""
    return _has_payment_method(subscription)


def _ends_at_period_end(subscription: Subscription) -> bool:
    """Whether the subscription ends when its current period does (`cancel_at_period_end`, or
    a `cancel_at` no later than the period's end): nothing renews (SPEC R-SUB-8)."""
    return subscription.cancel_at_period_end or (
        subscription.cancel_at is not None
        and subscription.cancel_at <= subscription.current_period_end
    )


def _renewal_can_batch(subscription: Subscription, job) -> bool:
    """A renewal that ends the subscription (cancel at period end) runs alone."""
    return not _ends_at_period_end(subscription)


@timeline.handler("trial_will_end", target=_load_subscription, load_many=_load_subscriptions)
def _trial_will_end_due(subscription: Subscription, job) -> None:
    """SPEC R-TRIAL-4."""
    if subscription.status == SubscriptionStatus.TRIALING:
        events.emit("customer.subscription.trial_will_end", subscription)


@timeline.handler(
    "trial_end",
    target=_load_subscription,
    load_many=_load_subscriptions,
    can_batch=_trial_end_can_batch,
)
def _trial_end_due(subscription: Subscription, job) -> None:
    if subscription.status == SubscriptionStatus.TRIALING and subscription.trial_end == job.due_at:
        _end_trial(subscription, now=job.due_at)


@timeline.handler(
    "renewal",
    target=_load_subscription,
    load_many=_load_subscriptions,
    can_batch=_renewal_can_batch,
)
def _renewal_due(subscription: Subscription, job) -> None:
    """A period ended: cancel if asked to, else start the next one (SPEC R-SUB-3/5/7/8)."""
    live = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)
    if subscription.status not in live or subscription.current_period_end != job.due_at:
        return
    now = now_for(subscription)
    if _ends_at_period_end(subscription):
        _end(
            subscription,
            now=now,
            reason="cancellation_requested",
            details=subscription.cancellation_details,
        )
        return
    _start_cycle(subscription, start=subscription.current_period_end, now=now)


@timeline.handler("subscription_cancel_at", target=_load_subscription)
def _cancel_at_due(subscription: Subscription, job) -> None:
    """`cancel_at` reached: the subscription ends now (no proration of the period's rest)."""
    if subscription.status in ENDED or subscription.cancel_at != job.due_at:
        return
    _end(
        subscription,
        now=job.due_at,
        reason="cancellation_requested",
        details=subscription.cancellation_details,
    )


def preview_next_invoice(subscription: Subscription) -> dict:
    """The invoice the next renewal will create, rendered as Stripe renders an upcoming invoice
    (no id). Built by the same code as the renewal invoice, and never saved."""
    start = subscription.current_period_end
    lines, _ = _cycle_lines(subscription, start)
    invoice, _, _ = invoicing.build_invoice(
        subscription.customer,
        subscription=subscription,
        billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
        currency=subscription.currency,
        period_start=subscription.current_period_start,
        period_end=start,
        lines=lines,
        collection_method=subscription.collection_method,
        created=start,
    )
    payload = serialize(invoice)
    payload["id"] = None
    payload["lines"]["url"] = f"/v1/invoices/upcoming/lines?subscription={subscription.pk}"
    for line in payload["lines"]["data"]:
        line["invoice"] = None
    return payload


@timeline.handler("upcoming_renewal", target=_load_subscription, load_many=_load_subscriptions)
def _upcoming_renewal_due(subscription: Subscription, job) -> None:
    """SPEC R-INV-6: `invoice.upcoming` before a renewal or a trial's end, for automatic
    collection only; not before a trial end that will cancel or pause instead of invoicing
    (SPEC R-TRIAL-6)."""
    if (
        subscription.status == SubscriptionStatus.TRIALING
        and not _has_payment_method(subscription)
        and subscription.trial_settings_missing_payment_method
        != MissingPaymentMethodBehavior.CREATE_INVOICE
    ):
        return
    if (
        subscription.status
        in (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, SubscriptionStatus.TRIALING)
        and subscription.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
        and not _ends_at_period_end(subscription)
    ):
        events.emit("invoice.upcoming", subscription, payload=preview_next_invoice(subscription))


@timeline.handler("incomplete_expiry", target=_load_subscription)
def _incomplete_expiry_due(subscription: Subscription, job) -> None:
    """SPEC R-SUB-2: unpaid after 23 hours → incomplete_expired, first invoice voided."""
    if subscription.status != SubscriptionStatus.INCOMPLETE:
        return
    now = now_for(subscription)
    for invoice in Invoice.objects.filter(subscription=subscription, status=InvoiceStatus.OPEN):
        invoicing.void_invoice(invoice)
    before = serialize(subscription)
    subscription.status = SubscriptionStatus.INCOMPLETE_EXPIRED
    subscription.ended_at = now
    subscription.save()
    timeline.cancel(None, subscription)
    invoicing.emit_updated("customer.subscription.updated", subscription, before)
    events.emit("customer.subscription.deleted", subscription)
