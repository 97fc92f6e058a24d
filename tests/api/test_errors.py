"""Stripe's error shapes, and that no input ever makes the /v1 API fail with a 500."""

import itertools

import pytest

from billing.api.base import ApiView
from billing.models import Customer, Event, PaymentMethod, Price, Product
from billing.services import CardError

pytestmark = pytest.mark.django_db


def error(response, status=400) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_unknown_parameters_are_rejected_naming_them(api):
    body = error(api.post("/v1/customers", {"emial": "typo@example.com"}))
    assert body == {
        "type": "invalid_request_error",
        "code": "parameter_unknown",
        "param": "emial",
        "message": "Received unknown parameter: emial",
    }


def test_unknown_nested_parameters_are_named_in_bracket_notation(api):
    body = error(api.post("/v1/customers", {"address[town]": "Paris"}))
    assert (body["param"], body["code"]) == ("address[town]", "parameter_unknown")


def test_missing_required_parameters_are_named(api):
    body = error(api.post("/v1/prices", {"unit_amount": "100", "product_data[name]": "Pro"}))
    assert (body["param"], body["code"]) == ("currency", "parameter_missing")


def test_service_validation_errors_name_the_stripe_parameter(api):
    body = error(api.post("/v1/customers", {"email": "not-an-email"}))
    assert body["param"] == "email"
    assert body["code"] == "email_invalid"


def test_card_errors_name_the_card_parameter(api):
    body = error(
        api.post(
            "/v1/payment_methods",
            {
                "type": "card",
                "card[number]": "4242424242424241",
                "card[exp_month]": "12",
                "card[exp_year]": "2040",
            },
        )
    )
    assert body["param"] == "card[number]"


def test_a_missing_object_in_the_url_is_404_resource_missing_on_id(api):
    body = error(api.get("/v1/customers/cus_nope"), 404)
    assert body == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "param": "id",
        "message": "No such customer: 'cus_nope'",
    }


def test_a_missing_object_in_a_parameter_is_400_naming_it(api):
    body = error(api.post("/v1/payment_methods/pm_card_visa/attach", {"customer": "cus_nope"}))
    assert (body["param"], body["code"]) == ("customer", "resource_missing")


def test_card_errors_become_402_with_the_decline_code():
    """A CardError from a service is Stripe's 402 with its decline_code (SPEC R-INV-10)."""
    raised = CardError(
        {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_method": "pm_123",
        }
    )
    api_error = ApiView()._as_api_error(raised)
    assert api_error.status == 402
    assert api_error.body() == {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_method": "pm_123",
        }
    }


def test_json_bodies_are_refused(api):
    response = api.client.post(
        "/v1/customers",
        '{"email": "a@b.co"}',
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.raw_key}",
    )
    assert error(response)["message"].startswith("Invalid request: unsupported Content-Type")


def test_a_body_that_is_not_utf8_is_refused(api):
    assert api.post("/v1/customers", b"email=\xff\xfe").status_code == 400


def test_nothing_is_written_when_a_later_step_fails(api):
    """The customer is not created when attaching its payment method fails."""
    before = Customer.objects.count()
    response = api.post("/v1/customers", {"email": "a@example.com", "payment_method": "pm_nope"})
    assert error(response)["param"] == "payment_method"
    assert Customer.objects.count() == before
    assert not Event.objects.filter(type="customer.created").exists()


def test_nothing_is_written_when_a_default_payment_method_is_not_attached(api):
    card = api.post(
        "/v1/payment_methods",
        {
            "type": "card",
            "card[number]": "4242424242424242",
            "card[exp_month]": "12",
            "card[exp_year]": "2040",
        },
    ).json()
    response = api.post("/v1/customers", {"invoice_settings[default_payment_method]": card["id"]})
    assert error(response)["param"] == "invoice_settings[default_payment_method]"
    assert not Customer.objects.exists()
    assert PaymentMethod.objects.get(pk=card["id"]).customer_id is None


def test_a_price_with_a_bad_recurring_interval_creates_no_product(api):
    response = api.post(
        "/v1/prices",
        {
            "currency": "usd",
            "unit_amount": "100",
            "product_data[name]": "Pro",
            "recurring[interval]": "month",
            "recurring[interval_count]": "13",
        },
    )
    assert error(response)["param"] == "recurring[interval_count]"
    assert not Product.objects.exists() and not Price.objects.exists()


# --- Garbage never makes a 500 ----------------------------------------------------------------

GARBAGE_VALUES = [
    "",
    "x",
    "-1",
    "99999999999999999999999999999",
    "1e308",
    "true",
    "null",
    "%00",
    "\u202e\u0000",
    "a" * 6000,
    "'; DROP TABLE billing_customer; --",
]
GARBAGE_SUFFIXES = ["", "[x]", "[0]", "[]", "[0][x]", "[x][y][z]"]


def garbage_bodies(names):
    for name, suffix, value in itertools.product(names, GARBAGE_SUFFIXES, GARBAGE_VALUES):
        yield {f"{name}{suffix}": value}


ENDPOINTS = {
    "/v1/customers": [
        "email",
        "name",
        "metadata",
        "address",
        "invoice_settings",
        "payment_method",
        "test_clock",
        "preferred_locales",
        "expand",
    ],
    "/v1/payment_methods": ["type", "card", "billing_details", "metadata"],
    "/v1/products": ["name", "active", "default_price_data", "metadata"],
    "/v1/prices": ["currency", "unit_amount", "product", "product_data", "recurring", "lookup_key"],
    "/v1/coupons": ["id", "percent_off", "amount_off", "duration", "redeem_by", "currency"],
}


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_garbage_posts_never_cause_a_500(api, path, settings):
    settings.RELANCE_API_RATE_LIMIT = 0
    statuses = set()
    for body in garbage_bodies(ENDPOINTS[path]):
        response = api.post(path, body)
        assert response.status_code < 500, (body, response.content)
        statuses.add(response.status_code)
    assert 400 in statuses


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers",
        "/v1/payment_methods",
        "/v1/products",
        "/v1/prices",
        "/v1/coupons",
    ],
)
def test_garbage_list_queries_never_cause_a_500(api, path, settings):
    settings.RELANCE_API_RATE_LIMIT = 0
    names = ["limit", "starting_after", "ending_before", "created", "expand", "customer", "active"]
    for body in garbage_bodies(names):
        response = api.get(path, body)
        assert response.status_code < 500, (body, response.content)


@pytest.mark.parametrize(
    "object_id", ["x" * 3000, "cus_%00", "../../etc", "' OR 1=1 --", "😀", "cus_" + "9" * 50]
)
def test_bad_ids_are_404_not_500(api, object_id):
    for path in ("customers", "payment_methods", "products", "prices", "coupons"):
        response = api.get(f"/v1/{path}/{object_id}")
        assert response.status_code == 404, (path, response.content)
