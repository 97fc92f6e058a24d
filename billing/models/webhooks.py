"""Webhook endpoints: where an account's events are sent (SPEC R-EVT-2; delivery is issue #5)."""

import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from billing.choices import WebhookEndpointStatus
from billing.ids import ALPHABET
from billing.models.base import ModeScoped, id_field, metadata_field

SECRET_PREFIX = "whsec_"
SECRET_CHARS = 32
# A custom retry schedule has at most this many retries.
MAX_RETRIES = 20


def new_webhook_secret() -> str:
    """A signing secret in Stripe's shape: `whsec_` and 32 random base62 characters."""
    return SECRET_PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_CHARS))


class WebhookEndpoint(ModeScoped):
    """A URL that receives the account's events of the types it enables (`*` for all).

    `connect` endpoints receive the events of the account's connected accounts instead of its
    own (R-EVT-4). The secret signs deliveries; the API shows it only when the endpoint is made.
    """

    OBJECT = "webhook_endpoint"

    id = id_field("we")
    url = models.CharField(max_length=2048)
    enabled_events = models.JSONField(default=list)
    secret = models.CharField(max_length=64, default=new_webhook_secret)
    status = models.CharField(
        max_length=20, choices=WebhookEndpointStatus.choices, default=WebhookEndpointStatus.ENABLED
    )
    description = models.TextField(blank=True)
    connect = models.BooleanField(default=False)
    # The API version events are rendered in for this endpoint; blank for the account's.
    api_version = models.CharField(max_length=64, blank=True)
    metadata = metadata_field()
    # Seconds to wait after each failed attempt, one entry per retry; empty means Stripe's
    # schedule for the endpoint's mode (billing.webhooks.delivery.DEFAULT_RETRY_DELAYS).
    retry_schedule = models.JSONField(default=list, blank=True)
    # A rolled secret keeps signing (as a second `v1`) until this time, so receivers can
    # switch without dropping deliveries.
    secret_previous = models.CharField(max_length=64, blank=True)
    secret_previous_expires_at = models.DateTimeField(null=True, blank=True)
    # Why Relance disabled the endpoint (deliveries failing for days); blank when a person did.
    disabled_reason = models.TextField(blank=True)
    # When the current run of failed attempts began; None after a success.
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["account", "livemode", "created", "id"])]

    def clean(self):
        """A custom retry schedule is 1 to MAX_RETRIES delays, each 1 s to 3 days."""
        delays = self.retry_schedule
        if delays in (None, []):
            return
        if (
            not isinstance(delays, list)
            or len(delays) > MAX_RETRIES
            or any(
                isinstance(delay, bool) or not isinstance(delay, int) or not 1 <= delay <= 259200
                for delay in delays
            )
        ):
            raise ValidationError(
                {
                    "retry_schedule": f"Give up to {MAX_RETRIES} whole numbers of seconds "
                    "(1 to 259200) to wait after each failed attempt, or leave it empty "
                    "for Stripe's schedule."
                }
            )

    @property
    def enabled(self) -> bool:
        return self.status == WebhookEndpointStatus.ENABLED

    def listens_to(self, event_type: str) -> bool:
        """Whether an event of `event_type` is one this endpoint enabled."""
        return "*" in self.enabled_events or event_type in self.enabled_events

    def signing_secrets(self, now) -> list[str]:
        """The secrets a delivery made at wall time `now` is signed with: the current one, and
        the previous one while a roll's overlap lasts (receivers may still know only that)."""
        found = [self.secret]
        if (
            self.secret_previous
            and self.secret_previous_expires_at is not None
            and self.secret_previous_expires_at > now
        ):
            found.append(self.secret_previous)
        return found


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event on its way to one endpoint: written with the event (the outbox), then tried
    until the endpoint answers 2xx or the retry schedule runs out (SPEC R-EVT-2, R-EVT-3).

    `account` and `livemode` are the endpoint's (a platform's Connect endpoint receives its
    connected accounts' events). `test_clock` is the event's clock: retries run on its time.
    `lease_token`/`leased_until` mark an attempt in flight, so two workers never send the
    same attempt; a lease that outlives its worker simply expires.
    """

    id = id_field("whdel")
    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=False)
    event = models.ForeignKey(
        "billing.Event", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # A deleted clock takes its jobs (and so these deliveries' retries) with it.
    test_clock = models.ForeignKey(
        "billing.TestClock", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    status = models.CharField(
        max_length=10,
        choices=WebhookDeliveryStatus.choices,
        default=WebhookDeliveryStatus.PENDING,
    )
    # Every attempt, and those the retry schedule made (manual resends do not use it up).
    attempt_count = models.PositiveIntegerField(default=0)
    scheduled_attempts = models.PositiveIntegerField(default=0)
    # When the next automatic attempt is due, on the event's clock; None once settled.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The event's time (its clock's), so an endpoint's deliveries list in event order.
    created = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["event", "endpoint"], name="webhook_delivery_one_per_event_and_endpoint"
            ),
        ]
        indexes = [
            # An endpoint's deliveries, newest first, optionally by status (dashboard, replay).
            models.Index(fields=["endpoint", "created", "id"]),
            models.Index(fields=["endpoint", "status", "created"]),
        ]

    def __str__(self):
        return f"{self.event_id} → {self.endpoint_id}"

    @property
    def succeeded(self) -> bool:
        return self.status == WebhookDeliveryStatus.SUCCEEDED


class WebhookAttempt(models.Model):
    """One HTTP request of a delivery: when, how long, what came back (SPEC R-EVT-3)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    # 1 for the first attempt of the delivery, and so on (manual resends count too).
    number = models.PositiveIntegerField(default=1)
    # On the event's clock, like the delivery's times.
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # The start of the response body (at most RESPONSE_EXCERPT_BYTES), for support to read.
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # Asked for by a person (resend, replay) rather than the retry schedule.
    manual = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["delivery", "started_at"])]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
