"""Edge cases of the billing endpoints over raw HTTP (Django's test client): parameters,
isolation, idempotency, expand, and that no input makes them fail with a 500."""

import time
from urllib.parse import urlencode

import pytest
from django.db import connection

from billing.models import Account, Event, Invoice, Subscription, TestClock
from tests import factories
from tests.api.conftest import basic_auth
from tests.api.test_errors import garbage_bodies

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def error(response, status=400) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=2000)


@pytest.fixture
def paying_customer(api):
    return ok(
        api.post(
            "/v1/customers",
            {
                "payment_method": "pm_card_visa",
                "invoice_settings[default_payment_method]": "pm_card_visa",
            },
        )
    )


@pytest.fixture
def subscription(api, paying_customer, price):
    return ok(
        api.post(
            "/v1/subscriptions",
            {"customer": paying_customer["id"], "items[0][price]": price.id},
        )
    )


def test_reference_curl_with_basic_auth_and_bracket_notation(client, test_key, price):
    """Reference 004's `curl -u sk_test_…: -d customer=… -d "items[0][price]"=… -d
    trial_end=…` as curl sends it (SPEC R-TRIAL-1)."""
    customer = factories.make_customer(test_key.account)
    trial_end = int(time.time()) + 10 * DAY
    response = client.post(
        "/v1/subscriptions",
        f"customer={customer.id}&items%5B0%5D%5Bprice%5D={price.id}&trial_end={trial_end}",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=basic_auth(test_key.raw),
    )
    body = ok(response)
    assert (body["status"], body["trial_end"]) == ("trialing", trial_end)
    assert response["Request-Id"].startswith("req_")


def test_a_subscription_needs_a_customer_and_items(api, paying_customer):
    assert error(api.post("/v1/subscriptions", {"customer": paying_customer["id"]})) == {
        "type": "invalid_request_error",
        "code": "parameter_missing",
        "param": "items",
        "message": "Missing required param: items.",
    }
    assert error(api.post("/v1/subscriptions", {"items[0][price]": "price_x"}))["param"] == (
        "customer"
    )


def test_unknown_and_missing_item_parameters_are_named(api, paying_customer, price):
    base = {"customer": paying_customer["id"]}
    body = error(api.post("/v1/subscriptions", {**base, "items[0][prise]": price.id}))
    assert (body["param"], body["code"]) == ("items[0][prise]", "parameter_unknown")
    body = error(api.post("/v1/subscriptions", {**base, "items[0][price]": "price_nope"}))
    assert (body["param"], body["code"]) == ("items[0][price]", "resource_missing")
    body = error(
        api.post(
            "/v1/subscriptions", {**base, "items[0][price]": price.id, "items[0][quantity]": 0}
        )
    )
    assert body["param"] == "items[0][quantity]"
    assert not Subscription.objects.exists()


def test_trial_end_and_trial_period_days_together_are_refused(api, paying_customer, price):
    """SPEC R-TRIAL-1: one or the other."""
    body = error(
        api.post(
            "/v1/subscriptions",
            {
                "customer": paying_customer["id"],
                "items[0][price]": price.id,
                "trial_end": int(time.time()) + DAY,
                "trial_period_days": 3,
            },
        )
    )
    assert body["param"] == "trial_end"


def test_trial_end_now_at_creation_starts_without_a_trial(api, paying_customer, price):
    body = ok(
        api.post(
            "/v1/subscriptions",
            {"customer": paying_customer["id"], "items[0][price]": price.id, "trial_end": "now"},
        )
    )
    assert (body["status"], body["trial_end"]) == ("active", None)


def test_a_trial_end_in_the_past_names_the_parameter(api, paying_customer, price):
    body = error(
        api.post(
            "/v1/subscriptions",
            {
                "customer": paying_customer["id"],
                "items[0][price]": price.id,
                "trial_end": 1610403705,
            },
        )
    )
    assert body["param"] == "trial_end"


def test_too_much_metadata_names_the_parameter(api, paying_customer, price):
    """SPEC R-CORE-5."""
    metadata = {f"metadata[k{i}]": "v" for i in range(51)}
    body = error(
        api.post(
            "/v1/subscriptions",
            {"customer": paying_customer["id"], "items[0][price]": price.id, **metadata},
        )
    )
    assert body["param"] == "metadata"


