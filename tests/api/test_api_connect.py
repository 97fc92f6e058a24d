"""Connect resources of the /v1 API (issue #8): connected accounts (`/v1/accounts`,
`/v1/account`), the money between accounts (`/v1/transfers`, `/v1/application_fees`,
`/v1/balance`, `/v1/balance_transactions`), `POST /oauth/deauthorize`, webhook endpoints
through `Stripe-Account` (read-only), and the isolation of every account's data (SPEC R-CON-1,
R-CON-7, R-CORE-3)."""

import pytest
import stripe

from billing import services
from billing.choices import AccountType
from billing.models import Account, Event, WebhookEndpoint
from billing.services import connect
from tests import factories
from tests.api.conftest import Api

# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture
def connected(account):
    return factories.make_connected_account(account, name="Author")


@pytest.fixture
def connected_api(client, connected):
    """The connected account acting for itself, with its own test key."""
    return Api(client, factories.make_api_key(connected).raw)


@pytest.fixture
def other_api(client, other_account):
    """Another platform's test key."""
    return Api(client, factories.make_api_key(other_account).raw)


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def pay_subscription(api, price_id: str, stripe_account: str | None = None, **params) -> dict:
    """A customer with a card subscribed to `price_id`: its first invoice is paid at once."""
    headers = {"HTTP_STRIPE_ACCOUNT": stripe_account} if stripe_account else {}
    customer = ok(
        api.post(
            "/v1/customers",
            {
                "payment_method": "pm_card_visa",
                "invoice_settings[default_payment_method]": "pm_card_visa",
            },
            **headers,
        )
    )
    body = {"customer": customer["id"], "items[0][price]": price_id, **params}
    subscription = ok(api.post("/v1/subscriptions", body, **headers))
    assert subscription["status"] == "active"
    return subscription


@pytest.fixture
def money(api, account, connected):
    """One destination charge to `connected` with a 10% fee (30.00 USD: 27.00 transferred),
    and one direct charge on `connected` with a 10% fee (30.00 USD: 3.00 to the platform)."""
    platform_price = factories.make_price(account, unit_amount=3000)
    connected_price = factories.make_price(connected, unit_amount=3000)
    destination = pay_subscription(
        api,
        platform_price.id,
        **{"transfer_data[destination]": connected.id, "application_fee_percent": "10"},
    )
    direct = pay_subscription(
        api, connected_price.id, stripe_account=connected.id, application_fee_percent="10"
    )
    return {"destination": destination, "direct": direct}


def amounts(balance: dict) -> dict:
    return {entry["currency"]: entry["amount"] for entry in balance["available"]}


# --- /v1/accounts ------------------------------------------------------------------------------


def test_a_platform_creates_a_connected_account_with_stripes_parameters(api, account):
    """SPEC R-CON-1: `POST /v1/accounts` makes a platform-controlled connected account, and
    `account.application.authorized` reaches the platform with `account` (SPEC R-EVT-4)."""
    created = ok(
        api.post(
            "/v1/accounts",
            {
                "type": "express",
                "country": "fr",
                "email": "author@example.com",
                "default_currency": "EUR",
                "business_profile[name]": "Author SARL",
                "settings[dashboard][display_name]": "The Author",
                "settings[dashboard][timezone]": "Europe/Paris",
                "settings[branding][primary_color]": "#112233",
                "metadata[ref]": "42",
            },
        )
    )

    assert created["id"].startswith("acct_")
    assert created["object"] == "account"
    assert created["type"] == "custom"
    assert created["controller"] == {"type": "application", "is_controller": True}
    assert (created["country"], created["email"], created["default_currency"]) == (
        "FR",
        "author@example.com",
        "eur",
    )
    assert created["business_profile"]["name"] == "Author SARL"
    assert created["settings"]["dashboard"] == {
        "display_name": "The Author",
        "timezone": "Europe/Paris",
    }
    assert created["settings"]["branding"]["primary_color"] == "#112233"
    assert created["metadata"] == {"ref": "42"}
    stored = Account.objects.get(pk=created["id"])
    assert (stored.type, stored.platform_id) == (AccountType.CONNECTED, account.id)
    event = Event.objects.get(account=stored, type="account.application.authorized", livemode=False)
    assert ok(api.get(f"/v1/events/{event.id}", HTTP_STRIPE_ACCOUNT=stored.id))["account"] == (
        stored.id
    )


