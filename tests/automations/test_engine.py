"""Automations driven through test clocks: each trigger, action and end condition, first-match
priority, defaults when nothing matches, disabling, and steps that survive a killed worker."""

from datetime import timedelta

import pytest

from automations import engine, services
from automations.choices import EndReason, RunStatus, StepStatus
from automations.models import AutomationRun, RunStep, TriggerMatch
from billing import timeline
from billing.choices import InvoiceStatus, JobStatus, SubscriptionStatus
from billing.models import CustomerBalanceTransaction, DueJob, Event, Subscription
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from notifications.models import EmailLog
from tests.automations.conftest import START, memo

CREDIT = {
    "kind": "credit_customer_balance",
    "delay_days": 0,
    "params": {"amount": 1000, "currency": "usd"},
}


def _run_for(obj) -> AutomationRun:
    return AutomationRun.objects.get(object_id=obj.pk)


def _send_invoice_subscription(world, price, customer=None, days_until_due=14):
    customer = customer or world.customer(card=None)
    with world.commit():
        sub = subs.create_subscription(
            customer,
            items=[{"price": price}],
            collection_method="send_invoice",
            days_until_due=days_until_due,
        )
    return sub, sub.latest_invoice


# --- customer created ---------------------------------------------------------------------


def test_customer_created_credits_the_new_customer_s_balance(world):
    # SPEC R-AUTO-2 (customer created), R-AUTO-4 (credit customer balance)
    world.automation(actions=[CREDIT])
    customer = world.customer(card=None)
    assert customer.balance == -1000
    credit = CustomerBalanceTransaction.objects.get(customer=customer, type="adjustment")
    assert credit.amount == -1000
    run = _run_for(customer)
    assert run.status == RunStatus.COMPLETED
    assert run.end_reason == EndReason.ALL_STEPS_DONE
    assert run.event_id == Event.objects.get(type="customer.created", object_id=customer.pk).pk
    assert [s.status for s in run.steps.all()] == [StepStatus.DONE]


def test_customer_created_subscribes_the_customer_to_the_chosen_price(world, price):
    # SPEC R-AUTO-4 (create subscription with one product and price)
    world.automation(
        actions=[{"kind": "create_subscription", "delay_days": 0, "params": {"price": price.pk}}]
    )
    customer = world.customer()
    subscription = Subscription.objects.get(customer=customer)
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.items.get().price == price


def test_a_delayed_step_waits_for_the_customer_s_clock(world):
    # SPEC R-AUTO-1 (each action has a delay), R-CLOCK-2
    world.automation(actions=[{**CREDIT, "delay_days": 3}])
    customer = world.customer(card=None)
    step = RunStep.objects.get(run__object_id=customer.pk)
    assert step.status == StepStatus.WAITING
    assert step.due_at == START + timedelta(days=3)
    world.advance(days=2, hours=23)
    step.refresh_from_db()
    assert step.status == StepStatus.WAITING
    world.advance(hours=1)
    step.refresh_from_db()
    customer.refresh_from_db()
    assert step.status == StepStatus.DONE
    assert step.done_at == START + timedelta(days=3)
    assert customer.balance == -1000


# --- subscription canceled ----------------------------------------------------------------


def test_subscription_canceled_sends_the_cancellation_confirmation(world, price):
    # SPEC R-AUTO-2 (subscription canceled), R-AUTO-4 (cancellation confirmation email)
    world.automation(
        trigger="subscription_canceled",
        actions=[
            {
                "kind": "send_cancellation_confirmation",
                "delay_days": 0,
                "params": {"survey_url": "https://acme.test/why"},
            }
        ],
    )
    customer = world.customer()
    with world.commit():
        sub = subs.create_subscription(customer, items=[{"price": price}])
    with world.commit():
        subs.cancel_subscription(sub)
    log = EmailLog.objects.get(kind="cancellation_confirmation")
    assert log.to == customer.email
    assert engine.taken("subscription_canceled", sub.pk)
    # SPEC R-AUTO-6: the automation ran, so the default "subscription canceled" email did not.
    assert not EmailLog.objects.filter(kind="subscription_canceled").exists()
    step = _run_for(sub).steps.get()
    assert step.status == StepStatus.DONE


# --- invoice finalized --------------------------------------------------------------------


