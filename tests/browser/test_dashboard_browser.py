"""The dashboard in a real browser: sign in, browse, search, switch mode, filter with htmx."""

import pytest
from django.utils import timezone

from billing.choices import InvoiceStatus, SubscriptionStatus
from tests import factories

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture
def shop(account, owner):
    """Test-mode data to look at: two customers, subscriptions, invoices, events."""
    jenny = factories.make_customer(account, email="jenny.rosen@example.com", name="Jenny Rosen")
    bob = factories.make_customer(account, email="bob@builder.test", name="Bob Builder")
    sub = factories.make_subscription(jenny)
    factories.make_subscription(bob, status=SubscriptionStatus.PAST_DUE)
    paid = factories.make_invoice(
        jenny,
        subscription=sub,
        status=InvoiceStatus.PAID,
        number="ACME-0001",
        paid_at=timezone.now(),
    )
    unpaid = factories.make_invoice(bob, amount=4900, number="ACME-0002")
    factories.make_event(account, obj=jenny)
    factories.make_event(account, type="invoice.paid", obj=paid)
    return {"jenny": jenny, "bob": bob, "paid": paid, "unpaid": unpaid}


def test_member_browses_searches_switches_mode_and_filters(live_server, browser_page, shop):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/")

    # Anonymous: the sign-in form.
    expect(page).to_have_url(f"{live_server.url}/login/?next=/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    # The overview, in test mode.
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator(".test-banner")).to_be_visible()
    expect(page.locator("[data-kpi=active]")).to_have_text("1")
    expect(page.locator("[data-kpi=past_due]")).to_have_text("1")

    # Customers, then a search that htmx applies as you type.
    page.click("nav >> text=Customers")
    expect(page.locator("h1")).to_have_text("Customers")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(2)
    page.fill("input[name=q]", "jenny")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("jenny.rosen@example.com")
    expect(page).to_have_url(f"{live_server.url}/customers/?q=jenny")

    # Its detail page.
    page.click("#results >> text=Jenny Rosen")
    expect(page.locator("h1")).to_have_text("Jenny Rosen")
    expect(page.locator("body")).to_contain_text(shop["paid"].number)

    # Live mode: the test banner goes, the live indicator shows, and there is no live data.
    page.click("button.switch")
    expect(page).to_have_url(f"{live_server.url}/customers/")
    expect(page.locator(".mode-indicator")).to_have_text("Live mode")
    expect(page.locator(".test-banner")).to_have_count(0)
    expect(page.locator("#results")).to_contain_text("No customers yet")

    # Back to test mode, then an invoice filter that htmx swaps in without reloading the page.
    page.click("button.switch")
    expect(page.locator(".test-banner")).to_be_visible()
    page.click("nav >> text=Invoices")
    expect(page.locator("#results tbody tr")).to_have_count(2)
    page.evaluate("window.__notReloaded = true")
    page.select_option("select[name=status]", "paid")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    expect(page.locator("#results")).to_contain_text("ACME-0001")
    expect(page.locator("#results")).not_to_contain_text("ACME-0002")
    expect(page).to_have_url(f"{live_server.url}/invoices/?status=paid")
    assert page.evaluate("window.__notReloaded") is True

    page.screenshot(path="/tmp/dashboard.png", full_page=True)


def test_filters_work_without_javascript(live_server, chromium, shop):
    from playwright.sync_api import expect

    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "owner@acme.test")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.goto(f"{live_server.url}/invoices/")
        page.select_option("select[name=status]", "open")
        page.click("form.filters button[type=submit]")
        expect(page).to_have_url(
            f"{live_server.url}/invoices/?q=&status=open&collection_method=&created_from=&created_to="
        )
        expect(page.locator("#results tbody tr")).to_have_count(1)
        expect(page.locator("#results")).to_contain_text("ACME-0002")
    finally:
        context.close()
