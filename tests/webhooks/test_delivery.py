"""Deliveries to real local receivers: the outbox, routing, signing, failures (SPEC R-EVT-2..4)."""

import json

import pytest
import stripe
from django.db import transaction

from billing import aftercommit
from billing.choices import JobStatus
from billing.models import DueJob, Event, WebhookAttempt, WebhookDelivery, WebhookDeliveryStatus
from billing.serializers import serialize_event
from billing.services import webhooks as webhook_services
from billing.services.customers import create_customer, update_customer
from billing.webhooks import delivery as sending
from billing.webhooks import routing
from tests import factories
from tests.webhooks.conftest import first_then_ok

# The receivers run in other threads, and on-commit work must run as it does in production.
pytestmark = pytest.mark.django_db(transaction=True)


def endpoint_for(account, url, *, events=("*",), livemode=False, **options):
    return webhook_services.create_webhook_endpoint(
        account, livemode=livemode, url=url, enabled_events=list(events), **options
    )


def test_an_event_is_posted_signed_so_that_stripe_construct_event_verifies_it(account, receiver):
    # SPEC R-EVT-2
    endpoint = endpoint_for(account, receiver.url)
    customer = create_customer(account, livemode=False, email="jenny@example.com")
    [request] = receiver.received()
    event = stripe.Webhook.construct_event(
        request["body"].decode(), request["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert request["headers"]["User-Agent"] == "Relance/1.0 (+webhooks)"


def test_the_body_is_the_event_as_the_api_renders_it(account, receiver):
    # SPEC R-EVT-1, R-EVT-2: the same serializer as GET /v1/events/{id}.
    endpoint_for(account, receiver.url)
    create_customer(account, livemode=False, email="jenny@example.com")
    [request] = receiver.received()
    event = Event.objects.select_related("account").get(pk=request["json"]["id"])
    expected = serialize_event(event)
    # Only the count of deliveries still to succeed moved since.
    assert request["json"] == {**expected, "pending_webhooks": 1}
    assert event.pending_webhooks == 0


def test_standard_webhooks_headers_come_with_the_stripe_signature(account, receiver):
    endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    headers = receiver.received()[0]["headers"]
    assert headers["webhook-id"].startswith("evt_")
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-timestamp"].isdigit()


def test_a_delivery_succeeds_and_records_its_attempt(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert (delivery.attempt_count, delivery.last_status_code) == (1, 200)
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 200
    assert attempt.response_excerpt == '{"received": true}'
    assert attempt.error == ""
    # Nothing is left to do for it on the timeline.
    assert not DueJob.objects.filter(target_id=delivery.pk, status=JobStatus.PENDING).exists()


def test_deliveries_are_written_in_the_event_transaction(account, receiver):
    # The outbox: a rolled-back change leaves no delivery, and no request is made before commit.
    endpoint_for(account, receiver.url)
    with pytest.raises(RuntimeError), transaction.atomic():
        create_customer(account, livemode=False)
        assert WebhookDelivery.objects.count() == 1
        assert DueJob.objects.filter(kind=routing.JOB_KIND).count() == 1
        assert receiver.received() == []
        raise RuntimeError("roll back")
    assert WebhookDelivery.objects.count() == 0
    assert DueJob.objects.filter(kind=routing.JOB_KIND).count() == 0
    assert receiver.received() == []


def test_one_task_sends_every_delivery_of_a_transaction(account, receiver, monkeypatch):
    endpoint_for(account, receiver.url)
    started = []
    real = aftercommit._Collected.__call__

    def record(collected):
        if collected.task == "billing.tasks.deliver_webhooks":
            started.append(list(collected.ids))
        return real(collected)

    monkeypatch.setattr(aftercommit._Collected, "__call__", record)
    with transaction.atomic():
        customer = create_customer(account, livemode=False)
        update_customer(customer, name="Jenny")
    assert [len(ids) for ids in started] == [2]
    assert len(receiver.received()) == 2


def test_only_endpoints_listening_to_the_type_receive_it(account, receivers):
    customers = receivers()
    invoices = receivers()
    endpoint_for(account, customers.url, events=["customer.created"])
    endpoint_for(account, invoices.url, events=["invoice.paid"])
    create_customer(account, livemode=False)
    assert len(customers.received()) == 1
    assert invoices.received() == []


def test_endpoints_of_another_account_or_mode_receive_nothing(
    account, other_account, receivers, settings
):
    # SPEC R-CORE-3
    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = True
    other = receivers()
    live = receivers()
    endpoint_for(other_account, other.url)
    endpoint_for(account, live.url, livemode=True)
    create_customer(account, livemode=False)
    assert other.received() == [] and live.received() == []


def test_a_disabled_endpoint_gets_nothing(account, receiver):
    endpoint_for(account, receiver.url, disabled=True)
    create_customer(account, livemode=False)
    assert receiver.received() == []
    assert WebhookDelivery.objects.count() == 0


def test_pending_deliveries_of_an_endpoint_disabled_since_are_not_sent(account, failing):
    endpoint = endpoint_for(account, failing.url)
    create_customer(account, livemode=False)
    webhook_services.update_webhook_endpoint(endpoint, disabled=True)
    delivery = WebhookDelivery.objects.get()
    job = DueJob.objects.get(target_id=delivery.pk, status=JobStatus.PENDING)
    from billing import timeline

    timeline.run(job.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED
    assert delivery.last_error == "endpoint disabled"
    assert len(failing.received()) == 1  # the first attempt, before it was disabled


def test_a_connect_endpoint_receives_connected_accounts_events_with_account(account, receivers):
    # SPEC R-EVT-4
    platform_hooks = receivers()
    own_hooks = receivers()
    endpoint = endpoint_for(account, platform_hooks.url, connect=True)
    connected = factories.make_connected_account(account, name="Shop")
    endpoint_for(connected, own_hooks.url)
    create_customer(connected, livemode=False)
    create_customer(account, livemode=False)  # the platform's own: not for Connect endpoints
    [request] = platform_hooks.received()
    event = stripe.Webhook.construct_event(
        request["body"].decode(), request["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert event.account == connected.id
    assert [r["json"]["account"] for r in own_hooks.received()] == [connected.id]
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.account_id == account.id  # the platform's log


def test_a_failed_first_attempt_stays_pending_with_a_retry_job(account, failing):
    # SPEC R-EVT-3
    endpoint = endpoint_for(account, failing.url)
    create_customer(account, livemode=False)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDeliveryStatus.PENDING
    assert delivery.last_status_code == 500
    assert delivery.last_error == "HTTP 500"
    job = DueJob.objects.get(target_id=delivery.pk, status=JobStatus.PENDING)
    assert job.due_at == delivery.next_attempt_at
    assert delivery.attempts.get().response_excerpt == "boom"


@pytest.mark.parametrize("fate", ["timeout", "reset"])
def test_a_receiver_that_times_out_or_resets_is_retried_until_it_answers(
    account, clock, receivers, fate
):
    # SPEC R-EVT-3: the attempt records the error, the retry gets through.
    from tests.webhooks.conftest import advance_to

    receiver = receivers(first_then_ok(fate))
    endpoint_for(account, receiver.url, events=["customer.created"])
    create_customer(account, livemode=False, test_clock=clock)
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDeliveryStatus.PENDING
    first = delivery.attempts.get()
    assert first.status_code is None
    assert ("timed out" in first.error) if fate == "timeout" else first.error
    advance_to(clock, delivery.next_attempt_at)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert delivery.attempt_count == 2
    assert len(receiver.received("ok")) == 1


def test_two_claims_never_hold_the_same_delivery(account, failing):
    endpoint_for(account, failing.url)
    create_customer(account, livemode=False)
    delivery = WebhookDelivery.objects.get()
    with transaction.atomic():
        first = sending.claim([delivery.pk])
    with transaction.atomic():
        second = sending.claim([delivery.pk])
    assert [d.pk for d in first] == [delivery.pk]
    assert second == []


def test_redirects_are_not_followed(account, receivers):
    # A 3xx is not a 2xx: the delivery fails and is retried, and the Location is not visited.
    redirecting = receivers(lambda n: "fail")
    endpoint = endpoint_for(account, redirecting.url)
    assert sending.client().follow_redirects is False
    create_customer(account, livemode=False)
    assert WebhookDelivery.objects.get(endpoint=endpoint).status == WebhookDeliveryStatus.PENDING


def test_live_mode_delivery_to_a_private_address_is_refused(account, receiver, settings):
    # The URL was accepted while private hosts were allowed; the delivery checks again.
    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = endpoint_for(account, receiver.url, livemode=True)
    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = False
    create_customer(account, livemode=True)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == WebhookDeliveryStatus.PENDING
    assert "private, loopback or link-local" in delivery.last_error
    assert receiver.received() == []


def test_live_mode_delivery_connects_to_the_address_it_checked(
    account, receiver, settings, monkeypatch
):
    # The checked address is the one connected to (no second DNS answer), under the host's name.
    from billing.services import webhooks as services

    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = True
    url = receiver.url.replace("127.0.0.1", "hooks.acme.test")
    endpoint = endpoint_for(account, url, livemode=True)
    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = False
    monkeypatch.setattr(services, "resolve_host", lambda host, port: ["127.0.0.1"])
    monkeypatch.setattr(services, "is_public_address", lambda address: True)
    create_customer(account, livemode=True)
    [request] = receiver.received()
    assert request["headers"]["Host"].startswith("hooks.acme.test:")
    stripe.Webhook.construct_event(
        request["body"].decode(), request["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert WebhookDelivery.objects.get().status == WebhookDeliveryStatus.SUCCEEDED


def test_a_long_response_is_kept_only_as_an_excerpt(account, monkeypatch, receiver):
    endpoint_for(account, receiver.url)
    outcome = sending.Outcome(status_code=200, excerpt="x" * sending.RESPONSE_EXCERPT_BYTES)
    monkeypatch.setattr(sending, "post", lambda endpoint, body, message_id: outcome)
    create_customer(account, livemode=False)
    attempt = WebhookAttempt.objects.get()
    assert len(attempt.response_excerpt) == sending.RESPONSE_EXCERPT_BYTES


def test_render_matches_the_api_json(account, receiver):
    endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    event = Event.objects.select_related("account").get()
    assert json.loads(sending.render(event)) == serialize_event(event)
