"""Hosted links: private, unguessable, expiring URLs to the hosted pages (SPEC R-MAIL-5, R-MAIL-6).

A link is a random token (`secrets.token_urlsafe(32)`, 256 bits) of which only the SHA-256 is
stored, so a database leak reveals no working URL. The URL is built from RELANCE_PUBLIC_URL:
`/pay/<token>/` (update the payment method and pay open invoices) or `/manage/<token>/`.

`resolve_link` is the only way in: it answers the link or None, applying every condition under
which R-MAIL-6 says a link stops working. The hosted pages (part 2 of #6) call it first.
"""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction

from billing.choices import CollectionMethod, SubscriptionStatus
from billing.clocks import now_for
from notifications.choices import EmailKind, LinkPurpose
from notifications.models import HostedLink

# R-MAIL-6: a link sent during a trial stops working 30 days after the trial-ending email.
TRIAL_LINK_LIFETIME = timedelta(days=30)
# Management links follow no billing period; they last as long as a trial link.
MANAGE_LINK_LIFETIME = timedelta(days=30)
# Statuses in which no hosted link works (R-MAIL-6).
DEAD_STATUSES = (
    SubscriptionStatus.CANCELED,
    SubscriptionStatus.INCOMPLETE_EXPIRED,
    SubscriptionStatus.UNPAID,
)
PATHS = {LinkPurpose.PAYMENT_UPDATE: "pay", LinkPurpose.MANAGE: "manage"}


def hash_token(token: str) -> str:
    """Tokens carry 256 bits of randomness, so one fast hash is enough (as for API keys)."""
    return hashlib.sha256(token.encode()).hexdigest()


def link_url(purpose: str, token: str) -> str:
    """The public URL of a link: RELANCE_PUBLIC_URL + /pay/<token>/ or /manage/<token>/."""
    base = settings.RELANCE_PUBLIC_URL.rstrip("/")
    return f"{base}/{PATHS[purpose]}/{token}/"


def has_payment_method(subscription) -> bool:
    """SPEC R-TRIAL-7: any of the subscription's or the customer's default methods is set."""
    customer = subscription.customer
    return bool(
        subscription.default_payment_method_id
        or subscription.default_source
        or customer.invoice_settings_default_payment_method_id
        or customer.default_source
    )


def issue_link(
    subscription, purpose: str, *, now=None, email_kind: str = ""
) -> tuple[HostedLink, str]:
    """A new link to `subscription`'s hosted page; returns the link and its URL (shown once).

    `now` defaults to the subscription's clock. What holds at issue decides the link's end:
    issued during a trial, it lasts 30 days and ends once the trial is over with a payment
    method; issued during a renewal period, it ends with that period (R-MAIL-6). No payment
    link exists for a subscription invoiced manually (R-MAIL-4).
    """
    if purpose not in PATHS:
        raise ValueError(f"unknown link purpose {purpose!r}")
    if (
        purpose == LinkPurpose.PAYMENT_UPDATE
        and subscription.collection_method == CollectionMethod.SEND_INVOICE
    ):
        raise ValueError("no payment-update link for a send_invoice subscription (R-MAIL-4)")
    now = now or now_for(subscription)
    token = secrets.token_urlsafe(32)
    link = HostedLink(
        account_id=subscription.account_id,
        livemode=subscription.livemode,
        customer_id=subscription.customer_id,
        subscription=subscription,
        purpose=purpose,
        token_hash=hash_token(token),
        email_kind=email_kind,
        created=now,
    )
    if purpose == LinkPurpose.MANAGE:
        link.expires_at = now + MANAGE_LINK_LIFETIME
    elif subscription.status == SubscriptionStatus.TRIALING and subscription.trial_end:
        link.trial_end = subscription.trial_end
        link.expires_at = now + TRIAL_LINK_LIFETIME
    else:
        link.period_end = max(subscription.current_period_end, now)
        link.expires_at = link.period_end
    link.save(force_insert=True)
    return link, link_url(purpose, token)


def inactive_reason(link: HostedLink, *, now) -> str | None:
    """Why `link` no longer works at `now`, or None while it works (SPEC R-MAIL-6)."""
    subscription = link.subscription
    # Deactivation is final whatever the clock says (a dashboard action uses wall time).
    if link.deactivated_at is not None:
        return link.reason or "The link was deactivated."
    if subscription.status in DEAD_STATUSES:
        return f"The subscription is {subscription.status}."
    if link.trial_end is not None:
        if now >= link.expires_at:
            what = (
                "the trial-ending email"
                if link.email_kind == EmailKind.TRIAL_ENDING
                else "the link was sent"
            )
            return f"30 days have passed since {what}."
        if now >= link.trial_end and has_payment_method(subscription):
            return "The trial has ended and a payment method was already provided."
    if link.period_end is not None and now >= link.period_end:
        return "The renewal period the link was sent for has ended."
    if now >= link.expires_at:
        return "The link has expired."
    return None


def resolve_link(token: str, *, now=None, purpose: str | None = None) -> HostedLink | None:
    """The working link for `token` (of `purpose`, if given), or None: unknown, deactivated or
    expired links all answer None, so a page reveals nothing about why. `now` defaults to the
    subscription's clock."""
    if not token or len(token) > 128:
        return None
    link = (
        HostedLink.objects.select_related("subscription__customer", "customer", "account")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None or (purpose is not None and link.purpose != purpose):
        return None
    if now is None:
        now = now_for(link.subscription)
    return None if inactive_reason(link, now=now) else link


@transaction.atomic
def deactivate_links(*, customer=None, subscription=None, reason: str, now=None) -> int:
    """Stop every working link of a customer (or of one subscription); returns how many."""
    if customer is None and subscription is None:
        raise ValueError("give a customer or a subscription")
    links = HostedLink.objects.filter(deactivated_at__isnull=True)
    if subscription is not None:
        links = links.filter(subscription=subscription)
        owner = subscription
    else:
        links = links.filter(customer=customer)
        owner = customer
    return links.update(deactivated_at=now or now_for(owner), reason=reason[:200])
