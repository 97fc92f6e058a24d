"""Emitting events: every state change writes one Stripe-shaped `Event` row (SPEC R-EVT-1).

The row is both the history and the outbox. It is written in the caller's transaction, and
subscribers (webhooks, automations, notifications) only hear of it once that transaction commits.
"""

import contextlib
import contextvars

from billing import aftercommit, batching
from billing.clocks import now_for
from billing.models import Account, Customer, Event
from billing.serializers import serialize
from billing.webhooks import routing as webhook_routing

# Every event type the product may emit, with Stripe's spelling. `emit` and the subscriber
# registry refuse anything else, so a typo fails at once instead of silently reaching nobody.
EVENT_TYPES = frozenset(
    {
        # Accounts and Connect (SPEC R-EVT-1, R-CON-7).
        "account.updated",
        "account.application.authorized",
        "account.application.deauthorized",
        "application_fee.created",
        "transfer.created",
        # Customers, their discounts and payment methods.
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.discount.created",
        "customer.discount.updated",
        "customer.discount.deleted",
        "payment_method.attached",
        "payment_method.detached",
        # Catalog.
        "product.created",
        "product.updated",
        "product.deleted",
        "price.created",
        "price.updated",
        "price.deleted",
        "coupon.created",
        "coupon.updated",
        "coupon.deleted",
        # Subscriptions (SPEC R-SUB-*, R-TRIAL-4).
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "subscription_schedule.created",
        "subscription_schedule.updated",
        "subscription_schedule.canceled",
        "subscription_schedule.completed",
        "subscription_schedule.released",
        "subscription_schedule.expiring",
        "subscription_schedule.aborted",
        "entitlements.active_entitlement_summary.updated",
        # Invoices (SPEC R-INV-*).
        "invoice.created",
        "invoice.finalized",
        "invoice.finalization_failed",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_action_required",
        "invoice.payment_failed",
        "invoice.upcoming",
        "invoice.updated",
        "invoice.overdue",
        "invoice.will_be_due",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.deleted",
        "invoiceitem.created",
        "invoiceitem.deleted",
        # Payments.
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        # Test clocks (SPEC R-CLOCK-*).
        "test_helpers.test_clock.created",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.internal_failure",
        "test_helpers.test_clock.deleted",
    }
)


# Events handed to one subscriber task: big enough to spare the queue, small enough that a
# crowd is shared between workers.
DISPATCH_CHUNK = 100

# The API request being handled, if any: events built while it runs record it (Stripe's
# `request.{id, idempotency_key}`) unless the caller names a request explicitly.
_request: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "billing_event_request", default=(None, None)
)


@contextlib.contextmanager
def request_context(*, request_id: str | None = None, idempotency_key: str | None = None):
    """Within the block, events record this request (and its idempotency key) by default."""
    token = _request.set((request_id, idempotency_key))
    try:
        yield
    finally:
        _request.reset(token)


def validate_event_type(event_type: str) -> str:
    """`event_type` if the product knows it; raise ValueError otherwise."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    return event_type


def _customer_id(obj) -> str:
    """The customer an object is about, for the "events of this customer" lookups; '' if none."""
    if isinstance(obj, Customer):
        return obj.id
    return getattr(obj, "customer_id", None) or ""


def build(
    type: str,
    obj,
    *,
    previous_attributes: dict | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    created=None,
    livemode: bool | None = None,
    payload: dict | None = None,
) -> Event:
    """The unsaved `Event` recording that `obj` changed, as an event of `type`.

    `data.object` is `obj` as it is now; `previous_attributes` (for `*.updated` events) holds the
    changed fields' old values. `created` defaults to the object's clock (SPEC R-CORE-4).
    `livemode` is only needed for objects without a mode of their own (accounts; default test).
    `payload` replaces `serialize(obj)` for events about an object that does not exist yet
    (`invoice.upcoming` carries a preview of the next invoice; `obj` is its subscription).
    """
    validate_event_type(type)
    context_request_id, context_idempotency_key = _request.get()
    if request_id is None:
        request_id = context_request_id
    if idempotency_key is None:
        idempotency_key = context_idempotency_key
    if payload is None:
        payload = serialize(obj)
    data = {"object": payload}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes

    if isinstance(obj, Account):
        # An account's own events belong to that account, connected or not (SPEC R-EVT-4).
        account_id = obj.id
        mode = bool(livemode)
    else:
        account_id = obj.account_id
        mode = obj.livemode if livemode is None else livemode

    return Event(
        account_id=account_id,
        livemode=mode,
        type=type,
        data=data,
        object_id=str(payload["id"] or obj.pk),
        customer_id=_customer_id(obj),
        request_id=request_id,
        request_idempotency_key=idempotency_key,
        created=created if created is not None else now_for(obj),
    )


def emit(type: str, obj, **options) -> Event:
    """Record that `obj` changed (see `build` for the options); call it inside the transaction
    that made the change. Subscribers hear of the event once that transaction commits."""
    event = build(type, obj, **options)
    # The endpoints it goes to (read once per batch), before `pending_webhooks` is saved.
    webhook_routing.route(event, obj)
    batch = batching.active()
    if batch is not None:
        # Written (and dispatched) with the rest of the batch, in this same order.
        batch.events.append(event)
        return event
    event.save(force_insert=True)
    # Its webhook deliveries, in the same transaction (the outbox, SPEC R-EVT-2).
    webhook_routing.write([event])
    _dispatch_after_commit([event])
    return event


def save_many(built: list[Event]) -> None:
    """Save events `emit` collected in a batch, in order, and dispatch them after commit (their
    task is queued with the batch's own writes, `aftercommit.enqueue_with_transaction`)."""
    batching.bulk_insert(Event, built)
    webhook_routing.write(built)
    _dispatch_after_commit(built, with_transaction=True)


def _dispatch_after_commit(saved: list[Event], *, with_transaction: bool = False) -> None:
    # Imported here because the subscriber registry imports EVENT_TYPES from this module.
    from billing.subscribers import handlers_for

    # Nothing leaves the process before commit, and an event nobody listens to costs no queue
    # row. Registration happens at import time (AppConfig.ready), so this check is stable.
    # One task takes a chunk of the transaction's events, in order: a renewal crowd of
    # thousands of events would otherwise write a queue row per event.
    ids = [event.id for event in saved if handlers_for(event.type)]
    queue = aftercommit.enqueue_with_transaction if with_transaction else aftercommit.enqueue
    queue("billing.tasks.dispatch_events", ids, chunk=DISPATCH_CHUNK)


def record_history(built: list[Event]) -> int:
    """Save events `build` made for past activity (data imports, the demo) in bulk, WITHOUT
    dispatching them: subscribers react to changes happening now, and replaying history would
    send months-old receipts, webhooks and automation runs."""
    Event.objects.bulk_create(built, batch_size=500)
    return len(built)
