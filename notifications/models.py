"""Customer-email settings, the 30-day email log and the hosted links emails carry."""

import re

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.timezone import now

from billing.models.base import id_field
from notifications.choices import EmailKind, EmailStatus, LinkDestination, LinkPurpose

# A bare domain name such as "acme.test" or "mail.acme.com" (no scheme, no @, no path).
DOMAIN_PATTERN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def _days(default: int, maximum: int = 30):
    return models.PositiveSmallIntegerField(
        default=default, validators=[MinValueValidator(1), MaxValueValidator(maximum)]
    )


class EmailSettings(models.Model):
    """Which customer emails an account sends in one mode, and where their links lead
    (SPEC R-MAIL-1, R-MAIL-4, R-MAIL-7, R-MAIL-8). Branding lives on the Account (R-MAIL-10)."""

    account = models.ForeignKey(
        "billing.Account", on_delete=models.CASCADE, related_name="email_settings"
    )
    livemode = models.BooleanField(default=False)

    payment_failed = models.BooleanField("Failed card payments", default=True)
    # Unpaid `send_invoice` invoices of subscriptions: reminders every N days after the due date.
    invoice_reminders = models.BooleanField("Unpaid recurring invoice reminders", default=False)
    invoice_reminder_days = _days(7)
    invoice_reminder_count = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    trial_ending = models.BooleanField("Trial ending reminder (7 days before)", default=True)
    # Sent on the engine's `invoice.upcoming`, whose days come from the revenue-recovery
    # settings ("upcoming renewal events", SPEC R-INV-6), as Stripe does.
    upcoming_renewal = models.BooleanField("Upcoming renewal reminder", default=False)
    payment_action_required = models.BooleanField(
        "Payment confirmation needed (3-D Secure)", default=True
    )
    payment_action_reminders = models.BooleanField(
        "Reminders until the payment is confirmed", default=True
    )
    payment_action_reminder_days = _days(3)
    expiring_card = models.BooleanField("Expiring cards (one month before)", default=True)
    receipts = models.BooleanField("Receipts for paid invoices", default=True)
    finalized_invoices = models.BooleanField("Finalized invoices (send_invoice)", default=True)
    subscription_canceled = models.BooleanField("Subscription canceled", default=True)

    payment_link_destination = models.CharField(
        max_length=10,
        choices=[c for c in LinkDestination.choices if c[0] != LinkDestination.NONE],
        default=LinkDestination.HOSTED,
    )
    payment_link_url = models.URLField("Your payment-update page", blank=True)
    manage_link_destination = models.CharField(
        max_length=10, choices=LinkDestination.choices, default=LinkDestination.HOSTED
    )
    manage_link_url = models.URLField("Your subscription-management page", blank=True)
    # Test mode only (SPEC R-MAIL-8): customer emails go to this domain and to team members.
    verified_domain = models.CharField(max_length=253, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "email settings"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "livemode"], name="email_settings_one_per_mode"
            ),
        ]

    def __str__(self):
        return f"Email settings for {self.account_id} ({'live' if self.livemode else 'test'})"

    def clean(self):
        """Merchant URLs are required when chosen; the verified domain is a bare domain name."""
        errors = {}
        if self.payment_link_destination == LinkDestination.CUSTOM and not self.payment_link_url:
            errors["payment_link_url"] = "Enter the address of your payment-update page."
        if self.manage_link_destination == LinkDestination.CUSTOM and not self.manage_link_url:
            errors["manage_link_url"] = "Enter the address of your subscription-management page."
        self.verified_domain = (self.verified_domain or "").strip().lower().rstrip(".")
        if self.verified_domain and not DOMAIN_PATTERN.match(self.verified_domain):
            errors["verified_domain"] = (
                "Enter a domain name such as example.com (no @ or https://)."
            )
        if errors:
            raise ValidationError(errors)


class EmailLog(models.Model):
    """One customer email — sent, failed or suppressed — kept 30 days (SPEC R-MAIL-9).

    `dedup_key` names the email's cause (kind, object, cycle): it is unique, so an event handled
    twice or a retried task never makes a second email for the same cause.
    """

    OBJECT = "email"

    id = id_field("eml")
    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=False)
    customer = models.ForeignKey(
        "billing.Customer",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="email_logs",
    )
    kind = models.CharField(max_length=32, choices=EmailKind.choices)
    to = models.CharField(max_length=254, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text_body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=EmailStatus.choices, default=EmailStatus.QUEUED
    )
    # Why it was not sent (suppressed), e.g. the test-mode restriction.
    reason = models.CharField(max_length=300, blank=True)
    # The last delivery error (failed; kept after a later success for the record).
    error = models.TextField(blank=True)
    event = models.ForeignKey(
        "billing.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The invoice, subscription or card it is about.
    object_id = models.CharField(max_length=64, blank=True)
    dedup_key = models.CharField(max_length=200, unique=True)
    resent_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # Set by the worker that claimed the row for sending, until the outcome is recorded: it tells
    # that worker's rows from rows another worker claimed at the same moment.
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    # A send interrupted between the server's acceptance and our record is tried once more.
    recovered = models.BooleanField(default=False)
    created = models.DateTimeField(default=now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["customer", "created"]),
            models.Index(fields=["status", "claimed_at"]),
            models.Index(fields=["created"]),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} to {self.to or '—'} ({self.status})"


class HostedLink(models.Model):
    """A private, expiring link to a hosted page for one subscription (SPEC R-MAIL-5, R-MAIL-6).

    Only the SHA-256 of the token is stored: the URL exists only in the email that carried it.
    What was true when it was issued (`trial_end`, `period_end`) decides when it stops working.
    """

    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=False)
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.CASCADE, related_name="hosted_links"
    )
    subscription = models.ForeignKey(
        "billing.Subscription", on_delete=models.CASCADE, related_name="hosted_links"
    )
    purpose = models.CharField(max_length=16, choices=LinkPurpose.choices)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    # The email kind that carried the link ("" when issued otherwise).
    email_kind = models.CharField(max_length=32, choices=EmailKind.choices, blank=True)
    # On the subscription's clock (a test clock's frozen time), like every rule it is judged by.
    created = models.DateTimeField()
    expires_at = models.DateTimeField()
    # Set when issued during a trial: the trial's end (R-MAIL-6 "trial ended and a payment
    # method provided").
    trial_end = models.DateTimeField(null=True, blank=True)
    # Set when issued during a renewal period: its end (R-MAIL-6 "renewal period expired").
    period_end = models.DateTimeField(null=True, blank=True)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subscription", "purpose"])]
        constraints = [
            models.CheckConstraint(
                name="hosted_link_expires_after_created",
                condition=Q(expires_at__gte=models.F("created")),
            ),
        ]

    def __str__(self):
        return f"{self.get_purpose_display()} link for {self.subscription_id}"
