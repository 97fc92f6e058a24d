"""List pagination, filters and `expand[]` over raw HTTP."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def five_customers(account):
    """Five test customers created a minute apart, oldest first."""
    start = timezone.now() - timedelta(hours=1)
    return [
        factories.make_customer(
            account, email=f"c{i}@example.com", created=start + timedelta(minutes=i)
        )
        for i in range(5)
    ]


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [obj["id"] for obj in response.json()["data"]]


def test_lists_are_newest_first_in_stripes_envelope(api, five_customers):
    body = api.get("/v1/customers").json()
    assert body["object"] == "list"
    assert body["url"] == "/v1/customers"
    assert body["has_more"] is False
    assert [c["id"] for c in body["data"]] == [c.id for c in reversed(five_customers)]


def test_limit_and_starting_after_walk_forward(api, five_customers):
    newest_first = [c.id for c in reversed(five_customers)]
    first = api.get("/v1/customers", {"limit": "2"})
    assert ids(first) == newest_first[:2] and first.json()["has_more"] is True
    second = api.get("/v1/customers", {"limit": "2", "starting_after": newest_first[1]})
    assert ids(second) == newest_first[2:4] and second.json()["has_more"] is True
    last = api.get("/v1/customers", {"limit": "2", "starting_after": newest_first[3]})
    assert ids(last) == newest_first[4:] and last.json()["has_more"] is False


def test_ending_before_walks_backward(api, five_customers):
    newest_first = [c.id for c in reversed(five_customers)]
    page = api.get("/v1/customers", {"limit": "2", "ending_before": newest_first[4]})
    assert ids(page) == newest_first[2:4]
    assert page.json()["has_more"] is True
    top = api.get("/v1/customers", {"limit": "2", "ending_before": newest_first[2]})
    assert ids(top) == newest_first[:2]
    assert top.json()["has_more"] is False


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_limits_outside_1_to_100_are_refused(api, limit):
    response = api.get("/v1/customers", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "limit"


def test_an_unknown_cursor_is_resource_missing(api, other_account):
    theirs = factories.make_customer(other_account)
    response = api.get("/v1/customers", {"starting_after": theirs.id})
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("starting_after", "resource_missing")


def test_both_cursors_at_once_are_refused(api, five_customers):
    response = api.get(
        "/v1/customers",
        {"starting_after": five_customers[0].id, "ending_before": five_customers[1].id},
    )
    assert response.status_code == 400


def test_created_filters(api, five_customers):
    middle = int(five_customers[2].created.timestamp())
    assert ids(api.get("/v1/customers", {"created[gte]": str(middle)})) == [
        c.id for c in reversed(five_customers[2:])
    ]
    assert ids(api.get("/v1/customers", {"created[lt]": str(middle)})) == [
        c.id for c in reversed(five_customers[:2])
    ]
    assert ids(api.get("/v1/customers", {"created": str(middle)})) == [five_customers[2].id]


def test_customers_filter_by_email_and_hide_deleted(api, five_customers):
    assert ids(api.get("/v1/customers", {"email": "c3@example.com"})) == [five_customers[3].id]
    api.delete(f"/v1/customers/{five_customers[3].id}")
    assert ids(api.get("/v1/customers", {"email": "c3@example.com"})) == []


def test_coupons_page_by_their_code(api, account):
    start = timezone.now() - timedelta(hours=1)
    for index, code in enumerate(["A", "B", "C"]):
        factories.make_coupon(account, code=code, created=start + timedelta(minutes=index))
    assert ids(api.get("/v1/coupons", {"limit": "1", "starting_after": "B"})) == ["A"]
    missing = api.get("/v1/coupons", {"starting_after": "ZZZ"})
    assert missing.json()["error"]["param"] == "starting_after"


# --- expand[] ---------------------------------------------------------------------------------


def test_expand_a_nested_field(api):
    body = api.post(
        "/v1/customers",
        {
            "payment_method": "pm_card_visa",
            "invoice_settings[default_payment_method]": "pm_card_visa",
            "expand[]": "invoice_settings.default_payment_method",
        },
    ).json()
    card = body["invoice_settings"]["default_payment_method"]
    assert card["object"] == "payment_method"
    assert card["card"]["last4"] == "4242"
    assert card["customer"] == body["id"]


def test_expand_through_two_objects(api):
    customer = api.post("/v1/customers", {"payment_method": "pm_card_visa"}).json()
    listed = api.get(
        "/v1/payment_methods",
        {"customer": customer["id"], "expand[0]": "data.customer"},
    ).json()
    assert listed["data"][0]["customer"]["id"] == customer["id"]


def test_expand_on_retrieve_with_indexed_and_bracket_forms(api):
    price = api.post(
        "/v1/prices", {"currency": "usd", "unit_amount": "500", "product_data[name]": "Pro"}
    ).json()
    for query in ({"expand[]": "product"}, {"expand[0]": "product"}):
        body = api.get(f"/v1/prices/{price['id']}", query).json()
        assert body["product"]["name"] == "Pro"


def test_an_unset_field_expands_to_null(api):
    body = api.post("/v1/customers", {"expand[]": "test_clock"}).json()
    assert body["test_clock"] is None


@pytest.mark.parametrize(
    "path", ["email", "nonsense", "invoice_settings", "a.b.c.d.e", "data.customer", ".x", "x."]
)
def test_fields_that_cannot_be_expanded_are_refused(api, path):
    response = api.post("/v1/customers", {"expand[]": path})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "expand"


def test_an_expand_error_writes_nothing(api):
    from billing.models import Customer

    api.post("/v1/customers", {"email": "a@example.com", "expand[]": "nonsense"})
    assert not Customer.objects.exists()


def test_expand_stays_inside_the_callers_scope(api, account, other_account):
    """An id pointing outside the caller's account and mode is left as an id (R-CORE-3)."""
    live_card = factories.make_card(factories.make_customer(account, livemode=True))
    customer = factories.make_customer(account)
    # A corrupt reference across modes must not leak the live card through expand.
    customer.invoice_settings_default_payment_method_id = live_card.id
    customer.save()
    body = api.get(
        f"/v1/customers/{customer.id}", {"expand[]": "invoice_settings.default_payment_method"}
    ).json()
    assert body["invoice_settings"]["default_payment_method"] == live_card.id
