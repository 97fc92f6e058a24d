"""Sending deliveries: claim, POST, record, retry (SPEC R-EVT-2, R-EVT-3).

One attempt goes through three steps, and nothing is ever lost between them:

1. `claim` (inside a transaction) takes a lease on pending deliveries with a conditional
   UPDATE — only one worker can hold it, so two never send the same attempt — counts the
   attempt, and moves the delivery's `webhook_delivery` due job to the time of the *next*
   attempt, as if this one will fail (a first attempt keeps its outbox job, due a minute
   after the event, which waits for the lease to end). A worker that dies from here on
   leaves a job that retries the delivery.
2. `send` POSTs the event, outside any transaction (an endpoint may take 15 s to answer).
3. `record` writes the attempt and settles the delivery: 2xx → `succeeded` (the job is
   canceled); otherwise it stays pending for the job already scheduled, or becomes `failed`
   once the schedule is spent.

Two drivers start attempts: a task started when the event's transaction commits (first
attempts, within a second) and the timeline's `webhook_delivery` jobs (retries, and first
attempts whose task was lost). Times come from the event's clock, so advancing a test clock
runs retries on the simulated schedule; leases and the signature's timestamp are wall time.
"""

import dataclasses
import json
import logging
import os
import random
import secrets
import socket
import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from billing import clocks, timeline
from billing.choices import JobStatus, Role
from billing.models import (
    DueJob,
    Event,
    Membership,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
    WebhookEndpoint,
)
from billing.models.webhooks import WebhookEndpointStatus
from billing.serializers import serialize_event
from billing.webhooks import signing
from billing.webhooks.routing import JOB_KIND

log = logging.getLogger(__name__)

USER_AGENT = "Relance/1.0 (+webhooks)"
# Stripe's schedules, in seconds after each failed attempt. Live: exponential backoff over
# about 2.7 days (11 attempts; under 3 days with the longest jitter). Test: 3 retries over
# 3.5 hours.
DEFAULT_RETRY_DELAYS = {
    True: (60, 300, 1800, 7200, 18000, 36000, 43200, 43200, 43200, 36000),
    False: (1800, 3600, 7200),
}
# Each delay is stretched or shrunk by up to this fraction, so a receiver that was down does
# not get every retry of an outage at the same instant.
JITTER = 0.1
MAX_TIMEOUT = 15.0  # seconds: SPEC and Stripe
RESPONSE_EXCERPT_BYTES = 1024
# Deliveries one claim takes (and sends one after the other before recording).
CLAIM_CHUNK = 20
# A lease outlives the slowest possible sending of its chunk by this margin.
LEASE_MARGIN = timedelta(seconds=30)
# The last attempt's job: when that attempt's worker died, the delivery is failed this long
# after the attempt began.
LOST_ATTEMPT_VERDICT = timedelta(minutes=10)


def timeout() -> float:
    """Seconds an endpoint has to answer (setting RELANCE_WEBHOOKS_TIMEOUT, at most 15)."""
    return min(float(getattr(settings, "RELANCE_WEBHOOKS_TIMEOUT", MAX_TIMEOUT)), MAX_TIMEOUT)


def retry_delays(endpoint: WebhookEndpoint) -> tuple[int, ...]:
    """Seconds to wait after each failed attempt: the endpoint's own schedule, else Stripe's."""
    if endpoint.retry_schedule:
        return tuple(int(delay) for delay in endpoint.retry_schedule)
    return DEFAULT_RETRY_DELAYS[bool(endpoint.livemode)]


def next_retry_delay(endpoint: WebhookEndpoint, scheduled_attempts: int) -> timedelta | None:
    """How long after automatic attempt number `scheduled_attempts` the next one comes, with
    jitter; None when that attempt was the last."""
    delays = retry_delays(endpoint)
    if scheduled_attempts > len(delays):
        return None
    base = delays[scheduled_attempts - 1]
    return timedelta(seconds=base * random.uniform(1 - JITTER, 1 + JITTER))


# --- the HTTP client ------------------------------------------------------------------------

_client: httpx.Client | None = None
_client_pid: int | None = None
_client_lock = threading.Lock()


