"""django-q2 tasks of the billing app. Thin: they take ids (arguments travel as text)."""

import logging

from billing.models import Event
from billing.subscribers import handlers_for

logger = logging.getLogger(__name__)


def dispatch_events(event_ids: list[str]) -> int:
    """Hand committed events to every subscriber of their types, in the order they happened.

    Ids whose rows do not exist (written in a savepoint that rolled back) are skipped. Returns
    how many events were handed over.
    """
    events = Event.objects.select_related("account").filter(pk__among=list(event_ids))
    failures = []
    count = 0
    for event in events.order_by("created", "id"):
        failures += _hand_over(event)
        count += 1
    # Re-raise the first failure (all are logged) so django-q2 records the task as failed,
    # where the admin shows it. The settings acknowledge failed tasks (`ack_failures`), so it is
    # not re-run as a whole, which would repeat the handlers that succeeded: subscribers that
    # need retries (webhook deliveries, emails) keep their own schedule of due jobs.
    if failures:
        raise failures[0]
    return count


def dispatch_event(event_id: str) -> None:
    """Hand one committed event to every subscriber of its type (see `dispatch_events`)."""
    dispatch_events([event_id])


def _hand_over(event: Event) -> list[Exception]:
    """Run the event's handlers; their failures, each logged."""
    failures = []
    for handler in handlers_for(event.type):
        # One subscriber's failure must not keep the event from the others: a broken automation
        # should not stop webhook deliveries. So each failure is logged and the loop goes on.
        try:
            handler(event)
        except Exception as exc:
            logger.exception(
                "subscriber %s failed on event %s (%s)",
                getattr(handler, "__qualname__", handler),
                event.id,
                event.type,
            )
            failures.append(exc)
    return failures


def run_due_job(job_id: int) -> bool:
    """Run one due job that `tick` claimed."""
    from billing import timeline

    return timeline.run(int(job_id))


def tick() -> int:
    """Hand every due wall-clock job to a worker (the recurring schedule calls this)."""
    from billing import timeline

    return timeline.tick()


def advance_test_clock(clock_id: str) -> None:
    """Run a test clock's due jobs up to the time it is advancing to, with this cluster's other
    workers running batches of a crowd side by side (`timeline._run_crowd`)."""
    from django_q.conf import Conf
    from django_q.tasks import async_task

    from billing import timeline

    # This worker is one of the cluster's; the others help if there are others (run inline,
    # as `sync` runs tasks, they would only run the batches before this process does).
    helpers = Conf.CLUSTER_NAME if not Conf.SYNC and (Conf.WORKERS or 1) > 1 else None
    # A task running past the cluster's timeout is killed, and one running past `retry` is
    # handed to a second worker while it still runs: a long advance (a clock with a hundred
    # thousand subscriptions) goes on in a new task instead, from where this one stopped.
    budget = None if Conf.SYNC or not Conf.TIMEOUT else Conf.TIMEOUT / 2
    if not timeline.advance_clock(clock_id, helpers=helpers, budget=budget):
        async_task("billing.tasks.advance_test_clock", clock_id)


def run_clock_jobs(clock_id: str, frozen_time: str, job_ids: list[int]) -> int:
    """A batch of a test clock's jobs due at `frozen_time` (ISO 8601), run at that time for the
    process advancing the clock."""
    from datetime import datetime

    from billing import timeline

    return timeline.run_clock_jobs(
        clock_id, datetime.fromisoformat(frozen_time), [int(job_id) for job_id in job_ids]
    )


def run_due_jobs(job_ids: list[int]) -> int:
    """Run a batch of due jobs of one kind that `tick` claimed."""
    from billing import timeline

    return timeline.run_many([int(job_id) for job_id in job_ids])


def deliver_webhooks(delivery_ids: list[str]) -> int:
    """First attempts of deliveries whose event just committed (the outbox's fast path)."""
    from billing.webhooks import delivery

    return delivery.deliver(list(delivery_ids), first_only=True)


def resend_webhook_deliveries(delivery_ids: list[str]) -> int:
    """One attempt more for each delivery, whatever its status (resend and replay)."""
    from billing.webhooks import delivery

    return delivery.deliver(list(delivery_ids), manual=True)
