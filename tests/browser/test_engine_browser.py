"""The engine in a real browser: a test clock, a declined first payment, 23 hours later expired."""

import pytest

from billing.choices import SubscriptionStatus
from billing.models import Subscription, TestClock
from tests import factories

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def sign_in(page, live_server):
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_a_declined_subscription_on_a_test_clock_expires_after_a_day(
    live_server, browser_page, account, owner
):
    # SPEC R-CLOCK-2, R-SUB-2, R-INV-10
    from playwright.sync_api import expect

    price = factories.make_price(account, unit_amount=2900, product_name="Team plan")
    page = browser_page
    sign_in(page, live_server)

    # A new clock, frozen at the default time (now), in test mode.
    page.click("nav >> text=Test clocks")
    expect(page.locator("#new-clock")).to_be_visible()
    page.screenshot(path="/tmp/engine_clocks_list.png", full_page=True)
    page.fill("#new-clock input[name=name]", "Declined card rehearsal")
    page.click("#new-clock button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Declined card rehearsal")
    expect(page.locator("[data-clock-status]")).to_have_attribute("data-clock-status", "ready")
    clock = TestClock.objects.get(name="Declined card rehearsal")

    # A customer with the declining test card, subscribed to the monthly price.
    form = page.locator("#add-customer form")
    form.locator("input[name=customer-email]").fill("declined@example.com")
    form.locator("input[name=customer-name]").fill("Dee Klein")
    form.locator("select[name=customer-card]").select_option("4000000000000002")
    form.locator("select[name=customer-price]").select_option(price.pk)
    form.locator("button[type=submit]").click()
    expect(page.locator(".message-success")).to_contain_text("its subscription is incomplete")
    row = page.locator("#clock-customers tbody tr").first
    expect(row).to_contain_text("Dee Klein")
    expect(row).to_contain_text("Declined")
    expect(row.locator(".status-incomplete")).to_be_visible()
    expect(row.locator(".status-open")).to_be_visible()  # its first invoice, unpaid
    page.screenshot(path="/tmp/engine_clock_incomplete.png", full_page=True)

    # The subscription page: incomplete, expiring 23 hours after creation, with its actions.
    row.locator("a.sub-link").click()
    expect(page.locator("h1")).to_contain_text("Dee Klein")
    expect(page.locator("h1 .status-incomplete")).to_be_visible()
    expect(page.locator("#next-due")).to_contain_text("Expires unless paid")
    expect(page.locator("#actions")).to_contain_text("Cancel now")
    page.screenshot(path="/tmp/engine_subscription.png", full_page=True)

    # Its first invoice: open, with the finance actions.
    page.click("#actions ~ .card >> text=Latest invoice >> xpath=following-sibling::dd[1]//a")
    expect(page.locator("#actions")).to_contain_text("Retry payment now")
    page.screenshot(path="/tmp/engine_invoice.png", full_page=True)

    # Back to the clock: one day later the subscription has expired (23-hour rule).
    page.goto(f"{live_server.url}/test-clocks/{clock.pk}/")
    page.click("button[name=step][value=day]")
    expect(page.locator("[data-clock-status]")).to_have_attribute("data-clock-status", "ready")
    expect(page.locator(".message-success")).to_contain_text("Advancing the clock")
    row = page.locator("#clock-customers tbody tr").first
    expect(row.locator(".status-incomplete_expired")).to_be_visible()
    expect(row.locator(".status-void")).to_be_visible()
    expect(page.locator("#clock-events")).to_contain_text("customer.subscription.deleted")
    page.screenshot(path="/tmp/engine_clock.png", full_page=True)

    subscription = Subscription.objects.get(customer__test_clock=clock)
    assert subscription.status == SubscriptionStatus.INCOMPLETE_EXPIRED

    # Its page now offers no action: incomplete_expired is final.
    row.locator("a.sub-link").click()
    expect(page.locator("h1 .status-incomplete_expired")).to_be_visible()
    expect(page.locator("#actions")).to_have_count(0)
    expect(page.locator("#next-due")).to_contain_text("Nothing scheduled")


def test_confirmation_works_without_javascript(live_server, chromium, account, owner):
    """A finance action is a plain link to a confirmation page and a POST form."""
    from playwright.sync_api import expect

    from billing.services import subscriptions as subs
    from billing.services.customers import add_card, create_customer

    price = factories.make_price(account)
    customer = create_customer(account, livemode=False, email="nojs@example.com")
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2035},
        set_default=True,
    )
    customer.refresh_from_db()
    sub = subs.create_subscription(customer, items=[{"price": price}])

    context = chromium.new_context(
        java_script_enabled=False, viewport={"width": 1360, "height": 860}
    )
    page = context.new_page()
    try:
        sign_in(page, live_server)
        page.goto(f"{live_server.url}/subscriptions/{sub.pk}/")
        page.click("#actions >> text=Cancel at period end")
        expect(page.locator("h1")).to_have_text("Cancel at the end of the current period?")
        page.screenshot(path="/tmp/engine_confirm.png", full_page=True)
        page.click("button[type=submit] >> text=Cancel at period end")
        expect(page.locator(".message-success")).to_contain_text("will cancel at the end")
        expect(page.locator("#actions")).to_contain_text("Don't cancel")
        sub.refresh_from_db()
        assert sub.cancel_at_period_end

        page.goto(f"{live_server.url}/settings/recovery/")
        page.screenshot(path="/tmp/engine_recovery.png", full_page=True)
    finally:
        context.close()


def test_an_advancing_clock_page_updates_itself_when_the_clock_is_ready(
    live_server, browser_page, account, owner
):
    # SPEC R-CLOCK-2: `advancing` while the worker runs, then `ready`
    from datetime import timedelta

    from playwright.sync_api import expect

    from billing import timeline
    from billing.choices import TestClockStatus
    from billing.services.test_clocks import create_test_clock

    clock = create_test_clock(account, frozen_time=factories.timezone.now().replace(microsecond=0))
    # As if a worker had not picked the advance up yet.
    TestClock.objects.filter(pk=clock.pk).update(
        status=TestClockStatus.ADVANCING, advancing_to=clock.frozen_time + timedelta(days=3)
    )
    page = browser_page
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/test-clocks/{clock.pk}/")
    expect(page.locator("[data-clock-status]")).to_have_attribute("data-clock-status", "advancing")
    expect(page.locator(".clock-note")).to_contain_text("Advancing to")
    expect(page.locator("button[name=step][value=day]")).to_be_disabled()
    page.screenshot(path="/tmp/engine_clock_advancing.png", full_page=True)

    timeline.advance_clock(clock.pk)  # the worker's job

    # htmx polls every second and reloads the page once the clock is ready.
    expect(page.locator("[data-clock-status]")).to_have_attribute("data-clock-status", "ready")
    expect(page.locator("button[name=step][value=day]")).to_be_enabled()
    expect(page.locator("#clock-events")).to_contain_text("test_helpers.test_clock.ready")
