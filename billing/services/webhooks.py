"""Webhook endpoints and their deliveries (SPEC R-EVT-2..4): create, update, delete endpoints;
resend one delivery, replay many, send a test event, roll a signing secret.

How deliveries are written, sent and retried is `billing.webhooks` (docs/webhooks.md); these
are the verbs people use, from the API, the admin and the dashboard. Stripe emits no events
about endpoints themselves, so neither do these services.

A live-mode endpoint may not point into the server's own network: its host is resolved and
every address must be public, or a merchant's key could make Relance POST to internal services
(SSRF). `RELANCE_WEBHOOKS_ALLOW_PRIVATE` lifts that for local development and tests. Delivery
checks again when it connects, since DNS answers change.
"""

import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing.choices import AccountType, WebhookEndpointStatus
from billing.events import EVENT_TYPES
from billing.models import (
    Account,
    Event,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from billing.models.webhooks import new_webhook_secret
from billing.services.catalog import _merged_metadata, _metadata

# The delivery job's handler registers when this module loads (AppConfig.ready loads services).
from billing.webhooks import delivery as _delivery  # noqa: F401

# Stripe's limit per account and mode: every endpoint multiplies each event's deliveries.
MAX_ENDPOINTS = 16
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 5000
# `2025-03-31.basil`, or a dated version without a name (`2020-08-27`).
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[a-z_]+)?$")
UPDATE_FIELDS = frozenset(
    {"url", "enabled_events", "description", "metadata", "disabled", "retry_schedule"}
)
# A rolled secret may keep signing for at most a day beside the new one (Stripe's limit).
MAX_ROLL_OVERLAP_HOURS = 24


def _invalid(param: str, message: str, code: str | None = None) -> ValidationError:
    return ValidationError({param: ValidationError(message, code=code)})


def allow_private_urls() -> bool:
    """Whether endpoints may point at loopback, private or link-local hosts in live mode."""
    return bool(getattr(settings, "RELANCE_WEBHOOKS_ALLOW_PRIVATE", False))


# getaddrinfo has no timeout, and the check runs inside the caller's transaction (on SQLite,
# holding the write lock): a slow resolver is given a few seconds, then the URL is refused.
RESOLVE_TIMEOUT = 3  # seconds
_resolver = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")


def resolve_host(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal is its own answer); OSError if it does
    not resolve within RESOLVE_TIMEOUT."""
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=RESOLVE_TIMEOUT)
    except FuturesTimeout:
        raise OSError(f"resolving {host} took more than {RESOLVE_TIMEOUT} s") from None
    return sorted({info[4][0] for info in infos})


def is_public_address(address: str) -> bool:
    """Whether `address` is a globally routable unicast address (not loopback, private,
    link-local, multicast, reserved or unspecified)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (`fe80::1%eth0`)
    if isinstance(ip, ipaddress.IPv6Address):
        # `::ffff:127.0.0.1` (IPv4-mapped) and `2002:7f00:1::` (6to4) carry an IPv4 address.
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            return is_public_address(str(inner))
    return ip.is_global and not ip.is_multicast


