"""Webhook endpoints through the official `stripe` SDK, and their edge cases over raw HTTP."""

import threading

import pytest
import stripe
from django.contrib.admin.utils import quote
from django.urls import reverse

from billing.models import Event, WebhookEndpoint
from billing.services import webhooks
from tests import factories

# The server runs in another thread: its connection must see committed data.
pytestmark = pytest.mark.django_db(transaction=True)

HOOK = "https://hooks.example.com/stripe"


@pytest.fixture
def public_dns(monkeypatch):
    """Every host name resolves to a public address (no network needed); IP literals stay."""
    real = webhooks.resolve_host

    def resolve(host, port):
        if host.replace(".", "").isdigit() or ":" in host:
            return real(host, port)
        return ["93.184.215.14"]

    monkeypatch.setattr(webhooks, "resolve_host", resolve)


@pytest.fixture
def live_sdk(sdk_for, live_key, public_dns):
    return sdk_for(live_key.raw)


def test_create_returns_the_secret_and_the_stripe_shape(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(
        params={
            "url": HOOK,
            "enabled_events": ["invoice.paid", "customer.subscription.deleted"],
            "description": "Production hooks",
            "metadata": {"team": "billing"},
            "api_version": "2025-03-31.basil",
        }
    )
    assert endpoint.id.startswith("we_")
    assert endpoint.object == "webhook_endpoint"
    assert endpoint.secret.startswith("whsec_") and len(endpoint.secret) == 6 + 32
    assert endpoint.url == HOOK
    assert endpoint.enabled_events == ["invoice.paid", "customer.subscription.deleted"]
    assert endpoint.status == "enabled"
    assert endpoint.description == "Production hooks"
    assert endpoint.metadata.to_dict() == {"team": "billing"}
    assert endpoint.api_version == "2025-03-31.basil"
    assert endpoint.application is None
    assert endpoint.livemode is False
    assert isinstance(endpoint.created, int)
    assert WebhookEndpoint.objects.get(pk=endpoint.id).secret == endpoint.secret


def test_the_secret_is_shown_only_at_creation(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(params={"url": HOOK, "enabled_events": ["*"]})
    fetched = sdk.v1.webhook_endpoints.retrieve(endpoint.id)
    updated = sdk.v1.webhook_endpoints.update(endpoint.id, params={"description": "x"})
    [listed] = sdk.v1.webhook_endpoints.list().data
    for seen in (fetched, updated, listed):
        assert "secret" not in seen
        assert seen.id == endpoint.id


def test_update_changes_url_events_status_and_merges_metadata(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(
        params={"url": HOOK, "enabled_events": ["*"], "metadata": {"a": "1", "b": "2"}}
    )
    updated = sdk.v1.webhook_endpoints.update(
        endpoint.id,
        params={
            "url": "https://hooks.example.com/v2",
            "enabled_events": ["invoice.created", "invoice.created", "invoice.paid"],
            "disabled": True,
            "metadata": {"a": "", "c": "3"},
            "description": "",
        },
    )
    assert updated.url == "https://hooks.example.com/v2"
    assert updated.enabled_events == ["invoice.created", "invoice.paid"]  # duplicates dropped
    assert updated.status == "disabled"
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}
    assert updated.description is None
    assert sdk.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False}).status == (
        "enabled"
    )