def test_without_an_automation_the_default_canceled_email_is_logged(world, price):
    # SPEC R-AUTO-6: no automation on the trigger, so the account's default email applies.
    customer = world.customer()
    with world.commit():
        sub = subs.create_subscription(customer, items=[{"price": price}])
    with world.commit():
        subs.cancel_subscription(sub)
    assert EmailLog.objects.filter(kind="subscription_canceled", object_id=sub.pk).exists()


def test_invoice_finalized_marks_the_invoice_uncollectible_after_the_delay(world, price):
    # SPEC R-AUTO-2 (invoice finalized), R-AUTO-4 (mark invoice uncollectible)
    world.automation(
        trigger="invoice_finalized",
        actions=[{"kind": "mark_invoice_uncollectible", "delay_days": 3, "params": {}}],
    )
    _sub, invoice = _send_invoice_subscription(world, price)
    world.advance(days=2)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    world.advance(days=1)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE
    assert invoice.marked_uncollectible_at == START + timedelta(days=3)
    assert _run_for(invoice).status == RunStatus.COMPLETED


def test_a_finalized_invoice_run_ends_when_the_invoice_is_paid(world, price):
    # SPEC R-AUTO-2 (ends when the invoice is paid)
    world.automation(
        trigger="invoice_finalized",
        actions=[{"kind": "mark_invoice_uncollectible", "delay_days": 3, "params": {}}],
    )
    customer = world.customer()
    _sub, invoice = _send_invoice_subscription(world, price, customer=customer)
    with world.commit():
        invoicing.pay_invoice(invoice)
    run = _run_for(invoice)
    assert run.status == RunStatus.COMPLETED
    assert run.end_reason == EndReason.INVOICE_PAID
    assert run.steps.get().status == StepStatus.SKIPPED
    assert not DueJob.objects.filter(kind="automation_step", status=JobStatus.PENDING).exists()


def test_a_finalized_invoice_run_ends_when_auto_advance_is_turned_off(world, price):
    # SPEC R-AUTO-2 (ends when auto_advance is turned off)
    world.automation(
        trigger="invoice_finalized",
        actions=[{"kind": "mark_invoice_uncollectible", "delay_days": 3, "params": {}}],
    )
    _sub, invoice = _send_invoice_subscription(world, price)
    with world.commit():
        invoicing.update_invoice(invoice, auto_advance=False)
    run = _run_for(invoice)
    assert run.end_reason == EndReason.AUTO_ADVANCE_OFF
    world.advance(days=4)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_an_invoice_already_paid_when_matched_ends_its_run_at_once(world, price):
    # SPEC R-AUTO-2: a charged invoice is finalized and paid in one go; its run ends as it starts
    world.automation(trigger="invoice_finalized", actions=[memo(delay=1)])
    customer = world.customer()
    with world.commit():
        sub = subs.create_subscription(customer, items=[{"price": price}])
    run = _run_for(sub.latest_invoice)
    assert run.status == RunStatus.COMPLETED
    assert run.end_reason == EndReason.INVOICE_PAID
    assert run.steps.get().status == StepStatus.SKIPPED


# --- invoice overdue ------------------------------------------------------------------------


def test_invoice_overdue_emails_the_team_a_memo_with_the_invoice_s_details(world, price):
    # SPEC R-AUTO-2 (invoice overdue), R-AUTO-4 (email a team member)
    world.automation(
        name="Flag overdue", trigger="invoice_overdue", actions=[memo(text="Call them")]
    )
    _sub, invoice = _send_invoice_subscription(world, price)
    world.advance(days=13)
    assert not EmailLog.objects.filter(kind="team_memo").exists()
    world.advance(days=2)
    log = EmailLog.objects.get(kind="team_memo")
    assert log.to == "owner@acme.test"
    assert "Call them" in log.text_body
    assert invoice.pk in log.text_body
    assert "Flag overdue" in log.subject


# --- invoice due date approaching -----------------------------------------------------------


def _will_be_due(invoice):
    return list(
        Event.objects.filter(type="invoice.will_be_due", object_id=invoice.pk)
        .order_by("created")
        .values_list("created", flat=True)
    )