def validate_url(url, *, livemode: bool) -> str:
    """`url` if it can receive webhooks: http(s) with a host, and in live mode only public
    addresses (after DNS resolution) unless private ones are allowed; else a ValidationError
    on `url`."""
    if not isinstance(url, str) or not url.strip():
        raise _invalid("url", "A URL is required.", "url_invalid")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise _invalid(
            "url", f"The URL must be at most {MAX_URL_LENGTH} characters.", "url_invalid"
        )
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in url):
        raise _invalid(
            "url", "Invalid URL: it contains spaces or control characters.", "url_invalid"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise _invalid("url", "Invalid URL: it must start with https:// or http://.", "url_invalid")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _invalid("url", "Invalid URL: the port is not valid.", "url_invalid") from None
    if not host:
        raise _invalid("url", "Invalid URL: it has no host.", "url_invalid")
    try:
        host.encode("idna")
    except UnicodeError:
        raise _invalid("url", "Invalid URL: the host name is not valid.", "url_invalid") from None
    if livemode and not allow_private_urls():
        port = port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            addresses = resolve_host(host, port)
        except (OSError, UnicodeError):
            raise _invalid(
                "url", f"Invalid URL: the host {host} could not be resolved.", "url_invalid"
            ) from None
        if not addresses or not all(is_public_address(address) for address in addresses):
            raise _invalid(
                "url",
                f"Invalid URL: {host} resolves to a private, loopback or link-local address; "
                "live-mode endpoints must be reachable on the public internet.",
                "url_invalid",
            )
    return url


def validate_enabled_events(value) -> list[str]:
    """The event types, each one the product emits (or `*`), duplicates dropped; else a
    ValidationError on `enabled_events`."""
    if not isinstance(value, list | tuple) or not value:
        raise _invalid("enabled_events", "enabled_events must list at least one event type.")
    cleaned = []
    for event_type in value:
        if not isinstance(event_type, str) or (event_type != "*" and event_type not in EVENT_TYPES):
            shown = str(event_type)[:100]
            raise _invalid(
                "enabled_events",
                f"Invalid enabled_events: {shown!r} is not an event type Relance sends "
                "(use '*' for every event).",
            )
        if event_type not in cleaned:
            cleaned.append(event_type)
    return cleaned


def _description(value) -> str:
    value = value or ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION_LENGTH:
        raise _invalid(
            "description", f"description must be at most {MAX_DESCRIPTION_LENGTH} characters."
        )
    return value


def _api_version(value) -> str:
    value = value or ""
    if value and not API_VERSION_RE.match(value):
        raise _invalid("api_version", f"Invalid api_version: {value[:64]}")
    return value


def _status(disabled: bool) -> str:
    return WebhookEndpointStatus.DISABLED if disabled else WebhookEndpointStatus.ENABLED


def _retry_schedule(value) -> list[int]:
    """Seconds after each failed attempt, checked by the model ([] = Stripe's schedule)."""
    probe = WebhookEndpoint(retry_schedule=value if value is not None else [])
    probe.clean()
    return probe.retry_schedule


@transaction.atomic
def create_webhook_endpoint(
    account: Account,
    *,
    livemode: bool,
    url: str,
    enabled_events: list[str],
    description: str = "",
    connect: bool = False,
    api_version: str = "",
    metadata: dict | None = None,
    disabled: bool = False,
    retry_schedule: list[int] | None = None,
) -> WebhookEndpoint:
    """A new endpoint with a fresh signing secret, enabled unless `disabled`, retried on
    `retry_schedule` (seconds after each failed attempt; empty for Stripe's)."""
    livemode = bool(livemode)
    if connect and account.type == AccountType.CONNECTED:
        raise _invalid(
            "connect",
            "Only a platform account has connected accounts whose events an endpoint can receive.",
        )
    endpoint = WebhookEndpoint(
        account=account,
        livemode=livemode,
        url=validate_url(url, livemode=livemode),
        enabled_events=validate_enabled_events(enabled_events),
        description=_description(description),
        connect=bool(connect),
        api_version=_api_version(api_version),
        metadata=_metadata(metadata),
        status=_status(disabled),
        retry_schedule=_retry_schedule(retry_schedule),
        created=timezone.now(),
    )
    # Locking the account serializes concurrent creations, so the limit holds.
    Account.objects.select_for_update().filter(pk=account.pk).first()
    existing = WebhookEndpoint.objects.filter(account=account, livemode=livemode).count()
    if existing >= MAX_ENDPOINTS:
        mode = "live" if livemode else "test"
        raise _invalid(
            "url",
            f"You have reached the maximum of {MAX_ENDPOINTS} {mode} webhook endpoints.",
            "webhook_endpoint_limit",
        )
    endpoint.save(force_insert=True)
    return endpoint


@transaction.atomic
def update_webhook_endpoint(endpoint: WebhookEndpoint, **fields) -> WebhookEndpoint:
    """Change `url`, `enabled_events`, `description`, `metadata`, `disabled` or
    `retry_schedule` (seconds after each failed attempt; [] for Stripe's)."""
    unknown = set(fields) - UPDATE_FIELDS
    if unknown:
        raise ValueError(f"not webhook endpoint fields: {', '.join(sorted(unknown))}")
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    for field, value in fields.items():
        if field == "url":
            locked.url = validate_url(value, livemode=locked.livemode)
        elif field == "enabled_events":
            locked.enabled_events = validate_enabled_events(value)
        elif field == "description":
            locked.description = _description(value)
        elif field == "metadata":
            locked.metadata = _merged_metadata(locked.metadata, value)
        elif field == "disabled":
            locked.status = _status(bool(value))
            if not value:
                # Enabled again by a person: the automatic disabling's story is over.
                locked.disabled_reason = ""
                locked.failing_since = None
        elif field == "retry_schedule":
            locked.retry_schedule = _retry_schedule(value)
    locked.save()
    return locked


@transaction.atomic
def delete_webhook_endpoint(endpoint: WebhookEndpoint) -> None:
    """Remove the endpoint: nothing more is sent to it."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()


# --- deliveries ----------------------------------------------------------------------------
# Each of these queues attempts for after the caller's transaction commits (a worker makes
# them: an endpoint may take 15 s to answer) and returns at once.


def _queue_attempts(ids: list[str]) -> None:
    from django_q.tasks import async_task

    from billing.webhooks.routing import TASK_CHUNK

    def start():
        for first in range(0, len(ids), TASK_CHUNK):
            async_task("billing.tasks.resend_webhook_deliveries", ids[first : first + TASK_CHUNK])

    transaction.on_commit(start)


@transaction.atomic
def resend_delivery(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send `delivery` again now, whatever its status (the dashboard's and admin's "Resend").

    The new attempt is recorded like any other: a 2xx makes the delivery `succeeded`; a
    failure leaves a failed delivery failed and a pending one on its retry schedule.
    Refused (ValidationError) when the endpoint is disabled.
    """
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery.pk)
    if not delivery.endpoint.enabled:
        raise _invalid("endpoint", "The endpoint is disabled: enable it to resend deliveries.")
    _queue_attempts([delivery.pk])
    return delivery


