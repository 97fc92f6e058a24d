"""Payments go through a `PaymentGateway`; the built-in one is decided by the card (SPEC R-INV-10).

The engine never talks to a processor directly: it asks `get_gateway(account_id)` for a gateway
and calls `charge` (and `confirm` once the customer completed 3-D Secure). The test gateway decides
every outcome from the card's `test_behavior`, which `card_details` derives from Stripe's test
card numbers, so invoices, dunning and authentication flows can be rehearsed end to end.

Card numbers never reach the database: `card_details` returns what Stripe shows of a card (brand,
last four digits, expiry, fingerprint…) and the number is dropped.
"""

import abc
import copy
import datetime
import hashlib
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from billing.choices import CardBrand, TestCardBehavior
from billing.models import PaymentMethod
from billing.serializers import serialize

# ---------------------------------------------------------------------------------------------
# Test cards and tokens (SPEC R-INV-10).
# ---------------------------------------------------------------------------------------------

# Stripe's test numbers whose charges do something other than succeed. Any other valid number
# succeeds in test mode.
TEST_CARDS: dict[str, str] = {
    "4000000000000002": TestCardBehavior.DECLINE,
    "4000000000009995": TestCardBehavior.INSUFFICIENT_FUNDS,
    # "Authenticate unless set up": this product has no SetupIntents, so it always asks.
    "4000002500003155": TestCardBehavior.AUTHENTICATION_REQUIRED,
    # "Always authenticate".
    "4000002760003184": TestCardBehavior.AUTHENTICATION_REQUIRED,
    "4000000000000341": TestCardBehavior.ATTACH_THEN_FAIL,
}

# Stripe's test numbers that are not credit cards; every other card is "credit".
TEST_CARD_FUNDING: dict[str, str] = {
    "4000056655665556": "debit",
    "5200828282828210": "debit",
    "5105105105105100": "prepaid",
}

# Stripe's `pm_card_*` shortcuts: a ready-made payment method for a test number. Stripe spells
# the decline shortcuts both with and without `visa_`; both work.
TEST_TOKENS: dict[str, str] = {
    "pm_card_visa": "4242424242424242",
    "pm_card_visa_debit": "4000056655665556",
    "pm_card_mastercard": "5555555555554444",
    "pm_card_amex": "378282246310005",
    "pm_card_discover": "6011111111111117",
    "pm_card_chargeDeclined": "4000000000000002",
    "pm_card_visa_chargeDeclined": "4000000000000002",
    "pm_card_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "4000000000009995",
    "pm_card_authenticationRequired": "4000002500003155",
    "pm_card_authenticationRequiredOnSetup": "4000002500003155",
    "pm_card_chargeCustomerFail": "4000000000000341",
}

# ---------------------------------------------------------------------------------------------
# Card parsing.
# ---------------------------------------------------------------------------------------------

# Stripe's own words for invalid card data (docs.stripe.com/error-codes).
INCORRECT_NUMBER = "Your card number is incorrect."
INVALID_EXPIRY_MONTH = "Your card's expiration month is invalid."
INVALID_EXPIRY_YEAR = "Your card's expiration year is invalid."
EXPIRY_YEAR_PAST = "Your card's expiration year is in the past."
EXPIRY_DATE_PAST = "Your card's expiration date is in the past."
INVALID_CVC = "Your card's security code is invalid."

# How far ahead an expiry year may be; Stripe refuses implausible years too.
MAX_YEARS_AHEAD = 50


def luhn_valid(digits: str) -> bool:
    """True when `digits` passes the Luhn checksum every card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_brand(digits: str) -> str:
    """The card network, from the number's leading digits (its IIN range)."""
    if digits.startswith("4"):
        return CardBrand.VISA
    if digits[:2] in {"34", "37"}:
        return CardBrand.AMEX
    if 51 <= int(digits[:2]) <= 55 or 2221 <= int(digits[:4]) <= 2720:
        return CardBrand.MASTERCARD
    if digits.startswith("6011") or digits.startswith("65"):
        return CardBrand.DISCOVER
    return CardBrand.UNKNOWN


def card_fingerprint(digits: str) -> str:
    """A stable identifier of the number, equal for two cards with the same number."""
    return hashlib.sha256(digits.encode()).hexdigest()[:16]


