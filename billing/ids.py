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


# Random characters drawn ahead, handed out an id's worth at a time: one system call per ~200
# ids instead of one each (a renewal makes ~16 ids). Forgotten by a forked child, which must
# not hand out its parent's.
_POOL_CHARS = 200 * RANDOM_CHARS
_pool = ""
_taken = 0
# The id's time, but its last two digits, changes every 3.8 ms: kept from the previous id.
_head_key = -1
_head = ""


def _after_fork_in_child() -> None:
    global _lock, _pool, _taken
    _lock = threading.Lock()
    _pool, _taken = "", 0


os.register_at_fork(after_in_child=_after_fork_in_child)


def generate(prefix: str) -> str:
    """A new id with `prefix`, e.g. `generate("cus")` → `cus_0Vb3…`."""
    global _last_micros, _pool, _taken, _head_key, _head
    with _lock:
        # Two ids made in the same microsecond by one process still sort in creation order.
        micros = _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
        start = _taken
        if start + RANDOM_CHARS > len(_pool):
            _pool, start = _random_chars(_POOL_CHARS), 0
        _taken = end = start + RANDOM_CHARS
        head_key, last_pair = divmod(micros, 3844)
        if head_key != _head_key:
            _head_key, _head = head_key, _encode(head_key, TIME_CHARS - 2)
        return f"{prefix}_{_head}{_PAIRS[last_pair]}{_pool[start:end]}"


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
