"""Events and test clocks through the official `stripe` SDK against a live server."""

import time

import pytest
import stripe

from billing.models import Customer, Event, TestClock
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 24 * 3600


def test_events_are_retrieved_and_listed_by_type_types_and_created(sdk):
    """SPEC R-EVT-1: Stripe-shaped events, filtered as Stripe filters them."""
    customer = sdk.v1.customers.create(params={"email": "a@example.com"})
    sdk.v1.customers.update(customer.id, params={"name": "Renamed"})
    sdk.v1.products.create(params={"name": "Widget"})

    created = sdk.v1.events.list(params={"type": "customer.created"})
    assert [e.data.object.id for e in created.data] == [customer.id]
    event = sdk.v1.events.retrieve(created.data[0].id)
    assert (event.object, event.type, event.livemode) == ("event", "customer.created", False)
    assert event.request.id.startswith("req_")

    customer_events = sdk.v1.events.list(params={"type": "customer.*"})
    assert [e.type for e in customer_events.data] == ["customer.updated", "customer.created"]
    updated = customer_events.data[0]
    assert updated.data.previous_attributes.to_dict() == {"name": None}

    several = sdk.v1.events.list(params={"types": ["product.created", "customer.updated"]})
    assert [e.type for e in several.data] == ["product.created", "customer.updated"]
    since = sdk.v1.events.list(params={"created": {"gt": event.created}})
    assert all(e.created > event.created for e in since.data)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.events.list(params={"type": "customer.*.x"})
    assert raised.value.param == "type"


def test_events_are_listed_by_delivery_success(sdk, account):
    """Stripe's `delivery_success`: true lists events every endpoint answered 2xx, false those
    with a delivery pending or failed (`pending_webhooks` > 0)."""
    delivered = factories.make_event(account, type="customer.created")
    waiting = factories.make_event(account, type="customer.updated")
    Event.objects.filter(pk=waiting.pk).update(pending_webhooks=1)

    ok = sdk.v1.events.list(params={"delivery_success": True})
    assert [e.id for e in ok.data] == [delivered.id]
    not_yet = sdk.v1.events.list(params={"delivery_success": False})
    assert [e.id for e in not_yet.data] == [waiting.id]
    assert not_yet.data[0].pending_webhooks == 1


def test_events_of_other_accounts_and_of_live_mode_are_not_listed(
    sdk, sdk_for, account, other_account, live_key
):
    """SPEC R-CORE-3: a test key sees test events only, of its own account."""
    factories.make_event(other_account)
    live_event = factories.make_event(account, livemode=True)
    mine = sdk.v1.customers.create()
    assert [e.data.object.id for e in sdk.v1.events.list().data] == [mine.id]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.events.retrieve(live_event.id)
    assert raised.value.http_status == 404
    live_ids = [e.id for e in sdk_for(live_key.raw).v1.events.list().data]
    assert live_ids == [live_event.id]


def test_a_test_clock_is_created_listed_advanced_and_deleted(sdk):
    """SPEC R-CLOCK-1, R-CLOCK-2: advancing answers `advancing`; the worker makes it ready."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(
        params={"frozen_time": start, "name": "Renewal rehearsal"}
    )
    assert clock.id.startswith("clock_")
    assert (clock.object, clock.status, clock.frozen_time, clock.name) == (
        "test_helpers.test_clock",
        "ready",
        start,
        "Renewal rehearsal",
    )
    assert [c.id for c in sdk.v1.test_helpers.test_clocks.list().data] == [clock.id]
    customer = sdk.v1.customers.create(params={"test_clock": clock.id})

    advancing = sdk.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": start + 40 * DAY}
    )
    assert advancing.status == "advancing"
    assert advancing.status_details.advancing.target_frozen_time == start + 40 * DAY

    ready = sdk.v1.test_helpers.test_clocks.retrieve(clock.id)
    assert (ready.status, ready.frozen_time) == ("ready", start + 40 * DAY)

    gone = sdk.v1.test_helpers.test_clocks.delete(clock.id)
    assert (gone.id, gone.deleted) == (clock.id, True)
    assert not TestClock.objects.exists()
    # Its customers go with it, as in Stripe.
    assert not Customer.objects.filter(pk=customer.id).exists()


def test_a_clock_cannot_go_back_in_time(sdk):
    clock = sdk.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": clock.frozen_time - 60}
        )
    assert raised.value.param == "frozen_time"
    assert sdk.v1.test_helpers.test_clocks.retrieve(clock.id).status == "ready"


def test_an_advancing_clock_refuses_another_advance_and_deletion(sdk, account):
    clock = factories.make_test_clock(account, status="advancing")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.test_helpers.test_clocks.advance(
            clock.id, params={"frozen_time": int(time.time()) + DAY}
        )
    assert raised.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.test_helpers.test_clocks.delete(clock.id)


def test_test_clocks_are_test_mode_only(sdk_for, live_key):
    """SPEC R-CLOCK-1."""
    live = sdk_for(live_key.raw)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        live.v1.test_helpers.test_clocks.create(params={"frozen_time": int(time.time())})
    assert raised.value.code == "livemode_mismatch"
    assert not TestClock.objects.exists()
