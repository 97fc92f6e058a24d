"""Which endpoints hear an event, and the outbox rows written with it (SPEC R-EVT-2, R-EVT-4).

An event goes to its own account's enabled endpoints of its mode that listen to its type
(`connect=False`), and, when the account is a connected account, to its platform's enabled
`connect=True` endpoints of that mode. The delivery rows are written in the event's
transaction: a committed event always has them, and a rolled-back one never does.

Cost: one query per (account, mode) per batch (`batching.cached`), and one per emit outside a
batch; an account without endpoints pays that query and nothing else.
"""

from datetime import timedelta

from django.db.models import Q

from billing import aftercommit, batching, clocks, prepared
from billing.models import (
    Account,
    DueJob,
    Event,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from billing.models.webhooks import WebhookEndpointStatus
from billing.prepared import Prepared

JOB_KIND = "webhook_delivery"
# The outbox job of a new delivery waits this long for the fast path (a task started on
# commit) to make the first attempt; it makes the attempt itself if that task was lost.
FIRST_ATTEMPT_GRACE = timedelta(minutes=1)
# Deliveries handed to one task: small enough that a crowd is shared between workers.
TASK_CHUNK = 100


def endpoints_query(account_id: str, livemode: bool):
    """Enabled endpoints that receive the events of `account_id` in this mode."""
    # A connected account that disconnected no longer reports to its platform (SPEC R-CON-7);
    # its `account.application.deauthorized` is emitted just before, and still goes.
    platform = Account.objects.filter(pk=account_id, deauthorized_at__isnull=True).values(
        "platform_id"
    )
    return WebhookEndpoint.objects.filter(
        Q(account_id=account_id, connect=False) | Q(account_id__in=platform, connect=True),
        livemode__in=[bool(livemode)],
        status=WebhookEndpointStatus.ENABLED,
    ).order_by("created", "id")


# Asked by every request that emits events, with the same shape: compiled once.
_ENDPOINTS = Prepared(endpoints_query)


def endpoints_read(account_id: str, livemode: bool) -> tuple:
    """`endpoints_for`'s query as a read for `prepared.ahead`."""
    return (_ENDPOINTS, "all", (account_id, bool(livemode)))


def endpoints_for(account_id: str, livemode: bool) -> list[WebhookEndpoint]:
    """`endpoints_query`, read once per batch (every event of a renewal crowd asks)."""
    return batching.cached(
        ("webhook_endpoints", account_id, bool(livemode)),
        lambda: prepared.run(endpoints_read(account_id, livemode)),
    )


def listening(account_id: str, livemode: bool, event_type: str) -> list[WebhookEndpoint]:
    """The endpoints an event of `event_type` goes to."""
    return [
        endpoint
        for endpoint in endpoints_for(account_id, livemode)
        if endpoint.listens_to(event_type)
    ]


def route(event: Event, obj=None) -> None:
    """Find `event`'s endpoints before it is saved; `write` makes their deliveries.

    Sets `pending_webhooks` (Stripe's count of deliveries not yet successful) and remembers
    the endpoints and the event's clock on the instance.
    """
    endpoints = listening(event.account_id, event.livemode, event.type)
    event.pending_webhooks = len(endpoints)
    event._webhook_endpoints = endpoints
    # Only asked when someone listens: clock_id_for may load the object's customer.
    event._webhook_clock_id = clocks.clock_id_for(obj) if endpoints and obj is not None else None


def write(saved: list[Event]) -> list[WebhookDelivery]:
    """Write the deliveries (and their outbox jobs) of saved events, and start sending them
    once the transaction commits."""
    deliveries, jobs = [], []
    for event in saved:
        endpoints = getattr(event, "_webhook_endpoints", None)
        if endpoints is None:
            # Built without `emit` (so never routed): route it now.
            route(event)
            endpoints = event._webhook_endpoints
            if endpoints:
                # In a flush, after the event's own INSERT, which may still be queued.
                batching.update(Event, event.pk, {"pending_webhooks": len(endpoints)})
        clock_id = getattr(event, "_webhook_clock_id", None)
        for endpoint in endpoints:
            delivery = WebhookDelivery(
                account_id=endpoint.account_id,
                livemode=endpoint.livemode,
                event_id=event.pk,
                endpoint_id=endpoint.pk,
                test_clock_id=clock_id,
                status=WebhookDeliveryStatus.PENDING,
                next_attempt_at=event.created,
                created=event.created,
            )
            deliveries.append(delivery)
            # Built as timeline.schedule builds jobs; a new delivery has no job to replace.
            jobs.append(
                DueJob(
                    account_id=endpoint.account_id,
                    livemode=endpoint.livemode,
                    kind=JOB_KIND,
                    target_id=delivery.pk,
                    due_at=event.created + FIRST_ATTEMPT_GRACE,
                    test_clock_id=clock_id,
                )
            )
    if not deliveries:
        return deliveries
    if len(deliveries) == 1 and batching.pipeline() is None:
        deliveries[0].save(force_insert=True)
        jobs[0].save(force_insert=True)
    else:
        # In a flush on PostgreSQL, both go out with the rest of its statements.
        batching.bulk_insert(WebhookDelivery, deliveries)
        batching.bulk_insert(DueJob, jobs)
    send_after_commit([delivery.pk for delivery in deliveries])
    return deliveries


def send_after_commit(ids: list[str]) -> None:
    """Start the first attempts of these deliveries once the transaction commits (at once
    outside one): one task per chunk of the transaction's deliveries, not one per event."""
    aftercommit.enqueue("billing.tasks.deliver_webhooks", ids, chunk=TASK_CHUNK)