def test_unsupported_update_parameters_are_named_not_ignored(api, subscription):
    body = error(
        api.post(f"/v1/subscriptions/{subscription['id']}", {"billing_cycle_anchor": "now"})
    )
    assert (body["param"], body["code"]) == ("billing_cycle_anchor", "parameter_unsupported")
    # SPEC R-CON-3: a platform fee needs a connected account to take it from.
    body = error(
        api.post(f"/v1/subscriptions/{subscription['id']}", {"application_fee_percent": "10"})
    )
    assert body["param"] == "application_fee_percent"


def test_expand_latest_invoice_payment_intent_and_refuse_unknown_paths(api, subscription):
    path = f"/v1/subscriptions/{subscription['id']}"
    body = ok(api.get(path, {"expand[]": "latest_invoice.payment_intent"}))
    intent = body["latest_invoice"]["payment_intent"]
    assert (intent["object"], intent["status"]) == ("payment_intent", "succeeded")
    assert body["latest_invoice"]["confirmation_secret"] == {
        "client_secret": intent["client_secret"],
        "type": "payment_intent",
    }
    assert error(api.get(path, {"expand[]": "latest_invoice.nope"}))["param"] == "expand"
    listed = ok(api.get("/v1/subscriptions", {"expand[]": "data.customer"}))
    assert listed["data"][0]["customer"]["object"] == "customer"


def test_a_replayed_subscription_create_is_not_repeated(api, paying_customer, price):
    body = {"customer": paying_customer["id"], "items[0][price]": price.id}
    first = api.post("/v1/subscriptions", body, HTTP_IDEMPOTENCY_KEY="sub-1")
    again = api.post("/v1/subscriptions", body, HTTP_IDEMPOTENCY_KEY="sub-1")
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Subscription.objects.count() == 1
    assert Invoice.objects.count() == 1
    conflict = api.post(
        "/v1/subscriptions", {**body, "items[0][quantity]": 2}, HTTP_IDEMPOTENCY_KEY="sub-1"
    )
    assert error(conflict)["type"] == "idempotency_error"


def test_a_replayed_declined_payment_replays_the_402_without_charging_again(api, account):
    """SPEC R-INV-10: the decline is the key's result; the card is not charged twice."""
    customer = ok(
        api.post(
            "/v1/customers",
            {
                "payment_method": "pm_card_chargeDeclined",
                "invoice_settings[default_payment_method]": "pm_card_chargeDeclined",
            },
        )
    )
    ok(api.post("/v1/invoiceitems", {"customer": customer["id"], "amount": 900, "currency": "usd"}))
    invoice = ok(api.post("/v1/invoices", {"customer": customer["id"]}))
    ok(api.post(f"/v1/invoices/{invoice['id']}/finalize"))

    first = api.post(f"/v1/invoices/{invoice['id']}/pay", HTTP_IDEMPOTENCY_KEY="pay-1")
    again = api.post(f"/v1/invoices/{invoice['id']}/pay", HTTP_IDEMPOTENCY_KEY="pay-1")

    body = error(first, 402)
    assert (body["type"], body["code"], body["decline_code"]) == (
        "card_error",
        "card_declined",
        "generic_decline",
    )
    assert error(again, 402) == body
    assert again["Idempotent-Replayed"] == "true"
    assert Invoice.objects.get(pk=invoice["id"]).attempt_count == 1
    failed = Event.objects.get(type="invoice.payment_failed", object_id=invoice["id"])
    assert failed.request_idempotency_key == "pay-1"


def test_a_live_key_sees_no_test_subscriptions_or_invoices(live_api, subscription):
    """SPEC R-CORE-3."""
    assert error(live_api.get(f"/v1/subscriptions/{subscription['id']}"), 404)["code"] == (
        "resource_missing"
    )
    assert error(live_api.get(f"/v1/invoices/{subscription['latest_invoice']}"), 404)
    assert ok(live_api.get("/v1/subscriptions"))["data"] == []
    assert ok(live_api.get("/v1/invoices"))["data"] == []
    assert ok(live_api.get("/v1/payment_intents"))["data"] == []


