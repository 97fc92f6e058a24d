"""Deliveries of events written in bulk by the batched engine (renewal crowds)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice, WebhookDelivery, WebhookDeliveryStatus
from billing.services import subscriptions as subs
from billing.services import webhooks as webhook_services
from billing.services.customers import add_card, create_customer
from tests import factories
from tests.webhooks.conftest import advance

pytestmark = pytest.mark.django_db(transaction=True)


def _crowd(account, clock, count):
    price = factories.make_price(account, unit_amount=1500)
    for n in range(count):
        customer = create_customer(account, livemode=False, email=f"c{n}@x.test", test_clock=clock)
        add_card(
            customer,
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
        subs.create_subscription(customer, items=[{"price": price}])


def test_a_renewal_crowd_delivers_every_event_of_the_batch(account, clock, receiver):
    _crowd(account, clock, 5)
    endpoint = webhook_services.create_webhook_endpoint(
        account, livemode=False, url=receiver.url, enabled_events=["invoice.created"]
    )
    advance(clock, days=31, minutes=30)
    renewals = set(
        Invoice.objects.filter(billing_reason="subscription_cycle").values_list("id", flat=True)
    )
    assert len(renewals) == 5
    received = {r["json"]["data"]["object"]["id"] for r in receiver.received()}
    assert received == renewals
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert deliveries.count() == 5
    assert {d.status for d in deliveries} == {WebhookDeliveryStatus.SUCCEEDED}
    # On the customers' clock: the event's time.
    assert {d.test_clock_id for d in deliveries} == {clock.pk}


def _endpoint_lookups_to_renew(account, count) -> int:
    from billing.services.test_clocks import create_test_clock
    from tests.webhooks.conftest import START

    clock = create_test_clock(account, frozen_time=START, name=f"crowd of {count}")
    _crowd(account, clock, count)
    with CaptureQueriesContext(connection) as queries:
        advance(clock, days=31, minutes=30)
    assert Invoice.objects.filter(
        test_clock=clock, billing_reason="subscription_cycle"
    ).count() == (count)
    return sum(1 for q in queries if "billing_webhookendpoint" in q["sql"])


def test_an_account_without_endpoints_costs_no_endpoint_query_per_subscription(
    account, other_account
):
    # The renewal batch reads the endpoints once (the hold and the outbox share the answer).
    few = _endpoint_lookups_to_renew(other_account, 2)
    many = _endpoint_lookups_to_renew(account, 8)
    assert many == few
