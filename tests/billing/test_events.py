"""Emitting events, the subscriber registry, and dispatch after commit (billing.events)."""

import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction

from billing import events, subscribers, tasks
from billing.events import EVENT_TYPES, emit
from billing.models import Event, TestClock
from billing.serializers import serialize
from tests import factories

T0 = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch):
    """Each test starts with no subscriber, whatever the installed apps registered."""
    monkeypatch.setattr(subscribers, "_handlers", defaultdict(list))


@pytest.fixture
def received():
    """Ids of the events a subscriber of `customer.created` was handed, in order."""
    seen = []

    @subscribers.subscribe("customer.created")
    def record(event):
        """Remember the event."""
        seen.append(event.id)

    return seen


@pytest.fixture
def clock_customer(account):
    """A customer attached to a test clock frozen at T0."""
    clock = factories.make_test_clock(account, frozen_time=T0)
    return factories.make_customer(account, test_clock=clock)


# Writing the event row ---------------------------------------------------------------------------


def test_emit_stores_the_object_as_serialized_at_that_moment(customer):
    # SPEC R-EVT-1: data.object is the object as it was after the change
    event = emit("customer.created", customer)
    snapshot = serialize(customer)
    customer.name = "Someone else"
    customer.save()

    event.refresh_from_db()

    assert event.data == {"object": snapshot}


def test_emit_records_type_account_mode_and_object(account, customer):
    event = emit("customer.created", customer)

    event.refresh_from_db()
    assert event.type == "customer.created"
    assert event.account_id == account.id
    assert event.livemode is False
    assert event.object_id == customer.id
    assert event.customer_id == customer.id


def test_emit_takes_livemode_from_the_object(account):
    # SPEC R-CORE-3
    live_customer = factories.make_customer(account, livemode=True)

    assert emit("customer.created", live_customer).livemode is True


def test_emit_links_an_owned_object_to_its_customer(customer):
    invoice = factories.make_invoice(customer)

    event = emit("invoice.created", invoice)

    assert event.object_id == invoice.id
    assert event.customer_id == customer.id


def test_emit_uses_a_coupons_code_as_object_id(account):
    coupon = factories.make_coupon(account, code="WELCOME")

    assert emit("coupon.created", coupon).object_id == "WELCOME"


def test_emit_adds_previous_attributes_when_given(customer):
    # SPEC R-EVT-1: data.previous_attributes for updates
    event = emit("customer.updated", customer, previous_attributes={"email": "old@example.com"})

    event.refresh_from_db()
    assert event.data["previous_attributes"] == {"email": "old@example.com"}


def test_emit_leaves_previous_attributes_out_when_not_given(customer):
    event = emit("customer.created", customer)

    event.refresh_from_db()
    assert "previous_attributes" not in event.data


def test_emit_records_the_request_that_caused_it(customer):
    # SPEC R-EVT-1: `request`
    event = emit("customer.created", customer, request_id="req_123", idempotency_key="key-1")

    assert serialize(event)["request"] == {"id": "req_123", "idempotency_key": "key-1"}


def test_event_of_a_connected_accounts_object_carries_account(account):
    # SPEC R-EVT-4
    connected = factories.make_connected_account(account)
    customer = factories.make_customer(connected)

    event = emit("customer.created", customer)

    assert serialize(event)["account"] == connected.id


def test_an_accounts_own_event_belongs_to_that_account(account):
    # SPEC R-EVT-1, R-CON-7: account.application.deauthorized is about the connected account
    connected = factories.make_connected_account(account)

    event = emit("account.application.deauthorized", connected)

    assert event.account_id == connected.id
    assert event.object_id == connected.id
    assert serialize(event)["account"] == connected.id


def test_emit_rejects_an_unknown_type(customer):
    with pytest.raises(ValueError, match="unknown event type 'customer.renamed'"):
        emit("customer.renamed", customer)

    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "event_type",
    [
        "customer.created",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "customer.subscription.trial_will_end",
        "invoice.created",
        "invoice.finalized",
        "invoice.finalization_failed",
        "invoice.paid",
        "invoice.payment_action_required",
        "invoice.payment_failed",
        "invoice.upcoming",
        "invoice.updated",
        "invoice.overdue",
        "invoice.will_be_due",
        "payment_intent.created",
        "payment_intent.succeeded",
        "subscription_schedule.created",
        "subscription_schedule.updated",
        "subscription_schedule.canceled",
        "subscription_schedule.completed",
        "subscription_schedule.released",
        "subscription_schedule.expiring",
        "subscription_schedule.aborted",
        "entitlements.active_entitlement_summary.updated",
        "account.updated",
        "account.application.deauthorized",
    ],
)
def test_every_event_type_of_the_spec_is_known(event_type):
    # SPEC R-EVT-1
    assert event_type in EVENT_TYPES


# Time --------------------------------------------------------------------------------------------


