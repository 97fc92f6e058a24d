"""Statuses and kinds of the notifications app, as TextChoices (never bare strings)."""

from django.db import models


class EmailKind(models.TextChoices):
    """One template per kind in templates/emails/<kind>.{subject.txt,txt,html} (SPEC R-MAIL-1)."""

    PAYMENT_FAILED = "payment_failed", "Payment failed"
    INVOICE_REMINDER = "invoice_reminder", "Unpaid invoice reminder"
    TRIAL_ENDING = "trial_ending", "Trial ending"
    UPCOMING_RENEWAL = "upcoming_renewal", "Upcoming renewal"
    PAYMENT_ACTION_REQUIRED = "payment_action_required", "Payment confirmation needed"
    EXPIRING_CARD = "expiring_card", "Expiring card"
    RECEIPT = "receipt", "Receipt"
    INVOICE_FINALIZED = "invoice_finalized", "Invoice finalized"
    SUBSCRIPTION_CANCELED = "subscription_canceled", "Subscription canceled"
    # Sent by automations (#7) to any recipient, not by the engine's events.
    TEAM_MEMO = "team_memo", "Team memo"
    CANCELLATION_CONFIRMATION = "cancellation_confirmation", "Cancellation confirmation"


class EmailStatus(models.TextChoices):
    """Where an email is: waiting for a worker, being sent, sent, failed (retried), suppressed."""

    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SUPPRESSED = "suppressed", "Not sent"


class LinkPurpose(models.TextChoices):
    """What a hosted link opens: the payment-method update page or subscription management."""

    PAYMENT_UPDATE = "payment_update", "Update payment method"
    MANAGE = "manage", "Manage subscription"


class LinkDestination(models.TextChoices):
    """Where the links in emails lead (SPEC R-MAIL-4, R-MAIL-7)."""

    HOSTED = "hosted", "Hosted page"
    CUSTOM = "custom", "Your own page"
    NONE = "none", "No link"
