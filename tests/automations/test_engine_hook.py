"""A subscription's first failed payment, matched by the billing engine inside its transaction
(SPEC R-INV-9, R-AUTO-6): these tests need the hook in billing/services/invoices.py
(`_automation_takes_failure`, see docs/automations.md) and are skipped until it is applied."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from automations.choices import EndReason, RunStatus, StepStatus
from automations.models import AutomationRun, TriggerMatch
from billing.choices import InvoiceStatus, JobStatus, SubscriptionStatus
from billing.models import DueJob, Event, Invoice
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from notifications.models import EmailLog
from tests import factories
from tests.automations.conftest import memo

pytestmark = pytest.mark.skipif(
    not hasattr(invoicing, "_automation_takes_failure"),
    reason="needs the automations hook in billing/services/invoices.py (docs/automations.md)",
)

OVER_100_USD = [{"kind": "invoice_amount", "min": 10000, "max": None, "currency": "usd"}]


def _policy(*days, delay=0):
    return {"kind": "set_retry_policy", "delay_days": delay, "params": {"retry_days": list(days)}}


def _failing_renewal(world, price):
    """A subscription whose card fails from its first renewal, advanced past that renewal."""
    customer = world.customer(email=f"{price.pk}@acme.test")
    with world.commit():
        sub = subs.create_subscription(customer, items=[{"price": price}])
    card = customer.invoice_settings_default_payment_method
    card.test_behavior = "generic_decline"
    card.save()
    return sub


def _renew(world):
    world.advance(days=31, hours=2)


def _invoice_events(invoice):
    return list(Event.objects.filter(object_id=invoice.pk).order_by("created", "id"))


def test_next_payment_attempt_moves_from_payment_failed_to_the_following_invoice_updated(
    world, price
):
    # SPEC R-INV-9
    world.automation(trigger="subscription_payment_failed", actions=[_policy(2, 3)])
    sub = _failing_renewal(world, price)
    _renew(world)
    sub.refresh_from_db()
    invoice = sub.latest_invoice
    events = _invoice_events(invoice)
    failed = next(i for i, e in enumerate(events) if e.type == "invoice.payment_failed")
    assert events[failed].data["object"]["next_payment_attempt"] is None
    following = next(
        e
        for e in events[failed + 1 :]
        if e.type == "invoice.updated" and e.data["object"]["next_payment_attempt"]
    )
    expected = invoice.finalized_at + timedelta(days=2)
    assert following.data["object"]["next_payment_attempt"] == int(expected.timestamp())
    assert following.data["previous_attributes"] == {"next_payment_attempt": None}
    assert invoice.next_payment_attempt == expected
    assert TriggerMatch.objects.get(object_id=invoice.pk).event_id == events[failed].pk


def test_the_100_usd_example_runs_the_automation_for_150_and_the_defaults_for_50(world, account):
    # SPEC R-AUTO-6 (its example), R-AUTO-3 (invoice amount)
    world.automation(
        name="Large failures",
        trigger="subscription_payment_failed",
        filters=OVER_100_USD,
        actions=[memo()],
    )
    large = _failing_renewal(world, factories.make_price(account, unit_amount=15000))
    small = _failing_renewal(world, factories.make_price(account, unit_amount=5000))
    _renew(world)
    large.refresh_from_db()
    small.refresh_from_db()

    big_invoice, small_invoice = large.latest_invoice, small.latest_invoice
    assert AutomationRun.objects.get().object_id == big_invoice.pk
    assert big_invoice.next_payment_attempt is None  # no default retry
    assert not DueJob.objects.filter(
        kind="payment_retry", target_id=big_invoice.pk, status=JobStatus.PENDING
    ).exists()
    assert EmailLog.objects.filter(kind="team_memo").count() == 1

    assert small_invoice.next_payment_attempt == small_invoice.finalized_at + timedelta(days=1)
    assert DueJob.objects.filter(
        kind="payment_retry", target_id=small_invoice.pk, status=JobStatus.PENDING
    ).exists()
    match = TriggerMatch.objects.get(object_id=small_invoice.pk)
    assert match.automation is None and not match.taken
    # The default payment-failed email goes for the small invoice only.
    failed_emails = EmailLog.objects.filter(kind="payment_failed")
    assert [log.object_id for log in failed_emails] == [small_invoice.pk]


def test_the_retry_policy_replaces_the_schedule_and_the_defaults_do_not_follow_it(world, price):
    # SPEC R-AUTO-4 (set retry policy, mark subscription unpaid), R-AUTO-6, R-INV-9
    world.automation(
        trigger="subscription_payment_failed",
        actions=[
            _policy(2, 3),
            {"kind": "mark_subscription_unpaid", "delay_days": 6, "params": {}},
        ],
    )
    sub = _failing_renewal(world, price)
    _renew(world)
    sub.refresh_from_db()
    invoice = sub.latest_invoice
    first = invoice.finalized_at
    world.advance(days=2)
    invoice.refresh_from_db()
    assert invoice.attempt_count == 2
    assert invoice.next_payment_attempt == first + timedelta(days=5)
    world.advance(days=3)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.attempt_count == 3
    assert invoice.next_payment_attempt is None
    # The account's default would cancel after the last retry; the automation decides instead.
    assert sub.status == SubscriptionStatus.PAST_DUE
    world.advance(days=1)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.UNPAID
    assert AutomationRun.objects.get().status == RunStatus.COMPLETED


def test_retries_due_together_read_their_automations_policies_with_one_query(world, account):
    # SPEC R-INV-9, R-AUTO-6: in a batch of retries, each invoice keeps its own schedule (the
    # automation's for those it took, the account's for the others).
    world.automation(
        trigger="subscription_payment_failed", filters=OVER_100_USD, actions=[_policy(2, 3)]
    )
    large = [
        _failing_renewal(world, factories.make_price(account, unit_amount=15000 + n))
        for n in range(2)
    ]
    small = [
        _failing_renewal(world, factories.make_price(account, unit_amount=5000 + n))
        for n in range(2)
    ]
    _renew(world)
    world.advance(days=1)  # the small invoices' first retries (the account's schedule)
    with CaptureQueriesContext(connection) as queries:
        world.advance(days=1)  # the large invoices' second attempts, one batch
    invoices = {}
    for sub in large + small:
        sub.refresh_from_db()
        invoices[sub.pk] = Invoice.objects.get(pk=sub.latest_invoice_id)
        assert invoices[sub.pk].billing_reason == "subscription_cycle"
    for sub in large:
        invoice = invoices[sub.pk]
        assert invoice.attempt_count == 2
        assert invoice.next_payment_attempt == invoice.finalized_at + timedelta(days=5)
    for sub in small:
        invoice = invoices[sub.pk]
        assert invoice.attempt_count == 2
        assert invoice.next_payment_attempt == invoice.finalized_at + timedelta(days=1 + 2)
    asked = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].startswith('SELECT "automations_triggermatch"')
        and '"taken"' in query["sql"]
    ]
    # The batch asked once for both (the subscribers ask again after commit, one event each).
    retried = [invoices[sub.pk].pk for sub in large]
    assert [sql for sql in asked if all(pk in sql for pk in retried)] != []


def test_cancel_subscription_ends_the_run_at_once(world, price):
    # SPEC R-AUTO-4 (cancel subscription ends the run at once)
    world.automation(
        trigger="subscription_payment_failed",
        actions=[_policy(5), {"kind": "cancel_subscription", "delay_days": 2, "params": {}}],
    )
    sub = _failing_renewal(world, price)
    _renew(world)
    world.advance(days=2)
    sub.refresh_from_db()
    run = AutomationRun.objects.get()
    assert sub.status == SubscriptionStatus.CANCELED
    assert run.status == RunStatus.COMPLETED
    assert run.end_reason == EndReason.SUBSCRIPTION_CANCELED
    assert sub.latest_invoice.next_payment_attempt is None  # canceled: no more collection


def test_mark_invoice_uncollectible_after_a_failed_payment(world, price):
    # SPEC R-AUTO-4 (mark invoice uncollectible fits payment failure)
    world.automation(
        trigger="subscription_payment_failed",
        actions=[{"kind": "mark_invoice_uncollectible", "delay_days": 1, "params": {}}],
    )
    sub = _failing_renewal(world, price)
    _renew(world)
    world.advance(days=1)
    sub.refresh_from_db()
    assert sub.latest_invoice.status == InvoiceStatus.UNCOLLECTIBLE
    assert sub.status == SubscriptionStatus.ACTIVE  # R-SUB-3


def test_paying_the_invoice_ends_the_payment_failure_run(world, price):
    # SPEC R-AUTO-2 (payment fails: ends when the invoice is paid)
    world.automation(trigger="subscription_payment_failed", actions=[_policy(3), memo(delay=2)])
    sub = _failing_renewal(world, price)
    _renew(world)
    sub.refresh_from_db()
    card = sub.customer.invoice_settings_default_payment_method
    card.test_behavior = "succeed"
    card.save()
    with world.commit():
        invoicing.pay_invoice(sub.latest_invoice)
    run = AutomationRun.objects.get()
    assert run.end_reason == EndReason.INVOICE_PAID
    assert run.steps.get(position=1).status == StepStatus.SKIPPED
    world.advance(days=3)
    assert not EmailLog.objects.filter(kind="team_memo").exists()


def test_only_the_first_failed_attempt_triggers(world, price):
    # SPEC R-AUTO-2 (first failed attempt of a subscription invoice)
    sub = _failing_renewal(world, price)
    _renew(world)  # fails once with no automation: the default retry is scheduled
    world.automation(trigger="subscription_payment_failed", actions=[memo()])
    world.advance(days=1)  # the retry fails too: not a first failure
    sub.refresh_from_db()
    assert sub.latest_invoice.attempt_count == 2
    assert not AutomationRun.objects.exists()
