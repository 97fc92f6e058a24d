"""Each account's customer-email settings, per mode (SPEC R-MAIL-1)."""

from django.db import transaction

from notifications.models import EmailSettings

# What the dashboard form edits; the rest (account, mode, timestamps) is not the caller's.
EDITABLE_FIELDS = [
    "payment_failed",
    "invoice_reminders",
    "invoice_reminder_days",
    "invoice_reminder_count",
    "trial_ending",
    "upcoming_renewal",
    "payment_action_required",
    "payment_action_reminders",
    "payment_action_reminder_days",
    "expiring_card",
    "receipts",
    "finalized_invoices",
    "subscription_canceled",
    "payment_link_destination",
    "payment_link_url",
    "manage_link_destination",
    "manage_link_url",
    "verified_domain",
]


def email_settings(account_or_id, livemode: bool) -> EmailSettings:
    """The saved settings of an account and mode, or the defaults (unsaved) when none were saved."""
    account_id = getattr(account_or_id, "pk", account_or_id)
    found = EmailSettings.objects.filter(account_id=account_id, livemode=livemode).first()
    return found or EmailSettings(account_id=account_id, livemode=livemode)


@transaction.atomic
def update_email_settings(account, *, livemode: bool, **fields) -> EmailSettings:
    """Change some settings, all or nothing; raises ValidationError naming the field."""
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not email settings: {', '.join(sorted(unknown))}")
    current = EmailSettings.objects.select_for_update().filter(
        account=account, livemode=livemode
    ).first() or EmailSettings(account=account, livemode=livemode)
    for name, value in fields.items():
        setattr(current, name, value)
    current.full_clean(exclude=["account"])
    current.save()
    return current