def client() -> httpx.Client:
    """The process's HTTP client: one connection pool, reused by every delivery (keep-alive).

    Made again in a forked process (django-q2 forks its workers): sockets must not be shared.
    Proxies from the environment are ignored, so the address checked is the one connected to.
    """
    global _client, _client_pid
    pid = os.getpid()
    if _client is None or _client_pid != pid:
        with _client_lock:
            if _client is None or _client_pid != pid:
                limits = httpx.Limits(
                    max_connections=100, max_keepalive_connections=50, keepalive_expiry=30
                )
                _client = httpx.Client(
                    follow_redirects=False,
                    trust_env=False,
                    headers={"User-Agent": USER_AGENT},
                    limits=limits,
                    # The request's headers and body leave in separate writes: without
                    # TCP_NODELAY, Nagle holds the body until the receiver's delayed ACK
                    # (40 ms on Linux) on every reused connection.
                    transport=httpx.HTTPTransport(
                        limits=limits,
                        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
                    ),
                )
                _client_pid = pid
    return _client


@dataclasses.dataclass
class Outcome:
    """What one POST gave: a status code and the start of the body, or an error."""

    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Refused(Exception):
    """The endpoint may not be called (its host resolves to a private address)."""


def _pinned(url: str) -> tuple[str, dict, dict]:
    """For a live-mode endpoint: resolve its host, refuse private addresses, and connect to
    the address that was checked (the Host header and TLS name stay the host's), so a DNS
    answer that changes between the check and the connection cannot reach inside."""
    from billing.services.webhooks import allow_private_urls, is_public_address, resolve_host

    if allow_private_urls():
        return url, {}, {}
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve_host(host, port)
    except (OSError, UnicodeError) as error:
        raise Refused(f"could not resolve {host}: {error}") from None
    if not addresses or not all(is_public_address(address) for address in addresses):
        raise Refused(
            f"refused: {host} resolves to a private, loopback or link-local address "
            f"({', '.join(addresses) or 'none'})"
        )
    address = addresses[0]
    literal = f"[{address}]" if ":" in address else address
    netloc = literal if parts.port is None else f"{literal}:{parts.port}"
    pinned_url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return pinned_url, {"Host": parts.netloc.rsplit("@", 1)[-1]}, extensions


def post(endpoint: WebhookEndpoint, body: bytes, message_id: str) -> Outcome:
    """POST `body` to the endpoint, signed with its secrets; never raises for the network."""
    started = time.monotonic()
    limit = timeout()
    now = timezone.now()
    stamp = int(now.timestamp())
    keys = endpoint.signing_secrets(now)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signing.stripe_signature(body, keys, stamp),
        **signing.standard_headers(message_id, body, keys, stamp),
    }
    url, extensions = endpoint.url, {}
    outcome = Outcome()
    try:
        if endpoint.livemode:
            url, host_header, extensions = _pinned(endpoint.url)
            headers.update(host_header)
        with client().stream(
            "POST",
            url,
            content=body,
            headers=headers,
            timeout=httpx.Timeout(limit),
            extensions=extensions,
        ) as response:
            outcome.status_code = response.status_code
            received = bytearray()
            # Read at most the excerpt, and not past the deadline: a receiver dripping bytes
            # must not hold a worker longer than the timeout.
            for chunk in response.iter_bytes():
                received += chunk
                if len(received) >= RESPONSE_EXCERPT_BYTES or time.monotonic() - started > limit:
                    break
            outcome.excerpt = bytes(received[:RESPONSE_EXCERPT_BYTES]).decode("utf-8", "replace")
    except Refused as refused:
        outcome.error = str(refused)
    except httpx.TimeoutException:
        outcome.error = f"timed out after {limit:g} s"
    except (httpx.HTTPError, OSError) as error:
        outcome.error = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if outcome.succeeded:
        # The endpoint answered 2xx; a body cut short afterwards does not undo that.
        outcome.error = ""
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    if outcome.status_code is not None and not outcome.succeeded and not outcome.error:
        outcome.error = f"HTTP {outcome.status_code}"
    return outcome


def render(event: Event) -> bytes:
    """The event as GET /v1/events/{id} answers it (same serializer, same JSON encoder)."""
    return json.dumps(serialize_event(event), cls=DjangoJSONEncoder).encode()


# --- claim, send, record --------------------------------------------------------------------