def _ascii_digits(value: str) -> bool:
    """True for a non-empty string of 0-9 (str.isdigit alone also accepts other scripts' digits)."""
    return value.isascii() and value.isdigit()


def _as_int(value) -> int | None:
    """`value` as an int (forms and the API send strings), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _ascii_digits(value.strip()):
        return int(value.strip())
    return None


def card_details(
    number: str,
    *,
    exp_month: int,
    exp_year: int,
    cvc: str | None = None,
    today: datetime.date,
) -> dict:
    """What is kept of a card: the `PaymentMethod` card fields, validated as Stripe does.

    Raises ValidationError keyed by Stripe's parameter names (`card[number]`, `card[exp_month]`,
    `card[exp_year]`, `card[cvc]`), every problem at once. The number itself is not returned.
    """
    errors: dict[str, ValidationError] = {}

    digits = str(number or "").replace(" ", "")
    if not (_ascii_digits(digits) and 13 <= len(digits) <= 19 and luhn_valid(digits)):
        errors["card[number]"] = ValidationError(INCORRECT_NUMBER, code="incorrect_number")

    month = _as_int(exp_month)
    if month is None or not 1 <= month <= 12:
        errors["card[exp_month]"] = ValidationError(
            INVALID_EXPIRY_MONTH, code="invalid_expiry_month"
        )

    year = _as_int(exp_year)
    if year is not None and year < 100:
        # Two-digit years, as printed on cards.
        year += 2000
    if year is None or year > today.year + MAX_YEARS_AHEAD:
        errors["card[exp_year]"] = ValidationError(INVALID_EXPIRY_YEAR, code="invalid_expiry_year")
    elif year < today.year:
        errors["card[exp_year]"] = ValidationError(EXPIRY_YEAR_PAST, code="invalid_expiry_year")
    elif month is not None and year == today.year and month < today.month:
        errors.setdefault(
            "card[exp_month]", ValidationError(EXPIRY_DATE_PAST, code="invalid_expiry_month")
        )

    if cvc is not None:
        cvc = str(cvc).strip()
        if not (_ascii_digits(cvc) and 3 <= len(cvc) <= 4):
            errors["card[cvc]"] = ValidationError(INVALID_CVC, code="invalid_cvc")

    if errors:
        raise ValidationError(errors)

    return {
        "card_brand": card_brand(digits),
        "card_last4": digits[-4:],
        "card_exp_month": month,
        "card_exp_year": year,
        "card_fingerprint": card_fingerprint(digits),
        "card_funding": TEST_CARD_FUNDING.get(digits, "credit"),
        "card_country": "US",
        "test_behavior": TEST_CARDS.get(digits, TestCardBehavior.SUCCEED),
    }


def token_card_details(token: str, *, today: datetime.date) -> dict:
    """The card fields of a `pm_card_*` shortcut, expiring in December of next year.

    Raises ValidationError on `payment_method` for a token Stripe would not know either.
    """
    try:
        number = TEST_TOKENS[token]
    except KeyError:
        raise ValidationError(
            {"payment_method": ValidationError(f"No such PaymentMethod: '{token}'")},
            code="resource_missing",
        ) from None
    return card_details(number, exp_month=12, exp_year=today.year + 1, today=today)


# ---------------------------------------------------------------------------------------------
# Gateways.
# ---------------------------------------------------------------------------------------------

SUCCEEDED = "succeeded"
REQUIRES_ACTION = "requires_action"
FAILED = "failed"


@dataclass(frozen=True)
class ChargeResult:
    """What one charge attempt did.

    `error` is Stripe's error object (`type`, `code`, `decline_code`, `message`, `doc_url`,
    `payment_method`) when the charge failed — and, as Stripe does, when an off-session charge
    needs authentication (`code="authentication_required"`). `next_action` is Stripe's
    PaymentIntent `next_action` when `status="requires_action"`.
    """

    status: str  # "succeeded" | "requires_action" | "failed"
    error: dict | None = None
    next_action: dict | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


class PaymentGateway(abc.ABC):
    """Where charges go. A real processor plugs in by implementing these two methods."""

    name: str = ""

    @abc.abstractmethod
    def charge(
        self, *, amount: int, currency: str, payment_method: PaymentMethod, off_session: bool
    ) -> ChargeResult:
        """Try to collect `amount` (minor units) from `payment_method`."""

    @abc.abstractmethod
    def confirm(self, *, amount: int, currency: str, payment_method: PaymentMethod) -> ChargeResult:
        """Collect `amount` once the customer completed the authentication a charge asked for."""


def _check_amount(amount: int, currency: str) -> None:
    """Amounts are positive integers in minor units (SPEC R-CORE-1); anything else is a bug."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amounts are integers in minor units, not {type(amount).__name__}")
    if amount <= 0:
        raise ValueError(f"nothing to charge: amount {amount} {currency}")


