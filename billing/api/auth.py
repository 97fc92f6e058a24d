"""Who is calling: the secret key (Bearer or HTTP Basic), its mode, the account acted as
(`Stripe-Account`), and a per-key rate limit."""

import base64
import binascii
import time
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from billing.api.errors import ApiError
from billing.choices import AccountType
from billing.models import Account, ApiKey
from billing.models.accounts import hash_api_key
from billing.prepared import Prepared

# Stripe's keys are ~110 characters; anything far longer is not a key and is not hashed.
MAX_KEY_LENGTH = 256
# `last_used` is a dashboard hint, not an audit log: write it at most once a minute per key.
LAST_USED_PRECISION = timedelta(minutes=1)
# Stripe's own default (live mode); settings.RELANCE_API_RATE_LIMIT overrides it.
DEFAULT_RATE_LIMIT = 100

# Every request asks it, with the same shape: compiled once (billing/prepared.py).
_KEY_BY_HASH = Prepared(
    lambda key_hash: ApiKey.objects.select_related("account").filter(key_hash=key_hash)
)


@dataclass
class ApiContext:
    """One authenticated request: the account it acts as, its mode, and its ids."""

    api_key: ApiKey
    account: Account
    livemode: bool
    request_id: str
    idempotency_key: str | None = None
    extra: dict = field(default_factory=dict)


def _redacted(raw: str) -> str:
    """A key as Stripe echoes it in errors: the prefix, stars, the last four characters."""
    prefix = raw[:8] if raw.startswith(("sk_test_", "sk_live_")) else ""
    return f"{prefix}{'*' * 24}{raw[-4:]}"


def _no_key() -> ApiError:
    return ApiError(
        "You did not provide an API key. You need to provide your API key in the Authorization "
        "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        status=401,
    )


def redacted_key(key: ApiKey) -> str:
    """A stored key as Stripe echoes it in errors (only its last four characters are known)."""
    return f"{key.prefix}{'*' * 24}{key.last4}"


def no_access(redacted: str, account_id: str) -> ApiError:
    """Stripe's 403 for an account the key may not act on or read: unknown, another
    platform's, or disconnected from the caller's platform."""
    return ApiError(
        f"The provided key '{redacted}' does not have access to account "
        f"'{account_id[:64]}' (or that account does not exist). Application access may "
        "have been revoked.",
        status=403,
        code="account_invalid",
    )


def raw_key(request) -> str:
    """The secret key from `Authorization: Bearer …` or Basic auth (the key as user name)."""
    header = request.META.get("HTTP_AUTHORIZATION", "").strip()
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError("Invalid HTTP Basic credentials.", status=401) from None
        # `curl -u sk_test_…:` sends the key as the user name and an empty password.
        return decoded.partition(":")[0]
    return ""


def authenticate(request, *, request_id: str) -> ApiContext:
    """The calling key and the account it acts as, or a 401/403 in Stripe's words."""
    raw = raw_key(request)
    if not raw:
        raise _no_key()
    key = None
    if len(raw) <= MAX_KEY_LENGTH:
        key = _KEY_BY_HASH.first(hash_api_key(raw))
    if key is None:
        raise ApiError(f"Invalid API Key provided: {_redacted(raw)}", status=401)
    if not key.is_active:
        raise ApiError(
            f"Expired API Key provided: {_redacted(raw)}", status=401, code="api_key_expired"
        )
    now = timezone.now()
    if key.last_used is None or now - key.last_used > LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used=now)

    account = key.account
    header = request.META.get("HTTP_STRIPE_ACCOUNT", "").strip()
    if header and header != account.id:
        connected = None
        if "\x00" not in header:  # PostgreSQL cannot compare text holding NUL
            connected = Account.objects.filter(
                pk=header, platform=account, type=AccountType.CONNECTED
            ).first()
        if connected is None or connected.is_disconnected:
            # Stripe answers 403 whether the account does not exist, is someone else's, or
            # disconnected from the platform (SPEC R-CON-7: access was revoked).
            raise no_access(_redacted(raw), header)
        account = connected
    return ApiContext(api_key=key, account=account, livemode=key.livemode, request_id=request_id)


def check_rate_limit(key: ApiKey) -> None:
    """At most `RELANCE_API_RATE_LIMIT` requests per second per key (429 beyond).

    A fixed one-second window in Django's cache: cheap, and exact with a shared cache (Redis,
    Memcached); with the default per-process cache each server process counts on its own.
    """
    limit = getattr(settings, "RELANCE_API_RATE_LIMIT", DEFAULT_RATE_LIMIT)
    if not limit:
        return
    bucket = f"relance-api-rate:{key.pk}:{int(time.time())}"
    cache.add(bucket, 0, timeout=2)
    try:
        count = cache.incr(bucket)
    except ValueError:  # expired between add and incr: this request opens the window
        cache.set(bucket, 1, timeout=2)
        count = 1
    if count > limit:
        raise ApiError(
            "Too many requests hit the API too quickly. We recommend an exponential backoff "
            "of your requests.",
            status=429,
            code="rate_limit",
        )
