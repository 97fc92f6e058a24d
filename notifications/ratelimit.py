"""A fixed-window request counter on Django's cache, for the hosted pages (issue #6).

`allow(scope, key, limit=…, window=…)` counts one request and answers whether it is within
`limit` requests per `window` seconds. Fixed windows are coarse (a burst may straddle two
windows and get up to twice the limit through) but need one atomic `incr` and no clean-up,
which is enough to stop guessing tokens and trying stolen cards.

The counters live in the default cache. With several processes or machines, configure a
shared cache (Redis, Memcached or the database cache): the default local-memory cache counts
per process, so each process allows the full limit.
"""

import hashlib
import time

from django.core.cache import cache

PREFIX = "relance:ratelimit"


def _cache_key(scope: str, key: str, window: int, now: float) -> str:
    # Keys are hashed: a client address or a token hash never appears in the cache verbatim,
    # and whatever the key holds it fits memcached's key rules.
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{PREFIX}:{scope}:{digest}:{int(now // window)}"


def allow(scope: str, key: str, *, limit: int, window: int, now: float | None = None) -> bool:
    """Count a request for `key` in `scope`; False once more than `limit` came in `window`
    seconds. A limit of 0 turns the check off."""
    if limit <= 0:
        return True
    cache_key = _cache_key(scope, key, window, time.time() if now is None else now)
    # `add` only sets a missing key, so concurrent first requests do not reset each other.
    if cache.add(cache_key, 1, timeout=window + 1):
        return True
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # The key expired between `add` and `incr`: this request opens a new window.
        cache.add(cache_key, 1, timeout=window + 1)
        return True
    return count <= limit
