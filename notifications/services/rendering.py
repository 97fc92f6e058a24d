"""The one helper that renders customer emails: templates/emails/<kind>.{subject.txt,txt,html}.

Every email carries the account's branding (SPEC R-MAIL-10) and states dates in the customer's
time zone, else the account's, else UTC (SPEC R-MAIL-3). Templates only see plain values that
the callers format here (amounts with `billing.money.format_amount`), so the dashboard preview
renders the same templates from sample data.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.template.loader import render_to_string

from notifications.choices import EmailKind


@dataclass(frozen=True)
class RenderedEmail:
    """An email ready to log and send."""

    subject: str
    text: str
    html: str


def zone_for(customer=None, account=None):
    """The time zone dates are stated in: the customer's, else the account's, else UTC."""
    for name in (getattr(customer, "timezone", ""), getattr(account, "timezone", "")):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                # A stale or mistyped zone must not keep the email from going out.
                continue
    return UTC


def format_date(moment: datetime | None, zone) -> str:
    """`moment` as a calendar date in `zone`, e.g. "February 14, 2026"; "" for None."""
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    return f"{local:%B} {local.day}, {local.year}"


def brand_context(account) -> dict:
    """The branding every template uses (SPEC R-MAIL-10)."""
    return {
        "brand_name": account.display_name,
        "brand_logo_url": account.branding_logo_url,
        "brand_color": account.branding_primary_color or "#4f46e5",
        "support_email": account.email,
    }


def render_email(kind: str, context: dict, *, account) -> RenderedEmail:
    """Render `kind`'s three templates with the account's branding and `context`."""
    if kind not in EmailKind.values:
        raise ValueError(f"unknown email kind {kind!r}")
    full = {**brand_context(account), **context, "kind": kind}
    # A subject is one line: template whitespace and newlines collapse to single spaces.
    subject = " ".join(render_to_string(f"emails/{kind}.subject.txt", full).split())
    text = render_to_string(f"emails/{kind}.txt", full).strip() + "\n"
    html = render_to_string(f"emails/{kind}.html", full)
    return RenderedEmail(subject=subject, text=text, html=html)
