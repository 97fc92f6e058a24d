"""Resend, bulk replay, test events and secret rolls (the dashboard's and admin's verbs)."""

from datetime import timedelta

import pytest
import stripe
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from billing.models import Event, WebhookDelivery, WebhookDeliveryStatus
from billing.services import webhooks as webhook_services
from billing.services.customers import create_customer
from tests.webhooks.conftest import START

pytestmark = pytest.mark.django_db(transaction=True)


def endpoint_for(account, url, **options):
    return webhook_services.create_webhook_endpoint(
        account, livemode=False, url=url, enabled_events=["customer.created"], **options
    )


def _failed_deliveries(account, endpoint, count):
    for n in range(count):
        create_customer(account, livemode=False, email=f"c{n}@example.com")
    WebhookDelivery.objects.filter(endpoint=endpoint).update(status=WebhookDeliveryStatus.FAILED)


def test_resend_makes_a_new_attempt_even_for_a_failed_delivery(account, receivers):
    receiver = receivers(lambda n: "fail" if n == 0 else "ok")
    endpoint = endpoint_for(account, receiver.url)
    _failed_deliveries(account, endpoint, 1)
    delivery = WebhookDelivery.objects.get()
    webhook_services.resend_delivery(delivery)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert delivery.attempt_count == 2
    assert delivery.attempts.filter(manual=True).count() == 1
    assert delivery.event.pending_webhooks == 0


def test_resend_of_a_succeeded_delivery_sends_it_again(account, receiver):
    endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    webhook_services.resend_delivery(WebhookDelivery.objects.get())
    assert len(receiver.received()) == 2
    assert WebhookDelivery.objects.get().status == WebhookDeliveryStatus.SUCCEEDED


def test_resend_to_a_disabled_endpoint_is_refused(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    webhook_services.update_webhook_endpoint(endpoint, disabled=True)
    with pytest.raises(ValidationError):
        webhook_services.resend_delivery(WebhookDelivery.objects.get())


def test_replay_sends_the_failed_deliveries_of_a_time_range(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    _failed_deliveries(account, endpoint, 3)
    older = WebhookDelivery.objects.order_by("created", "id").first()
    WebhookDelivery.objects.filter(pk=older.pk).update(created=START)
    before = len(receiver.received())
    count = webhook_services.replay_deliveries(
        endpoint, since=START + timedelta(days=1), until=timezone.now() + timedelta(minutes=1)
    )
    assert count == 2
    assert len(receiver.received()) == before + 2
    statuses = dict(WebhookDelivery.objects.values_list("pk", "status"))
    assert statuses.pop(older.pk) == WebhookDeliveryStatus.FAILED
    assert set(statuses.values()) == {WebhookDeliveryStatus.SUCCEEDED}


def test_replay_of_all_deliveries_includes_succeeded_ones(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    assert webhook_services.replay_deliveries(endpoint, failed_only=True) == 0
    assert webhook_services.replay_deliveries(endpoint, failed_only=False) == 1
    assert len(receiver.received()) == 2


def test_a_test_event_reaches_only_that_endpoint(account, receivers):
    target = receivers()
    other = receivers()
    endpoint = endpoint_for(account, target.url)
    endpoint_for(account, other.url)
    delivery = webhook_services.send_test_event(endpoint)
    [request] = target.received()
    event = stripe.Webhook.construct_event(
        request["body"].decode(), request["headers"]["Stripe-Signature"], endpoint.secret
    )
    assert event.type == "customer.created"
    assert event.data.object.metadata.relance_test_event == "true"
    assert other.received() == []
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED


def test_during_a_roll_overlap_both_secrets_verify(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    old_secret = endpoint.secret
    rolled = webhook_services.roll_endpoint_secret(endpoint, overlap_hours=2)
    assert rolled.secret != old_secret
    create_customer(account, livemode=False)
    [request] = receiver.received()
    header = request["headers"]["Stripe-Signature"]
    assert header.count("v1=") == 2
    for secret in (old_secret, rolled.secret):
        stripe.Webhook.construct_event(request["body"].decode(), header, secret)


def test_after_the_overlap_only_the_new_secret_signs(account, receiver, time_machine):
    endpoint = endpoint_for(account, receiver.url)
    old_secret = endpoint.secret
    rolled = webhook_services.roll_endpoint_secret(endpoint, overlap_hours=1)
    time_machine.move_to(timezone.now() + timedelta(hours=2))
    create_customer(account, livemode=False)
    [request] = receiver.received()
    header = request["headers"]["Stripe-Signature"]
    assert header.count("v1=") == 1
    body = request["body"].decode()
    # The signature's timestamp is the (travelled) wall time: verify against it.
    stripe.Webhook.construct_event(body, header, rolled.secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, header, old_secret)


def test_a_roll_without_overlap_drops_the_old_secret_at_once(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    rolled = webhook_services.roll_endpoint_secret(endpoint)
    assert (rolled.secret_previous, rolled.secret_previous_expires_at) == ("", None)


def test_a_roll_overlap_longer_than_a_day_is_refused(account, receiver):
    endpoint = endpoint_for(account, receiver.url)
    with pytest.raises(ValidationError):
        webhook_services.roll_endpoint_secret(endpoint, overlap_hours=25)


def test_a_custom_retry_schedule_is_checked(account, receiver):
    with pytest.raises(ValidationError):
        endpoint_for(account, receiver.url, retry_schedule=[0])
    endpoint = endpoint_for(account, receiver.url, retry_schedule=[60, 120])
    assert endpoint.retry_schedule == [60, 120]


def test_the_admin_resend_action_queues_a_new_attempt(admin_client, account, receiver):
    endpoint_for(account, receiver.url)
    create_customer(account, livemode=False)
    delivery = WebhookDelivery.objects.get()
    url = reverse("admin:billing_webhookdelivery_changelist")
    response = admin_client.post(
        url, {"action": "resend", "_selected_action": [delivery.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "queued for a new attempt" in response.text
    assert len(receiver.received()) == 2
    page = admin_client.get(
        reverse("admin:billing_webhookdelivery_change", args=[quote(delivery.pk)])
    )
    assert page.status_code == 200
    assert Event.objects.get().id in page.text