def test_a_connected_account_created_with_nothing_takes_the_platforms_currency(api, account):
    created = ok(api.post("/v1/accounts", {}))
    assert created["default_currency"] == account.default_currency
    assert created["business_profile"]["name"] == "Connected account"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"business_type": "individual"}, "business_type"),
        ({"settings[payouts][schedule][interval]": "daily"}, "settings[payouts]"),
        ({"type": "premium"}, "type"),
        ({"country": "France"}, "country"),
        ({"country": "F1"}, "country"),
        ({"default_currency": "euro"}, "default_currency"),
        ({"email": "not an email"}, "email"),
        ({"settings[dashboard][timezone]": "Mars/Olympus"}, "settings[dashboard][timezone]"),
        ({"settings[branding][primary_color]": "red"}, "settings[branding][primary_color]"),
        ({"settings[branding][logo]": "file_123"}, "settings[branding][logo]"),
        ({"capabilities[card_payments][requested]": "true"}, "capabilities"),
        ({"metadata[k]": "v" * 501}, "metadata"),
        ({"business_profile": ""}, "business_profile"),
    ],
)
def test_bad_account_parameters_are_named_and_create_nothing(api, body, param):
    error = error_of(api.post("/v1/accounts", body), 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert not Account.objects.filter(type=AccountType.CONNECTED).exists()


def test_a_connected_account_cannot_create_or_list_accounts(api, connected_api, connected):
    """SPEC R-CON-1: only platforms have connected accounts, whether the connected account uses
    its own key or its platform acts as it."""
    for response in (
        connected_api.post("/v1/accounts", {"email": "x@example.com"}),
        api.post("/v1/accounts", {}, HTTP_STRIPE_ACCOUNT=connected.id),
        connected_api.get("/v1/accounts"),
    ):
        error = error_of(response, 400)
        assert error["type"] == "invalid_request_error"
        assert f"{connected.id} is a connected account" in error["message"]
    assert Account.objects.filter(type=AccountType.CONNECTED).count() == 1


def test_accounts_lists_the_platforms_connected_accounts_only(
    api, account, other_account, connected
):
    """SPEC R-CON-1, R-CON-7: the platform's own connected accounts, newest first, paginated;
    not another platform's, nor one that disconnected."""
    second = factories.make_connected_account(account, name="Second")
    third = factories.make_connected_account(account, name="Third")
    factories.make_connected_account(other_account)
    gone = factories.make_connected_account(account, name="Gone")
    connect.disconnect_account(gone)

    listed = ok(api.get("/v1/accounts"))
    assert listed["url"] == "/v1/accounts"
    assert [a["id"] for a in listed["data"]] == [third.id, second.id, connected.id]

    first_page = ok(api.get("/v1/accounts", {"limit": 2}))
    assert (len(first_page["data"]), first_page["has_more"]) == (2, True)
    rest = ok(api.get("/v1/accounts", {"limit": 2, "starting_after": second.id}))
    assert ([a["id"] for a in rest["data"]], rest["has_more"]) == ([connected.id], False)


def test_a_platform_retrieves_its_connected_accounts_and_itself(api, account, connected):
    assert ok(api.get(f"/v1/accounts/{connected.id}"))["id"] == connected.id
    own = ok(api.get(f"/v1/accounts/{account.id}"))
    assert (own["id"], own["type"], own["controller"]) == (
        account.id,
        "standard",
        {"type": "account"},
    )


@pytest.mark.parametrize("which", ["unknown", "other_platform", "others_connected", "gone"])
def test_an_account_that_is_not_the_platforms_is_a_403(api, account, other_account, which):
    """Stripe's answer for an account the key has no access to (SPEC R-CON-1, R-CON-7)."""
    gone = factories.make_connected_account(account, name="Gone")
    connect.disconnect_account(gone)
    target = {
        "unknown": "acct_doesnotexist",
        "other_platform": other_account.id,
        "others_connected": factories.make_connected_account(other_account).id,
        "gone": gone.id,
    }[which]
    for response in (
        api.get(f"/v1/accounts/{target}"),
        api.post(f"/v1/accounts/{target}", {"email": "x@example.com"}),
    ):
        error = error_of(response, 403)
        assert error["code"] == "account_invalid"
        assert f"does not have access to account '{target}'" in error["message"]


def test_a_platform_updates_a_connected_accounts_settings(api, connected):
    """`POST /v1/accounts/{id}` changes the settings and emits `account.updated` with the old
    values, carrying `account` (SPEC R-EVT-1, R-EVT-4)."""
    updated = ok(
        api.post(
            f"/v1/accounts/{connected.id}",
            {
                "email": "new@example.com",
                "business_profile[name]": "Author Ltd",
                "settings[dashboard][timezone]": "America/New_York",
                "settings[branding][primary_color]": "#abcdef",
                "settings[branding][logo]": "https://cdn.example.com/logo.png",
            },
        )
    )
    assert updated["email"] == "new@example.com"
    assert updated["business_profile"]["name"] == "Author Ltd"
    assert updated["settings"]["dashboard"]["timezone"] == "America/New_York"
    assert updated["settings"]["branding"]["primary_color"] == "#abcdef"
    assert updated["settings"]["branding"]["logo"] == "https://cdn.example.com/logo.png"
    event = Event.objects.get(account=connected, type="account.updated", livemode=False)
    assert event.data["previous_attributes"]["email"] is None
    assert event.data["previous_attributes"]["business_profile"]["name"] == "Author"
    listed = ok(
        api.get("/v1/events", {"type": "account.updated"}, HTTP_STRIPE_ACCOUNT=connected.id)
    )
    assert [e["account"] for e in listed["data"]] == [connected.id]


def test_account_metadata_merges_as_stripes_does(api, connected):
    """SPEC R-CORE-5: keys merge, a key set to "" is removed, `metadata=""` clears all."""
    url = f"/v1/accounts/{connected.id}"
    assert ok(api.post(url, {"metadata[a]": "1", "metadata[b]": "2"}))["metadata"] == {
        "a": "1",
        "b": "2",
    }
    assert ok(api.post(url, {"metadata[b]": "", "metadata[c]": "3"}))["metadata"] == {
        "a": "1",
        "c": "3",
    }
    assert ok(api.post(url, {"metadata": ""}))["metadata"] == {}
    too_many = {f"metadata[k{i}]": "v" for i in range(51)}
    assert error_of(api.post(url, too_many), 400)["param"] == "metadata"
    assert Account.objects.get(pk=connected.id).metadata == {}


def test_bad_updates_are_named_and_change_nothing(api, connected):
    url = f"/v1/accounts/{connected.id}"
    for body, param in (
        ({"country": "FR"}, "country"),
        ({"business_profile[name]": ""}, "business_profile[name]"),
        ({"default_currency": "us"}, "default_currency"),
        (
            {"email": "ok@example.com", "settings[dashboard][timezone]": "Nowhere"},
            "settings[dashboard][timezone]",
        ),
    ):
        assert error_of(api.post(url, body), 400)["param"] == param
    stored = Account.objects.get(pk=connected.id)
    assert (stored.name, stored.email, stored.timezone) == ("Author", "", "UTC")
    assert not Event.objects.filter(type="account.updated").exists()


def test_only_the_platform_updates_a_connected_account(api, account, connected, connected_api):
    """A connected account is platform-controlled: its own key cannot change it, and the
    platform cannot change its own account through the API (403)."""
    assert error_of(connected_api.post(f"/v1/accounts/{connected.id}", {"email": "a@b.co"}), 403)
    assert error_of(api.post(f"/v1/accounts/{account.id}", {"email": "a@b.co"}), 403)
    # Acting as the connected account, the platform still controls it.
    updated = api.post(
        f"/v1/accounts/{connected.id}", {"email": "a@b.co"}, HTTP_STRIPE_ACCOUNT=connected.id
    )
    assert ok(updated)["email"] == "a@b.co"


def test_account_is_the_account_the_request_acts_as(api, account, connected, connected_api):
    """`GET /v1/account`: the caller's account, or the connected one under `Stripe-Account`."""
    assert ok(api.get("/v1/account"))["id"] == account.id
    assert ok(api.get("/v1/account", HTTP_STRIPE_ACCOUNT=connected.id))["id"] == connected.id
    assert ok(connected_api.get("/v1/account"))["id"] == connected.id
    assert ok(connected_api.get(f"/v1/accounts/{connected.id}"))["id"] == connected.id
    assert error_of(connected_api.get(f"/v1/accounts/{account.id}"), 403)


# --- transfers, application fees, balance, balance transactions ----------------------------------


def test_transfers_are_listed_filtered_and_retrieved(api, account, connected, money):
    """SPEC R-CON-2: the platform's transfers; `destination` and `created` filter them."""
    listed = ok(api.get("/v1/transfers"))
    assert listed["url"] == "/v1/transfers"
    [transfer] = listed["data"]
    invoice = ok(api.get(f"/v1/invoices/{money['destination']['latest_invoice']}"))
    assert transfer["object"] == "transfer"
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (
        2700,
        "usd",
        connected.id,
    )
    assert (transfer["invoice"], transfer["payment_intent"]) == (
        invoice["id"],
        invoice["payment_intent"],
    )
    assert transfer["transfer_group"] == f"group_{invoice['payment_intent']}"
    assert transfer["livemode"] is False
    assert ok(api.get(f"/v1/transfers/{transfer['id']}")) == transfer

    elsewhere = factories.make_connected_account(account)
    assert ok(api.get("/v1/transfers", {"destination": elsewhere.id}))["data"] == []
    assert len(ok(api.get("/v1/transfers", {"destination": connected.id}))["data"]) == 1
    created = transfer["created"]
    assert len(ok(api.get("/v1/transfers", {"created[gte]": created}))["data"]) == 1
    assert ok(api.get("/v1/transfers", {"created[gt]": created}))["data"] == []
    group = {"transfer_group": transfer["transfer_group"]}
    assert len(ok(api.get("/v1/transfers", group))["data"]) == 1
    assert error_of(api.get("/v1/transfers/tr_nope"), 404)["code"] == "resource_missing"
    assert error_of(api.get("/v1/transfers", {"amount": "1"}), 400)["param"] == "amount"


def test_application_fees_are_those_the_platform_collected(api, connected, money):
    """SPEC R-CON-3: one fee per paid invoice with a percentage: 10% of 30.00 USD each."""
    listed = ok(api.get("/v1/application_fees"))
    assert listed["url"] == "/v1/application_fees"
    fees = listed["data"]
    assert [(f["amount"], f["account"], f["currency"]) for f in fees] == [
        (300, connected.id, "usd"),
        (300, connected.id, "usd"),
    ]
    direct_invoice = money["direct"]["latest_invoice"]
    [direct_fee] = [f for f in fees if f["invoice"] == direct_invoice]
    assert ok(api.get(f"/v1/application_fees/{direct_fee['id']}")) == direct_fee
    assert direct_fee["balance_transaction"].startswith("txn_")
    assert error_of(api.get("/v1/application_fees", {"charge": "ch_1"}), 400)["param"] == "charge"
    assert error_of(api.get("/v1/application_fees/fee_nope"), 404)["code"] == "resource_missing"


def test_balances_of_the_platform_and_the_connected_account(api, connected, money):
    """The platform earns 3.00 + 3.00 USD; the connected account 27.00 (transfer) + 27.00
    (direct charge less the fee)."""
    platform = ok(api.get("/v1/balance"))
    assert platform["object"] == "balance"
    assert platform["livemode"] is False
    assert amounts(platform) == {"usd": 600}
    assert platform["pending"] == [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}]
    assert amounts(ok(api.get("/v1/balance", HTTP_STRIPE_ACCOUNT=connected.id))) == {"usd": 5400}