def _card_error(payment_method: PaymentMethod, *, code: str, decline_code: str, message: str):
    """Stripe's error object for a refused card, naming the payment method as Stripe does."""
    return {
        "type": "card_error",
        "code": code,
        "decline_code": decline_code,
        "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
        "message": message,
        "payment_method": serialize(payment_method),
    }


DECLINES = {
    TestCardBehavior.DECLINE: ("generic_decline", "Your card was declined."),
    TestCardBehavior.INSUFFICIENT_FUNDS: (
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    # 4000000000000341 attaches fine; every charge is then declined.
    TestCardBehavior.ATTACH_THEN_FAIL: ("generic_decline", "Your card was declined."),
}

# Stripe's next_action for 3-D Secure: Stripe.js reads `use_stripe_sdk` to run the challenge.
# Its contents are Stripe.js's private business; the type alone tells a client what to do.
THREE_D_SECURE_ACTION = {
    "type": "use_stripe_sdk",
    "use_stripe_sdk": {"type": "three_d_secure_redirect"},
}


class TestGateway(PaymentGateway):
    """Decides each charge from the card's `test_behavior` (SPEC R-INV-10); moves no money."""

    __test__ = False  # not a pytest test class, whatever its name
    name = "test"

    def charge(
        self, *, amount: int, currency: str, payment_method: PaymentMethod, off_session: bool
    ) -> ChargeResult:
        _check_amount(amount, currency)
        behavior = payment_method.test_behavior
        if behavior == TestCardBehavior.AUTHENTICATION_REQUIRED:
            # On or off session, the customer must authenticate (this product has no SetupIntent
            # that could exempt later off-session charges). Off session, Stripe also records why.
            error = None
            if off_session:
                error = _card_error(
                    payment_method,
                    code="authentication_required",
                    decline_code="authentication_required",
                    message="Your card was declined. This transaction requires authentication.",
                )
            return ChargeResult(
                status=REQUIRES_ACTION,
                error=error,
                next_action=copy.deepcopy(THREE_D_SECURE_ACTION),
            )
        return self._settle(payment_method)

    def confirm(self, *, amount: int, currency: str, payment_method: PaymentMethod) -> ChargeResult:
        _check_amount(amount, currency)
        # Authentication done: a card that only needed it now succeeds; a declining one still fails.
        return self._settle(payment_method)

    def _settle(self, payment_method: PaymentMethod) -> ChargeResult:
        """The outcome once no authentication stands in the way."""
        decline = DECLINES.get(payment_method.test_behavior)
        if decline is None:
            return ChargeResult(status=SUCCEEDED)
        decline_code, message = decline
        return ChargeResult(
            status=FAILED,
            error=_card_error(
                payment_method, code="card_declined", decline_code=decline_code, message=message
            ),
        )


# The gateways this installation knows, by name. A real processor registers here.
GATEWAYS: dict[str, type[PaymentGateway]] = {
    TestGateway.name: TestGateway,
}
DEFAULT_GATEWAY = TestGateway.name


def gateway_named(name: str) -> PaymentGateway:
    """The registered gateway called `name`; an unknown name is a configuration error."""
    try:
        return GATEWAYS[name]()
    except KeyError:
        raise ValueError(f"unknown payment gateway {name!r}") from None


def get_gateway(account_id: str) -> PaymentGateway:
    """The gateway that charges the customers of the account `account_id`.

    Every account, in both modes, uses the test gateway: live mode has no real processor until
    one is plugged in behind `PaymentGateway` and registered in GATEWAYS.
    """
    return gateway_named(DEFAULT_GATEWAY)
