"""Test clocks: simulated time for test-mode customers (SPEC R-CLOCK-1, R-CLOCK-2)."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from billing import events, timeline
from billing.choices import TestClockStatus
from billing.models import (
    Customer,
    DueJob,
    Invoice,
    PaymentIntent,
    PaymentMethod,
    Subscription,
    TestClock,
)

# Stripe deletes a test clock 30 days after creation.
CLOCK_LIFETIME = timedelta(days=30)


@transaction.atomic
def create_test_clock(account, *, frozen_time: datetime, name: str = "") -> TestClock:
    """A new clock, in test mode, stopped at `frozen_time`."""
    if not isinstance(frozen_time, datetime):
        raise ValidationError({"frozen_time": "A date and time is required."})
    clock = TestClock.objects.create(
        account=account,
        livemode=False,
        name=name.strip(),
        frozen_time=frozen_time,
        deletes_after=timezone.now() + CLOCK_LIFETIME,
        created=timezone.now(),
    )
    events.emit("test_helpers.test_clock.created", clock)
    return clock


def advance_test_clock(clock: TestClock, *, to: datetime, synchronously: bool = False) -> TestClock:
    """Move the clock forward to `to`, running everything that falls due on the way.

    The clock is `advancing` until that work is done, then `ready` (SPEC R-CLOCK-2). By default a
    django-q2 worker does the work once the caller's transaction commits, and the clock returned
    is still advancing. With `synchronously`, the work runs here, in this process, and the clock
    returned is ready: for callers that drive time themselves (the demo loader, scripts).
    """
    clock = _start_advancing(clock, to=to)
    clock_id = clock.pk
    if not synchronously:
        transaction.on_commit(lambda: async_task("billing.tasks.advance_test_clock", clock_id))
        return clock
    # Outside the transaction that marked the clock advancing: each due job runs in its own
    # transaction, as it would in the worker (inside a caller's transaction, as savepoints).
    timeline.advance_clock(clock_id)
    clock.refresh_from_db()
    return clock


@transaction.atomic
def _start_advancing(clock: TestClock, *, to: datetime) -> TestClock:
    """Check that the clock may move to `to`, mark it `advancing` and say so, or change nothing."""
    clock = TestClock.objects.select_for_update().get(pk=clock.pk)
    # After an internal failure, advancing again resumes the work left undone.
    if clock.status not in (TestClockStatus.READY, TestClockStatus.INTERNAL_FAILURE):
        raise ValidationError(
            {"test_clock": "The clock is still advancing; wait until it is ready."}
        )
    if isinstance(to, datetime) and timezone.is_naive(to):
        raise ValidationError({"frozen_time": "The new time needs a time zone."})
    if not isinstance(to, datetime) or to <= clock.frozen_time:
        raise ValidationError({"frozen_time": "The new time must be later than the clock's time."})
    clock.status = TestClockStatus.ADVANCING
    clock.advancing_to = to
    clock.save(update_fields=["status", "advancing_to"])
    events.emit("test_helpers.test_clock.advancing", clock)
    return clock


@transaction.atomic
def delete_test_clock(clock: TestClock) -> None:
    """Delete the clock with its customers and everything they own, as Stripe does.

    Events stay: they are the account's history of what happened.
    """
    clock = TestClock.objects.select_for_update().get(pk=clock.pk)
    if clock.status == TestClockStatus.ADVANCING:
        raise ValidationError({"test_clock": "The clock is advancing; delete it once it is ready."})
    events.emit("test_helpers.test_clock.deleted", clock)
    customers = Customer.objects.filter(test_clock=clock)
    # Children before parents: these foreign keys PROTECT.
    PaymentIntent.objects.filter(customer__in=customers).delete()
    Invoice.objects.filter(customer__in=customers).delete()
    Subscription.objects.filter(customer__in=customers).delete()
    PaymentMethod.objects.filter(customer__in=customers).delete()
    customers.delete()
    DueJob.objects.filter(test_clock=clock).delete()
    clock.delete()
