"""The hosted payment page in a real browser: a customer whose renewal failed opens the link
from the payment-failed email, enters 4242 4242 4242 4242, and the invoice is paid and the
subscription active again (issue #6; SPEC R-MAIL-4, R-MAIL-5)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from billing.choices import InvoiceStatus, SubscriptionStatus
from billing.services.customers import add_card, create_customer
from billing.services.subscriptions import create_subscription
from billing.services.test_clocks import advance_test_clock, create_test_clock
from notifications.services.settings import update_email_settings
from tests import factories

pytestmark = pytest.mark.browser

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _card(number):
    return {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.fixture
def past_due(account, settings, live_server):
    """A past-due subscription whose payment-failed email went to the customer."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RELANCE_PUBLIC_URL = live_server.url
    mail.outbox = []
    account.branding_display_name = "Acme Billing"
    account.branding_primary_color = "#0f766e"
    account.save()
    update_email_settings(account, livemode=False, verified_domain="example.com")
    clock = create_test_clock(account, frozen_time=START, name="browser")
    customer = create_customer(
        account, livemode=False, email="jenny@example.com", name="Jenny Rosen", test_clock=clock
    )
    add_card(customer, card=_card("4242424242424242"), set_default=True)
    price = factories.make_price(account, unit_amount=3000)
    sub = create_subscription(customer, items=[{"price": price}])
    # The card is replaced by one that attaches but never pays; the renewal fails.
    add_card(customer, card=_card("4000000000000341"), set_default=True)
    clock.refresh_from_db()
    advance_test_clock(clock, to=clock.frozen_time + timedelta(days=31, hours=2))
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE
    return sub


def test_customer_pays_from_the_payment_failed_email(live_server, browser_page, past_due):
    from playwright.sync_api import expect

    [email] = [m for m in mail.outbox if "/pay/" in m.body]
    link = re.search(r"https?://\S+/pay/[\w-]+/", email.body).group()
    assert link.startswith(live_server.url)

    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    response = page.goto(link)
    assert response.headers["referrer-policy"] == "no-referrer"
    expect(page.locator("h1")).to_have_text("Update your payment method")
    expect(page.locator(".brand-name")).to_have_text("Acme Billing")
    expect(page.locator("[data-status]")).to_have_text("Past due")
    expect(page.locator("p.lead")).to_contain_text("$30.00 is due")

    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiration month").fill("12")
    page.get_by_label("Expiration year").fill("2030")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name="Pay $30.00").click()

    expect(page.locator("#payment-success h1")).to_have_text("Payment received")
    expect(page.locator("[data-status]")).to_have_text("Active")
    invoice = past_due.latest_invoice
    invoice.refresh_from_db()
    past_due.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert past_due.status == SubscriptionStatus.ACTIVE
    assert past_due.default_payment_method.card_last4 == "4242"


def test_a_guessed_link_shows_the_invalid_page(live_server, browser_page, db):
    from playwright.sync_api import expect

    response = browser_page.goto(f"{live_server.url}/pay/not-a-real-token/")
    assert response.status == 404
    expect(browser_page.locator("h1")).to_have_text("This link is no longer valid")