def _clock_times(deliveries) -> dict:
    """The current time of each delivery's clock (wall time for those without)."""
    times = {}
    for delivery in deliveries:
        if delivery.test_clock_id not in times:
            times[delivery.test_clock_id] = clocks.now_for(delivery)
    return times


def _move_jobs(planned: list[tuple[WebhookDelivery, object]]) -> None:
    """Replace the pending job of each delivery with one at the given time (in bulk; what
    timeline.schedule does one at a time)."""
    if not planned:
        return
    DueJob.objects.filter(
        kind=JOB_KIND, target_id__in=[d.pk for d, _ in planned], status=JobStatus.PENDING
    ).update(status=JobStatus.CANCELED, finished_at=timezone.now())
    DueJob.objects.bulk_create(
        [
            DueJob(
                account_id=d.account_id,
                livemode=d.livemode,
                kind=JOB_KIND,
                target_id=d.pk,
                due_at=at,
                test_clock_id=d.test_clock_id,
            )
            for d, at in planned
        ]
    )


def _cancel_jobs(ids: list[str]) -> None:
    if ids:
        DueJob.objects.filter(kind=JOB_KIND, target_id__in=ids, status=JobStatus.PENDING).update(
            status=JobStatus.CANCELED, finished_at=timezone.now()
        )


def claim(ids: list[str], *, first_only: bool = False, manual: bool = False) -> list:
    """Lease these deliveries for one attempt each; return those this caller won, loaded with
    their endpoint and event. Call inside a transaction (the caller commits the claim).

    `first_only`: only deliveries never attempted (the on-commit fast path). `manual`: a
    person asked (resend, replay): any status, and the retry schedule is left as it is.
    """
    if not ids:
        return []
    wall = timezone.now()
    token = secrets.token_hex(16)
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=wall)
    candidates = WebhookDelivery.objects.filter(free, pk__in=ids)
    if not manual:
        candidates = candidates.filter(
            status=WebhookDeliveryStatus.PENDING, endpoint__status=WebhookEndpointStatus.ENABLED
        )
    if first_only:
        candidates = candidates.filter(attempt_count=0)
    lease = timedelta(seconds=timeout() * len(ids)) + LEASE_MARGIN
    changes = {"lease_token": token, "leased_until": wall + lease}
    changes["attempt_count"] = F("attempt_count") + 1
    if not manual:
        changes["scheduled_attempts"] = F("scheduled_attempts") + 1
    if not candidates.update(**changes):
        return []
    claimed = list(
        WebhookDelivery.objects.filter(pk__in=ids, lease_token=token)
        .select_related("endpoint", "event__account")
        .order_by("created", "id")
    )
    times = _clock_times(claimed)
    planned = []
    for delivery in claimed:
        delivery.attempt_at = times[delivery.test_clock_id]
        delivery.manual = manual
        delivery.job_planned = False
        if manual:
            continue
        delay = next_retry_delay(delivery.endpoint, delivery.scheduled_attempts)
        # If this attempt is lost with its worker, the job makes the next one (or, after the
        # last, fails the delivery) on schedule.
        at = delivery.attempt_at + (delay if delay is not None else LOST_ATTEMPT_VERDICT)
        delivery.next_attempt_at = at if delay is not None else None
        # A first attempt's outbox job (due a minute after the event) already covers a lost
        # attempt: it finds the lease and waits for its end. Its move to the retry time is
        # left to `record`, and only for failures — one write fewer per delivery.
        delivery.job_planned = not first_only
        if not first_only:
            planned.append((delivery, at))
    # `next_attempt_at` is written when the attempt is recorded (or by the job, if the
    # attempt is lost): one statement per chunk rather than one per delivery, as each time
    # has its own jitter.
    _move_jobs(planned)
    return claimed


def send(claimed: list) -> list[Outcome]:
    """POST each claimed delivery (in order, on the shared client); one outcome each."""
    bodies: dict[str, bytes] = {}
    outcomes = []
    for delivery in claimed:
        body = bodies.get(delivery.event_id)
        if body is None:
            body = bodies[delivery.event_id] = render(delivery.event)
        outcomes.append(post(delivery.endpoint, body, delivery.event_id))
    return outcomes