def test_another_accounts_objects_are_missing(api, other_account):
    customer = factories.make_customer(other_account)
    theirs = factories.make_subscription(customer)
    invoice = factories.make_invoice(customer, subscription=theirs)
    assert error(api.get(f"/v1/subscriptions/{theirs.id}"), 404)
    assert error(api.post(f"/v1/subscriptions/{theirs.id}", {"metadata[a]": "b"}), 404)
    assert error(api.delete(f"/v1/subscriptions/{theirs.id}"), 404)
    assert error(api.post(f"/v1/invoices/{invoice.id}/void"), 404)
    assert error(api.get(f"/v1/invoices/{invoice.id}/lines"), 404)
    body = error(api.post("/v1/invoiceitems", {"customer": customer.id, "amount": 1}))
    assert (body["param"], body["code"]) == ("customer", "resource_missing")


def test_a_test_clock_advance_answers_advancing_and_queues_the_work(
    api, account, django_capture_on_commit_callbacks
):
    """SPEC R-CLOCK-2: the request only starts the advance; a worker runs it after commit."""
    clock = factories.make_test_clock(account)
    target = int(clock.frozen_time.timestamp()) + 5 * DAY
    with django_capture_on_commit_callbacks() as callbacks:
        body = ok(
            api.post(f"/v1/test_helpers/test_clocks/{clock.id}/advance", {"frozen_time": target})
        )
    assert body["status"] == "advancing"
    assert body["status_details"] == {"advancing": {"target_frozen_time": target}}
    assert TestClock.objects.get(pk=clock.id).status == "advancing"
    assert len(callbacks) == 1


def test_the_upcoming_invoice_for_older_clients(api, subscription, paying_customer):
    body = ok(api.get("/v1/invoices/upcoming", {"customer": paying_customer["id"]}))
    assert (body["id"], body["total"], body["subscription"]) == (None, 2000, subscription["id"])
    assert error(api.get("/v1/invoices/upcoming"))["param"] == "customer"


def test_the_upcoming_invoice_of_a_customer_without_subscriptions_is_404(api, account):
    customer = factories.make_customer(account)
    body = error(api.get("/v1/invoices/upcoming", {"customer": customer.id}), 404)
    assert body["code"] == "invoice_upcoming_none"


def test_events_reject_type_and_types_together(api):
    body = error(api.get("/v1/events", {"type": "invoice.paid", "types[]": ["invoice.created"]}))
    assert body["param"] == "types"


# --- Garbage never makes a 500 ----------------------------------------------------------------

POSTS = {
    "/v1/subscriptions": [
        "customer",
        "items",
        "trial_end",
        "trial_period_days",
        "billing_cycle_anchor",
        "trial_settings",
        "payment_behavior",
        "collection_method",
        "days_until_due",
        "add_invoice_items",
        "discounts",
        "coupon",
        "metadata",
    ],
    "/v1/invoices": ["customer", "collection_method", "days_until_due", "auto_advance"],
    "/v1/invoiceitems": ["customer", "amount", "currency", "price", "quantity", "subscription"],
    "/v1/test_helpers/test_clocks": ["frozen_time", "name"],
    "/v1/invoices/create_preview": ["customer", "subscription"],
}


@pytest.mark.parametrize("path", sorted(POSTS))
def test_garbage_posts_never_cause_a_500(api, path, settings):
    settings.RELANCE_API_RATE_LIMIT = 0
    for body in garbage_bodies(POSTS[path]):
        response = api.post(path, body)
        assert response.status_code < 500, (body, response.content)


def test_garbage_updates_of_a_subscription_never_cause_a_500(api, subscription, settings):
    settings.RELANCE_API_RATE_LIMIT = 0
    path = f"/v1/subscriptions/{subscription['id']}"
    names = ["items", "trial_end", "pause_collection", "default_payment_method", "metadata"]
    for body in garbage_bodies(names):
        response = api.post(path, body)
        assert response.status_code < 500, (body, response.content)
    for body in garbage_bodies(["prorate", "invoice_now", "cancellation_details"]):
        response = api.delete(path, urlencode(body))
        assert response.status_code < 500, (body, response.content)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/subscriptions",
        "/v1/invoices",
        "/v1/invoiceitems",
        "/v1/payment_intents",
        "/v1/events",
        "/v1/test_helpers/test_clocks",
    ],
)
def test_garbage_list_queries_never_cause_a_500(api, path, settings):
    settings.RELANCE_API_RATE_LIMIT = 0
    names = ["limit", "starting_after", "created", "customer", "status", "type", "types", "price"]
    for body in garbage_bodies(names):
        response = api.get(path, body)
        assert response.status_code < 500, (body, response.content)


