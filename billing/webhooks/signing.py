"""Signing deliveries exactly as Stripe does (SPEC R-EVT-2), plus Standard Webhooks headers.

`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, one `v1` per
secret in use: during a secret roll's overlap both the new and the previous secret sign, and
`stripe.Webhook.construct_event(body, header, secret)` accepts either.

Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`) sign
`"<id>.<t>.<body>"` with the base64-decoded part of the secret after `whsec_`.
"""

import base64
import binascii
import hashlib
import hmac


def stripe_signature(body: bytes, secrets: list[str], timestamp: int) -> str:
    """The `Stripe-Signature` header value for `body` sent at `timestamp`."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for secret in secrets:
        parts.append("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest())
    return ",".join(parts)


def _standard_key(secret: str) -> bytes:
    """The key Standard Webhooks libraries derive from a `whsec_` secret."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # Not base64 (a secret typed by hand): sign with its bytes rather than not at all.
        return encoded.encode()


def standard_headers(message_id: str, body: bytes, secrets: list[str], timestamp: int) -> dict:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` (Standard Webhooks)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    signatures = " ".join(
        "v1,"
        + base64.b64encode(hmac.new(_standard_key(s), signed, hashlib.sha256).digest()).decode()
        for s in secrets
    )
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
    }
