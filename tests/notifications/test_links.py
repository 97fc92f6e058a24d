"""Hosted links: token hashes only, the URL shape, and each R-MAIL-6 deactivation condition."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from billing.choices import CollectionMethod, SubscriptionStatus
from notifications.choices import EmailKind, LinkPurpose
from notifications.models import HostedLink
from notifications.services.links import deactivate_links, issue_link, resolve_link
from tests import factories

NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def sub(customer, settings):
    settings.RELANCE_PUBLIC_URL = "https://billing.acme.test/"
    return factories.make_subscription(customer, start=NOW - timedelta(days=5))


@pytest.fixture
def trialing(customer):
    return factories.make_subscription(
        customer,
        status=SubscriptionStatus.TRIALING,
        start=NOW,
        trial_start=NOW,
        trial_end=NOW + timedelta(days=7),
        current_period_end=NOW + timedelta(days=7),
    )


def _token(url):
    return url.rstrip("/").rsplit("/", 1)[1]


def test_a_link_stores_only_the_tokens_hash_and_builds_the_public_url(sub):
    # SPEC R-MAIL-5
    link, url = issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    token = _token(url)
    assert url == f"https://billing.acme.test/pay/{token}/"
    assert len(token) >= 43  # 32 random bytes
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(HostedLink.objects.filter(pk=link.pk).values().get())
    assert resolve_link(token, now=NOW) == link


def test_management_links_use_the_manage_path(sub):
    # SPEC R-MAIL-7
    link, url = issue_link(sub, LinkPurpose.MANAGE, now=NOW)
    assert "/manage/" in url
    assert resolve_link(_token(url), now=NOW, purpose=LinkPurpose.MANAGE) == link
    assert resolve_link(_token(url), now=NOW, purpose=LinkPurpose.PAYMENT_UPDATE) is None


def test_unknown_or_guessed_tokens_resolve_to_nothing(sub):
    # SPEC R-MAIL-5
    issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    assert resolve_link("not-a-token", now=NOW) is None
    assert resolve_link("", now=NOW) is None
    assert resolve_link("x" * 500, now=NOW) is None


def test_no_payment_link_for_a_send_invoice_subscription(customer):
    # SPEC R-MAIL-4
    sub = factories.make_subscription(
        customer, collection_method=CollectionMethod.SEND_INVOICE, days_until_due=30
    )
    with pytest.raises(ValueError, match="send_invoice"):
        issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)


def test_link_stops_30_days_after_the_trial_ending_email(trialing):
    # SPEC R-MAIL-6, condition 1
    link, url = issue_link(
        trialing, LinkPurpose.PAYMENT_UPDATE, now=NOW, email_kind=EmailKind.TRIAL_ENDING
    )
    # The trial ended without a payment method (e.g. paused): the link still works…
    trialing.status = SubscriptionStatus.PAUSED
    trialing.save()
    assert resolve_link(_token(url), now=NOW + timedelta(days=29, hours=23)) == link
    # …until 30 days after the email.
    assert resolve_link(_token(url), now=NOW + timedelta(days=30)) is None


@pytest.mark.parametrize(
    "status",
    [
        SubscriptionStatus.CANCELED,
        SubscriptionStatus.INCOMPLETE_EXPIRED,
        SubscriptionStatus.UNPAID,
    ],
)
def test_link_stops_when_the_subscription_is_canceled_expired_or_unpaid(sub, status):
    # SPEC R-MAIL-6, condition 2
    _, url = issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    assert resolve_link(_token(url), now=NOW) is not None
    sub.status = status
    sub.save()
    assert resolve_link(_token(url), now=NOW) is None


def test_link_stops_when_the_trial_ended_and_a_payment_method_was_provided(trialing, customer):
    # SPEC R-MAIL-6, condition 3
    _, url = issue_link(trialing, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    after_trial = NOW + timedelta(days=8)
    trialing.status = SubscriptionStatus.ACTIVE
    trialing.save()
    # Trial over, no payment method yet: the customer still needs the page.
    assert resolve_link(_token(url), now=after_trial) is not None
    card = factories.make_card(customer)
    customer.invoice_settings_default_payment_method = card
    customer.save()
    # Before the trial's end a payment method does not stop it…
    assert resolve_link(_token(url), now=NOW + timedelta(days=1)) is not None
    # …after it, it does.
    assert resolve_link(_token(url), now=after_trial) is None


def test_link_stops_when_the_renewal_period_it_was_sent_in_has_expired(sub):
    # SPEC R-MAIL-6, condition 4
    _, url = issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    period_end = sub.current_period_end
    assert resolve_link(_token(url), now=period_end - timedelta(seconds=1)) is not None
    assert resolve_link(_token(url), now=period_end) is None


def test_deactivated_links_stop_working(sub, customer):
    # The dashboard (and support) can deactivate a customer's links.
    _, url = issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    _, other = issue_link(sub, LinkPurpose.MANAGE, now=NOW)
    assert deactivate_links(customer=customer, reason="Customer asked", now=NOW) == 2
    assert resolve_link(_token(url), now=NOW) is None
    assert resolve_link(_token(other), now=NOW) is None
    assert HostedLink.objects.filter(reason="Customer asked").count() == 2


def test_resolve_link_defaults_to_the_subscriptions_test_clock(account, price=None):
    # SPEC R-CORE-4: judged on the clock the subscription lives on
    clock = factories.make_test_clock(account, frozen_time=NOW + timedelta(days=60))
    customer = factories.make_customer(account, test_clock=clock)
    sub = factories.make_subscription(customer, start=NOW, test_clock=clock)
    _, url = issue_link(sub, LinkPurpose.PAYMENT_UPDATE, now=NOW)
    assert resolve_link(_token(url)) is None
    clock.frozen_time = NOW + timedelta(days=1)
    clock.save()
    assert resolve_link(_token(url)) is not None
