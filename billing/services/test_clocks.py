"""Test clocks: simulated time for test-mode customers (SPEC R-CLOCK-1, R-CLOCK-2)."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_q.tasks import async_task

from billing import events
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


@transaction.atomic
def advance_test_clock(clock: TestClock, *, to: datetime) -> TestClock:
    """Move the clock forward to `to`; a worker runs everything that falls due on the way.

    The clock is `advancing` until that worker is done, then `ready` (SPEC R-CLOCK-2).
    """
    clock = TestClock.objects.select_for_update().get(pk=clock.pk)
    if clock.status != TestClockStatus.READY:
        raise ValidationError(
            {"test_clock": "The clock is still advancing; wait until it is ready."}
        )
    if not isinstance(to, datetime) or to <= clock.frozen_time:
        raise ValidationError({"frozen_time": "The new time must be later than the clock's time."})
    clock.status = TestClockStatus.ADVANCING
    clock.advancing_to = to
    clock.save(update_fields=["status", "advancing_to"])
    events.emit("test_helpers.test_clock.advancing", clock)
    clock_id = clock.pk
    transaction.on_commit(lambda: async_task("billing.tasks.advance_test_clock", clock_id))
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
