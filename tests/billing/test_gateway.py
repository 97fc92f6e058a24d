"""The payment gateway: the test gateway's card outcomes and card parsing (billing.gateway)."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from billing.choices import CardBrand
from billing.choices import TestCardBehavior as Behavior
from billing.gateway import (
    GATEWAYS,
    TEST_TOKENS,
    ChargeResult,
    PaymentGateway,
    TestGateway,
    card_details,
    gateway_named,
    get_gateway,
    token_card_details,
)
from billing.models import PaymentMethod
from tests import factories

TODAY = date(2025, 6, 15)


def card(number: str) -> PaymentMethod:
    """An unsaved card with `number`, as the services would store it."""
    return PaymentMethod(
        livemode=False, **card_details(number, exp_month=12, exp_year=2030, today=TODAY)
    )


def charge(number: str, *, off_session: bool = True) -> ChargeResult:
    return TestGateway().charge(
        amount=2000, currency="usd", payment_method=card(number), off_session=off_session
    )


def errors_of(excinfo) -> dict[str, list[str]]:
    """The codes of a ValidationError, by Stripe parameter name."""
    return {
        param: [error.code for error in errors]
        for param, errors in excinfo.value.error_dict.items()
    }


# Outcomes of the test cards --------------------------------------------------------------------


def test_4242_card_charge_succeeds():
    # SPEC R-INV-10: 4242424242424242 succeeds
    result = charge("4242424242424242")

    assert result == ChargeResult(status="succeeded", error=None, next_action=None)


def test_generic_decline_card_charge_fails_with_card_declined():
    # SPEC R-INV-10: 4000000000000002 is declined
    result = charge("4000000000000002")

    assert result.status == "failed"
    assert result.error["type"] == "card_error"
    assert result.error["code"] == "card_declined"
    assert result.error["decline_code"] == "generic_decline"
    assert result.error["message"] == "Your card was declined."


def test_insufficient_funds_card_charge_fails_with_insufficient_funds():
    # SPEC R-INV-10: 4000000000009995 insufficient funds
    result = charge("4000000000009995")

    assert result.status == "failed"
    assert result.error["code"] == "card_declined"
    assert result.error["decline_code"] == "insufficient_funds"
    assert result.error["message"] == "Your card has insufficient funds."


def test_authentication_card_charge_requires_action_on_session():
    # SPEC R-INV-10, R-INV-5: 4000002500003155 requires authentication
    result = charge("4000002500003155", off_session=False)

    assert result.status == "requires_action"
    assert result.error is None
    assert result.next_action["type"] == "use_stripe_sdk"
    assert "use_stripe_sdk" in result.next_action


def test_authentication_card_charge_requires_action_off_session_with_stripe_reason():
    # SPEC R-INV-10: off session too; Stripe records authentication_required as the reason
    result = charge("4000002500003155", off_session=True)

    assert result.status == "requires_action"
    assert result.next_action["type"] == "use_stripe_sdk"
    assert result.error["code"] == "authentication_required"


def test_attach_then_fail_card_charge_is_declined():
    # SPEC R-INV-10: 4000000000000341 attaches but every charge fails
    result = charge("4000000000000341")

    assert result.status == "failed"
    assert result.error["code"] == "card_declined"
    assert result.error["decline_code"] == "generic_decline"


def test_decline_error_carries_the_payment_method_as_stripe_renders_it():
    payment_method = card("4000000000000002")

    result = TestGateway().charge(
        amount=2000, currency="usd", payment_method=payment_method, off_session=True
    )

    assert result.error["payment_method"]["id"] == payment_method.id
    assert result.error["payment_method"]["card"]["last4"] == "0002"


@pytest.mark.parametrize(
    "number", ["5555555555554444", "378282246310005", "6011111111111117", "4012888888881881"]
)
def test_other_valid_cards_charge_succeeds(number):
    # SPEC R-INV-10: brand test numbers and any other valid number succeed in test mode
    assert charge(number).status == "succeeded"


def test_confirm_after_authentication_succeeds():
    # SPEC R-INV-10, R-INV-5: once the customer authenticated, the charge goes through
    result = TestGateway().confirm(
        amount=2000, currency="usd", payment_method=card("4000002500003155")
    )

    assert result == ChargeResult(status="succeeded", error=None, next_action=None)


def test_confirm_of_a_declining_card_still_fails():
    result = TestGateway().confirm(
        amount=2000, currency="usd", payment_method=card("4000000000009995")
    )

    assert result.status == "failed"
    assert result.error["decline_code"] == "insufficient_funds"


def test_charge_of_a_float_amount_is_refused():
    # SPEC R-CORE-1: amounts are integers in minor units
    with pytest.raises(TypeError):
        TestGateway().charge(
            amount=20.0, currency="usd", payment_method=card("4242424242424242"), off_session=True
        )


def test_charge_of_nothing_is_refused():
    with pytest.raises(ValueError, match="nothing to charge"):
        TestGateway().charge(
            amount=0, currency="usd", payment_method=card("4242424242424242"), off_session=True
        )


# Tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "behavior"),
    [
        ("pm_card_visa", Behavior.SUCCEED),
        ("pm_card_mastercard", Behavior.SUCCEED),
        ("pm_card_amex", Behavior.SUCCEED),
        ("pm_card_chargeDeclined", Behavior.DECLINE),
        ("pm_card_visa_chargeDeclined", Behavior.DECLINE),
        ("pm_card_chargeDeclinedInsufficientFunds", Behavior.INSUFFICIENT_FUNDS),
        ("pm_card_visa_chargeDeclinedInsufficientFunds", Behavior.INSUFFICIENT_FUNDS),
        ("pm_card_authenticationRequired", Behavior.AUTHENTICATION_REQUIRED),
        ("pm_card_chargeCustomerFail", Behavior.ATTACH_THEN_FAIL),
    ],
)
def test_token_gives_the_card_of_its_test_number(token, behavior):
    # SPEC R-INV-10: token shortcuts work as in Stripe
    assert token_card_details(token, today=TODAY)["test_behavior"] == behavior


def test_token_card_expires_in_december_of_next_year():
    details = token_card_details("pm_card_visa", today=TODAY)

    assert (details["card_exp_month"], details["card_exp_year"]) == (12, 2026)


def test_token_card_has_the_brand_and_last4_of_its_number():
    details = token_card_details("pm_card_amex", today=TODAY)

    assert details["card_brand"] == CardBrand.AMEX
    assert details["card_last4"] == TEST_TOKENS["pm_card_amex"][-4:]


def test_unknown_token_is_refused_on_payment_method():
    with pytest.raises(ValidationError) as excinfo:
        token_card_details("pm_card_nope", today=TODAY)

    assert list(excinfo.value.message_dict) == ["payment_method"]


# Card parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4242424242424242", CardBrand.VISA),
        ("5555555555554444", CardBrand.MASTERCARD),
        ("2223003122003222", CardBrand.MASTERCARD),
        ("378282246310005", CardBrand.AMEX),
        ("371449635398431", CardBrand.AMEX),
        ("6011111111111117", CardBrand.DISCOVER),
        ("6500000000000002", CardBrand.DISCOVER),
        ("3056930009020004", CardBrand.UNKNOWN),
    ],
)
def test_card_brand_comes_from_the_number_prefix(number, brand):
    assert card_details(number, exp_month=1, exp_year=2030, today=TODAY)["card_brand"] == brand


def test_card_details_keep_last4_and_expiry_but_not_the_number():
    details = card_details(
        "4242 4242 4242 4242", exp_month=7, exp_year=2031, cvc="123", today=TODAY
    )

    assert details["card_last4"] == "4242"
    assert (details["card_exp_month"], details["card_exp_year"]) == (7, 2031)
    assert "4242424242424242" not in repr(details)


def test_card_fingerprint_is_stable_for_a_number_and_differs_between_numbers():
    one = card_details("4242424242424242", exp_month=1, exp_year=2030, today=TODAY)
    again = card_details("4242 4242 4242 4242", exp_month=2, exp_year=2031, today=TODAY)
    other = card_details("5555555555554444", exp_month=1, exp_year=2030, today=TODAY)

    assert one["card_fingerprint"] == again["card_fingerprint"]
    assert one["card_fingerprint"] != other["card_fingerprint"]
    assert len(one["card_fingerprint"]) == 16


@pytest.mark.parametrize(
    ("number", "behavior"),
    [
        ("4242424242424242", Behavior.SUCCEED),
        ("4000000000000002", Behavior.DECLINE),
        ("4000000000009995", Behavior.INSUFFICIENT_FUNDS),
        ("4000002500003155", Behavior.AUTHENTICATION_REQUIRED),
        ("4000000000000341", Behavior.ATTACH_THEN_FAIL),
    ],
)
def test_test_number_decides_the_card_behavior(number, behavior):
    # SPEC R-INV-10
    assert (
        card_details(number, exp_month=1, exp_year=2030, today=TODAY)["test_behavior"] == behavior
    )


@pytest.mark.parametrize(
    "number", ["4242424242424241", "4242", "42424242424242424242", "4242abcd42424242", ""]
)
def test_incorrect_number_is_refused_on_card_number(number):
    with pytest.raises(ValidationError) as excinfo:
        card_details(number, exp_month=1, exp_year=2030, today=TODAY)

    assert errors_of(excinfo) == {"card[number]": ["incorrect_number"]}
    assert excinfo.value.message_dict["card[number]"] == ["Your card number is incorrect."]


@pytest.mark.parametrize("month", [0, 13, "ab", None])
def test_invalid_expiry_month_is_refused_on_card_exp_month(month):
    with pytest.raises(ValidationError) as excinfo:
        card_details("4242424242424242", exp_month=month, exp_year=2030, today=TODAY)

    assert errors_of(excinfo) == {"card[exp_month]": ["invalid_expiry_month"]}


def test_expiry_year_in_the_past_is_refused_on_card_exp_year():
    with pytest.raises(ValidationError) as excinfo:
        card_details("4242424242424242", exp_month=12, exp_year=2024, today=TODAY)

    assert errors_of(excinfo) == {"card[exp_year]": ["invalid_expiry_year"]}


def test_implausible_expiry_year_is_refused_on_card_exp_year():
    with pytest.raises(ValidationError) as excinfo:
        card_details("4242424242424242", exp_month=12, exp_year=2999, today=TODAY)

    assert errors_of(excinfo) == {"card[exp_year]": ["invalid_expiry_year"]}


def test_expiry_month_past_this_year_is_refused_on_card_exp_month():
    with pytest.raises(ValidationError) as excinfo:
        card_details("4242424242424242", exp_month=5, exp_year=2025, today=TODAY)

    assert errors_of(excinfo) == {"card[exp_month]": ["invalid_expiry_month"]}


def test_card_expiring_this_month_is_accepted():
    details = card_details("4242424242424242", exp_month=6, exp_year=2025, today=TODAY)

    assert (details["card_exp_month"], details["card_exp_year"]) == (6, 2025)


def test_two_digit_expiry_year_means_this_century():
    details = card_details("4242424242424242", exp_month="08", exp_year="29", today=TODAY)

    assert (details["card_exp_month"], details["card_exp_year"]) == (8, 2029)


@pytest.mark.parametrize("cvc", ["12", "12345", "12a"])
def test_invalid_cvc_is_refused_on_card_cvc(cvc):
    with pytest.raises(ValidationError) as excinfo:
        card_details("4242424242424242", exp_month=1, exp_year=2030, cvc=cvc, today=TODAY)

    assert errors_of(excinfo) == {"card[cvc]": ["invalid_cvc"]}


@pytest.mark.parametrize("cvc", ["123", "1234", None])
def test_three_or_four_digit_or_missing_cvc_is_accepted(cvc):
    card_details("378282246310005", exp_month=1, exp_year=2030, cvc=cvc, today=TODAY)


def test_every_invalid_card_field_is_reported_at_once():
    with pytest.raises(ValidationError) as excinfo:
        card_details("1234", exp_month=13, exp_year=1999, cvc="1", today=TODAY)

    assert set(excinfo.value.message_dict) == {
        "card[number]",
        "card[exp_month]",
        "card[exp_year]",
        "card[cvc]",
    }


# Choosing a gateway ----------------------------------------------------------------------------


def test_payment_gateway_is_an_interface():
    with pytest.raises(TypeError):
        PaymentGateway()


@pytest.mark.django_db
def test_every_account_uses_the_test_gateway():
    account = factories.make_account()

    assert isinstance(get_gateway(account.id), TestGateway)


def test_gateway_registry_knows_the_test_gateway():
    assert GATEWAYS["test"] is TestGateway
    assert isinstance(gateway_named("test"), TestGateway)


def test_unknown_gateway_name_fails_loudly():
    with pytest.raises(ValueError, match="unknown payment gateway 'stripe'"):
        gateway_named("stripe")
