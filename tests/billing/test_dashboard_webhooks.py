"""Webhooks pages: endpoints with success rates, deliveries with filters, attempts, resend,
bulk replay, test events, secret roll, and who may do what (SPEC R-EVT-2, R-EVT-3)."""

import html
from datetime import timedelta

import pytest
import stripe
from django.urls import reverse
from django.utils import timezone

from billing.choices import Role
from billing.models import Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.services import webhooks as webhook_services
from tests import factories
from tests.receiver import running_receiver


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


@pytest.fixture
def endpoint(account):
    return webhook_services.create_webhook_endpoint(
        account,
        livemode=False,
        url="https://hooks.acme.test/relance",
        enabled_events=["invoice.paid", "invoice.payment_failed"],
        description="Accounting sync",
    )


def delivery(endpoint, *, status="succeeded", type="invoice.paid", code=200, at=None, **kwargs):
    """A delivery row of `endpoint` for a new event of `type`, as the worker leaves it."""
    event = factories.make_event(endpoint.account, type=type)
    return WebhookDelivery.objects.create(
        account=endpoint.account,
        livemode=endpoint.livemode,
        event=event,
        endpoint=endpoint,
        status=status,
        attempt_count=kwargs.pop("attempts", 1),
        last_status_code=code,
        created=at or timezone.now(),
        **kwargs,
    )


def endpoint_form(**overrides):
    data = {
        "url": "https://hooks.acme.test/new",
        "description": "CRM",
        "enabled_events": ["customer.subscription.deleted", "invoice.paid"],
        "retry_schedule": "",
    }
    data.update(overrides)
    return data


def text(response) -> str:
    return html.unescape(response.content.decode())


# -- Endpoints ---------------------------------------------------------------------------------


def test_owner_adds_an_endpoint_and_its_page_shows_the_signing_secret(member_client, account):
    response = member_client.post(reverse("dashboard:webhooks"), endpoint_form())
    endpoint = WebhookEndpoint.objects.get(account=account)
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:webhook_detail", args=[endpoint.pk])
    assert endpoint.url == "https://hooks.acme.test/new"
    assert endpoint.enabled_events == ["customer.subscription.deleted", "invoice.paid"]
    assert endpoint.livemode is False
    page = text(member_client.get(response["Location"]))
    assert endpoint.secret in page
    assert "customer.subscription.deleted" in page


def test_send_every_event_stores_the_wildcard(member_client, account):
    member_client.post(
        reverse("dashboard:webhooks"), endpoint_form(all_events="on", enabled_events=[])
    )
    assert WebhookEndpoint.objects.get(account=account).enabled_events == ["*"]


def test_an_invalid_url_is_refused_naming_the_field_and_nothing_is_saved(member_client, account):
    response = member_client.post(reverse("dashboard:webhooks"), endpoint_form(url="ftp://x"))
    assert response.status_code == 400
    assert 'id="error-url"' in response.content.decode()
    assert not WebhookEndpoint.objects.filter(account=account).exists()


def test_an_endpoint_without_events_is_refused_naming_the_field(member_client, account):
    response = member_client.post(reverse("dashboard:webhooks"), endpoint_form(enabled_events=[]))
    assert response.status_code == 400
    assert "Events to send: Choose at least one event" in text(response)
    assert not WebhookEndpoint.objects.filter(account=account).exists()


