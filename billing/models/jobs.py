"""The timeline of due work, and each account's revenue-recovery settings."""

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from billing.choices import AfterRetriesInvoice, AfterRetriesSubscription, JobStatus, RetryMode
from billing.models.base import FastLoaded

# Smart retries: 8 attempts within 2 weeks — the first attempt, then retries this many days
# after the previous one (1 + 2 + 2 + 2 + 2 + 2 + 2 = 13 days). SPEC R-INV-9.
SMART_RETRY_DAYS = (1, 2, 2, 2, 2, 2, 2)
# A custom schedule: at most 8 attempts in all, each retry 1 to 30 days after the previous one.
MAX_CUSTOM_RETRIES = 7
MAX_RETRY_GAP_DAYS = 30


class DueJob(FastLoaded, models.Model):
    """One thing that must happen at `due_at`: a renewal, a trial end, a payment retry…

    The single answer to "what happens when" (DESIGN: Time and due work). A job on a test clock
    runs when the clock is advanced past `due_at`; other jobs run on wall time. At most one job
    of a kind is pending per target, so rescheduling replaces.
    """

    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=False)
    kind = models.CharField(max_length=40)
    # The id of the object the job is about (sub_…, in_…, …).
    target_id = models.CharField(max_length=64)
    due_at = models.DateTimeField()
    test_clock = models.ForeignKey(
        "billing.TestClock", null=True, blank=True, on_delete=models.CASCADE, related_name="jobs"
    )
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(default=now)
    queued_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The wall-clock tick: jobs without a clock still waiting, by due time (and the
            # stale claims among them). Partial: a clock's jobs, and every job once done, write
            # no entry here.
            models.Index(
                fields=["status", "due_at", "id"],
                condition=Q(test_clock__isnull=True, status__in=["pending", "queued"]),
                name="due_job_wall_waiting",
            ),
            # Support's list of failed jobs (the admin's status filter), few among millions.
            models.Index(fields=["id"], condition=Q(status="failed"), name="due_job_failed"),
            models.Index(fields=["target_id", "status"]),
            # Advancing a test clock walks its waiting jobs in (due_at, id) order.
            models.Index(
                fields=["test_clock", "due_at", "id"],
                condition=Q(status__in=["pending", "queued"]),
                name="due_job_clock_waiting",
            ),
        ]
        constraints = [
            # Target first: canceling an object's pending jobs, of one kind or of all, looks
            # up each target here (a batch's 500 at once) and reads only pending entries.
            # Kind first, a cancel of all kinds walked the whole index.
            models.UniqueConstraint(
                fields=["target_id", "kind"],
                condition=Q(status="pending"),
                name="due_job_one_pending_per_kind_and_target",
            ),
        ]

    def __str__(self):
        return f"{self.kind} {self.target_id} at {self.due_at:%Y-%m-%d %H:%M}"


class RecoverySettings(models.Model):
    """An account's revenue-recovery settings for one mode: retries and renewal notices."""

    account = models.ForeignKey(
        "billing.Account", on_delete=models.CASCADE, related_name="recovery_settings"
    )
    livemode = models.BooleanField(default=False)
    retry_mode = models.CharField(max_length=10, choices=RetryMode.choices, default=RetryMode.SMART)
    # Custom schedule: days after the previous attempt, one entry per retry (at most 8 attempts).
    retry_days = models.JSONField(default=list, blank=True)
    after_retries_subscription = models.CharField(
        max_length=10,
        choices=AfterRetriesSubscription.choices,
        default=AfterRetriesSubscription.CANCEL,
    )
    after_retries_invoice = models.CharField(
        max_length=16, choices=AfterRetriesInvoice.choices, default=AfterRetriesInvoice.OPEN
    )
    # `invoice.upcoming` this many days before a renewal (SPEC R-INV-6); 0 turns it off.
    upcoming_renewal_days = models.PositiveSmallIntegerField(default=7)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "livemode"], name="recovery_settings_one_per_mode"
            ),
        ]

    def __str__(self):
        return f"Recovery settings for {self.account_id} ({'live' if self.livemode else 'test'})"

    def clean(self):
        """A custom schedule is a list of 1 to 7 whole numbers of days, each 1 to 30."""
        days = self.retry_days
        if not isinstance(days, list) or any(
            isinstance(day, bool) or not isinstance(day, int) for day in days
        ):
            raise ValidationError({"retry_days": "Give whole numbers of days, e.g. [3, 5, 7]."})
        if len(days) > MAX_CUSTOM_RETRIES:
            raise ValidationError(
                {"retry_days": f"At most {MAX_CUSTOM_RETRIES} retries (8 attempts in all)."}
            )
        if any(not 1 <= day <= MAX_RETRY_GAP_DAYS for day in days):
            raise ValidationError(
                {
                    "retry_days": "Each retry must come 1 to "
                    f"{MAX_RETRY_GAP_DAYS} days after the previous attempt."
                }
            )
        if self.retry_mode == RetryMode.CUSTOM and not days:
            raise ValidationError(
                {"retry_days": "Enter at least one retry, or choose smart retries instead."}
            )

    @property
    def retry_schedule(self) -> tuple[int, ...]:
        """Days between attempts, one per retry after the first failure."""
        if self.retry_mode == RetryMode.SMART:
            return SMART_RETRY_DAYS
        return tuple(int(days) for days in self.retry_days)
