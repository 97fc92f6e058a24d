"""Stripe-style object ids (SPEC R-CORE-2): a prefix, an underscore and 24 base62 characters.

The first 9 characters encode the creation time in microseconds, so ids sort in the order
objects were made (keyset pagination and event order rely on it); the other 15 are random, so
ids cannot be guessed.
"""

import os
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

# Every two-character string of the alphabet, in order: base62 two digits at a time.
_PAIRS = [high + low for high in ALPHABET for low in ALPHABET]
# Random bytes become characters through a table, in C: each byte below 248 (4 x 62) maps to
# its remainder's character, uniformly; the 8 above are dropped, so no character is likelier.
_ACCEPTED = 4 * len(ALPHABET)
_TO_CHAR = bytes(ord(ALPHABET[byte % len(ALPHABET)]) for byte in range(256))
_DROPPED = bytes(range(_ACCEPTED, 256))


def _encode(number: int, width: int) -> str:
    """`number` in `width` base62 digits, most significant first."""
    chars = []
    while width >= 2:
        number, pair = divmod(number, 3844)
        chars.append(_PAIRS[pair])
        width -= 2
    if width:
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _random_chars(count: int) -> str:
    """`count` characters drawn uniformly from the alphabet by the OS's random source (what
    `secrets` uses): ~89 bits for an id's 15. A Python loop over `secrets.randbelow` and
    divmod cost ~30 µs an id, a measurable share of a renewal (three ids and ten events)."""
    while True:
        # Extra bytes cover the dropped ones (1 in 32): for an id, short once in ~10^9 draws.
        chars = os.urandom(count + count // 16 + 8).translate(_TO_CHAR, _DROPPED)
        if len(chars) >= count:
            return chars[:count].decode("ascii")


def _monotonic_micros() -> int:
    # Two ids made in the same microsecond by one process still sort in creation order.
    global _last_micros
    with _lock:
        now = time.time_ns() // 1000
        _last_micros = max(now, _last_micros + 1)
        return _last_micros


def generate(prefix: str) -> str:
    """A new id with `prefix`, e.g. `generate("cus")` → `cus_0Vb3…`."""
    return f"{prefix}_{_encode(_monotonic_micros(), TIME_CHARS)}{_random_chars(RANDOM_CHARS)}"


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