def test_emit_dates_a_clock_customers_event_at_the_frozen_time(clock_customer):
    # SPEC R-CORE-4
    event = emit("customer.created", clock_customer)

    assert event.created == T0


def test_emit_dates_an_owned_objects_event_at_its_customers_clock(clock_customer):
    # SPEC R-CORE-4, R-CLOCK-1: everything the customer owns lives on its clock
    card = factories.make_card(clock_customer)

    event = emit("payment_method.attached", card)

    assert event.created == T0


def test_emit_reads_the_clock_as_advanced_not_as_cached(clock_customer):
    # SPEC R-CLOCK-2: an advance moves the time even for objects loaded before it
    TestClock.objects.filter(pk=clock_customer.test_clock_id).update(
        frozen_time=T0 + timedelta(days=3)
    )

    event = emit("customer.updated", clock_customer)

    assert event.created == T0 + timedelta(days=3)


def test_emit_dates_an_event_at_wall_time_without_a_clock(customer):
    # SPEC R-CORE-4
    with time_machine.travel(T0, tick=False):
        event = emit("customer.updated", customer)

    assert event.created == T0


def test_emit_takes_an_explicit_created(clock_customer):
    at = T0 + timedelta(hours=1)

    assert emit("customer.updated", clock_customer, created=at).created == at


def test_events_list_in_emission_order(clock_customer):
    # SPEC R-EVT-1: in the order the changes happened, even within one frozen instant
    invoice = factories.make_invoice(clock_customer)
    emit("customer.created", clock_customer)
    emit("invoice.created", invoice)
    emit("customer.updated", clock_customer)

    types = list(Event.objects.order_by("id").values_list("type", flat=True))

    assert types == ["customer.created", "invoice.created", "customer.updated"]


# Subscribers and dispatch ------------------------------------------------------------------------


def test_dispatch_runs_only_after_commit(customer, received, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        event = emit("customer.created", customer)
        assert received == []

    assert received == [event.id]


def test_a_rolled_back_change_dispatches_nothing(
    customer, received, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        emit("customer.created", customer)
        raise RuntimeError("the change failed")

    assert callbacks == []
    assert received == []


def test_no_dispatch_is_queued_for_an_event_nobody_listens_to(
    customer, received, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        emit("customer.updated", customer)

    assert callbacks == []


def test_one_task_takes_a_transactions_events_in_order(
    customer, received, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda task, *args, **options: queued.append((task, *args))
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        first = emit("customer.created", customer)
        emit("customer.updated", customer)  # nobody listens: not handed over
        second = emit("customer.created", customer)

    assert len(callbacks) == 1
    assert queued == [("billing.tasks.dispatch_events", [first.id, second.id])]


def test_a_crowd_of_events_is_handed_over_in_chunks(
    customer, received, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda task, ids, **options: queued.append(len(ids))
    )
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for _ in range(events.DISPATCH_CHUNK * 2 + 1):
            emit("customer.created", customer)

    assert queued == [events.DISPATCH_CHUNK, events.DISPATCH_CHUNK, 1]


def test_dispatch_skips_events_a_rollback_took_back(customer, received):
    kept = factories.make_event(customer.account, type="customer.created", obj=customer)

    assert tasks.dispatch_events(["evt_rolled_back", kept.id]) == 1
    assert received == [kept.id]


def test_a_star_subscriber_receives_every_event(customer, django_capture_on_commit_callbacks):
    seen = []
    subscribers.register("*", lambda event: seen.append(event.type))

    with django_capture_on_commit_callbacks(execute=True):
        emit("customer.created", customer)
        emit("customer.updated", customer)

    assert seen == ["customer.created", "customer.updated"]


def test_subscribing_to_an_unknown_type_fails_loudly():
    with pytest.raises(ValueError, match="unknown event type 'invoice.payed'"):
        subscribers.subscribe("invoice.payed")(lambda event: None)


def test_handlers_for_lists_a_types_handlers_then_star_handlers():
    def on_paid(event):
        """A handler of one type."""

    def on_anything(event):
        """A handler of every type."""

    subscribers.register("*", on_anything)
    subscribers.register("invoice.paid", on_paid)

    assert subscribers.handlers_for("invoice.paid") == [on_paid, on_anything]
    assert subscribers.handlers_for("invoice.created") == [on_anything]


def test_a_failing_handler_is_reported_after_the_others_ran(customer, received, caplog):
    def broken(event):
        """A subscriber with a bug."""
        raise RuntimeError("boom")

    subscribers.register("customer.created", broken)
    event = factories.make_event(customer.account, type="customer.created", obj=customer)

    with (
        caplog.at_level(logging.ERROR, logger="billing.tasks"),
        pytest.raises(RuntimeError, match="boom"),
    ):
        tasks.dispatch_event(event.id)

    assert received == [event.id]
    assert event.id in caplog.text
    assert "broken" in caplog.text
