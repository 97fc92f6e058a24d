"""Sample data for the settings page's preview of every email kind (current branding)."""

from datetime import UTC, datetime, timedelta

from django.conf import settings as django_settings
from django.utils import timezone

from billing.money import format_amount
from notifications.choices import EmailKind, LinkDestination
from notifications.services.rendering import format_date, render_email, zone_for

# Preview links are shaped like real ones but open nothing.
SAMPLE_TOKEN = "preview-token-not-a-real-link"


def _sample_links(email_settings, *, payment: bool) -> dict:
    base = django_settings.RELANCE_PUBLIC_URL.rstrip("/")
    links = {"payment_link": "", "manage_link": ""}
    if payment:
        links["payment_link"] = (
            email_settings.payment_link_url
            if email_settings.payment_link_destination == LinkDestination.CUSTOM
            else f"{base}/pay/{SAMPLE_TOKEN}/"
        )
    if email_settings.manage_link_destination == LinkDestination.CUSTOM:
        links["manage_link"] = email_settings.manage_link_url
    elif email_settings.manage_link_destination == LinkDestination.HOSTED:
        links["manage_link"] = f"{base}/manage/{SAMPLE_TOKEN}/"
    return links


# Kinds whose email carries the payment-update link (SPEC R-MAIL-4).
PAYMENT_LINK_KINDS = {
    EmailKind.PAYMENT_FAILED,
    EmailKind.PAYMENT_ACTION_REQUIRED,
    EmailKind.TRIAL_ENDING,
    EmailKind.UPCOMING_RENEWAL,
    EmailKind.EXPIRING_CARD,
}


def sample_context(kind: str, account, email_settings) -> dict:
    """Plausible values for `kind`'s template, in the account's currency and time zone."""
    zone = zone_for(None, account)
    now = timezone.now()
    currency = account.default_currency or "usd"
    amount = format_amount(2900, currency)
    base = {
        "customer_name": "Jenny Rosen",
        "plan_name": "Pro plan",
        "today": format_date(now, zone),
        "invoice_number": "ACME-0042",
        "amount_due": amount,
        "amount_paid": amount,
        "total": amount,
        "due_date": format_date(now + timedelta(days=14), zone),
        "next_attempt_date": format_date(now + timedelta(days=3), zone),
        "paid_date": format_date(now, zone),
        "trial_end_date": format_date(now + timedelta(days=7), zone),
        "has_payment_method": False,
        "renewal_date": format_date(now + timedelta(days=7), zone),
        "card_brand": "Visa",
        "card_last4": "4242",
        "card_expiry": f"{now.month:02d}/{now.year}",
        "expiry_date": format_date(datetime(now.year, now.month, 28, tzinfo=UTC), zone),
        "ended_date": format_date(now, zone),
        "end_date": format_date(now + timedelta(days=20), zone),
        "already_ended": False,
        "is_reminder": False,
        "reminder_number": 1,
        "memo_subject": "Jenny Rosen's payment failed 3 times",
        "memo_body": "The automation “Failed payments” asks you to call Jenny Rosen.",
    }
    return {**base, **_sample_links(email_settings, payment=kind in PAYMENT_LINK_KINDS)}


def preview_all(account, email_settings) -> list[dict]:
    """Every kind rendered with sample data: [{kind, label, subject, text, html}]."""
    previews = []
    for kind, label in EmailKind.choices:
        rendered = render_email(
            kind, sample_context(kind, account, email_settings), account=account
        )
        previews.append(
            {
                "kind": kind,
                "label": label,
                "subject": rendered.subject,
                "text": rendered.text,
                "html": rendered.html,
            }
        )
    return previews