@transaction.atomic
def record(claimed: list, outcomes: list[Outcome]) -> None:
    """Write each attempt and settle the deliveries this caller still holds the lease of."""
    from billing.webhooks import hold

    if not claimed:
        return
    tokens = {d.pk: d.lease_token for d in claimed}
    held = {
        pk
        for pk, token in WebhookDelivery.objects.select_for_update()
        .filter(pk__in=list(tokens))
        .values_list("pk", "lease_token")
        if token == tokens[pk]
    }
    WebhookAttempt.objects.bulk_create(
        [
            WebhookAttempt(
                delivery_id=d.pk,
                number=d.attempt_count,
                started_at=d.attempt_at,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                response_excerpt=outcome.excerpt,
                error=outcome.error[:2000],
                manual=d.manual,
            )
            for d, outcome in zip(claimed, outcomes, strict=True)
        ]
    )
    # Deliveries that end up with the same values are written by one UPDATE: a chunk of
    # successes is one statement (bulk_update's CASE per row cost more than the HTTP).
    groups: dict[tuple, list[str]] = {}
    settled, newly_succeeded, unplanned = [], [], []
    health: dict[str, tuple] = {}
    for delivery, outcome in zip(claimed, outcomes, strict=True):
        health[delivery.endpoint_id] = (delivery.endpoint, outcome.succeeded, delivery.attempt_at)
        if delivery.pk not in held:
            continue  # the lease ran out and another worker took over: it settles the delivery
        status, delivered_at, next_attempt_at = delivery.status, delivery.delivered_at, None
        if outcome.succeeded:
            status, delivered_at = WebhookDeliveryStatus.SUCCEEDED, delivery.attempt_at
            settled.append(delivery.pk)
            if delivery.status != WebhookDeliveryStatus.SUCCEEDED:
                newly_succeeded.append(delivery)
        elif not delivery.manual and delivery.next_attempt_at is None:
            status = WebhookDeliveryStatus.FAILED
            settled.append(delivery.pk)
        elif status == WebhookDeliveryStatus.PENDING:
            next_attempt_at = delivery.next_attempt_at
            if not delivery.manual and not delivery.job_planned:
                unplanned.append((delivery, next_attempt_at))
        values = (status, delivered_at, next_attempt_at, outcome.status_code, outcome.error[:2000])
        groups.setdefault(values, []).append(delivery.pk)
    for (status, delivered_at, next_attempt_at, code, error), pks in groups.items():
        WebhookDelivery.objects.filter(pk__in=pks).update(
            lease_token="",
            leased_until=None,
            status=status,
            delivered_at=delivered_at,
            next_attempt_at=next_attempt_at,
            last_status_code=code,
            last_error=error,
        )
    _cancel_jobs(settled)
    _move_jobs(unplanned)
    per_event: dict[str, int] = {}
    for delivery in newly_succeeded:
        per_event[delivery.event_id] = per_event.get(delivery.event_id, 0) + 1
    by_count: dict[int, list[str]] = {}
    for event_id, count in per_event.items():
        by_count.setdefault(count, []).append(event_id)
    for count, event_ids in by_count.items():
        Event.objects.filter(pk__in=event_ids, pending_webhooks__gte=count).update(
            pending_webhooks=F("pending_webhooks") - count
        )
    _update_health(health.values())
    hold.delivered([d for d in newly_succeeded if d.event.type == hold.HOLD_EVENT])


def send_and_record(claimed: list) -> None:
    """Steps 2 and 3 for deliveries claimed (and committed) by this caller."""
    if claimed:
        record(claimed, send(claimed))


def deliver(ids: list[str], *, first_only: bool = False, manual: bool = False) -> int:
    """Claim, send and record these deliveries, a chunk at a time; how many were attempted."""
    attempted = 0
    for start in range(0, len(ids), CLAIM_CHUNK):
        with transaction.atomic():
            claimed = claim(ids[start : start + CLAIM_CHUNK], first_only=first_only, manual=manual)
        send_and_record(claimed)
        attempted += len(claimed)
    return attempted


# --- endpoints that keep failing ------------------------------------------------------------


def disable_after() -> timedelta:
    return timedelta(hours=int(getattr(settings, "RELANCE_WEBHOOKS_DISABLE_AFTER_HOURS", 72)))


