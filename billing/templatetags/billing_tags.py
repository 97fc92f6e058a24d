"""Template filters and tags for the dashboard: money, status badges, timestamps, links."""

import calendar
import json
from urllib.parse import quote

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from billing.money import format_amount

register = template.Library()

# Badge colour family of each status (subscriptions, invoices, payment intents, test clocks).
BADGE_TONES = {
    "active": "success",
    "paid": "success",
    "succeeded": "success",
    "ready": "success",
    "trialing": "info",
    "processing": "info",
    "advancing": "info",
    "draft": "neutral",
    "void": "neutral",
    "canceled": "neutral",
    "incomplete_expired": "neutral",
    "paused": "neutral",
    "open": "primary",
    "past_due": "warning",
    "incomplete": "warning",
    "requires_action": "warning",
    "requires_confirmation": "warning",
    "requires_payment_method": "warning",
    "requires_capture": "warning",
    "unpaid": "danger",
    "uncollectible": "danger",
    "internal_failure": "danger",
    "revoked": "danger",
    # Webhook endpoints and deliveries.
    "enabled": "success",
    "disabled": "neutral",
    "pending": "info",
    "failed": "danger",
}

# Where a Stripe id's detail page is, by prefix (pages that exist; others show plain ids).
DETAIL_PAGES = {
    "cus": "dashboard:customer_detail",
    "sub": "dashboard:subscription_detail",
    "in": "dashboard:invoice_detail",
    "evt": "dashboard:event_detail",
    "clock": "dashboard:test_clock_detail",
    "we": "dashboard:webhook_detail",
    "whdel": "dashboard:webhook_delivery",
}


@register.filter
def money(amount, currency):
    """`{{ invoice.amount_due|money:invoice.currency }}` → `$20.00` (SPEC R-CORE-1)."""
    if amount is None or amount == "":
        return "—"
    return format_amount(int(amount), currency or "usd")


@register.filter
def status_label(value) -> str:
    return str(value or "").replace("_", " ").capitalize()


@register.filter
def status_badge(value):
    """A coloured pill for a status: `{{ sub.status|status_badge }}`."""
    status = str(value or "")
    tone = BADGE_TONES.get(status, "neutral")
    return format_html(
        '<span class="badge badge-{} status-{}">{}</span>', tone, status, status_label(status)
    )


@register.filter
def unix(value):
    """A datetime as Unix seconds, as the API shows it (SPEC R-CORE-4)."""
    if not value:
        return ""
    return calendar.timegm(value.utctimetuple())


@register.filter
def timestamp(value):
    """A datetime in the account's time zone, with its Unix seconds and ISO form on hover."""
    if not value:
        return "—"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{} · {}">{}</time>',
        value.isoformat(),
        calendar.timegm(value.utctimetuple()),
        local.strftime("%Z"),
        f"{local:%b} {local.day}, {local:%Y, %H:%M}",
    )


@register.filter
def date_only(value):
    if not value:
        return "—"
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}">{}</time>', value.isoformat(), f"{local:%b} {local.day}, {local:%Y}"
    )


@register.filter
def pretty_json(value):
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def object_url(object_id):
    """The dashboard URL of a Stripe id (`cus_…` → its customer page), or ''."""
    prefix = str(object_id or "").split("_", 1)[0]
    name = DETAIL_PAGES.get(prefix)
    if not name:
        return ""
    try:
        return reverse(name, args=[object_id])
    except NoReverseMatch:
        return ""


@register.filter
def object_link(object_id):
    """A link to a Stripe id's page when there is one, else the id in code type."""
    if not object_id:
        return "—"
    url = object_url(object_id)
    if url:
        return format_html('<a class="mono" href="{}">{}</a>', url, object_id)
    return format_html('<span class="mono">{}</span>', object_id)


@register.simple_tag
def page_query(filter_query, **cursor):
    """`?filters&after=…`: the list's current filters plus one cursor."""
    parts = [filter_query] if filter_query else []
    parts += [f"{name}={quote(str(value))}" for name, value in cursor.items() if value]
    return "?" + "&".join(parts)


@register.filter
def get_item(mapping, key):
    """`{{ dict|get_item:key }}` for keys that are not identifiers."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
