"""Connect in a real browser: a platform owner creates a connected account, works inside it,
comes back to the platform and disconnects it (SPEC R-CON-1, R-CON-7)."""

import pytest

from billing.models import Account

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def test_owner_creates_switches_into_and_disconnects_a_connected_account(
    live_server, browser_page, owner, account
):
    """SPEC R-CON-1: the platform creates a connected account and works inside it;
    SPEC R-CON-7: once disconnected after the confirmation, the platform lost access."""
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    page.click("nav >> text=Connected accounts")
    expect(page.locator("h1")).to_have_text("Connected accounts")

    # A bad currency is refused next to its field, and nothing is created.
    page.click("#new-connected-account summary")
    page.fill("input[name=name]", "Shop One")
    page.fill("input[name=email]", "shop@one.test")
    page.fill("input[name=default_currency]", "us1")
    page.click("#new-connected-account button[type=submit]")
    expect(page.locator(".field-default_currency .field-error")).to_contain_text("Default currency")
    expect(page.locator("input[name=name]")).to_have_value("Shop One")
    assert not Account.objects.filter(name="Shop One").exists()

    page.fill("input[name=default_currency]", "eur")
    page.click("#new-connected-account button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("Connected account Shop One created")
    expect(page.locator("h1")).to_contain_text("Shop One")
    expect(page.locator("h1 .status-connected")).to_have_text("Connected")
    shop = Account.objects.get(name="Shop One")
    assert shop.platform_id == account.pk and shop.default_currency == "eur"

    # Inside the connected account, every page says so; its customers are its own (none yet).
    page.click("button:has-text('Switch into Shop One')")
    banner = page.locator("#connected-account-banner")
    expect(banner).to_contain_text("You are working inside Shop One")
    page.click("nav >> text=Customers")
    expect(page.locator("h1")).to_have_text("Customers")
    expect(banner).to_contain_text("a connected account of Acme Inc.")
    expect(page.locator(".empty-state")).to_contain_text("No customers yet")
    expect(page.locator("nav >> text=Connected accounts")).to_have_count(0)

    # Back on the platform, on the account's page.
    page.click("button:has-text('Back to Acme Inc.')")
    expect(page.locator("h1")).to_contain_text("Shop One")
    expect(page.locator("#connected-account-banner")).to_have_count(0)
    expect(page.locator(".brand-name")).to_have_text("Acme Inc.")

    # Disconnecting states what happens, then happens; the account can't be entered any more.
    page.click("a:has-text('Disconnect…')")
    expect(page.locator("h1")).to_have_text("Disconnect Shop One from Acme Inc.?")
    expect(page.locator("[data-consequence=direct]")).to_contain_text(
        "no subscriptions on the account keep renewing"
    )
    expect(page.locator("[data-consequence=nothing-canceled]")).to_contain_text(
        "Nothing is canceled."
    )
    page.click("button:has-text('Disconnect account')")
    expect(page.locator(".message-success")).to_contain_text("Shop One is disconnected")
    expect(page.locator("h1 .status-disconnected")).to_have_text("Disconnected")
    expect(page.locator("button:has-text('Switch into')")).to_have_count(0)
    expect(page.locator("a:has-text('Reconnect…')")).to_be_visible()

    page.click("a.crumb:has-text('Connected accounts')")
    row = page.locator(f"tr[data-account='{shop.pk}']")
    expect(row).to_contain_text("Disconnected")
    shop.refresh_from_db()
    assert shop.is_disconnected