def test_a_balance_without_movements_is_zero_in_the_default_currency(api, account):
    balance = ok(api.get("/v1/balance"))
    assert balance["available"] == [
        {"amount": 0, "currency": account.default_currency, "source_types": {"card": 0}}
    ]


def test_balance_transactions_are_listed_filtered_and_retrieved(api, connected, money):
    platform = ok(api.get("/v1/balance_transactions"))["data"]
    assert sorted((t["type"], t["amount"], t["fee"], t["net"]) for t in platform) == [
        ("application_fee", 300, 0, 300),
        ("charge", 3000, 0, 3000),
        ("transfer", -2700, 0, -2700),
    ]
    theirs = ok(api.get("/v1/balance_transactions", HTTP_STRIPE_ACCOUNT=connected.id))["data"]
    assert sorted((t["type"], t["amount"], t["fee"], t["net"]) for t in theirs) == [
        ("charge", 3000, 300, 2700),
        ("payment", 2700, 0, 2700),
    ]
    [transfer] = ok(api.get("/v1/balance_transactions", {"type": "transfer"}))["data"]
    assert transfer["source"].startswith("tr_")
    [same] = ok(api.get("/v1/balance_transactions", {"source": transfer["source"]}))["data"]
    assert same == transfer == ok(api.get(f"/v1/balance_transactions/{transfer['id']}"))
    assert ok(api.get("/v1/balance_transactions", {"type": "payout"}))["data"] == []
    assert ok(api.get("/v1/balance_transactions", {"currency": "EUR"}))["data"] == []
    assert error_of(api.get("/v1/balance_transactions", {"type": "nope"}), 400)["param"] == "type"
    assert error_of(api.get("/v1/balance_transactions", {"payout": "po_1"}), 400)["param"] == (
        "payout"
    )
    first_page = ok(api.get("/v1/balance_transactions", {"limit": 2}))
    assert first_page["has_more"] is True
    rest = ok(
        api.get(
            "/v1/balance_transactions",
            {"limit": 2, "starting_after": first_page["data"][-1]["id"]},
        )
    )
    assert len(rest["data"]) == 1