@pytest.mark.parametrize("object_id", ["x" * 3000, "sub_%00", "../../etc", "' OR 1=1 --", "😀"])
def test_bad_ids_are_404_not_500(api, object_id):
    for path in (
        "subscriptions",
        "invoices",
        "invoiceitems",
        "payment_intents",
        "events",
        "test_helpers/test_clocks",
    ):
        response = api.get(f"/v1/{path}/{object_id}")
        assert response.status_code == 404, (path, response.content)
    for verb in ("finalize", "pay", "void", "mark_uncollectible"):
        assert api.post(f"/v1/invoices/{object_id}/{verb}").status_code == 404


def test_a_subscription_create_names_a_missing_customer_or_price_and_writes_nothing(
    api, paying_customer, price, other_account
):
    theirs = factories.make_customer(other_account)
    before = (Subscription.objects.count(), Invoice.objects.count(), Event.objects.count())
    for customer_id in (theirs.id, "cus_missing"):
        body = error(
            api.post("/v1/subscriptions", {"customer": customer_id, "items[0][price]": price.id}),
            400,
        )
        assert (body["param"], body["code"]) == ("customer", "resource_missing")
    body = error(
        api.post("/v1/subscriptions", {"customer": "cus_\x00", "items[0][price]": price.id})
    )
    assert body["param"] == "customer"
    body = error(
        api.post(
            "/v1/subscriptions",
            {
                "customer": paying_customer["id"],
                "items[0][price]": price.id,
                "items[1][price]": "price_missing",
            },
        ),
        400,
    )
    assert (body["param"], body["code"]) == ("items[1][price]", "resource_missing")
    assert before == (Subscription.objects.count(), Invoice.objects.count(), Event.objects.count())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("numbering", ["customer", "account"])
def test_a_subscription_create_asks_the_database_in_three_or_four_round_trips(
    api, account, paying_customer, price, numbering
):
    """Besides BEGIN and COMMIT: the key; the customer (locked), its prices, webhook endpoints,
    discounts, recovery settings and the account's invoice numbering together; with numbering
    across the account, the account's counter; the writes (with the events' task). It was 11
    before reads went ahead and the create's savepoint went away. Numbered for each customer,
    the invoice takes the locked customer's sequence: no round trip, no account-wide lock."""
    if connection.vendor != "postgresql":
        pytest.skip("pipelines are PostgreSQL's")
    Account.objects.filter(pk=account.pk).update(invoice_numbering=numbering)
    trips = []
    pipelines = []

    def record(execute, sql, params, many, context):
        pipeline = connection.connection._pipeline
        if pipeline is None:
            trips.append(sql)
        elif not pipelines or pipelines[-1] is not pipeline or isinstance(trips[-1], str):
            pipelines.append(pipeline)
            trips.append([sql])
        else:
            trips[-1].append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        created = ok(
            api.post(
                "/v1/subscriptions",
                {"customer": paying_customer["id"], "items[0][price]": price.id},
            )
        )
    assert created["status"] == "active"
    # (What follows the writes ran after the commit: the events' subscribers, run inline in
    # tests.)
    if numbering == "customer":
        key, reads, writes = trips[:3]
    else:
        key, reads, counter, writes = trips[:4]
        assert "billing_account" in counter and "FOR NO KEY UPDATE" in counter
    assert "billing_apikey" in key
    assert [sql.split(" FROM ")[1].split()[0] for sql in reads] == [
        '"billing_customer"',
        '"billing_price"',
        '"billing_webhookendpoint"',
        '"billing_recoverysettings"',
        '"billing_discount"',
        '"billing_account"',
    ]
    assert "FOR NO KEY UPDATE" in reads[0]
    assert "FOR " not in reads[-1]
    assert any("billing_subscription" in sql for sql in writes)
    invoice = Invoice.objects.get(pk=created["latest_invoice"])
    if numbering == "customer":
        assert any("UPDATE" in sql and "billing_customer" in sql for sql in writes)
        assert invoice.number.startswith(invoice.customer.invoice_prefix + "-")
    else:
        assert invoice.number.startswith(account.invoice_prefix + "-")
