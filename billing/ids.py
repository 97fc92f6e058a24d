"""Stripe-style object ids (SPEC R-CORE-2): a prefix, an underscore and 24 base62 characters.

The first 9 characters encode the creation time in microseconds, so ids sort in the order
objects were made (keyset pagination and event order rely on it); the other 15 are random, so
ids cannot be guessed.
"""

import secrets
import threading
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TIME_CHARS = 9
RANDOM_CHARS = 15

PREFIXES = {
    "account": "acct",
    "api_key": "key",
    "customer": "cus",
    "customer_balance_transaction": "cbtxn",
    "payment_method": "pm",
    "product": "prod",
    "price": "price",
    "discount": "di",
    "subscription": "sub",
    "subscription_item": "si",
    "invoice": "in",
    "line_item": "il",
    "invoiceitem": "ii",
    "payment_intent": "pi",
    "event": "evt",
    "webhook_endpoint": "we",
    "test_clock": "clock",
    "automation": "auto",
    "request": "req",
}

_lock = threading.Lock()
_last_micros = 0


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _monotonic_micros() -> int:
    # Two ids made in the same microsecond by one process still sort in creation order.
    global _last_micros
    with _lock:
        now = time.time_ns() // 1000
        _last_micros = max(now, _last_micros + 1)
        return _last_micros


def generate(prefix: str) -> str:
    """A new id with `prefix`, e.g. `generate("cus")` → `cus_0Vb3…`."""
    # One draw from the OS random source per id, not one per character.
    random_part = _encode(secrets.randbelow(62**RANDOM_CHARS), RANDOM_CHARS)
    return f"{prefix}_{_encode(_monotonic_micros(), TIME_CHARS)}{random_part}"


def prefix_for(object_name: str) -> str:
    """The id prefix of a Stripe object name; unknown names are a programming error."""
    try:
        return PREFIXES[object_name]
    except KeyError:
        raise ValueError(f"unknown object name {object_name!r}") from None


class IdFactory:
    """A deconstructible default for `id` fields (migrations store the prefix, not a lambda)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self) -> str:
        return generate(self.prefix)

    def deconstruct(self):
        return ("billing.ids.IdFactory", (self.prefix,), {})

    def __eq__(self, other):
        return isinstance(other, IdFactory) and other.prefix == self.prefix

    def __hash__(self):
        return hash(self.prefix)