def test_due_date_approaching_sends_will_be_due_webhooks_before_the_due_date(world, price):
    # SPEC R-AUTO-2 (due date approaching, times relative to the due date), R-INV-7
    world.automation(
        trigger="invoice_due_date_approaching",
        actions=[
            {"kind": "send_will_be_due_webhook", "delay_days": -7, "params": {}},
            {"kind": "send_will_be_due_webhook", "delay_days": -1, "params": {}},
        ],
    )
    _sub, invoice = _send_invoice_subscription(world, price)
    due = invoice.due_date
    world.advance(days=8)
    assert _will_be_due(invoice) == [due - timedelta(days=7)]
    world.advance(days=6)
    assert _will_be_due(invoice) == [due - timedelta(days=7), due - timedelta(days=1)]
    assert _run_for(invoice).status == RunStatus.COMPLETED


def test_due_date_steps_already_past_are_skipped(world, price):
    # SPEC R-AUTO-2: "10 days before" an invoice due in 5 days cannot happen any more
    world.automation(
        trigger="invoice_due_date_approaching",
        actions=[
            {"kind": "send_will_be_due_webhook", "delay_days": -10, "params": {}},
            {"kind": "send_will_be_due_webhook", "delay_days": -1, "params": {}},
        ],
    )
    _sub, invoice = _send_invoice_subscription(world, price, days_until_due=5)
    first, second = _run_for(invoice).steps.all()
    assert first.status == StepStatus.SKIPPED
    assert second.status == StepStatus.WAITING


def test_a_due_date_run_ends_when_the_invoice_is_voided(world, price):
    # SPEC R-AUTO-2 (ends when the invoice is voided)
    world.automation(
        trigger="invoice_due_date_approaching",
        actions=[{"kind": "send_will_be_due_webhook", "delay_days": -3, "params": {}}],
    )
    _sub, invoice = _send_invoice_subscription(world, price)
    with world.commit():
        invoicing.void_invoice(invoice)
    assert _run_for(invoice).end_reason == EndReason.INVOICE_VOIDED
    world.advance(days=14)
    assert _will_be_due(invoice) == []


# --- matching -------------------------------------------------------------------------------


def test_the_first_automation_whose_filters_hold_runs_and_the_others_are_skipped(world):
    # SPEC R-AUTO-5
    vip = world.automation(
        name="VIP",
        filters=[{"kind": "customer_metadata", "key": "tier", "value": "vip"}],
        actions=[CREDIT],
    )
    everyone = world.automation(name="Everyone", actions=[memo()])
    late = world.automation(name="Also VIP", actions=[CREDIT])
    assert [vip.priority, everyone.priority, late.priority] == [0, 1, 2]
    vip_customer = world.customer(card=None, metadata={"tier": "vip"})
    other = world.customer(card=None, email="other@acme.test")
    assert _run_for(vip_customer).automation == vip
    assert _run_for(other).automation == everyone
    assert AutomationRun.objects.count() == 2
    assert TriggerMatch.objects.get(object_id=vip_customer.pk).automation == vip


def test_reordering_changes_which_automation_takes_the_event(world):
    # SPEC R-AUTO-5 (priority is set by dragging in the list)
    first = world.automation(name="First", actions=[memo()])
    second = world.automation(name="Second", actions=[CREDIT])
    services.reorder(
        account=world.account,
        livemode=False,
        trigger="customer_created",
        order=[second.pk, first.pk],
    )
    customer = world.customer(card=None)
    assert _run_for(customer).automation == second


def test_with_no_match_the_event_is_recorded_for_the_defaults(world):
    # SPEC R-AUTO-6 (no automation matches: the account's defaults run)
    world.automation(
        filters=[{"kind": "customer_metadata", "key": "tier", "value": "vip"}], actions=[CREDIT]
    )
    customer = world.customer(card=None)
    match = TriggerMatch.objects.get(object_id=customer.pk)
    assert match.automation is None and not match.taken
    assert not engine.taken("customer_created", customer.pk)
    assert not AutomationRun.objects.exists()


def test_a_disabled_automation_is_not_matched(world):
    # SPEC R-AUTO-7
    automation = world.automation(actions=[CREDIT])
    services.set_enabled(automation, enabled=False)
    customer = world.customer(card=None)
    assert not AutomationRun.objects.filter(object_id=customer.pk).exists()
    services.set_enabled(automation, enabled=True)
    again = world.customer(card=None, email="again@acme.test")
    assert _run_for(again).automation == automation


def test_an_event_delivered_twice_is_matched_once(world):
    # SPEC R-AUTO-5 (one event runs at most one automation, once)
    world.automation(actions=[CREDIT])
    customer = world.customer(card=None)
    event = Event.objects.get(type="customer.created", object_id=customer.pk)
    from automations.subscribers import on_customer_created

    with world.commit():
        on_customer_created(event)
    customer.refresh_from_db()
    assert AutomationRun.objects.count() == 1
    assert customer.balance == -1000