def test_delete_removes_the_endpoint(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(params={"url": HOOK, "enabled_events": ["*"]})
    gone = sdk.v1.webhook_endpoints.delete(endpoint.id)
    assert (gone.id, gone.object, gone.deleted) == (endpoint.id, "webhook_endpoint", True)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.webhook_endpoints.retrieve(endpoint.id)
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"


def test_list_pages_newest_first(sdk):
    made = [
        sdk.v1.webhook_endpoints.create(
            params={"url": f"{HOOK}/{i}", "enabled_events": ["invoice.paid"]}
        ).id
        for i in range(3)
    ]
    first = sdk.v1.webhook_endpoints.list(params={"limit": 2})
    assert [e.id for e in first.data] == made[:0:-1]
    assert first.has_more is True
    second = sdk.v1.webhook_endpoints.list(params={"limit": 2, "starting_after": made[1]})
    assert [e.id for e in second.data] == [made[0]]
    assert second.has_more is False


def test_endpoints_emit_no_events(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(params={"url": HOOK, "enabled_events": ["*"]})
    sdk.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    sdk.v1.webhook_endpoints.delete(endpoint.id)
    assert not Event.objects.exists()


def test_connect_flag_is_stored(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(
        params={"url": HOOK, "enabled_events": ["*"], "connect": True}
    )
    assert WebhookEndpoint.objects.get(pk=endpoint.id).connect is True


# --- refusals ---------------------------------------------------------------------------------


def test_an_unknown_event_type_names_enabled_events(sdk):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.webhook_endpoints.create(
            params={"url": HOOK, "enabled_events": ["invoice.paid", "charge.teleported"]}
        )
    assert raised.value.http_status == 400
    assert raised.value.param == "enabled_events"
    assert "charge.teleported" in raised.value.user_message
    assert not WebhookEndpoint.objects.exists()


def test_an_update_to_an_unknown_event_type_changes_nothing(sdk):
    endpoint = sdk.v1.webhook_endpoints.create(params={"url": HOOK, "enabled_events": ["*"]})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.webhook_endpoints.update(
            endpoint.id, params={"enabled_events": ["nope"], "description": "changed"}
        )
    assert raised.value.param == "enabled_events"
    stored = WebhookEndpoint.objects.get(pk=endpoint.id)
    assert (stored.enabled_events, stored.description) == (["*"], "")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"enabled_events[]": "*"}, "url"),
        ({"url": HOOK}, "enabled_events"),
        ({"url": HOOK, "enabled_events": ""}, "enabled_events"),
        ({"url": "ftp://hooks.example.com/", "enabled_events[]": "*"}, "url"),
        ({"url": "https:///nohost", "enabled_events[]": "*"}, "url"),
        ({"url": "https://hooks.example.com:99999/", "enabled_events[]": "*"}, "url"),
        ({"url": "https://hooks.example.com/a b", "enabled_events[]": "*"}, "url"),
        ({"url": HOOK, "enabled_events[]": "*", "api_version": "yesterday"}, "api_version"),
        ({"url": HOOK, "enabled_events[]": "*", "connect": "maybe"}, "connect"),
        ({"url": HOOK, "enabled_events[]": "*", "secret": "whsec_mine"}, "secret"),
        ({"url": HOOK, "enabled_events[0][type]": "*"}, "enabled_events[0]"),
    ],
)
def test_bad_create_parameters_are_400_naming_the_param(api, body, param):
    response = api.post("/v1/webhook_endpoints", body)
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == param
    assert not WebhookEndpoint.objects.exists()


