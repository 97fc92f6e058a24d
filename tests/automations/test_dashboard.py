"""The Automations pages: list by trigger, builder, priority, toggles, runs, and the admin."""

import pytest
from django.urls import reverse

from automations import engine, services
from automations.choices import RunStatus
from automations.models import Automation, AutomationRun
from tests import factories
from tests.automations.conftest import memo

CREDIT = {
    "kind": "credit_customer_balance",
    "delay_days": 2,
    "params": {"amount": 500, "currency": "usd"},
}


def _automation(account, name="Flow", trigger="customer_created", actions=(CREDIT,), **kw):
    return services.save_automation(
        account=account,
        livemode=False,
        name=name,
        trigger=trigger,
        filters=[],
        actions_=list(actions),
        **kw,
    )


def test_the_list_groups_automations_by_trigger_in_priority_order(member_client, account):
    # SPEC R-AUTO-5
    _automation(account, name="Second", actions=[memo()])
    first = _automation(account, name="First", actions=[memo()])
    services.reorder(
        account=account,
        livemode=False,
        trigger="customer_created",
        order=[first.pk, Automation.objects.get(name="Second").pk],
    )
    response = member_client.get(reverse("automations:list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="/automations/"' in html  # the nav shows the page
    group = html[html.index('id="group-customer_created"') :]
    assert group.index("First") < group.index("Second")
    assert "Subscription payment fails" in html


def test_the_builder_starts_from_an_example(member_client):
    # Reference 000's examples
    response = member_client.get(reverse("automations:new") + "?example=annual-dunning")
    html = response.content.decode()
    assert "Custom dunning for annual subscribers" in html
    assert 'value="3, 5, 7"' in html
    assert 'value="owner@acme.test"' in html


def test_saving_an_example_creates_the_automation(member_client, account):
    # SPEC R-AUTO-1
    response = member_client.post(
        reverse("automations:new"),
        {
            "op": "save",
            "name": "Beta credit",
            "trigger": "customer_created",
            "filter_count": 1,
            "f-0-kind": "customer_metadata",
            "f-0-key": "beta",
            "f-0-value": "true",
            "action_count": 1,
            "a-0-kind": "credit_customer_balance",
            "a-0-delay": "0",
            "a-0-amount": "10.00",
            "a-0-currency": "usd",
        },
    )
    automation = Automation.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("automations:detail", args=[automation.pk])
    assert automation.conditions == [{"kind": "customer_metadata", "key": "beta", "value": "true"}]
    assert automation.actions[0]["params"] == {"amount": 1000, "currency": "usd"}


def test_builder_errors_are_shown_inline_naming_the_field(member_client):
    # SPEC R-AUTO-1: validation errors inline
    response = member_client.post(
        reverse("automations:new"),
        {
            "op": "save",
            "name": "",
            "trigger": "invoice_overdue",
            "filter_count": 1,
            "f-0-kind": "invoice_amount",
            "f-0-min": "ten",
            "f-0-currency": "usd",
            "action_count": 1,
            "a-0-kind": "email_team_member",
            "a-0-delay": "0",
            "a-0-to": "not an email",
            "a-0-memo": "Hi",
        },
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert "Minimum: Enter an amount" in html
    assert not Automation.objects.exists()
    response = member_client.post(
        reverse("automations:new"),
        {
            "op": "save",
            "name": "",
            "trigger": "invoice_overdue",
            "filter_count": 0,
            "action_count": 1,
            "a-0-kind": "email_team_member",
            "a-0-delay": "0",
            "a-0-to": "not an email",
            "a-0-memo": "Hi",
        },
    )
    html = response.content.decode()
    assert "Name: Give the automation a name." in html
    assert "Email: Enter a valid email address." in html


def test_the_builder_offers_only_the_actions_that_fit_the_trigger(member_client):
    # SPEC R-AUTO-4
    html = member_client.get(
        reverse("automations:new") + "?trigger=customer_created"
    ).content.decode()
    options = html[html.index('id="new_action"') :]
    options = options[: options.index("</select>")]
    assert 'value="credit_customer_balance"' in options
    assert 'value="cancel_subscription"' not in options


def test_the_server_refuses_an_action_the_form_did_not_offer(member_client):
    # SPEC R-AUTO-4: not just the form
    response = member_client.post(
        reverse("automations:new"),
        {
            "op": "save",
            "name": "X",
            "trigger": "customer_created",
            "filter_count": 0,
            "action_count": 1,
            "a-0-kind": "cancel_subscription",
            "a-0-delay": "0",
        },
    )
    assert response.status_code == 400
    assert "does not fit the trigger" in response.content.decode()


def test_changing_the_trigger_drops_actions_that_no_longer_fit(member_client):
    response = member_client.post(
        reverse("automations:new"),
        {
            "op": "change_trigger",
            "name": "X",
            "trigger": "customer_created",
            "filter_count": 0,
            "action_count": 2,
            "a-0-kind": "cancel_subscription",
            "a-0-delay": "0",
            "a-1-kind": "email_team_member",
            "a-1-to": "a@b.test",
            "a-1-memo": "m",
        },
    )
    html = response.content.decode()
    assert 'name="a-0-kind" value="email_team_member"' in html
    assert 'value="cancel_subscription"' not in html


def test_reordering_through_htmx_saves_at_once_and_returns_the_group(member_client, account):
    # SPEC R-AUTO-5 (priority set by dragging)
    a, b = _automation(account, name="A"), _automation(account, name="B")
    response = member_client.post(
        reverse("automations:reorder"),
        {"trigger": "customer_created", "order": f"{b.pk},{a.pk}"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'class="automation-list"' in response.content.decode()
    assert list(Automation.objects.order_by("priority").values_list("name", flat=True)) == [
        "B",
        "A",
    ]


def test_a_reorder_missing_an_automation_is_refused(member_client, account):
    a, _b = _automation(account, name="A"), _automation(account, name="B")
    member_client.post(
        reverse("automations:reorder"), {"trigger": "customer_created", "order": a.pk}
    )
    assert list(Automation.objects.order_by("priority").values_list("name", flat=True)) == [
        "A",
        "B",
    ]


def test_up_and_down_buttons_move_an_automation(member_client, account):
    # SPEC R-AUTO-5 (keyboard users)
    _automation(account, name="A")
    b = _automation(account, name="B")
    member_client.post(reverse("automations:move", args=[b.pk]), {"direction": "up"})
    assert list(Automation.objects.order_by("priority").values_list("name", flat=True)) == [
        "B",
        "A",
    ]


def test_disabling_from_the_list_can_cancel_runs(member_client, account, customer):
    # SPEC R-AUTO-7
    automation = _automation(account)
    run = engine.claim("customer_created", customer)
    response = member_client.post(
        reverse("automations:toggle", args=[automation.pk]), {"enabled": "0", "runs": "cancel"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    automation.refresh_from_db()
    assert not automation.enabled
    assert run.status == RunStatus.CANCELED
    member_client.post(reverse("automations:toggle", args=[automation.pk]), {"enabled": "1"})
    automation.refresh_from_db()
    assert automation.enabled


def test_runs_show_their_steps_and_can_be_canceled(member_client, account, customer):
    # SPEC R-AUTO-8
    automation = _automation(account)
    run = engine.claim("customer_created", customer)
    html = member_client.get(reverse("automations:runs")).content.decode()
    assert run.pk in html and automation.name in html
    html = member_client.get(reverse("automations:run", args=[run.pk])).content.decode()
    assert "Waiting until" in html
    assert "Cancel run" in html
    member_client.post(reverse("automations:run_cancel", args=[run.pk]))
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    html = member_client.get(reverse("automations:detail", args=[automation.pk])).content.decode()
    assert "Canceled" in html


def test_deleting_an_automation_asks_first_and_cancels_its_runs(member_client, account, customer):
    automation = _automation(account)
    run = engine.claim("customer_created", customer)
    url = reverse("automations:delete", args=[automation.pk])
    assert "its 1 run in progress is canceled" in member_client.get(url).content.decode()
    response = member_client.post(url)
    assert response["Location"] == reverse("automations:list")
    assert not Automation.objects.filter(pk=automation.pk).exists()
    assert not AutomationRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).exists()


def test_read_only_members_see_but_cannot_change(read_only_client, account):
    automation = _automation(account)
    assert read_only_client.get(reverse("automations:list")).status_code == 200
    assert read_only_client.get(reverse("automations:new")).status_code == 403
    response = read_only_client.post(
        reverse("automations:toggle", args=[automation.pk]), {"enabled": "0"}
    )
    assert response.status_code == 403
    delete = reverse("automations:delete", args=[automation.pk])
    assert read_only_client.post(delete).status_code == 403
    assert Automation.objects.filter(pk=automation.pk).exists()


def test_another_account_s_automation_is_not_found(member_client, other_account):
    # SPEC R-CORE-3
    foreign = _automation(other_account)
    assert member_client.get(reverse("automations:detail", args=[foreign.pk])).status_code == 404
    assert member_client.post(reverse("automations:move", args=[foreign.pk])).status_code == 404


@pytest.fixture
def admin_client_(client, db):
    user = factories.make_user(email="support@relance.test", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_support_cancels_runs_from_the_admin(admin_client_, account, customer):
    # SPEC R-AUTO-8 (admin for support)
    _automation(account)
    run = engine.claim("customer_created", customer)
    assert admin_client_.get(reverse("admin:automations_automation_changelist")).status_code == 200
    assert (
        admin_client_.get(
            reverse("admin:automations_automationrun_change", args=[run.pk])
        ).status_code
        == 200
    )
    admin_client_.post(
        reverse("admin:automations_automationrun_changelist"),
        {"action": "cancel_runs", "_selected_action": [run.pk]},
    )
    assert AutomationRun.objects.get().status == RunStatus.CANCELED