# --- disabling --------------------------------------------------------------------------------


def _waiting_run(world):
    automation = world.automation(actions=[{**CREDIT, "delay_days": 2}])
    customer = world.customer(card=None)
    return automation, customer, _run_for(customer)


def test_disabling_and_canceling_runs_stops_them_now(world):
    # SPEC R-AUTO-7 (cancel them all now)
    automation, customer, run = _waiting_run(world)
    assert services.set_enabled(automation, enabled=False, runs="cancel") == 1
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELED
    assert run.end_reason == EndReason.AUTOMATION_DISABLED
    assert run.steps.get().status == StepStatus.CANCELED
    world.advance(days=3)
    customer.refresh_from_db()
    assert customer.balance == 0


def test_disabling_and_letting_runs_finish_keeps_them_going(world):
    # SPEC R-AUTO-7 (let them finish)
    automation, customer, run = _waiting_run(world)
    assert services.set_enabled(automation, enabled=False, runs="finish") == 0
    world.advance(days=3)
    run.refresh_from_db()
    customer.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert customer.balance == -1000


def test_a_canceled_run_does_nothing_more(world):
    # SPEC R-AUTO-8 (a run can be cancelled)
    _automation, customer, run = _waiting_run(world)
    assert engine.cancel_run(run)
    assert not engine.cancel_run(run)
    world.advance(days=3)
    customer.refresh_from_db()
    assert customer.balance == 0
    assert AutomationRun.objects.get().end_reason == EndReason.CANCELED_BY_USER


# --- crashes ---------------------------------------------------------------------------------


class WorkerKilled(BaseException):
    """What a killed worker looks like from inside: nothing after it runs."""


def test_a_worker_killed_mid_step_neither_loses_nor_repeats_the_step(world, monkeypatch):
    # DESIGN "Time and due work": the step, its action and its job commit together
    from billing.services import customers as customer_services

    _automation, customer, run = _waiting_run(world)
    step = run.steps.get()
    job = DueJob.objects.get(kind="automation_step", target_id=step.pk)
    real = customer_services.create_balance_transaction

    def credit_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise WorkerKilled

    monkeypatch.setattr(customer_services, "create_balance_transaction", credit_then_die)
    world.clock.refresh_from_db()
    with pytest.raises(WorkerKilled), world.commit():
        from billing import clocks

        with clocks.running(world.clock.pk, step.due_at):
            timeline.run(job.pk)
    customer.refresh_from_db()
    step.refresh_from_db()
    job.refresh_from_db()
    assert customer.balance == 0  # the credit rolled back with the step
    assert step.status == StepStatus.WAITING
    assert job.status == JobStatus.PENDING

    monkeypatch.setattr(customer_services, "create_balance_transaction", real)
    world.advance(days=3)  # the job runs again: once
    assert timeline.run(job.pk) is False  # and a duplicate hand-out does nothing
    customer.refresh_from_db()
    step.refresh_from_db()
    assert customer.balance == -1000
    assert step.status == StepStatus.DONE
    assert CustomerBalanceTransaction.objects.filter(customer=customer).count() == 1


def test_a_step_claimed_twice_runs_once(world):
    # DESIGN: steps are claimed with a conditional update
    _automation, customer, run = _waiting_run(world)
    step = run.steps.get()
    world.advance(days=3)
    step.refresh_from_db()
    assert engine.run_step(step) == StepStatus.DONE  # already done: nothing happens
    customer.refresh_from_db()
    assert customer.balance == -1000


def test_a_failing_action_is_recorded_on_the_step_and_the_run_goes_on(world):
    # SPEC R-AUTO-8 (steps failed with their error)
    world.automation(
        actions=[
            {**CREDIT, "params": {"amount": 1000, "currency": "eur"}},
            {**CREDIT, "delay_days": 1},
        ]
    )
    customer = world.customer(card=None, balance=500)  # the balance is in usd
    world.advance(days=2)
    first, second = _run_for(customer).steps.all()
    assert first.status == StepStatus.FAILED
    assert "usd" in first.error
    assert second.status == StepStatus.DONE
    assert _run_for(customer).status == RunStatus.FAILED