def test_a_test_mode_endpoint_may_point_at_localhost(api):
    response = api.post(
        "/v1/webhook_endpoints",
        {"url": "http://localhost:8000/hooks", "enabled_events[]": "*"},
    )
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://0.0.0.0/hooks",
    ],
)
def test_a_live_endpoint_may_not_point_at_a_private_address(live_api, url):
    response = live_api.post("/v1/webhook_endpoints", {"url": url, "enabled_events[]": "*"})
    assert response.status_code == 400, response.json()
    assert response.json()["error"]["param"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_a_live_host_name_is_checked_after_dns_resolution(live_api, monkeypatch):
    monkeypatch.setattr(webhooks, "resolve_host", lambda host, port: ["8.8.8.8", "10.0.0.7"])
    response = live_api.post("/v1/webhook_endpoints", {"url": HOOK, "enabled_events[]": "*"})
    assert response.status_code == 400
    assert "private" in response.json()["error"]["message"]


def test_a_live_host_that_does_not_resolve_is_refused(live_api, monkeypatch):
    def fail(host, port):
        raise OSError("no such host")

    monkeypatch.setattr(webhooks, "resolve_host", fail)
    response = live_api.post("/v1/webhook_endpoints", {"url": HOOK, "enabled_events[]": "*"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "url"


def test_a_live_update_to_a_private_address_is_refused(live_sdk):
    endpoint = live_sdk.v1.webhook_endpoints.create(params={"url": HOOK, "enabled_events": ["*"]})
    assert endpoint.livemode is True
    with pytest.raises(stripe.InvalidRequestError) as raised:
        live_sdk.v1.webhook_endpoints.update(endpoint.id, params={"url": "http://127.0.0.1/x"})
    assert raised.value.param == "url"
    assert WebhookEndpoint.objects.get(pk=endpoint.id).url == HOOK


def test_the_setting_allows_private_live_endpoints(live_api, settings):
    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = True
    response = live_api.post(
        "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9000/", "enabled_events[]": "*"}
    )
    assert response.status_code == 200, response.json()
    assert response.json()["livemode"] is True


def test_a_connected_account_cannot_make_a_connect_endpoint(api, account):
    connected = factories.make_connected_account(account)
    response = api.post(
        "/v1/webhook_endpoints",
        {"url": HOOK, "enabled_events[]": "*", "connect": "true"},
        HTTP_STRIPE_ACCOUNT=connected.id,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "connect"


def test_an_account_has_at_most_sixteen_endpoints_per_mode(api, account):
    WebhookEndpoint.objects.bulk_create(
        WebhookEndpoint(account=account, url=f"{HOOK}/{i}", enabled_events=["*"])
        for i in range(webhooks.MAX_ENDPOINTS)
    )
    response = api.post("/v1/webhook_endpoints", {"url": HOOK, "enabled_events[]": "*"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_endpoint_limit"


# --- isolation --------------------------------------------------------------------------------


def test_test_and_live_endpoints_never_see_each_other(sdk, live_sdk):
    test_endpoint = sdk.v1.webhook_endpoints.create(params={"url": HOOK, "enabled_events": ["*"]})
    live_endpoint = live_sdk.v1.webhook_endpoints.create(
        params={"url": HOOK, "enabled_events": ["*"]}
    )
    assert [e.id for e in sdk.v1.webhook_endpoints.list().data] == [test_endpoint.id]
    assert [e.id for e in live_sdk.v1.webhook_endpoints.list().data] == [live_endpoint.id]
    for client, other in ((sdk, live_endpoint.id), (live_sdk, test_endpoint.id)):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.webhook_endpoints.retrieve(other)
        assert raised.value.http_status == 404
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.webhook_endpoints.delete(other)
    assert WebhookEndpoint.objects.count() == 2


def test_another_accounts_endpoint_does_not_exist(api, other_account):
    theirs = WebhookEndpoint.objects.create(account=other_account, url=HOOK, enabled_events=["*"])
    assert api.get(f"/v1/webhook_endpoints/{theirs.id}").status_code == 404
    assert api.post(f"/v1/webhook_endpoints/{theirs.id}", {"disabled": "true"}).status_code == 404
    assert api.get("/v1/webhook_endpoints").json()["data"] == []
    theirs.refresh_from_db()
    assert theirs.status == "enabled"


# --- the address check on its own -------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
    ],
)
def test_public_addresses_are_told_from_private_ones(address, public):
    assert webhooks.is_public_address(address) is public


# --- the support admin checks what the API checks ---------------------------------------------


def test_the_admin_refuses_a_private_live_url_and_an_unknown_event_type(admin_client, account):
    endpoint = WebhookEndpoint.objects.create(
        account=account, livemode=True, url=HOOK, enabled_events=["*"]
    )
    url = reverse("admin:billing_webhookendpoint_change", args=[quote(endpoint.pk)])
    response = admin_client.post(
        url,
        {
            "account": account.pk,
            "livemode": "on",
            "url": "http://10.0.0.1/hook",
            "enabled_events": '["invoice.teleported"]',
            "status": "enabled",
            "description": "",
            "api_version": "",
            "metadata": "{}",
        },
    )
    assert response.status_code == 200  # the form again, with its errors
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"url", "enabled_events"}
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.enabled_events) == (HOOK, ["*"])


def test_the_admin_saves_a_valid_change(admin_client, account):
    endpoint = WebhookEndpoint.objects.create(account=account, url=HOOK, enabled_events=["*"])
    secret = endpoint.secret
    url = reverse("admin:billing_webhookendpoint_change", args=[quote(endpoint.pk)])
    response = admin_client.post(
        url,
        {
            "account": account.pk,
            "url": "http://localhost:8000/hooks",
            "enabled_events": '["invoice.paid", "invoice.paid"]',
            "status": "disabled",
            "description": "local",
            "api_version": "",
            "metadata": "{}",
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.url == "http://localhost:8000/hooks"
    assert endpoint.enabled_events == ["invoice.paid"]
    assert (endpoint.status, endpoint.secret) == ("disabled", secret)


def test_a_resolver_that_does_not_answer_in_time_is_given_up_on(monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(webhooks, "RESOLVE_TIMEOUT", 0.05)
    monkeypatch.setattr(webhooks.socket, "getaddrinfo", lambda *args, **kw: release.wait(5) and [])
    try:
        with pytest.raises(OSError, match="took more than"):
            webhooks.resolve_host("slow.example.com", 443)
    finally:
        release.set()