def _update_health(results) -> None:
    """A success ends an endpoint's run of failures; a failure starts one, and one that has
    lasted `disable_after()` disables the endpoint and tells the account's owners."""
    for endpoint, succeeded, at in results:
        if succeeded:
            if endpoint.failing_since is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            continue
        if endpoint.failing_since is None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
                failing_since=at
            )
            continue
        if at - endpoint.failing_since >= disable_after():
            _disable(endpoint, at)


def _disable(endpoint: WebhookEndpoint, at) -> None:
    days = disable_after().total_seconds() / 86400
    reason = (
        f"Disabled by Relance on {at:%Y-%m-%d %H:%M} UTC: every delivery attempt since "
        f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC failed ({days:g} days)."
    )
    disabled = WebhookEndpoint.objects.filter(
        pk=endpoint.pk, status=WebhookEndpointStatus.ENABLED
    ).update(status=WebhookEndpointStatus.DISABLED, disabled_reason=reason)
    if not disabled:
        return
    # Its pending deliveries will not be sent: settle them now rather than at each retry.
    pending = list(
        WebhookDelivery.objects.filter(endpoint=endpoint, status=WebhookDeliveryStatus.PENDING)
        .exclude(leased_until__gt=timezone.now())
        .values_list("pk", flat=True)
    )
    WebhookDelivery.objects.filter(pk__in=pending).update(
        status=WebhookDeliveryStatus.FAILED, next_attempt_at=None, last_error="endpoint disabled"
    )
    _cancel_jobs(pending)
    account_id, url = endpoint.account_id, endpoint.url
    transaction.on_commit(lambda: _email_owners(account_id, url, reason))


def _email_owners(account_id: str, url: str, reason: str) -> None:
    """Tell the account's owners their endpoint was disabled.

    Plain Django mail for now: issue #6 moves account emails to the notifications app (its
    templates, settings and 30-day log); this call moves there with them.
    """
    recipients = sorted(
        email
        for email in Membership.objects.filter(account_id=account_id, role=Role.OWNER).values_list(
            "user__email", flat=True
        )
        if email
    )
    if not recipients:
        return
    send_mail(
        subject="Relance disabled a webhook endpoint",
        message=(
            f"Deliveries to {url} kept failing, so Relance stopped sending events to it.\n\n"
            f"{reason}\n\nFix the endpoint, then enable it again in the dashboard or with "
            "POST /v1/webhook_endpoints/{id} disabled=false; failed deliveries can be replayed."
        ),
        from_email=None,
        recipient_list=recipients,
        fail_silently=True,
    )


# --- the due job ----------------------------------------------------------------------------


def _load_delivery(delivery_id):
    return (
        WebhookDelivery.objects.select_for_update()
        .select_related("endpoint")
        .filter(pk=delivery_id)
        .first()
    )


@timeline.handler(JOB_KIND, target=_load_delivery)
def _delivery_due(delivery: WebhookDelivery, job) -> None:
    """A delivery's job: attempt it if it is still pending and due (retries, and first
    attempts whose on-commit task was lost); it re-checks everything, so a stale job is
    harmless."""
    if delivery.status != WebhookDeliveryStatus.PENDING:
        return
    if not delivery.endpoint.enabled:
        delivery.status = WebhookDeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.last_error = "endpoint disabled"
        delivery.save(update_fields=["status", "next_attempt_at", "last_error"])
        return
    now = clocks.now_for(delivery)
    wall = timezone.now()
    if delivery.leased_until is not None and delivery.leased_until > wall:
        # Another worker is sending it: look again once its lease could have ended.
        wait = max(delivery.leased_until - wall, timedelta(minutes=1))
        timeline.schedule(JOB_KIND, delivery, at=now + wait)
        return
    if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
        timeline.schedule(JOB_KIND, delivery, at=delivery.next_attempt_at)
        return
    if delivery.scheduled_attempts > len(retry_delays(delivery.endpoint)):
        # The last attempt's worker died before recording it: the schedule is spent.
        delivery.status = WebhookDeliveryStatus.FAILED
        delivery.next_attempt_at = None
        delivery.lease_token, delivery.leased_until = "", None
        delivery.last_error = delivery.last_error or "the last attempt was lost with its worker"
        delivery.save()
        return
    claimed = claim([delivery.pk])
    if claimed:
        # After the job's transaction commits: no database transaction stays open while an
        # endpoint takes its time to answer.
        transaction.on_commit(lambda: send_and_record(claimed))
