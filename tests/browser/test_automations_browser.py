"""The Automations pages in a real browser: build an automation from an example, drag it
above another, reload and find the order kept, then disable it choosing to cancel its runs
(SPEC R-AUTO-5, R-AUTO-7)."""

import pytest

from automations import services
from automations.choices import RunStatus
from automations.models import Automation, AutomationRun
from billing.services.customers import create_customer

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"


def _order(page):
    return page.locator(
        "#group-customer_created li.automation-item .automation-name"
    ).all_inner_texts()


def test_build_from_an_example_drag_it_first_and_disable_it_canceling_runs(
    live_server, browser_page, owner, account
):
    from playwright.sync_api import expect

    services.save_automation(
        account=account,
        livemode=False,
        name="Welcome memo",
        trigger="customer_created",
        filters=[],
        actions_=[
            {
                "kind": "email_team_member",
                "delay_days": 1,
                "params": {"to": "owner@acme.test", "memo": "New customer"},
            }
        ],
    )
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("input[name=username]", "owner@acme.test")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")

    # Build from the "credit for new beta users" example, its credit three days after signup.
    page.click("nav >> text=Automations")
    expect(page.locator("h1")).to_have_text("Automations")
    page.click("a[data-example='beta-credit']")
    expect(page.locator("#id_name")).to_have_value("Credit for new beta users")
    expect(page.locator("#f-0-key")).to_have_value("beta")
    page.fill("#a-0-delay", "3")
    page.click("#save-automation")
    expect(page.locator(".message-success")).to_contain_text("created")
    built = Automation.objects.get(name="Credit for new beta users")

    # Drag it above the other automation of its trigger; the order is saved at once.
    page.click("nav >> text=Automations")
    assert _order(page) == ["Welcome memo", "Credit for new beta users"]
    handle = page.locator(f"li[data-id='{built.pk}'] .drag-handle")
    page.locator("#group-customer_created").scroll_into_view_if_needed()
    start = handle.bounding_box()
    goal = page.locator("#group-customer_created li.automation-item").first.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    # SortableJS checks the pointer's position every 50 ms while dragging: move like a hand.
    for step in range(1, 11):
        y = start["y"] + (goal["y"] + 4 - start["y"]) * step / 10
        page.mouse.move(start["x"] + start["width"] / 2, y)
        page.wait_for_timeout(60)
    page.wait_for_timeout(200)
    # Wait for the order's POST itself: under load it may start after the network looked idle.
    with page.expect_response(lambda response: "/automations/reorder/" in response.url):
        page.mouse.up()
    expect(page.locator("#group-customer_created li.automation-item").first).to_contain_text(
        "Credit for new beta users"
    )
    page.reload()
    assert _order(page) == ["Credit for new beta users", "Welcome memo"]
    built.refresh_from_db()
    assert built.priority == 0

    # A beta customer starts a run (its credit waits three days); disabling cancels it.
    create_customer(account, livemode=False, email="beta@acme.test", metadata={"beta": "true"})
    run = AutomationRun.objects.get(automation=built)
    assert run.status == RunStatus.RUNNING
    page.reload()
    item = page.locator(f"li[data-id='{built.pk}']")
    item.locator("summary:has-text('Disable')").click()
    item.locator("input[name=runs][value=cancel]").check()
    item.locator("button:has-text('Disable Credit for new beta users')").click()
    expect(page.locator(".message-success")).to_contain_text("1 run canceled")
    expect(page.locator(f"li[data-id='{built.pk}']")).to_contain_text("Disabled")
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