# --- isolation -----------------------------------------------------------------------------


def test_a_connected_accounts_key_sees_only_its_own_money(
    api, connected, connected_api, money, account
):
    """SPEC R-CON-1, R-CORE-3: the connected account's own key sees its balance and ledger,
    never the platform's transfers, fees, ledger or objects."""
    transfer = ok(api.get("/v1/transfers"))["data"][0]
    fee = ok(api.get("/v1/application_fees"))["data"][0]
    platform_txn = ok(api.get("/v1/balance_transactions"))["data"][0]

    assert ok(connected_api.get("/v1/transfers"))["data"] == []
    assert ok(connected_api.get("/v1/application_fees"))["data"] == []
    assert amounts(ok(connected_api.get("/v1/balance"))) == {"usd": 5400}
    own = ok(connected_api.get("/v1/balance_transactions"))["data"]
    assert {t["type"] for t in own} == {"charge", "payment"}
    for path in (
        f"/v1/transfers/{transfer['id']}",
        f"/v1/application_fees/{fee['id']}",
        f"/v1/balance_transactions/{platform_txn['id']}",
        f"/v1/subscriptions/{money['destination']['id']}",
    ):
        assert error_of(connected_api.get(path), 404)["code"] == "resource_missing"
    customers = ok(connected_api.get("/v1/customers"))["data"]
    assert [c["id"] for c in customers] == [money["direct"]["customer"]]


