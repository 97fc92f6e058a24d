"""Authentication, modes, connected accounts, request ids and rate limits of the /v1 API."""

import pytest
from django.utils import timezone

from billing.models import ApiKey, Customer, Event
from tests import factories
from tests.api.conftest import basic_auth

pytestmark = pytest.mark.django_db


def test_a_bearer_key_authenticates(api):
    response = api.get("/v1/customers")
    assert response.status_code == 200
    assert response.json()["object"] == "list"


def test_http_basic_with_the_key_as_user_name_authenticates(anonymous_api, test_key):
    """As `curl -u sk_test_…:` sends it."""
    response = anonymous_api.get("/v1/customers", HTTP_AUTHORIZATION=basic_auth(test_key.raw))
    assert response.status_code == 200


def test_a_missing_key_is_401_in_stripes_format(anonymous_api):
    response = anonymous_api.get("/v1/customers")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "You did not provide an API key" in error["message"]


def test_an_unknown_key_is_401_and_redacted(anonymous_api):
    response = anonymous_api.get(
        "/v1/customers", HTTP_AUTHORIZATION="Bearer sk_test_notarealkey1234"
    )
    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert message.startswith("Invalid API Key provided: sk_test_")
    assert "notarealkey" not in message and message.endswith("1234")


def test_a_revoked_key_is_401_api_key_expired(api, test_key):
    test_key.revoke(timezone.now())
    test_key.save()
    response = api.get("/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_expired"


@pytest.mark.parametrize(
    "header",
    ["Basic !!!notbase64", "Bearer " + "x" * 5000, "Token abc", "Bearer", "Basic " + "=" * 3],
)
def test_garbage_credentials_are_401(anonymous_api, header):
    assert anonymous_api.get("/v1/customers", HTTP_AUTHORIZATION=header).status_code == 401


def test_authentication_records_last_use(api, test_key):
    api.get("/v1/customers")
    assert ApiKey.objects.get(pk=test_key.pk).last_used is not None


def test_every_response_carries_a_request_id(api, anonymous_api):
    for response in (api.get("/v1/customers"), anonymous_api.get("/v1/customers")):
        assert response["Request-Id"].startswith("req_")


def test_events_record_the_request_that_caused_them(api):
    """SPEC R-EVT-1: an event's `request.id` is the API request's id."""
    response = api.post("/v1/customers", {"email": "jenny@example.com"})
    event = Event.objects.get(type="customer.created", object_id=response.json()["id"])
    assert event.request_id == response["Request-Id"]


def test_a_test_key_sees_only_test_data(api, account):
    """SPEC R-CORE-3."""
    live = factories.make_customer(account, livemode=True, email="live@example.com")
    test = factories.make_customer(account, livemode=False, email="test@example.com")
    ids = [c["id"] for c in api.get("/v1/customers").json()["data"]]
    assert ids == [test.id]
    assert api.get(f"/v1/customers/{live.id}").status_code == 404


def test_a_live_key_sees_only_live_data_and_creates_live_objects(live_api, account):
    """SPEC R-CORE-3."""
    test = factories.make_customer(account, livemode=False)
    assert live_api.get(f"/v1/customers/{test.id}").status_code == 404
    created = live_api.post("/v1/customers", {"email": "live@example.com"}).json()
    assert created["livemode"] is True
    assert Customer.objects.get(pk=created["id"]).livemode is True


def test_another_accounts_objects_do_not_exist(api, other_account):
    theirs = factories.make_customer(other_account)
    response = api.get(f"/v1/customers/{theirs.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "resource_missing"


def test_test_tokens_do_not_work_in_live_mode(live_api):
    """SPEC R-INV-10: `pm_card_*` shortcuts are test-mode only."""
    customer = live_api.post("/v1/customers", {}).json()
    response = live_api.post(
        "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]}
    )
    assert response.status_code == 404


# --- Stripe-Account (SPEC R-CON-1) ------------------------------------------------------------


def test_stripe_account_acts_as_a_connected_account(api, account):
    """SPEC R-CON-1: with the header, the customer lives on the connected account."""
    connected = factories.make_connected_account(account)
    response = api.post(
        "/v1/customers", {"email": "shop@example.com"}, HTTP_STRIPE_ACCOUNT=connected.id
    )
    assert response.status_code == 200
    assert Customer.objects.get(pk=response.json()["id"]).account_id == connected.id
    # The platform's own scope does not see it, the connected scope does.
    assert api.get("/v1/customers").json()["data"] == []
    listed = api.get("/v1/customers", HTTP_STRIPE_ACCOUNT=connected.id).json()["data"]
    assert [c["id"] for c in listed] == [response.json()["id"]]


def test_stripe_account_naming_the_callers_own_account_is_allowed(api, account):
    assert api.get("/v1/customers", HTTP_STRIPE_ACCOUNT=account.id).status_code == 200


@pytest.mark.parametrize("which", ["unknown", "other_platform", "others_connected"])
def test_stripe_account_not_connected_to_the_caller_is_403(api, other_account, which):
    """SPEC R-CON-1: only the caller's own connected accounts can be acted as."""
    target = {
        "unknown": "acct_doesnotexist",
        "other_platform": other_account.id,
        "others_connected": factories.make_connected_account(other_account).id,
    }[which]
    response = api.get("/v1/customers", HTTP_STRIPE_ACCOUNT=target)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "account_invalid"
    assert "does not have access to account" in error["message"]


def test_a_connected_accounts_key_cannot_act_as_its_platform(client, account):
    connected = factories.make_connected_account(account)
    key = factories.make_api_key(connected)
    response = client.get(
        "/v1/customers", HTTP_AUTHORIZATION=f"Bearer {key.raw}", HTTP_STRIPE_ACCOUNT=account.id
    )
    assert response.status_code == 403


# --- Rate limits ------------------------------------------------------------------------------


def test_requests_beyond_the_rate_limit_are_429(api, settings):
    settings.RELANCE_API_RATE_LIMIT = 3
    statuses = [api.get("/v1/customers").status_code for _ in range(5)]
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    limited = api.get("/v1/customers")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit"


def test_the_rate_limit_is_per_key(api, client, account, settings):
    settings.RELANCE_API_RATE_LIMIT = 2
    for _ in range(3):
        api.get("/v1/customers")
    other = factories.make_api_key(account)
    assert client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {other.raw}").status_code == 200


def test_unknown_urls_are_stripes_404(api):
    response = api.get("/v1/nothing_here")
    assert response.status_code == 404
    assert "Unrecognized request URL (GET: /v1/nothing_here)" in response.json()["error"]["message"]
    assert api.post("/v1/prices/price_x/whatever").status_code == 404


def test_unsupported_methods_are_stripes_404(api):
    assert api.delete("/v1/prices").status_code == 404
    assert (
        api.client.put("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {api.raw_key}").status_code
        == 404
    )


def test_headers_with_nul_characters_are_refused_not_500(api):
    assert api.get("/v1/customers", HTTP_STRIPE_ACCOUNT="acct_\x00").status_code == 403
    assert api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k\x00").status_code == 400