def test_a_retry_schedule_is_typed_in_durations(member_client, account, endpoint):
    response = member_client.post(
        reverse("dashboard:webhook_edit", args=[endpoint.pk]),
        endpoint_form(url=endpoint.url, retry_schedule="30s, 5m, 2h, 1d"),
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.retry_schedule == [30, 300, 7200, 86400]
    assert endpoint.enabled_events == ["customer.subscription.deleted", "invoice.paid"]
    page = text(member_client.get(reverse("dashboard:webhook_edit", args=[endpoint.pk])))
    assert 'value="30s, 5m, 2h, 1d"' in page


def test_a_malformed_retry_schedule_names_the_field(member_client, endpoint):
    response = member_client.post(
        reverse("dashboard:webhook_edit", args=[endpoint.pk]),
        endpoint_form(url=endpoint.url, retry_schedule="5 minutes"),
    )
    assert response.status_code == 400
    assert "Retry schedule: “5 minutes” is not a wait time" in text(response)
    endpoint.refresh_from_db()
    assert endpoint.retry_schedule == []


def test_disabling_and_enabling_an_endpoint(member_client, endpoint):
    url = reverse("dashboard:webhook_action", args=[endpoint.pk, "disable"])
    assert member_client.post(url).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.status == "disabled"
    member_client.post(reverse("dashboard:webhook_action", args=[endpoint.pk, "enable"]))
    endpoint.refresh_from_db()
    assert endpoint.status == "enabled"


def test_deleting_an_endpoint_asks_first_then_removes_it_with_its_deliveries(
    member_client, endpoint
):
    delivery(endpoint)
    url = reverse("dashboard:webhook_delete", args=[endpoint.pk])
    confirm = text(member_client.get(url))
    assert "history of 1 delivery is deleted" in confirm
    assert member_client.post(url)["Location"] == reverse("dashboard:webhooks")
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not WebhookDelivery.objects.exists()


def test_rolling_the_secret_keeps_the_old_one_signing_for_the_overlap(member_client, endpoint):
    old = endpoint.secret
    response = member_client.post(
        reverse("dashboard:webhook_action", args=[endpoint.pk, "roll-secret"]),
        {"roll-overlap_hours": "24"},
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.secret_previous == old
    assert endpoint.signing_secrets(timezone.now()) == [endpoint.secret, old]
    page = text(member_client.get(reverse("dashboard:webhook_detail", args=[endpoint.pk])))
    assert "The previous secret also signs until" in page


def test_sending_a_test_event_delivers_a_signed_event(
    member_client, account, receiver, django_capture_on_commit_callbacks
):
    endpoint = webhook_services.create_webhook_endpoint(
        account, livemode=False, url=receiver.url, enabled_events=["invoice.paid"]
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("dashboard:webhook_action", args=[endpoint.pk, "test"])
        )
    assert response.status_code == 302
    ((body, signature),) = receiver.received
    event = stripe.Webhook.construct_event(body.decode(), signature, endpoint.secret)
    assert event["type"] == "invoice.paid"
    sent = WebhookDelivery.objects.get(endpoint=endpoint)
    assert sent.status == "succeeded"


# -- The list and its success rates ----------------------------------------------------------


def test_the_list_shows_each_endpoints_success_rate_over_the_last_week(member_client, endpoint):
    for _ in range(3):
        delivery(endpoint, status="succeeded")
    delivery(endpoint, status="failed", code=500)
    delivery(endpoint, status="pending", code=None)
    delivery(endpoint, status="failed", at=timezone.now() - timedelta(days=8))  # too old
    page = text(member_client.get(reverse("dashboard:webhooks")))
    assert "75%" in page
    assert "3 of 4, 1 pending" in page


def test_an_endpoint_without_deliveries_says_so(member_client, endpoint):
    assert "No deliveries" in text(member_client.get(reverse("dashboard:webhooks")))


def test_the_list_costs_the_same_queries_for_one_or_many_endpoints(
    member_client, account, endpoint, django_assert_max_num_queries
):
    delivery(endpoint)
    member_client.get(reverse("dashboard:webhooks"))  # warm the session and membership
    for index in range(5):
        other = webhook_services.create_webhook_endpoint(
            account, livemode=False, url=f"https://hooks.acme.test/{index}", enabled_events=["*"]
        )
        delivery(other)
    with django_assert_max_num_queries(12):
        response = member_client.get(reverse("dashboard:webhooks"))
    assert text(response).count("100%") == 6


# -- Deliveries --------------------------------------------------------------------------------


def test_an_endpoints_deliveries_filter_by_status_and_event_type(member_client, endpoint):
    paid = delivery(endpoint, status="succeeded", type="invoice.paid")
    failed = delivery(endpoint, status="failed", type="invoice.payment_failed", code=503)
    url = reverse("dashboard:webhook_detail", args=[endpoint.pk])
    page = member_client.get(url, {"status": "failed"}).content.decode()
    assert failed.pk in page and paid.pk not in page
    page = member_client.get(url, {"event_type": "invoice.p*"}).content.decode()
    assert failed.pk in page and paid.pk in page
    page = member_client.get(url, {"event_type": "invoice.paid"}).content.decode()
    assert paid.pk in page and failed.pk not in page


def test_filtering_deliveries_with_htmx_swaps_only_the_table(member_client, endpoint):
    delivery(endpoint)
    response = member_client.get(
        reverse("dashboard:webhook_detail", args=[endpoint.pk]),
        {"status": "succeeded"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="deliveries",
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="deliveries"')
    assert "<html" not in body


def test_a_delivery_page_shows_every_attempt(member_client, endpoint):
    sent = delivery(endpoint, status="succeeded", attempts=2)
    WebhookAttempt.objects.create(
        delivery=sent, number=1, status_code=None, error="Connection refused", duration_ms=3
    )
    WebhookAttempt.objects.create(
        delivery=sent, number=2, status_code=200, response_excerpt='{"received": true}'
    )
    page = text(member_client.get(reverse("dashboard:webhook_delivery", args=[sent.pk])))
    assert "Attempt 1" in page and "Connection refused" in page
    assert "Attempt 2" in page and '{"received": true}' in page


def test_resend_sends_a_delivery_again_and_records_the_attempt(
    member_client, account, receiver, django_capture_on_commit_callbacks
):
    endpoint = webhook_services.create_webhook_endpoint(
        account, livemode=False, url=receiver.url, enabled_events=["*"]
    )
    failed = delivery(endpoint, status="failed", code=500, attempts=3)
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("dashboard:webhook_delivery_resend", args=[failed.pk])
        )
    assert response["Location"] == reverse("dashboard:webhook_delivery", args=[failed.pk])
    failed.refresh_from_db()
    assert failed.status == "succeeded"
    assert len(receiver.received) == 1
    attempt = WebhookAttempt.objects.get(delivery=failed)
    assert (attempt.status_code, attempt.manual) == (200, True)


def test_resending_to_a_disabled_endpoint_explains_why_nothing_happened(member_client, endpoint):
    failed = delivery(endpoint, status="failed", code=500)
    webhook_services.update_webhook_endpoint(endpoint, disabled=True)
    response = member_client.post(
        reverse("dashboard:webhook_delivery_resend", args=[failed.pk]), follow=True
    )
    assert "enable it to resend" in text(response)
    assert not WebhookAttempt.objects.exists()


def test_bulk_replay_sends_the_failed_deliveries_of_the_range_again(
    member_client, account, receiver, django_capture_on_commit_callbacks
):
    endpoint = webhook_services.create_webhook_endpoint(
        account, livemode=False, url=receiver.url, enabled_events=["*"]
    )
    now = timezone.now()
    in_range = [
        delivery(endpoint, status="failed", code=500, at=now - timedelta(hours=h)) for h in (1, 2)
    ]
    delivery(endpoint, status="succeeded", at=now - timedelta(hours=3))
    delivery(endpoint, status="failed", code=500, at=now - timedelta(days=3))  # before the range
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("dashboard:webhook_action", args=[endpoint.pk, "replay"]),
            {
                "replay-since": timezone.localtime(now - timedelta(days=1)).strftime(
                    "%Y-%m-%dT%H:%M"
                ),
                "replay-until": timezone.localtime(now + timedelta(minutes=1)).strftime(
                    "%Y-%m-%dT%H:%M"
                ),
                "replay-which": "failed",
            },
            follow=True,
        )
    assert "2 deliveries queued to be sent again" in text(response)
    assert len(receiver.received) == 2
    for replayed in in_range:
        replayed.refresh_from_db()
        assert replayed.status == "succeeded"


def test_a_replay_range_that_ends_before_it_starts_names_the_field(member_client, endpoint):
    response = member_client.post(
        reverse("dashboard:webhook_action", args=[endpoint.pk, "replay"]),
        {
            "replay-since": "2026-05-02T00:00",
            "replay-until": "2026-05-01T00:00",
            "replay-which": "all",
        },
    )
    assert response.status_code == 400
    assert "To: Must be after “From”." in text(response)


def test_an_events_page_lists_its_deliveries(member_client, endpoint):
    sent = delivery(endpoint, status="failed", code=502)
    page = text(member_client.get(reverse("dashboard:event_detail", args=[sent.event_id])))
    assert endpoint.url in page
    assert reverse("dashboard:webhook_delivery", args=[sent.pk]) in page
    assert "502" in page


# -- Who may do what -------------------------------------------------------------------------


def test_read_only_members_see_endpoints_but_not_secrets_nor_forms(read_only_client, endpoint):
    page = text(read_only_client.get(reverse("dashboard:webhook_detail", args=[endpoint.pk])))
    assert endpoint.url in page
    assert endpoint.secret not in page
    assert "Roll secret" not in page and "Send again" not in page
    assert read_only_client.post(reverse("dashboard:webhooks"), endpoint_form()).status_code == 403
    action = reverse("dashboard:webhook_action", args=[endpoint.pk, "disable"])
    assert read_only_client.post(action).status_code == 403


def test_support_staff_may_resend_and_replay_but_not_manage_endpoints(client, account, endpoint):
    user = factories.make_member(account, email="support@acme.test", role=Role.SUPPORT)
    client.force_login(user)
    page = text(client.get(reverse("dashboard:webhook_detail", args=[endpoint.pk])))
    assert "Send again" in page
    assert endpoint.secret not in page
    assert client.get(reverse("dashboard:webhook_edit", args=[endpoint.pk])).status_code == 403


def test_another_accounts_endpoints_and_deliveries_are_not_found(member_client, other_account):
    theirs = webhook_services.create_webhook_endpoint(
        other_account, livemode=False, url="https://globex.test/hooks", enabled_events=["*"]
    )
    sent = delivery(theirs)
    assert (
        member_client.get(reverse("dashboard:webhook_detail", args=[theirs.pk])).status_code == 404
    )
    assert (
        member_client.get(reverse("dashboard:webhook_delivery", args=[sent.pk])).status_code == 404
    )
    resend = reverse("dashboard:webhook_delivery_resend", args=[sent.pk])
    assert member_client.post(resend).status_code == 404
    assert theirs.url not in text(member_client.get(reverse("dashboard:webhooks")))


def test_live_endpoints_stay_out_of_test_mode(member_client, account):
    live = WebhookEndpoint.objects.create(
        account=account, livemode=True, url="https://live.acme.test/hooks", enabled_events=["*"]
    )
    assert live.url not in text(member_client.get(reverse("dashboard:webhooks")))
    assert member_client.get(reverse("dashboard:webhook_detail", args=[live.pk])).status_code == 404


def test_the_event_page_hides_deliveries_to_other_accounts_endpoints(member_client, account):
    platform_endpoint = WebhookEndpoint.objects.create(
        account=factories.make_account("Platform"),
        livemode=False,
        url="https://platform.test/connect",
        enabled_events=["*"],
        connect=True,
    )
    event = factories.make_event(account, type="invoice.paid")
    WebhookDelivery.objects.create(
        account=platform_endpoint.account, event=event, endpoint=platform_endpoint
    )
    page = text(member_client.get(reverse("dashboard:event_detail", args=[event.pk])))
    assert "platform.test" not in page
    assert Event.objects.filter(pk=event.pk).exists()
