"""Billing periods: where a cycle ends, and how much of it a part of it is worth.

Periods are counted from the billing cycle anchor, as Stripe does: a monthly subscription
anchored on 31 January renews on 28 (or 29) February, then 31 March — the anchor's day is kept,
clamped to the length of each month, and never drifts.
"""

import calendar
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from billing.choices import Interval


def _add_months(moment: datetime, months: int, day: int) -> datetime:
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(day, last_day))


def shift(anchor: datetime, interval: str, count: int, cycles: int) -> datetime:
    """The anchor moved forward by `cycles` periods of `count` × `interval` (or back, if < 0)."""
    steps = count * cycles
    if interval == Interval.DAY:
        return anchor + timedelta(days=steps)
    if interval == Interval.WEEK:
        return anchor + timedelta(weeks=steps)
    if interval == Interval.MONTH:
        return _add_months(anchor, steps, anchor.day)
    if interval == Interval.YEAR:
        return _add_months(anchor, 12 * steps, anchor.day)
    raise ValueError(f"unknown interval {interval!r}")


def next_boundary(anchor: datetime, interval: str, count: int, after: datetime) -> datetime:
    """The first period boundary (anchor + k periods) strictly after `after`."""
    if anchor > after:
        # Walk back to the last boundary at or before `after`, then one forward.
        cycles = 0
        while shift(anchor, interval, count, cycles - 1) > after:
            cycles -= 1
        return shift(anchor, interval, count, cycles)
    # Estimate the number of cycles, then correct: months and years are not fixed lengths.
    approx_days = {Interval.DAY: 1, Interval.WEEK: 7, Interval.MONTH: 30.44, Interval.YEAR: 365.25}
    estimate = int((after - anchor).days / (approx_days[interval] * count))
    cycles = max(estimate - 1, 0)
    while shift(anchor, interval, count, cycles) <= after:
        cycles += 1
    return shift(anchor, interval, count, cycles)


def period_after(anchor: datetime, interval: str, count: int, start: datetime) -> datetime:
    """Where the period that starts at `start` ends: the next boundary after it."""
    return next_boundary(anchor, interval, count, start)


def prorate(
    amount: int, *, part_start: datetime, part_end: datetime, start: datetime, end: datetime
) -> int:
    """`amount` for the part [part_start, part_end) of the period [start, end), by the second,
    rounded half to even to the minor unit (Stripe prorates to the second)."""
    whole = (end - start).total_seconds()
    part = (part_end - part_start).total_seconds()
    if whole <= 0 or part <= 0:
        return 0
    value = Decimal(amount) * Decimal(int(part)) / Decimal(int(whole))
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
