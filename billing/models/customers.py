"""Customers, their payment methods and their balance history."""

import re
import secrets

from django.db import models
from django.db.models import Q

from billing.choices import (
    BalanceTransactionType,
    CardBrand,
    PaymentMethodType,
    TestCardBehavior,
)
from billing.models.base import ModeScoped, id_field, metadata_field
from billing.validators import validate_currency

INVOICE_PREFIX_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Stripe's rule for a customer's prefix: 3 to 12 capital letters or digits.
INVOICE_PREFIX = re.compile(r"[A-Z0-9]{3,12}")


def new_invoice_prefix() -> str:
    """A random prefix for a new customer's invoice numbers, as Stripe makes them: 8
    characters, 36^8 of them, so that a clash within an account is rare (and checked)."""
    return "".join(secrets.choice(INVOICE_PREFIX_CHARS) for _ in range(8))


def new_invoice_prefixes(count: int) -> list[str]:
    """`count` different random prefixes, for customers made in bulk (a new account's)."""
    prefixes = set()
    while len(prefixes) < count:
        prefixes.add(new_invoice_prefix())
    return list(prefixes)


class Customer(ModeScoped):
    """Someone the account bills."""

    OBJECT = "customer"

    id = id_field("cus")
    email = models.EmailField(blank=True, db_index=True)
    name = models.CharField(max_length=256, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    description = models.TextField(blank=True)
    # Stripe's address object: line1, line2, city, state, postal_code, country.
    address = models.JSONField(null=True, blank=True)
    preferred_locales = models.JSONField(default=list, blank=True)
    # The customer's IANA time zone, used to state dates in their emails (SPEC R-MAIL-3).
    timezone = models.CharField(max_length=64, blank=True)
    # Negative is a credit the customer can spend, positive is owed (Stripe's sign).
    balance = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, blank=True, validators=[validate_currency])
    invoice_settings_default_payment_method = models.ForeignKey(
        "billing.PaymentMethod",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Legacy sources (cards attached as `card_…`/`src_…`); R-TRIAL-7 counts them.
    default_source = models.CharField(max_length=255, blank=True)
    test_clock = models.ForeignKey(
        "billing.TestClock",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customers",
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Its invoice numbers when the account numbers invoices for each customer: PREFIX-0001…
    invoice_prefix = models.CharField(max_length=12, default=new_invoice_prefix)
    next_invoice_sequence = models.PositiveIntegerField(default=1)
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["account", "livemode", "email"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="customer_test_clock_test_mode",
                condition=Q(test_clock__isnull=True) | Q(livemode=False),
            ),
            # Two customers with one prefix would be given the same invoice numbers. The prefix
            # first: an index led by the account looks, to a planner without statistics, as
            # good as the primary key for "this customer of this account" (it chose it, and
            # read every customer of the account for each lookup).
            models.UniqueConstraint(
                fields=["invoice_prefix", "account"], name="customer_invoice_prefix_unique"
            ),
            models.CheckConstraint(
                name="customer_next_invoice_sequence_positive",
                condition=Q(next_invoice_sequence__gte=1),
            ),
        ]

    def __str__(self):
        return self.email or self.name or self.id

    @property
    def has_default_payment_method(self) -> bool:
        return bool(self.invoice_settings_default_payment_method_id or self.default_source)


class PaymentMethod(ModeScoped):
    """A card. In test mode its number decides what charges do (SPEC R-INV-10)."""

    OBJECT = "payment_method"

    id = id_field("pm")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="payment_methods"
    )
    type = models.CharField(
        max_length=20, choices=PaymentMethodType.choices, default=PaymentMethodType.CARD
    )
    card_brand = models.CharField(max_length=20, choices=CardBrand.choices, default=CardBrand.VISA)
    card_last4 = models.CharField(max_length=4)
    card_exp_month = models.PositiveSmallIntegerField()
    card_exp_year = models.PositiveSmallIntegerField()
    card_fingerprint = models.CharField(max_length=32, blank=True)
    card_funding = models.CharField(max_length=10, default="credit")
    card_country = models.CharField(max_length=2, default="US")
    test_behavior = models.CharField(
        max_length=32, choices=TestCardBehavior.choices, default=TestCardBehavior.SUCCEED
    )
    # Stripe's billing_details object: address, email, name, phone.
    billing_details = models.JSONField(default=dict, blank=True)
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["customer", "created"]),
            # The expiring-card reminder looks cards up by expiry.
            models.Index(fields=["card_exp_year", "card_exp_month"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="payment_method_exp_month_range",
                condition=Q(card_exp_month__gte=1, card_exp_month__lte=12),
            ),
            models.CheckConstraint(
                name="payment_method_last4_digits", condition=Q(card_last4__regex=r"^[0-9]{4}$")
            ),
        ]

    def __str__(self):
        return f"{self.get_card_brand_display()} •••• {self.card_last4}"


class CustomerBalanceTransaction(ModeScoped):
    """One change to a customer's balance (credits, amounts applied to invoices…)."""

    OBJECT = "customer_balance_transaction"

    id = id_field("cbtxn")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="balance_transactions"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    type = models.CharField(max_length=32, choices=BalanceTransactionType.choices)
    description = models.CharField(max_length=350, blank=True)
    ending_balance = models.BigIntegerField()
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="balance_transactions",
    )
    metadata = metadata_field()

    class Meta:
        indexes = [models.Index(fields=["customer", "created"])]