def test_another_connected_account_sees_none_of_it(api, account, money):
    """SPEC R-CON-1: a second connected account of the same platform has nothing."""
    second = factories.make_connected_account(account, name="Second")
    as_second = {"HTTP_STRIPE_ACCOUNT": second.id}
    assert amounts(ok(api.get("/v1/balance", **as_second))) == {"usd": 0}
    assert ok(api.get("/v1/balance_transactions", **as_second))["data"] == []
    assert ok(api.get("/v1/transfers", **as_second))["data"] == []
    assert ok(api.get("/v1/application_fees", **as_second))["data"] == []
    assert ok(api.get("/v1/customers", **as_second))["data"] == []
    direct = money["direct"]["id"]
    assert error_of(api.get(f"/v1/subscriptions/{direct}", **as_second), 404)


def test_another_platform_sees_none_of_it_and_cannot_act_as_the_account(
    other_api, connected, money
):
    """SPEC R-CON-1: another platform's key has no access to this platform's connected account
    (403) and sees none of its money."""
    for path in ("/v1/balance", "/v1/transfers", "/v1/customers", f"/v1/accounts/{connected.id}"):
        error = error_of(other_api.get(path, HTTP_STRIPE_ACCOUNT=connected.id), 403)
        assert error["code"] == "account_invalid"
    assert ok(other_api.get("/v1/transfers"))["data"] == []
    assert ok(other_api.get("/v1/application_fees"))["data"] == []
    assert ok(other_api.get("/v1/balance_transactions"))["data"] == []
    assert ok(other_api.get("/v1/accounts"))["data"] == []


