"""Advancing a test clock through the service, by a worker or in-process (SPEC R-CLOCK-2)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from billing.choices import SubscriptionStatus
from billing.choices import TestClockStatus as ClockStatus
from billing.models import DueJob, Event, Invoice, TestClock
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CLOCK_EVENTS = ("test_helpers.test_clock.advancing", "test_helpers.test_clock.ready")


@pytest.fixture
def clock(account):
    return create_test_clock(account, frozen_time=START, name="service")


def _clock_events(clock) -> list[str]:
    return list(
        Event.objects.filter(object_id=clock.pk, type__in=CLOCK_EVENTS)
        .order_by("created", "id")
        .values_list("type", flat=True)
    )


def _subscribed(account, clock):
    """A customer on `clock` with a good card and a monthly subscription, paid today."""
    customer = create_customer(account, livemode=False, email="c@example.com", test_clock=clock)
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"},
        set_default=True,
    )
    customer.refresh_from_db()
    price = factories.make_price(account, unit_amount=2500)
    return subs.create_subscription(customer, items=[{"price": price}])


# --- synchronously ----------------------------------------------------------------------------


def test_a_synchronous_advance_returns_the_clock_ready_at_the_new_time(clock):
    # SPEC R-CLOCK-2
    target = START + timedelta(days=3)
    returned = advance_test_clock(clock, to=target, synchronously=True)
    assert returned.status == ClockStatus.READY
    assert returned.frozen_time == target
    assert returned.advancing_to is None
    stored = TestClock.objects.get(pk=clock.pk)
    assert (stored.status, stored.frozen_time, stored.advancing_to) == (
        ClockStatus.READY,
        target,
        None,
    )


def test_a_synchronous_advance_announces_advancing_then_ready(clock):
    # SPEC R-CLOCK-2
    advance_test_clock(clock, to=START + timedelta(hours=1), synchronously=True)
    assert _clock_events(clock) == list(CLOCK_EVENTS)
    advancing = Event.objects.get(object_id=clock.pk, type=CLOCK_EVENTS[0])
    assert advancing.data["object"]["status"] == ClockStatus.ADVANCING
    ready = Event.objects.get(object_id=clock.pk, type=CLOCK_EVENTS[1])
    assert ready.data["object"]["status"] == ClockStatus.READY


def test_a_synchronous_advance_runs_what_falls_due_in_process(
    account, clock, monkeypatch, django_capture_on_commit_callbacks
):
    # SPEC R-CLOCK-2: the renewal a month later runs in this call, without any worker.
    queued = []
    monkeypatch.setattr(
        "billing.services.test_clocks.async_task", lambda *args: queued.append(args)
    )
    subscription = _subscribed(account, clock)
    period_end = subscription.current_period_end
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        advance_test_clock(clock, to=period_end + timedelta(hours=2), synchronously=True)
    assert queued == []
    assert not any("advance_test_clock" in repr(callback) for callback in callbacks)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.current_period_start == period_end
    assert Invoice.objects.filter(subscription=subscription).count() == 2
    assert not DueJob.objects.filter(
        test_clock=clock, status="pending", due_at__lte=period_end + timedelta(hours=2)
    ).exists()


# --- through a worker -------------------------------------------------------------------------


def test_an_advance_by_default_leaves_the_clock_advancing_until_the_worker_runs(
    clock, django_capture_on_commit_callbacks
):
    # SPEC R-CLOCK-2
    target = START + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        returned = advance_test_clock(clock, to=target)
        assert returned.status == ClockStatus.ADVANCING
        assert returned.advancing_to == target
        assert returned.frozen_time == START
        assert _clock_events(clock) == [CLOCK_EVENTS[0]]
    assert len(callbacks) >= 1
    for callback in callbacks:  # the commit hands the work to the worker (inline in tests)
        callback()
    clock.refresh_from_db()
    assert (clock.status, clock.frozen_time) == (ClockStatus.READY, target)
    assert _clock_events(clock) == list(CLOCK_EVENTS)


def test_an_advance_by_default_queues_the_worker_task_after_commit(
    clock, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        "billing.services.test_clocks.async_task", lambda *args: queued.append(args)
    )
    with django_capture_on_commit_callbacks(execute=True):
        advance_test_clock(clock, to=START + timedelta(days=1))
        assert queued == []  # nothing leaves the process before commit
    assert queued == [("billing.tasks.advance_test_clock", clock.pk)]


# --- validation, the same either way ----------------------------------------------------------


@pytest.mark.parametrize("synchronously", [False, True])
@pytest.mark.parametrize(
    "to", [START - timedelta(days=1), START], ids=["before_frozen_time", "at_frozen_time"]
)
def test_an_advance_that_does_not_move_forward_is_refused_naming_frozen_time(
    clock, to, synchronously
):
    # SPEC R-CLOCK-2
    with pytest.raises(ValidationError) as error:
        advance_test_clock(clock, to=to, synchronously=synchronously)
    assert list(error.value.message_dict) == ["frozen_time"]
    clock.refresh_from_db()
    assert (clock.status, clock.frozen_time) == (ClockStatus.READY, START)
    assert _clock_events(clock) == []


@pytest.mark.parametrize("synchronously", [False, True])
def test_an_advance_to_a_time_without_a_time_zone_is_refused(clock, synchronously):
    with pytest.raises(ValidationError) as error:
        advance_test_clock(clock, to=datetime(2026, 4, 1, 9, 0), synchronously=synchronously)
    assert list(error.value.message_dict) == ["frozen_time"]


@pytest.mark.parametrize("synchronously", [False, True])
def test_an_advance_of_a_clock_already_advancing_is_refused_naming_the_clock(
    clock, synchronously, django_capture_on_commit_callbacks
):
    # SPEC R-CLOCK-2
    with django_capture_on_commit_callbacks(execute=False):
        advance_test_clock(clock, to=START + timedelta(days=1))
    with pytest.raises(ValidationError) as error:
        advance_test_clock(clock, to=START + timedelta(days=2), synchronously=synchronously)
    assert list(error.value.message_dict) == ["test_clock"]
    clock.refresh_from_db()
    assert clock.status == ClockStatus.ADVANCING
    assert clock.advancing_to == START + timedelta(days=1)
    assert _clock_events(clock) == [CLOCK_EVENTS[0]]


# --- an advance that breaks -------------------------------------------------------------------


def test_an_advance_that_breaks_marks_the_clock_failed_and_can_be_resumed(
    account, clock, monkeypatch
):
    """SPEC R-CLOCK-2: an error outside any job (not a job's own failure, which is recorded on
    the job) leaves the clock `internal_failure` with its event, not advancing forever; a new
    advance resumes and runs what was left."""
    from billing import events

    subscription = _subscribed(account, clock)
    real_emit = events.emit

    def emit_breaking_ready(event_type, obj, **options):
        if event_type == "test_helpers.test_clock.ready":
            raise RuntimeError("broken")
        return real_emit(event_type, obj, **options)

    monkeypatch.setattr(events, "emit", emit_breaking_ready)

    with pytest.raises(RuntimeError):
        advance_test_clock(clock, to=START + timedelta(days=40), synchronously=True)

    clock.refresh_from_db()
    assert (clock.status, clock.advancing_to) == (ClockStatus.INTERNAL_FAILURE, None)
    assert Event.objects.filter(
        object_id=clock.pk, type="test_helpers.test_clock.internal_failure"
    ).exists()

    monkeypatch.setattr(events, "emit", real_emit)
    clock = advance_test_clock(clock, to=START + timedelta(days=40), synchronously=True)

    assert clock.status == ClockStatus.READY
    assert Invoice.objects.filter(subscription=subscription).count() == 2
