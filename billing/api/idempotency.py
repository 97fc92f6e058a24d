"""Idempotent POSTs: the first response to an `Idempotency-Key` is replayed for 24 hours.

As in Stripe, a result is saved only once the endpoint began executing: a request refused by
authentication or parameter validation saves nothing and can be retried with the same key.
The in-progress row is committed before the work starts, so a concurrent duplicate sees it
and gets 409; the response is written in the same transaction as the work, so a crash cannot
leave work done without its recorded response.
"""

import hashlib
import json
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.api.errors import ApiError
from billing.models import IdempotencyKey

TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
# A row still in progress after this long belongs to a request that died (a killed worker):
# its transaction rolled back, so a retry may take the key over.
ABANDONED_AFTER = timedelta(seconds=getattr(settings, "RELANCE_API_IDEMPOTENCY_LOCK_SECONDS", 60))


def fingerprint(method: str, path: str, params: dict) -> str:
    """What a reuse of the key must match: method, path and the decoded parameters."""
    canonical = json.dumps([method, path, params], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _conflict(key: str) -> ApiError:
    return ApiError(
        "There is currently another in-progress request using this Stripe token (probably "
        f"the same idempotency key '{key}'). Try again later.",
        status=409,
        type="idempotency_error",
        code="idempotency_key_in_use",
    )


def begin(
    ctx, *, method: str, path: str, params: dict
) -> tuple[IdempotencyKey | None, dict | None]:
    """Claim `ctx.idempotency_key` for this request: `(row, None)` when the caller should do
    the work, `(None, replay)` with the saved `{"status", "body", "request_id"}` otherwise.

    Raises ApiError for a key reused with other parameters (400) or still running (409).
    """
    key = ctx.idempotency_key
    if len(key) > MAX_KEY_LENGTH or "\x00" in key:
        raise ApiError(
            f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters, without NUL.",
            param="Idempotency-Key",
        )
    digest = fingerprint(method, path, params)
    for _ in range(2):
        now = timezone.now()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    account=ctx.account,
                    livemode=ctx.livemode,
                    key=key,
                    method=method,
                    path=path,
                    fingerprint=digest,
                    request_id=ctx.request_id,
                    created=now,
                )
            return row, None
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(
                account=ctx.account, livemode=ctx.livemode, key=key
            ).first()
        if existing is None:
            continue  # deleted meanwhile: claim it again
        expired = existing.created < now - TTL
        abandoned = existing.in_progress and existing.created < now - ABANDONED_AFTER
        if expired or abandoned:
            # Only the row we read is removed, so two takers cannot both delete and claim.
            IdempotencyKey.objects.filter(pk=existing.pk, created=existing.created).delete()
            continue
        if existing.method != method or existing.path != path:
            raise ApiError(
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{existing.path}' vs '{path}'). Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
                type="idempotency_error",
            )
        if existing.fingerprint != digest:
            raise ApiError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            )
        if existing.in_progress:
            raise _conflict(key)
        return None, {
            "status": existing.status_code,
            "body": existing.response_body,
            "request_id": existing.request_id,
        }
    raise _conflict(key)


def finish(row: IdempotencyKey, *, status: int, body: dict) -> None:
    """Save the response to replay (inside the work's transaction when it succeeded)."""
    IdempotencyKey.objects.filter(pk=row.pk).update(status_code=status, response_body=body)


def abandon(row: IdempotencyKey) -> None:
    """Free the key after an unexpected failure: nothing was done, so a retry may run."""
    IdempotencyKey.objects.filter(pk=row.pk, status_code__isnull=True).delete()


def prune(*, now=None) -> int:
    """Delete keys older than 24 hours; run it from a recurring schedule."""
    now = now or timezone.now()
    deleted, _ = IdempotencyKey.objects.filter(created__lt=now - TTL).delete()
    return deleted
