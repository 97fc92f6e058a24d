"""The Webhooks pages in a real browser: add an endpoint, reveal its secret, send a test event
to a real local receiver, read the attempt, resend it, filter deliveries with htmx."""

import pytest
import stripe

from billing.models import WebhookEndpoint
from tests.receiver import running_receiver

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


@pytest.fixture
def receiver():
    with running_receiver() as server:
        yield server


def test_owner_adds_an_endpoint_sends_a_test_event_and_resends_it(
    live_server, browser_page, owner, account, receiver
):
    from playwright.sync_api import expect

    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    page.click("nav >> text=Webhooks")
    expect(page.locator("h1")).to_have_text("Webhooks")

    # A URL without events is refused, naming the field, and the form keeps what was typed.
    page.click("#new-endpoint summary")
    page.fill("input[name=url]", receiver.url)
    page.fill("input[name=description]", "Accounting sync")
    page.click("#new-endpoint button[type=submit]")
    expect(page.locator(".field-enabled_events .field-error")).to_contain_text(
        "Choose at least one event"
    )
    expect(page.locator("input[name=url]")).to_have_value(receiver.url)

    page.check("input[name=enabled_events][value='invoice.paid']")
    page.click("#new-endpoint button[type=submit]")
    endpoint = WebhookEndpoint.objects.get(account=account)
    expect(page.locator(".message-success")).to_contain_text("Endpoint added")

    # The secret shows only once asked for.
    secret = page.locator("#endpoint-secret")
    expect(secret).to_be_hidden()
    page.click("#signing-secret summary")
    expect(secret).to_have_text(endpoint.secret)

    # A test event reaches the receiver, signed; its delivery is listed, then its attempt.
    page.click("button:has-text('Send test event')")
    expect(page.locator(".message-success")).to_contain_text("Test event sent")
    ((body, signature),) = receiver.received
    event = stripe.Webhook.construct_event(body.decode(), signature, endpoint.secret)
    assert event["type"] == "invoice.paid"
    rows = page.locator("#deliveries tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Succeeded")

    rows.first.locator("a.row-link").click()
    expect(page.locator("[data-attempt]")).to_have_count(1)
    expect(page.locator("[data-attempt='1']")).to_contain_text("200")
    page.click("button:has-text('Resend')")
    expect(page.locator("[data-attempt]")).to_have_count(2)
    expect(page.locator("[data-attempt='2']")).to_contain_text("Sent by hand")
    assert len(receiver.received) == 2

    # Back on the endpoint, the status filter narrows the list in place.
    page.click(f"a.crumb:has-text('{receiver.url}')")
    page.select_option("select[name=status]", "failed")
    expect(page.locator("#deliveries tbody tr")).to_have_count(0)
    expect(page).to_have_url(f"{live_server.url}/webhooks/{endpoint.pk}/?status=failed")
    page.select_option("select[name=status]", "succeeded")
    expect(page.locator("#deliveries tbody tr")).to_have_count(1)
