"""Settings → Emails in a real browser: the preview of every email, an inline error naming the
field, saving a merchant URL that the previews then use (SPEC R-MAIL-1, R-MAIL-4, R-MAIL-10)."""

import pytest

from notifications.models import EmailSettings

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def test_owner_edits_email_settings_and_sees_the_preview(live_server, browser_page, account, owner):
    from playwright.sync_api import expect

    account.branding_display_name = "Acme Billing"
    account.branding_primary_color = "#ff5500"
    account.save()

    page = browser_page
    page.goto(f"{live_server.url}/login/?next=/settings/emails/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Customer emails")

    # Every kind has a preview; the first is open and shows the branding in its sandboxed frame.
    previews = page.locator("details.email-preview")
    expect(previews).to_have_count(11)
    frame = page.frame_locator("details[data-kind=payment_failed] iframe")
    expect(frame.locator("body")).to_contain_text("Acme Billing")
    expect(frame.locator("a.email-button")).to_have_attribute(
        "href", "http://localhost:8000/pay/preview-token-not-a-real-link/"
    )

    # The merchant's own page without its address: the error names the field.
    page.check("input[name=payment_link_destination][value=custom]")
    page.click("button:has-text('Save email settings')")
    error = page.locator("[data-field=payment_link_url]")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Your payment-update page")

    page.fill("input[name=payment_link_url]", "https://acme.test/billing")
    page.fill("input[name=verified_domain]", "acme.test")
    page.click("button:has-text('Save email settings')")
    expect(page.locator(".messages")).to_contain_text("Email settings saved.")
    saved = EmailSettings.objects.get(account=account, livemode=False)
    assert saved.payment_link_url == "https://acme.test/billing"
    assert saved.verified_domain == "acme.test"

    # The previews follow the saved settings: the button now leads to the merchant's page.
    page.locator("details[data-kind=trial_ending] summary").first.click()
    trial = page.frame_locator("details[data-kind=trial_ending] iframe")
    expect(trial.locator("a.email-button")).to_have_attribute("href", "https://acme.test/billing")
