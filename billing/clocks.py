"""The time an object lives on: its test clock's frozen time, else the wall clock (SPEC R-CORE-4).

Domain code asks `now_for(obj)` instead of calling `timezone.now()`, so that a customer attached to
a test clock, and everything it owns, sees the clock's time (SPEC R-CLOCK-1).
"""

import contextlib
import contextvars

from django.utils import timezone

from billing.models import TestClock

# While a clock runs one of its jobs, its time is known and fixed: (clock id, frozen time).
_running = contextvars.ContextVar("running_clock", default=None)


@contextlib.contextmanager
def running(clock_id: str, frozen_time):
    """Within this block, `now_for` answers `frozen_time` for the clock without a query."""
    token = _running.set((clock_id, frozen_time))
    try:
        yield
    finally:
        _running.reset(token)


def clock_id_for(obj) -> str | None:
    """The id of the test clock `obj` lives on: its own, else its customer's; None for wall time."""
    clock_id = getattr(obj, "test_clock_id", None)
    if clock_id:
        return clock_id
    # Look at `customer_id` first so an object without a customer costs no query.
    if getattr(obj, "customer_id", None):
        return obj.customer.test_clock_id
    return None


def now_for(obj):
    """The current time for `obj`: its test clock's `frozen_time`, or wall time without a clock."""
    clock_id = clock_id_for(obj)
    if clock_id is None:
        return timezone.now()
    current = _running.get()
    if current is not None and current[0] == clock_id:
        return current[1]
    # Read the clock fresh: advancing moves `frozen_time` while callers may hold an object whose
    # cached `test_clock` still shows the time before the advance.
    return TestClock.objects.values_list("frozen_time", flat=True).get(pk=clock_id)