def test_a_disconnected_account_cannot_be_acted_as(api, connected, money):
    """SPEC R-CON-7: once disconnected the platform loses access ("Application access may have
    been revoked"), while what it collected stays its own."""
    connect.disconnect_account(connected)
    error = error_of(api.get("/v1/balance", HTTP_STRIPE_ACCOUNT=connected.id), 403)
    assert error["code"] == "account_invalid"
    assert "Application access may have been revoked" in error["message"]
    assert amounts(ok(api.get("/v1/balance"))) == {"usd": 600}
    assert len(ok(api.get("/v1/application_fees"))["data"]) == 2


def test_live_keys_see_no_test_money(live_api, connected, money):
    """SPEC R-CORE-3: test-mode transfers, fees and balances are invisible to a live key."""
    assert ok(live_api.get("/v1/transfers"))["data"] == []
    assert ok(live_api.get("/v1/application_fees"))["data"] == []
    assert ok(live_api.get("/v1/balance_transactions"))["data"] == []
    balance = ok(live_api.get("/v1/balance"))
    assert (amounts(balance), balance["livemode"]) == ({"usd": 0}, True)
    assert amounts(ok(live_api.get("/v1/balance", HTTP_STRIPE_ACCOUNT=connected.id))) == {"usd": 0}


# --- webhook endpoints through Stripe-Account --------------------------------------------------

HOOK = "https://hooks.example.com/stripe"


@pytest.fixture
def shop_endpoint(connected):
    """The connected account's own webhook endpoint, in test mode."""
    return services.create_webhook_endpoint(
        connected, livemode=False, url=HOOK, enabled_events=["invoice.paid"]
    )


def test_a_platform_cannot_create_a_webhook_endpoint_as_a_connected_account(api, connected):
    """SPEC R-CON-7: an endpoint the platform made inside the account would keep receiving its
    events after it disconnects: Stripe's 400 invalid_request_error, nothing created."""
    response = api.post(
        "/v1/webhook_endpoints",
        {"url": HOOK, "enabled_events[]": "*"},
        HTTP_STRIPE_ACCOUNT=connected.id,
    )

    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"
    assert "cannot create a connected account's webhook endpoints" in error["message"]
    assert "connect=true" in error["message"]
    assert not WebhookEndpoint.objects.filter(account=connected).exists()


def test_a_platform_cannot_update_or_delete_a_connected_accounts_webhook_endpoint(
    api, connected, shop_endpoint
):
    """SPEC R-CON-7: the account's endpoints are its own to change: updating or deleting one
    through `Stripe-Account` is a 400 and changes nothing."""
    path = f"/v1/webhook_endpoints/{shop_endpoint.id}"

    updated = api.post(path, {"url": "https://spy.example.com/"}, HTTP_STRIPE_ACCOUNT=connected.id)
    deleted = api.delete(path, HTTP_STRIPE_ACCOUNT=connected.id)

    for response, verb in ((updated, "update"), (deleted, "delete")):
        error = error_of(response, 400)
        assert error["type"] == "invalid_request_error"
        assert f"cannot {verb} a connected account's webhook endpoints" in error["message"]
    endpoint = WebhookEndpoint.objects.get(pk=shop_endpoint.pk)
    assert endpoint.url == HOOK


def test_a_platform_still_reads_a_connected_accounts_webhook_endpoints(
    api, connected, shop_endpoint
):
    """SPEC R-CON-1: acting as the account, the platform lists and retrieves its endpoints
    (without their secrets)."""
    listed = ok(api.get("/v1/webhook_endpoints", HTTP_STRIPE_ACCOUNT=connected.id))
    one = ok(api.get(f"/v1/webhook_endpoints/{shop_endpoint.id}", HTTP_STRIPE_ACCOUNT=connected.id))

    assert [e["id"] for e in listed["data"]] == [shop_endpoint.id]
    assert one["id"] == shop_endpoint.id
    assert "secret" not in one


