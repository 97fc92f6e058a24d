"""Accounts (platform or connected), their API keys, exchange rates and team memberships."""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from billing.choices import AccountType, InvoiceNumbering, Role
from billing.ids import ALPHABET
from billing.models.base import id_field, metadata_field
from billing.validators import validate_currency

# Where Stripe numbers invoices across the account by default (the EU's and the UK's invoicing
# rules ask for one unbroken sequence); elsewhere each customer has its own sequence, which does
# not tell customers how many invoices the account sends.
# fmt: off
ACCOUNT_NUMBERING_COUNTRIES = frozenset({
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GB", "GR", "HR",
    "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
})
# fmt: on


def default_invoice_numbering(country: str) -> str:
    if (country or "").upper() in ACCOUNT_NUMBERING_COUNTRIES:
        return InvoiceNumbering.ACCOUNT
    return InvoiceNumbering.CUSTOMER


def account_invoice_prefix(account_id: str) -> str:
    """The prefix of the account's own sequence: the end of its id, in capitals."""
    return account_id.split("_", 1)[1][-8:].upper()


class Account(models.Model):
    """A merchant: a platform, or a connected account that belongs to a platform."""

    OBJECT = "account"

    id = id_field("acct")
    type = models.CharField(
        max_length=16, choices=AccountType.choices, default=AccountType.PLATFORM
    )
    platform = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="connected_accounts",
        help_text="The platform a connected account belongs to.",
    )
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    country = models.CharField(max_length=2, default="US")
    default_currency = models.CharField(max_length=3, default="usd", validators=[validate_currency])
    timezone = models.CharField(max_length=64, default="UTC")
    branding_display_name = models.CharField(max_length=200, blank=True)
    branding_logo_url = models.URLField(blank=True)
    branding_primary_color = models.CharField(max_length=7, default="#4f46e5")
    # Numbering across the account (one sequence per mode, the account's prefix) or for each
    # customer (the customer's prefix and `next_invoice_sequence`). Blank: the default of the
    # account's country, as Stripe chooses it (`invoice_numbering_in_force`).
    invoice_numbering = models.CharField(
        max_length=8, choices=InvoiceNumbering.choices, blank=True, default=""
    )
    # The last invoice number given in each mode across the account.
    invoice_sequence_test = models.PositiveIntegerField(default=0, editable=False)
    invoice_sequence_live = models.PositiveIntegerField(default=0, editable=False)
    # When a connected account disconnected from its platform (SPEC R-CON-7); None while
    # connected. The platform link stays, so reconnecting restores it.
    deauthorized_at = models.DateTimeField(null=True, blank=True)
    metadata = metadata_field()
    created = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="account_connected_has_platform",
                condition=(Q(type=AccountType.PLATFORM, platform__isnull=True))
                | (Q(type=AccountType.CONNECTED, platform__isnull=False)),
            ),
            models.CheckConstraint(
                name="account_branding_color_hex",
                condition=Q(branding_primary_color__regex=r"^#[0-9A-Fa-f]{6}$"),
            ),
        ]
        indexes = [models.Index(fields=["platform", "created"])]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def object(self) -> str:
        return self.OBJECT

    @property
    def display_name(self) -> str:
        return self.branding_display_name or self.name

    @property
    def invoice_numbering_in_force(self) -> str:
        return self.invoice_numbering or default_invoice_numbering(self.country)

    @property
    def invoice_prefix(self) -> str:
        """The prefix of invoice numbers given across the account."""
        return account_invoice_prefix(self.pk)

    @property
    def is_connected_account(self) -> bool:
        return self.type == AccountType.CONNECTED

    @property
    def is_disconnected(self) -> bool:
        """A connected account that left its platform (SPEC R-CON-7)."""
        return self.type == AccountType.CONNECTED and self.deauthorized_at is not None

    def deauthorize(self, at) -> None:
        if self.deauthorized_at is None:
            self.deauthorized_at = at

    def reauthorize(self) -> None:
        self.deauthorized_at = None


class ExchangeRate(models.Model):
    """How much one unit of `currency` is worth in the account's default currency."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="exchange_rates")
    currency = models.CharField(max_length=3, validators=[validate_currency])
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="exchange_rate_unique"),
            models.CheckConstraint(name="exchange_rate_positive", condition=Q(rate__gt=0)),
        ]

    def __str__(self):
        return f"1 {self.currency.upper()} = {self.rate} {self.account.default_currency.upper()}"


def hash_api_key(raw: str) -> str:
    """Keys carry 256 bits of randomness, so one fast hash is enough (no need for a slow KDF)."""
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiKey(models.Model):
    """A secret key (`sk_test_…` / `sk_live_…`); only its hash is stored, the key is shown once."""

    id = id_field("key")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    livemode = models.BooleanField(default=False)
    name = models.CharField(max_length=100, blank=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    last4 = models.CharField(max_length=4, editable=False)
    created = models.DateTimeField(default=now)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "livemode", "created", "id"])]

    def __str__(self):
        return self.redacted

    @property
    def prefix(self) -> str:
        return "sk_live_" if self.livemode else "sk_test_"

    @property
    def redacted(self) -> str:
        return f"{self.prefix}…{self.last4}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def new_raw_key(cls, livemode: bool) -> str:
        body = "".join(secrets.choice(ALPHABET) for _ in range(48))
        return ("sk_live_" if livemode else "sk_test_") + body

    def set_key(self, raw: str) -> None:
        self.key_hash = hash_api_key(raw)
        self.last4 = raw[-4:]

    def revoke(self, at) -> None:
        if self.revoked_at is None:
            self.revoked_at = at


class Membership(models.Model):
    """A dashboard user's place in an account, with the role that limits what they may do."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.READ_ONLY)
    created = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "account"], name="membership_unique"),
        ]

    def __str__(self):
        return f"{self.user} — {self.account.name} ({self.get_role_display()})"

    # What each role may do in the dashboard; views ask these, never the role string.
    @property
    def can_write(self) -> bool:
        return self.role in {Role.OWNER, Role.FINANCE, Role.SUPPORT}

    @property
    def can_manage_billing(self) -> bool:
        return self.role in {Role.OWNER, Role.FINANCE}

    @property
    def can_manage_account(self) -> bool:
        return self.role == Role.OWNER
