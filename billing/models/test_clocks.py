"""Test clocks: simulated time for test-mode customers (SPEC R-CLOCK-1, R-CLOCK-2)."""

from django.db import models
from django.db.models import Q

from billing.choices import TestClockStatus
from billing.models.base import ModeScoped, id_field


class TestClock(ModeScoped):
    """A clock frozen at `frozen_time`; its customers and all they own live on its time."""

    OBJECT = "test_helpers.test_clock"
    __test__ = False  # not a pytest test class, whatever its name

    id = id_field("clock")
    name = models.CharField(max_length=300, blank=True)
    frozen_time = models.DateTimeField()
    status = models.CharField(
        max_length=20, choices=TestClockStatus.choices, default=TestClockStatus.READY
    )
    # When advancing, the time the clock is moving to.
    advancing_to = models.DateTimeField(null=True, blank=True)
    deletes_after = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(name="test_clock_test_mode_only", condition=Q(livemode=False)),
        ]
        indexes = [models.Index(fields=["account", "livemode", "created", "id"])]