def test_a_connected_account_manages_its_webhook_endpoints_with_its_own_key(
    connected_api, connected
):
    """SPEC R-CON-7 binds the platform only: the account's own key creates, updates, deletes."""
    created = ok(
        connected_api.post("/v1/webhook_endpoints", {"url": HOOK, "enabled_events[]": "*"})
    )
    path = f"/v1/webhook_endpoints/{created['id']}"

    assert ok(connected_api.post(path, {"description": "Mine"}))["description"] == "Mine"
    assert ok(connected_api.delete(path))["deleted"] is True
    assert not WebhookEndpoint.objects.filter(account=connected).exists()


# --- POST /oauth/deauthorize -----------------------------------------------------------------


@pytest.fixture
def oauth_sdk(live_server, test_key):
    """The SDK with its Connect base address (connect.stripe.com) pointed at this server."""
    return stripe.StripeClient(
        test_key.raw,
        base_addresses={"api": live_server.url, "connect": live_server.url},
        max_network_retries=0,
    )


@pytest.mark.django_db(transaction=True)
def test_oauth_deauthorize_disconnects_the_account(oauth_sdk, account, connected):
    """SPEC R-CON-7: `stripe.oauth.deauthorize` disconnects the account
    (`account.application.deauthorized`, with `account`, SPEC R-EVT-4); the platform can no
    longer act as it."""
    answer = oauth_sdk.oauth.deauthorize(
        params={"client_id": account.id, "stripe_user_id": connected.id}
    )

    assert answer.stripe_user_id == connected.id
    assert Account.objects.get(pk=connected.id).deauthorized_at is not None
    event = Event.objects.get(
        account=connected, type="account.application.deauthorized", livemode=False
    )
    assert event.data["object"]["id"] == account.id
    with pytest.raises(stripe.PermissionError):
        oauth_sdk.v1.customers.list(options={"stripe_account": connected.id})
    # Disconnected already: Stripe's invalid_client.
    with pytest.raises(stripe.oauth_error.InvalidClientError):
        oauth_sdk.oauth.deauthorize(
            params={"client_id": account.id, "stripe_user_id": connected.id}
        )


@pytest.mark.django_db(transaction=True)
def test_oauth_deauthorize_refuses_what_is_not_the_platforms(
    oauth_sdk, account, other_account, connected
):
    """Another platform's `client_id`, or an account that is not connected to this platform:
    Stripe's OAuth `invalid_client`; nothing is disconnected."""
    theirs = factories.make_connected_account(other_account)
    for params in (
        {"client_id": other_account.id, "stripe_user_id": connected.id},
        {"client_id": account.id, "stripe_user_id": theirs.id},
        {"client_id": account.id, "stripe_user_id": "acct_nope"},
    ):
        with pytest.raises(stripe.oauth_error.InvalidClientError):
            oauth_sdk.oauth.deauthorize(params=params)
    assert not Account.objects.filter(deauthorized_at__isnull=False).exists()


def test_oauth_deauthorize_errors_are_in_stripes_oauth_shape(client, api, account, connected):
    """A missing parameter is OAuth's `invalid_request`; a bad key is the API's 401."""
    response = api.post("/oauth/deauthorize", {"client_id": account.id})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "stripe_user_id" in response.json()["error_description"]
    response = api.post(
        "/oauth/deauthorize",
        {"client_id": account.id, "stripe_user_id": connected.id, "scope": "read_write"},
    )
    assert response.json()["error"] == "invalid_request"
    assert api.get("/oauth/deauthorize").status_code == 404
    unauthenticated = Api(client, "sk_test_nope").post(
        "/oauth/deauthorize", {"client_id": account.id, "stripe_user_id": connected.id}
    )
    assert unauthenticated.status_code == 401
    assert isinstance(unauthenticated.json()["error"], dict)
    assert Account.objects.get(pk=connected.id).deauthorized_at is None
