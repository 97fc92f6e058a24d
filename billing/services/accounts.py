"""Account services: settings, branding, exchange rates, API keys."""

import functools
import zoneinfo
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from billing import events
from billing.models import Account, ApiKey, ExchangeRate, RecoverySettings
from billing.serializers import serialize
from billing.validators import validate_currency

# What the settings page may change on an account. Anything else (type, platform, id) is not a
# setting and is refused loudly.
ACCOUNT_SETTINGS_FIELDS = frozenset(
    {
        "name",
        "email",
        "default_currency",
        "timezone",
        "branding_display_name",
        "branding_logo_url",
        "branding_primary_color",
        # For invoices finalized from now on (`Account.invoice_numbering`).
        "invoice_numbering",
        # Replaced whole: the API merges Stripe's metadata update before passing it on.
        "metadata",
    }
)


RECOVERY_SETTINGS_FIELDS = frozenset(
    {
        "retry_mode",
        "retry_days",
        "after_retries_subscription",
        "after_retries_invoice",
        "upcoming_renewal_days",
    }
)


def changed_attributes(before: dict, after: dict) -> dict:
    """Stripe's `previous_attributes`: the old values of what changed, nested as in the object.

    A key that appeared (a new metadata key) is reported with its old value, null, as Stripe does.
    """
    changed = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if key in before and old == new:
            # Most of an object does not change: one comparison (in C) of a whole nested
            # value instead of walking it.
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            inner = changed_attributes(old, new)
            if inner:
                changed[key] = inner
        elif old != new or key not in before:
            changed[key] = old
    return changed


@functools.cache
def known_timezones() -> tuple[str, ...]:
    """Every IANA time zone name this Python knows, sorted (read from disk once per process)."""
    return tuple(sorted(zoneinfo.available_timezones()))


def validate_timezone(value: str) -> None:
    """An IANA time zone name that this Python knows, e.g. `Europe/Paris`."""
    if value not in known_timezones():
        raise ValidationError(f"{value!r} is not a known time zone.", code="invalid_timezone")


@transaction.atomic
def issue_api_key(account: Account, *, livemode: bool, name: str = "") -> tuple[ApiKey, str]:
    """A new secret key for `account` in one mode. The raw key is returned once, never stored."""
    raw = ApiKey.new_raw_key(livemode)
    key = ApiKey(account=account, livemode=livemode, name=name.strip())
    key.set_key(raw)
    key.save()
    return key, raw


@transaction.atomic
def revoke_api_key(key: ApiKey, *, at) -> ApiKey:
    """Stop a key from authenticating from `at` on; revoking twice keeps the first time."""
    key = ApiKey.objects.select_for_update().get(pk=key.pk)
    key.revoke(at)
    key.save(update_fields=["revoked_at"])
    return key


@transaction.atomic
def update_account_settings(account: Account, **fields) -> Account:
    """Change the account's settings (name, currency, time zone, branding, invoice numbering)
    all or nothing.

    Emits `account.updated` (SPEC R-EVT-1) when anything Stripe shows actually changed.
    """
    unknown = set(fields) - ACCOUNT_SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"not account settings: {', '.join(sorted(unknown))}")
    locked = Account.objects.select_for_update().get(pk=account.pk)
    before = serialize(locked)
    for name, value in fields.items():
        setattr(locked, name, value)
    if "timezone" in fields:
        try:
            validate_timezone(locked.timezone)
        except ValidationError as error:
            raise ValidationError({"timezone": error.messages}) from None
    # Validate only what changed: the rest was valid when it was saved.
    exclude = [f.name for f in Account._meta.fields if f.name not in fields]
    locked.full_clean(exclude=exclude, validate_constraints=True)
    locked.save(update_fields=sorted(fields))
    if "default_currency" in fields:
        # A rate from the default currency to itself means nothing.
        locked.exchange_rates.filter(currency=locked.default_currency).delete()
    previous = changed_attributes(before, serialize(locked))
    if previous:
        # Account settings hold in both modes, so listeners of each mode hear of the change.
        for livemode in (False, True):
            events.emit("account.updated", locked, previous_attributes=previous, livemode=livemode)
    for name in fields:
        setattr(account, name, getattr(locked, name))
    return account


@transaction.atomic
def set_exchange_rate(account: Account, *, currency: str, rate: Decimal | str) -> ExchangeRate:
    """Record that one unit of `currency` is worth `rate` units of the default currency."""
    if isinstance(rate, float):
        raise TypeError("exchange rates are Decimals, never floats")
    rate = Decimal(rate)
    validate_currency(currency)
    if currency == account.default_currency:
        raise ValidationError(
            {"currency": "The default currency needs no exchange rate."}, code="default_currency"
        )
    if not rate.is_finite() or rate <= 0:
        raise ValidationError({"rate": "The rate must be greater than zero."}, code="rate")
    exchange_rate, _ = ExchangeRate.objects.update_or_create(
        account=account, currency=currency, defaults={"rate": rate}
    )
    return exchange_rate


@transaction.atomic
def remove_exchange_rate(account: Account, *, currency: str) -> bool:
    """Forget the rate of `currency`; True when there was one."""
    deleted, _ = ExchangeRate.objects.filter(account=account, currency=currency).delete()
    return deleted > 0


@transaction.atomic
def update_recovery_settings(account: Account, *, livemode: bool, **values) -> RecoverySettings:
    """Store the account's revenue-recovery settings for one mode; they apply from the next
    failed payment (and the next period, for upcoming-renewal notices). All or nothing."""
    unknown = set(values) - RECOVERY_SETTINGS_FIELDS
    if unknown:
        raise ValueError(f"not recovery settings: {', '.join(sorted(unknown))}")
    settings = RecoverySettings.objects.select_for_update().filter(
        account=account, livemode=livemode
    ).first() or RecoverySettings(account=account, livemode=livemode)
    for name, value in values.items():
        setattr(settings, name, value)
    settings.full_clean(exclude=["account"])
    settings.save()
    return settings