@transaction.atomic
def replay_deliveries(
    endpoint: WebhookEndpoint, *, since=None, until=None, failed_only: bool = True
) -> int:
    """Send again every delivery of `endpoint` whose event happened in [since, until) — only
    the failed ones with `failed_only` — and return how many were queued (bulk replay)."""
    if not endpoint.enabled:
        raise _invalid("endpoint", "The endpoint is disabled: enable it to replay deliveries.")
    if since is not None and until is not None and since >= until:
        raise _invalid("since", "The start of the range must come before its end.")
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    if since is not None:
        deliveries = deliveries.filter(created__gte=since)
    if until is not None:
        deliveries = deliveries.filter(created__lt=until)
    if failed_only:
        deliveries = deliveries.filter(status=WebhookDeliveryStatus.FAILED)
    ids = list(deliveries.order_by("created", "id").values_list("pk", flat=True))
    if ids:
        _queue_attempts(ids)
    return len(ids)


@transaction.atomic
def send_test_event(endpoint: WebhookEndpoint, *, event_type: str | None = None) -> WebhookDelivery:
    """Send the endpoint a sample event (Stripe's "Send test webhook"): an event of
    `event_type` (default: the first type it listens to) whose object is a placeholder
    (`metadata.relance_test_event = "true"`), recorded like other events, delivered to this
    endpoint only. Returns the delivery."""
    from billing import events
    from billing.models.events import API_VERSION
    from billing.webhooks import routing

    if event_type is None:
        listened = [t for t in endpoint.enabled_events if t != "*"]
        event_type = listened[0] if listened else "customer.created"
    events.validate_event_type(event_type)
    object_name = event_type.rsplit(".", 1)[0].split(".")[-1]
    now = timezone.now()
    event = Event(
        account_id=endpoint.account_id,
        livemode=endpoint.livemode,
        type=event_type,
        api_version=endpoint.api_version or API_VERSION,
        data={
            "object": {
                "id": f"{object_name}_test_webhook",
                "object": object_name,
                "livemode": endpoint.livemode,
                "metadata": {"relance_test_event": "true"},
            }
        },
        object_id=f"{object_name}_test_webhook",
        pending_webhooks=1,
        created=now,
    )
    event.save(force_insert=True)
    event._webhook_endpoints = [endpoint]
    event._webhook_clock_id = None
    (delivery,) = routing.write([event])
    return delivery


@transaction.atomic
def roll_endpoint_secret(endpoint: WebhookEndpoint, *, overlap_hours: float = 0) -> WebhookEndpoint:
    """Give the endpoint a new signing secret. For `overlap_hours` (at most 24) deliveries are
    signed with both the new and the old secret, so receivers can switch without missing
    any; with 0 the old secret stops at once. Returns the endpoint (its new `secret`)."""
    if not 0 <= overlap_hours <= MAX_ROLL_OVERLAP_HOURS:
        raise _invalid("overlap_hours", f"The overlap must be 0 to {MAX_ROLL_OVERLAP_HOURS} hours.")
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    if overlap_hours:
        locked.secret_previous = locked.secret
        locked.secret_previous_expires_at = timezone.now() + timedelta(hours=overlap_hours)
    else:
        locked.secret_previous, locked.secret_previous_expires_at = "", None
    locked.secret = new_webhook_secret()
    locked.save(update_fields=["secret", "secret_previous", "secret_previous_expires_at"])
    return locked
