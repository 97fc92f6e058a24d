"""The billing engine driven through test clocks: trials, renewals, payments, retries, expiry."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from billing import timeline
from billing.choices import InvoiceStatus, JobStatus, PaymentIntentStatus, SubscriptionStatus
from billing.models import DueJob, Event, Invoice, RecoverySettings, TestClock
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(account):
    return create_test_clock(account, frozen_time=START, name="scenario")


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


def _customer(account, clock, card="4242424242424242"):
    customer = create_customer(account, livemode=False, email="c@example.com", test_clock=clock)
    if card:
        add_card(
            customer,
            card={"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    customer.refresh_from_db()
    return customer


@pytest.fixture(autouse=True)
def _commit_hooks(django_capture_on_commit_callbacks):
    """Advancing hands the clock to a worker after commit; run those hooks as a commit would."""
    global _capture
    _capture = django_capture_on_commit_callbacks


def _advance(clock, **delta):
    clock.refresh_from_db()
    with _capture(execute=True):
        advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
    clock.refresh_from_db()
    assert clock.status == "ready"
    return clock


def _types(subscription_or_customer):
    return list(
        Event.objects.filter(customer_id=subscription_or_customer.customer_id)
        .order_by("created", "id")
        .values_list("type", flat=True)
    )


def test_a_subscription_with_a_good_card_is_active_and_its_first_invoice_paid(
    account, clock, price
):
    # SPEC R-INV-4, R-INV-10
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    assert sub.latest_invoice.amount_paid == 3000
    assert sub.current_period_end == datetime(2026, 2, 15, 12, 0, tzinfo=UTC)
    types = _types(sub)
    assert types.index("invoice.paid") > types.index("invoice.finalized")
    assert "payment_intent.succeeded" in types


def test_renewal_creates_a_draft_then_finalizes_and_charges_an_hour_later(account, clock, price):
    # SPEC R-INV-2, R-TRIAL-3, R-CLOCK-2
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=31, minutes=30)
    sub.refresh_from_db()
    renewal = sub.latest_invoice
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.status == InvoiceStatus.DRAFT
    assert renewal.created == datetime(2026, 2, 15, 12, 0, tzinfo=UTC)
    _advance(clock, hours=1)
    renewal.refresh_from_db()
    assert renewal.status == InvoiceStatus.PAID
    assert renewal.finalized_at == datetime(2026, 2, 15, 13, 0, tzinfo=UTC)


def test_a_paid_renewals_update_reports_the_attempt_and_the_payment(account, clock, price):
    # SPEC R-EVT-1: `previous_attributes` holds every field the payment changed — the attempt
    # it counted and the PaymentIntent it made, not only the status.
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=31, hours=2)
    sub.refresh_from_db()
    renewal = sub.latest_invoice
    assert renewal.status == InvoiceStatus.PAID
    updates = list(
        Event.objects.filter(type="invoice.updated", object_id=renewal.id).order_by("created", "id")
    )
    finalized, paid = (event.data["previous_attributes"] for event in updates)
    assert finalized["status"] == "draft"
    assert paid["status"] == "open"
    assert paid["attempted"] is False
    assert paid["attempt_count"] == 0
    assert paid["payment_intent"] is None
    assert paid["amount_paid"] == 0
    assert paid["amount_remaining"] == 3000
    assert updates[1].data["object"]["attempt_count"] == 1


def test_monthly_periods_keep_the_anchor_day(account, price):
    # SPEC R-CLOCK-2: anchored on 31 January, renewals on 28 February then 31 March.
    clock = create_test_clock(account, frozen_time=datetime(2026, 1, 31, 9, 0, tzinfo=UTC))
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    assert sub.current_period_end == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    _advance(clock, days=29)
    sub.refresh_from_db()
    assert sub.current_period_end == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)


def test_a_trial_starts_trialing_with_a_zero_invoice_and_no_payment_method(account, clock, price):
    # SPEC R-TRIAL-1
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=14)
    assert sub.status == SubscriptionStatus.TRIALING
    assert sub.trial_end == START + timedelta(days=14)
    assert sub.latest_invoice.total == 0
    assert sub.latest_invoice.status == InvoiceStatus.PAID


def test_trial_will_end_is_sent_three_days_before(account, clock, price):
    # SPEC R-TRIAL-4
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=14)
    _advance(clock, days=10, hours=23)
    assert "customer.subscription.trial_will_end" not in _types(sub)
    _advance(clock, hours=2)
    event = Event.objects.get(type="customer.subscription.trial_will_end", object_id=sub.pk)
    assert event.created == START + timedelta(days=11)


def test_trial_will_end_is_sent_at_once_for_a_short_trial(account, clock, price):
    # SPEC R-TRIAL-4
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=2)
    _advance(clock, minutes=1)
    event = Event.objects.get(type="customer.subscription.trial_will_end", object_id=sub.pk)
    assert event.created == START


def test_trial_end_invoices_and_charges_about_an_hour_later(account, clock, price):
    # SPEC R-TRIAL-3
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=7)
    _advance(clock, days=7, minutes=1)
    sub.refresh_from_db()
    assert sub.latest_invoice.status == InvoiceStatus.DRAFT
    assert sub.latest_invoice.amount_due == 3000
    _advance(clock, hours=1)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    assert sub.current_period_start == START + timedelta(days=7)


def test_trial_ended_now_starts_billing_at_once(account, clock, price):
    # SPEC R-TRIAL-2
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=30)
    sub = subs.update_subscription(sub, trial_end="now")
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.trial_end == START
    assert sub.latest_invoice.billing_reason == "subscription_cycle"
    assert not DueJob.objects.filter(target_id=sub.pk, kind="trial_end", status="pending").exists()
    # A new cycle starts now, for a whole month at the full price (reference 004).
    assert sub.billing_cycle_anchor == START
    assert (sub.current_period_start, sub.current_period_end) == (
        START,
        datetime(2026, 2, 15, 12, 0, tzinfo=UTC),
    )
    assert sub.latest_invoice.total == price.unit_amount


def test_trial_ended_now_keeps_an_anchor_chosen_apart_from_the_trial(account, clock, price):
    # SPEC R-TRIAL-5: the anchor was set on its own; ending the trial early prorates up to it.
    customer = _customer(account, clock)
    anchor = START + timedelta(days=20)
    sub = subs.create_subscription(
        customer,
        items=[{"price": price}],
        trial_end=START + timedelta(days=7),
        billing_cycle_anchor=anchor,
    )
    sub = subs.update_subscription(sub, trial_end="now")
    assert sub.billing_cycle_anchor == anchor
    assert sub.current_period_end == anchor
    assert 0 < sub.latest_invoice.total < price.unit_amount


def test_trial_moved_to_a_new_date_moves_its_jobs(account, clock, price):
    # SPEC R-TRIAL-2
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=7)
    sub = subs.update_subscription(sub, trial_end=START + timedelta(days=20))
    job = DueJob.objects.get(target_id=sub.pk, kind="trial_end", status="pending")
    assert job.due_at == START + timedelta(days=20)


@pytest.mark.parametrize(
    ("behavior", "status", "event"),
    [
        ("cancel", SubscriptionStatus.CANCELED, "customer.subscription.deleted"),
        ("pause", SubscriptionStatus.PAUSED, "customer.subscription.paused"),
    ],
)
def test_trial_end_without_payment_method_follows_the_setting(
    account, clock, price, behavior, status, event
):
    # SPEC R-TRIAL-6, R-TRIAL-7
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(
        customer, items=[{"price": price}], trial_period_days=7, missing_payment_method=behavior
    )
    _advance(clock, days=8)
    sub.refresh_from_db()
    assert sub.status == status
    assert event in _types(sub)
    assert not sub.invoices.filter(billing_reason="subscription_cycle").exists()


def test_trial_end_without_payment_method_invoices_and_goes_past_due(account, clock, price):
    # SPEC R-TRIAL-6 (create_invoice, the default)
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(customer, items=[{"price": price}], trial_period_days=7)
    _advance(clock, days=7, hours=2)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE
    assert sub.latest_invoice.status == InvoiceStatus.OPEN


def test_anchor_after_trial_prorates_to_the_anchor_then_bills_full_cycles(account, price):
    # SPEC R-TRIAL-5: trial 15th → 22nd, anchor the 1st.
    clock = create_test_clock(account, frozen_time=datetime(2026, 4, 15, tzinfo=UTC))
    customer = _customer(account, clock)
    sub = subs.create_subscription(
        customer,
        items=[{"price": price}],
        trial_end=datetime(2026, 4, 22, tzinfo=UTC),
        billing_cycle_anchor=datetime(2026, 5, 1, tzinfo=UTC),
    )
    _advance(clock, days=7, hours=2)
    sub.refresh_from_db()
    prorated = sub.latest_invoice
    # 9 days of April's 30: 3000 × 9/30 = 900.
    assert prorated.amount_due == 900
    assert prorated.status == InvoiceStatus.PAID
    _advance(clock, days=9)
    sub.refresh_from_db()
    assert sub.current_period_start == datetime(2026, 5, 1, tzinfo=UTC)
    assert sub.latest_invoice.amount_due == 3000
    assert sub.current_period_end == datetime(2026, 6, 1, tzinfo=UTC)


def test_a_declined_first_payment_leaves_the_subscription_incomplete(account, clock, price):
    # SPEC R-SUB-2, R-INV-4
    customer = _customer(account, clock, card="4000000000000002")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    assert sub.status == SubscriptionStatus.INCOMPLETE
    assert sub.latest_invoice.status == InvoiceStatus.OPEN
    assert "invoice.payment_failed" in _types(sub)


def test_an_incomplete_subscription_expires_after_23_hours(account, clock, price):
    # SPEC R-SUB-2
    customer = _customer(account, clock, card="4000000000000002")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, hours=22, minutes=59)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.INCOMPLETE
    _advance(clock, minutes=2)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.INCOMPLETE_EXPIRED
    assert sub.latest_invoice.status == InvoiceStatus.VOID
    _advance(clock, days=40)
    assert sub.invoices.count() == 1  # it never charges again


def test_error_if_incomplete_raises_and_writes_nothing(account, clock, price):
    # SPEC R-SUB-2
    customer = _customer(account, clock, card="4000000000000002")
    before = Invoice.objects.count()
    with pytest.raises(invoicing.CardError) as error:
        subs.create_subscription(
            customer, items=[{"price": price}], payment_behavior="error_if_incomplete"
        )
    assert error.value.error["decline_code"] == "generic_decline"
    assert Invoice.objects.count() == before
    assert not customer.subscriptions.exists()


def test_authenticating_after_the_invoice_was_written_off_still_pays_it(account, clock, price):
    # SPEC R-INV-5, R-INV-8: an uncollectible invoice gets no more attempts, but money the
    # customer authorizes afterwards settles it (Stripe lets uncollectible invoices be paid).
    customer = _customer(account, clock, card="4000002500003155")
    invoicing.create_invoice_item(customer, amount=1500, currency="usd")
    invoice = invoicing.finalize_invoice(invoicing.create_manual_invoice(customer))
    invoice = invoicing.pay_invoice(invoice)
    assert invoice.payment_intent.status == PaymentIntentStatus.REQUIRES_ACTION
    invoicing.mark_uncollectible(invoice)

    invoicing.confirm_payment_intent(invoice.payment_intent)

    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid, invoice.amount_remaining) == ("paid", 1500, 0)


def test_a_voided_invoices_payment_cannot_be_confirmed(account, clock, price):
    # SPEC R-INV-5: voiding cancels the pending PaymentIntent; confirming it later is refused
    # and charges nothing.
    customer = _customer(account, clock, card="4000002500003155")
    invoicing.create_invoice_item(customer, amount=1500, currency="usd")
    invoice = invoicing.pay_invoice(
        invoicing.finalize_invoice(invoicing.create_manual_invoice(customer))
    )
    invoicing.void_invoice(invoice)

    with pytest.raises(ValidationError) as error:
        invoicing.confirm_payment_intent(invoice.payment_intent)

    assert "payment_intent" in error.value.message_dict
    invoice.payment_intent.refresh_from_db()
    assert invoice.payment_intent.status == PaymentIntentStatus.CANCELED


def test_3ds_card_requires_action_then_confirm_pays(account, clock, price):
    # SPEC R-INV-5
    customer = _customer(account, clock, card="4000002500003155")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    assert sub.status == SubscriptionStatus.INCOMPLETE
    intent = sub.latest_invoice.payment_intent
    assert intent.status == PaymentIntentStatus.REQUIRES_ACTION
    assert "invoice.payment_action_required" in _types(sub)
    invoicing.confirm_payment_intent(intent)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID


def _failing_renewal(account, clock, price, **settings):
    RecoverySettings.objects.create(account=account, livemode=False, **settings)
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    # The card starts failing after the first payment.
    card = customer.invoice_settings_default_payment_method
    card.test_behavior = "generic_decline"
    card.save()
    _advance(clock, days=31, hours=2)
    sub.refresh_from_db()
    return sub


def test_a_failed_renewal_makes_the_subscription_past_due_and_schedules_a_retry(
    account, clock, price
):
    # SPEC R-SUB-3, R-INV-9
    sub = _failing_renewal(account, clock, price)
    invoice = sub.latest_invoice
    assert sub.status == SubscriptionStatus.PAST_DUE
    assert invoice.attempt_count == 1
    assert invoice.next_payment_attempt == invoice.finalized_at + timedelta(days=1)
    assert DueJob.objects.filter(
        kind="payment_retry", target_id=invoice.pk, status="pending"
    ).exists()


def test_custom_retries_run_on_schedule_then_cancel(account, clock, price):
    # SPEC R-INV-9, R-SUB-4
    sub = _failing_renewal(account, clock, price, retry_mode="custom", retry_days=[2, 3])
    invoice = sub.latest_invoice
    first = invoice.finalized_at
    _advance(clock, days=2)
    invoice.refresh_from_db()
    assert invoice.attempt_count == 2
    assert invoice.next_payment_attempt == first + timedelta(days=5)
    _advance(clock, days=3)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert invoice.attempt_count == 3
    assert invoice.next_payment_attempt is None
    assert sub.status == SubscriptionStatus.CANCELED
    assert invoice.auto_advance is False


def test_a_customers_own_failed_attempts_do_not_use_up_the_retries(account, clock, price):
    # SPEC R-INV-9, R-SUB-4: attempts on request (the customer on the hosted page, /pay) after
    # the first do not count against the schedule (Stripe's attempt_count), so they never bring
    # the end-of-retries settings forward; the scheduled retry still runs, and ends it.
    sub = _failing_renewal(
        account,
        clock,
        price,
        retry_mode="custom",
        retry_days=[1],
        after_retries_subscription="cancel",
    )
    invoice = sub.latest_invoice
    scheduled = invoice.next_payment_attempt
    for _ in range(3):
        with pytest.raises(invoicing.CardError):
            invoicing.pay_invoice(invoice)
    invoice.refresh_from_db()
    sub.refresh_from_db()
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (1, scheduled)
    assert sub.status == SubscriptionStatus.PAST_DUE

    _advance(clock, days=1)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED


@pytest.mark.parametrize(
    ("after_sub", "after_invoice", "status", "invoice_status"),
    [
        ("unpaid", "open", SubscriptionStatus.UNPAID, InvoiceStatus.OPEN),
        ("past_due", "uncollectible", SubscriptionStatus.ACTIVE, InvoiceStatus.UNCOLLECTIBLE),
        ("past_due", "open", SubscriptionStatus.PAST_DUE, InvoiceStatus.OPEN),
    ],
)
def test_after_the_last_retry_the_settings_decide(
    account, clock, price, after_sub, after_invoice, status, invoice_status
):
    # SPEC R-SUB-4 (an uncollectible latest invoice makes the subscription active, R-SUB-3)
    sub = _failing_renewal(
        account,
        clock,
        price,
        retry_mode="custom",
        retry_days=[1],
        after_retries_subscription=after_sub,
        after_retries_invoice=after_invoice,
    )
    _advance(clock, days=1)
    sub.refresh_from_db()
    assert sub.status == status
    assert sub.latest_invoice.status == invoice_status


def test_unpaid_subscriptions_get_draft_invoices_that_are_never_attempted(account, clock, price):
    # SPEC R-SUB-5
    sub = _failing_renewal(
        account,
        clock,
        price,
        retry_mode="custom",
        retry_days=[1],
        after_retries_subscription="unpaid",
    )
    _advance(clock, days=35)
    sub.refresh_from_db()
    newest = sub.latest_invoice
    assert newest.status == InvoiceStatus.DRAFT
    assert newest.auto_advance is False
    assert newest.attempt_count == 0


def test_paying_the_latest_invoice_makes_a_past_due_subscription_active(account, clock, price):
    # SPEC R-SUB-3
    sub = _failing_renewal(account, clock, price)
    card = sub.customer.invoice_settings_default_payment_method
    card.test_behavior = "succeed"
    card.save()
    invoicing.pay_invoice(sub.latest_invoice)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert not DueJob.objects.filter(target_id=sub.latest_invoice_id, status="pending").exists()


def test_canceling_stops_collection_on_open_invoices(account, clock, price):
    # SPEC R-SUB-6
    sub = _failing_renewal(account, clock, price)
    subs.cancel_subscription(sub)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED
    assert sub.latest_invoice.auto_advance is False
    assert sub.latest_invoice.next_payment_attempt is None
    assert "customer.subscription.deleted" in _types(sub)
    with pytest.raises(ValidationError):
        subs.update_subscription(sub, metadata={"a": "b"})


def test_cancel_at_period_end_cancels_when_the_period_ends(account, clock, price):
    # SPEC R-SUB-8
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    sub = subs.cancel_subscription(sub, at_period_end=True)
    assert sub.status == SubscriptionStatus.ACTIVE and sub.cancel_at_period_end
    _advance(clock, days=32)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED
    assert sub.ended_at == datetime(2026, 2, 15, 12, 0, tzinfo=UTC)
    assert sub.invoices.count() == 1


def test_a_paused_subscription_resumes_once_its_invoice_is_paid(account, clock, price):
    # SPEC R-TRIAL-8, R-SUB-7
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(
        customer, items=[{"price": price}], trial_period_days=3, missing_payment_method="pause"
    )
    _advance(clock, days=5)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAUSED
    _advance(clock, days=40)
    assert sub.invoices.count() == 1  # paused: no invoices at all
    with pytest.raises(ValidationError):
        subs.update_subscription(sub, trial_end=START + timedelta(days=90))
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 1, "exp_year": 2031},
        set_default=True,
    )
    sub = subs.resume_subscription(sub, billing_cycle_anchor="now")
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    assert "customer.subscription.resumed" in _types(sub)


def test_resuming_a_subscription_that_is_not_paused_is_refused(account, clock, price):
    # SPEC R-TRIAL-8
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    with pytest.raises(ValidationError) as error:
        subs.resume_subscription(sub)
    assert "subscription" in error.value.message_dict


def test_send_invoice_subscription_is_due_later_and_overdue_after(account, clock, price):
    # SPEC R-SUB-9, R-INV-7
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(
        customer, items=[{"price": price}], collection_method="send_invoice", days_until_due=14
    )
    assert sub.status == SubscriptionStatus.ACTIVE
    invoice = sub.latest_invoice
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.due_date == START + timedelta(days=14)
    _advance(clock, days=15)
    assert Event.objects.filter(type="invoice.overdue", object_id=invoice.pk).count() == 1


def test_upcoming_renewal_notice_before_renewal(account, clock, price):
    # SPEC R-INV-6
    customer = _customer(account, clock)
    subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=24, hours=1)
    event = Event.objects.get(type="invoice.upcoming", customer_id=customer.pk)
    assert event.created == datetime(2026, 2, 8, 12, 0, tzinfo=UTC)
    preview = event.data["object"]
    assert preview["object"] == "invoice" and preview["id"] is None
    assert preview["amount_due"] == 3000
    assert preview["lines"]["data"][0]["period"]["start"] == int(
        datetime(2026, 2, 15, 12, 0, tzinfo=UTC).timestamp()
    )
    assert Invoice.objects.filter(customer=customer).count() == 1  # the preview left nothing behind
    assert not Event.objects.filter(type="invoice.created", created__gt=START).exists()


def test_automatic_tax_without_location_fails_finalization(account, clock, price):
    # SPEC R-INV-3
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=31, minutes=10)
    sub.refresh_from_db()
    draft = sub.latest_invoice
    Invoice.objects.filter(pk=draft.pk).update(automatic_tax_enabled=True)
    _advance(clock, hours=1)
    draft.refresh_from_db()
    sub.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT
    assert draft.automatic_tax_status == "requires_location_inputs"
    assert draft.last_finalization_error["code"]
    assert "invoice.finalization_failed" in _types(sub)
    assert sub.status == SubscriptionStatus.ACTIVE


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"trial_end": START - timedelta(days=1)}, "trial_end"),
        (
            {"trial_period_days": 7, "billing_cycle_anchor": START + timedelta(days=3)},
            "billing_cycle_anchor",
        ),
        ({"items": [{"quantity": 0}]}, "items[0][quantity]"),
        ({"collection_method": "send_invoice"}, "days_until_due"),
        ({"items": []}, "items"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(account, clock, price, kwargs, field):
    customer = _customer(account, clock)
    kwargs.setdefault("items", [{"price": price}])
    if kwargs["items"] and "price" not in kwargs["items"][0]:
        kwargs["items"][0]["price"] = price
    with pytest.raises(ValidationError) as error:
        subs.create_subscription(customer, **kwargs)
    assert field in error.value.message_dict
    assert not customer.subscriptions.exists()


def test_mixed_currencies_are_refused(account, clock, price):
    customer = _customer(account, clock)
    euro = factories.make_price(account, currency="eur", product=price.product)
    with pytest.raises(ValidationError) as error:
        subs.create_subscription(customer, items=[{"price": price}, {"price": euro}])
    assert "items[1][price]" in error.value.message_dict


def test_two_workers_draining_the_same_due_jobs_run_each_once(account, price):
    # DESIGN: claims are conditional updates; a second claim or run of a job does nothing.
    customer = factories.make_customer(account)
    sub = factories.make_subscription(customer, price=price)
    job = DueJob.objects.create(
        account=account, kind="upcoming_renewal", target_id=sub.pk, due_at=START
    )
    first = timeline.claim_due(now=START + timedelta(minutes=1))
    second = timeline.claim_due(now=START + timedelta(minutes=1))
    assert first == [job.pk] and second == []
    assert timeline.run(job.pk) is True
    assert timeline.run(job.pk) is False
    job.refresh_from_db()
    assert job.status == JobStatus.DONE and job.attempts == 1
    assert Event.objects.filter(type="invoice.upcoming", object_id=sub.pk).count() == 1


def test_events_are_ordered_as_things_happened(account, clock, price):
    # SPEC R-EVT-1
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=32)
    created = list(
        Event.objects.filter(customer_id=customer.pk)
        .order_by("id")
        .values_list("created", flat=True)
    )
    assert created == sorted(created)
    assert TestClock.objects.get(pk=clock.pk).frozen_time == START + timedelta(days=32)
    assert sub.pk


@pytest.mark.parametrize(
    ("behavior", "invoice_status"),
    [
        ("keep_as_draft", InvoiceStatus.DRAFT),
        ("mark_uncollectible", InvoiceStatus.UNCOLLECTIBLE),
        ("void", InvoiceStatus.VOID),
    ],
)
def test_pause_collection_keeps_invoicing_without_collecting(
    account, clock, price, behavior, invoice_status
):
    # SPEC R-SUB-7: invoices keep being created, nothing is collected, no paused events.
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    subs.update_subscription(sub, pause_collection={"behavior": behavior})
    _advance(clock, days=31, hours=2)
    sub.refresh_from_db()
    renewal = sub.latest_invoice
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.status == invoice_status
    assert renewal.amount_paid == 0
    assert sub.status == SubscriptionStatus.ACTIVE
    types = _types(sub)
    assert "customer.subscription.paused" not in types
    assert "customer.subscription.resumed" not in types


def test_pause_collection_ends_at_resumes_at(account, clock, price):
    # SPEC R-SUB-7
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    subs.update_subscription(
        sub, pause_collection={"behavior": "void", "resumes_at": START + timedelta(days=40)}
    )
    _advance(clock, days=62)
    sub.refresh_from_db()
    statuses = list(sub.invoices.order_by("created").values_list("status", flat=True))
    assert statuses == [InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.PAID]
    assert sub.pause_collection_behavior is None


def test_metered_usage_during_a_trial_is_not_billed(account, clock):
    # SPEC R-TRIAL-9
    metered = factories.make_price(account, unit_amount=5, recurring_usage_type="metered")
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": metered}], trial_period_days=7)
    _advance(clock, days=7, hours=2)
    sub.refresh_from_db()
    assert sub.latest_invoice.billing_reason == "subscription_cycle"
    assert sub.latest_invoice.amount_due == 0


def test_one_off_items_added_at_trial_start_are_billed_on_the_trial_invoice(account, clock, price):
    # SPEC R-TRIAL-10
    setup_fee = factories.make_price(account, unit_amount=5000, interval=None, product_name="Setup")
    customer = _customer(account, clock)
    sub = subs.create_subscription(
        customer,
        items=[{"price": price}],
        trial_period_days=14,
        add_invoice_items=[{"price": setup_fee}],
    )
    first = sub.latest_invoice
    assert first.amount_due == 5000
    assert first.status == InvoiceStatus.PAID
    assert sub.status == SubscriptionStatus.TRIALING
    assert sorted(first.lines.values_list("amount", flat=True)) == [0, 5000]


def test_a_manual_invoice_gathers_pending_items_and_is_paid_with_a_card(account, clock):
    # SPEC R-INV-1 (billing_reason manual), R-INV-4
    customer = _customer(account, clock)
    invoicing.create_invoice_item(customer, amount=1250, currency="usd", description="Consulting")
    invoicing.create_invoice_item(customer, amount=750, currency="usd", description="Training")
    invoice = invoicing.create_manual_invoice(customer)
    assert invoice.billing_reason == "manual"
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.total == 2000
    invoice = invoicing.finalize_invoice(invoice)
    # auto_advance is off for a manual invoice: finalizing does not charge it.
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.number
    invoice = invoicing.pay_invoice(invoice)
    assert invoice.status == InvoiceStatus.PAID


def test_a_manual_invoice_without_items_is_refused(account, clock):
    customer = _customer(account, clock)
    with pytest.raises(ValidationError) as error:
        invoicing.create_manual_invoice(customer)
    assert "customer" in error.value.message_dict


def test_an_uncollectible_invoice_can_be_voided_and_nothing_else_leaves_void(account, clock, price):
    # SPEC R-INV-1, R-INV-8; Stripe's transitions: open → uncollectible → void.
    customer = _customer(account, clock, card="4000000000000002")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    invoice = invoicing.mark_uncollectible(sub.latest_invoice)
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE
    assert not DueJob.objects.filter(target_id=invoice.pk, status="pending").exists()
    invoice = invoicing.void_invoice(invoice)
    assert invoice.status == InvoiceStatus.VOID
    assert invoice.voided_at is not None
    assert list(
        Event.objects.filter(object_id=invoice.pk)
        .order_by("created", "id")
        .values_list("type", flat=True)
    )[-2:] == ["invoice.voided", "invoice.updated"]
    for verb in (invoicing.void_invoice, invoicing.mark_uncollectible, invoicing.pay_invoice):
        with pytest.raises(ValidationError):
            verb(invoice)


def test_invoice_numbers_are_sequential_per_account(account, clock, price):
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=32)
    numbers = list(sub.invoices.order_by("created").values_list("number", flat=True))
    assert [n.rsplit("-", 1)[1] for n in numbers] == ["0001", "0002"]


def test_a_declined_pay_now_is_recorded_before_the_error(account, clock, price):
    # SPEC R-INV-4: the failed attempt's events are sent even though pay raises. As Stripe
    # counts attempt_count for the retry schedule, an attempt on request after the first one
    # leaves the count and the schedule as they were.
    customer = _customer(account, clock, card="4000000000000002")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    invoice = sub.latest_invoice
    invoice.refresh_from_db()
    scheduled = invoice.next_payment_attempt
    with pytest.raises(invoicing.CardError):
        invoicing.pay_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.attempt_count == 1
    assert invoice.next_payment_attempt == scheduled
    assert Event.objects.filter(type="invoice.payment_failed", object_id=invoice.pk).count() == 2


def test_paying_a_retried_invoice_with_a_3ds_card_asks_for_authentication(account, clock, price):
    # SPEC R-INV-5: the invoice already has a failed PaymentIntent; the new attempt's verdict
    # is this attempt's, not the previous one's.
    customer = _customer(account, clock, card="4000000000000002")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    invoice = sub.latest_invoice
    secure = add_card(
        customer,
        card={"number": "4000002760003184", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    )
    paid = invoicing.pay_invoice(invoice, payment_method=secure)
    assert paid.status == InvoiceStatus.OPEN
    assert paid.payment_intent.status == "requires_action"


def test_a_declined_retry_reports_this_attempts_error(account, clock, price):
    customer = _customer(account, clock, card="4000000000000002")  # generic decline
    sub = subs.create_subscription(customer, items=[{"price": price}])
    funds = add_card(
        customer,
        card={"number": "4000000000009995", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    )
    with pytest.raises(invoicing.CardError) as raised:
        invoicing.pay_invoice(sub.latest_invoice, payment_method=funds)
    assert raised.value.error.get("decline_code") == "insufficient_funds"


def test_canceling_at_period_end_twice_keeps_the_first_request_time(account, clock, price):
    # SPEC R-SUB-8
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    first = subs.cancel_subscription(sub, at_period_end=True).canceled_at
    _advance(clock, days=2)
    assert subs.cancel_subscription(sub, at_period_end=True).canceled_at == first


def test_deleting_a_clock_deletes_its_customers_and_what_they_own(account, clock, price):
    # SPEC R-CLOCK-1
    from billing.models import Customer, Subscription
    from billing.services.test_clocks import delete_test_clock

    customer = _customer(account, clock)
    subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=32)
    other = factories.make_customer(account, email="wall@example.com")
    delete_test_clock(clock)
    assert not TestClock.objects.filter(pk=clock.pk).exists()
    assert list(Customer.objects.all()) == [other]
    assert not Subscription.objects.exists() and not Invoice.objects.exists()
    assert not DueJob.objects.filter(test_clock_id=clock.pk).exists()
    assert Event.objects.filter(type="test_helpers.test_clock.deleted").exists()


def test_a_clock_cannot_go_back_in_time(account, clock):
    # SPEC R-CLOCK-2
    with pytest.raises(ValidationError) as error:
        advance_test_clock(clock, to=START - timedelta(hours=1))
    assert "frozen_time" in error.value.message_dict


def test_a_coupon_on_a_new_subscription_discounts_and_is_announced(account, clock, price):
    coupon = factories.make_coupon(account, percent_off=50)
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}], coupon=coupon)
    assert sub.latest_invoice.amount_paid == 1500
    assert "customer.discount.created" in _types(sub)
    customer.refresh_from_db()
    assert customer.currency == "usd"


def test_pausing_at_trial_end_also_updates_the_status(account, clock, price):
    # SPEC R-TRIAL-6, R-SUB-7
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(
        customer, items=[{"price": price}], trial_period_days=3, missing_payment_method="pause"
    )
    _advance(clock, days=4)
    updated = Event.objects.filter(type="customer.subscription.updated", object_id=sub.pk).last()
    assert updated.data["previous_attributes"]["status"] == "trialing"
    assert _types(sub).index("customer.subscription.updated") < _types(sub).index(
        "customer.subscription.paused"
    )


def _half_way(account, clock, price):
    """An active monthly subscription (30-day February period), advanced to its middle."""
    customer = _customer(account, clock)
    sub = subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=31, hours=2)  # renewed on 15 Feb for 15 Feb → 15 Mar (28 days)
    _advance(clock, days=13, hours=22)  # 1 Mar 12:00: exactly half of February's period left
    sub.refresh_from_db()
    return sub


def test_more_seats_with_create_prorations_bills_the_rest_of_the_period_next_time(
    account, clock, price
):
    # Stripe's proration: the change, for the time left in the period, on the next invoice.
    sub = _half_way(account, clock, price)
    item = sub.items.get()
    subs.update_subscription(sub, items=[{"id": item.pk, "quantity": 3}])
    pending = list(
        sub.invoice_items.filter(invoice__isnull=True).values_list("amount", "proration")
    )
    assert pending == [(3000, True)]  # (3 − 1) × 3000 × 14/28
    _advance(clock, days=15)
    sub.refresh_from_db()
    renewal = sub.latest_invoice
    assert renewal.amount_due == 3 * 3000 + 3000
    assert renewal.status == InvoiceStatus.PAID


def test_proration_behavior_none_changes_quantity_without_charges(account, clock, price):
    sub = _half_way(account, clock, price)
    item = sub.items.get()
    subs.update_subscription(sub, items=[{"id": item.pk, "quantity": 2}], proration_behavior="none")
    assert not sub.invoice_items.exists()
    assert sub.items.get().quantity == 2


def test_always_invoice_bills_the_proration_at_once(account, clock, price):
    sub = _half_way(account, clock, price)
    item = sub.items.get()
    sub = subs.update_subscription(
        sub, items=[{"id": item.pk, "quantity": 2}], proration_behavior="always_invoice"
    )
    invoice = sub.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_due == 1500
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.lines.get().proration is True


def test_quantity_below_one_is_refused_on_update(account, clock, price):
    sub = _half_way(account, clock, price)
    item = sub.items.get()
    with pytest.raises(ValidationError) as error:
        subs.update_subscription(sub, items=[{"id": item.pk, "quantity": 0}])
    assert "items[0][quantity]" in error.value.message_dict
    assert sub.items.get().quantity == 1


def test_resume_unchanged_keeps_the_cycle_and_prorates_the_rest(account, price):
    # SPEC R-TRIAL-8: billing_cycle_anchor=unchanged.
    clock = create_test_clock(account, frozen_time=datetime(2026, 4, 1, tzinfo=UTC))
    customer = _customer(account, clock, card=None)
    sub = subs.create_subscription(
        customer, items=[{"price": price}], trial_period_days=10, missing_payment_method="pause"
    )
    _advance(clock, days=20)  # paused on 11 April; anchor stays the 11th
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 1, "exp_year": 2031},
        set_default=True,
    )
    sub = subs.resume_subscription(sub, billing_cycle_anchor="unchanged")
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.current_period_end == datetime(2026, 5, 11, tzinfo=UTC)
    # 21 April → 11 May is 20 of the 30 days from 11 April: 3000 × 20/30.
    assert sub.latest_invoice.amount_paid == 2000


def test_failed_pay_attempts_on_a_manual_invoice_never_apply_end_of_retry_settings(account, clock):
    # SPEC R-SUB-4 applies to automatic retries only; attempts on request after the first do
    # not count (Stripe's attempt_count).
    RecoverySettings.objects.create(
        account=account, livemode=False, after_retries_invoice="uncollectible"
    )
    customer = _customer(account, clock, card="4000000000000002")
    invoicing.create_invoice_item(customer, amount=1000, currency="usd")
    invoice = invoicing.finalize_invoice(invoicing.create_manual_invoice(customer))
    for _ in range(3):
        with pytest.raises(invoicing.CardError):
            invoicing.pay_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert invoice.attempt_count == 1


def test_another_customer_s_card_cannot_pay_an_invoice(account, clock, price):
    customer = _customer(account, clock, card="4000000000000002")
    sub = subs.create_subscription(customer, items=[{"price": price}])
    stranger = _customer(account, clock)
    card = stranger.invoice_settings_default_payment_method
    with pytest.raises(ValidationError) as error:
        invoicing.pay_invoice(sub.latest_invoice, payment_method=card)
    assert "payment_method" in error.value.message_dict
    sub.latest_invoice.refresh_from_db()
    assert sub.latest_invoice.attempt_count == 1
    with pytest.raises(ValidationError):
        invoicing.confirm_payment_intent(sub.latest_invoice.payment_intent, payment_method=card)


def test_a_new_upcoming_renewal_setting_applies_from_the_next_period(account, clock, price):
    # SPEC R-INV-6: changing the number of days does not move this period's notice.
    from billing.services import update_recovery_settings

    customer = _customer(account, clock)
    subs.create_subscription(customer, items=[{"price": price}])
    update_recovery_settings(account, livemode=False, upcoming_renewal_days=3)
    _advance(clock, days=60)
    notices = list(
        Event.objects.filter(type="invoice.upcoming", customer_id=customer.pk)
        .order_by("created")
        .values_list("created", flat=True)
    )
    assert notices == [
        datetime(2026, 2, 8, 12, 0, tzinfo=UTC),  # 7 days before 15 Feb: set before the change
        datetime(2026, 3, 12, 12, 0, tzinfo=UTC),  # 3 days before 15 Mar
    ]


def test_no_upcoming_renewal_notice_for_send_invoice(account, clock, price):
    # SPEC R-INV-6
    customer = _customer(account, clock, card=None)
    subs.create_subscription(
        customer, items=[{"price": price}], collection_method="send_invoice", days_until_due=30
    )
    _advance(clock, days=40)
    assert not Event.objects.filter(type="invoice.upcoming", customer_id=customer.pk).exists()


def test_removing_an_item_credits_the_unused_time(account, clock, price):
    sub = _half_way(account, clock, price)
    addon = factories.make_price(account, unit_amount=1000, product_name="Add-on")
    sub = subs.update_subscription(sub, items=[{"price": addon}], proration_behavior="none")
    addon_item = sub.items.get(price=addon)
    subs.update_subscription(sub, items=[{"id": addon_item.pk, "deleted": True}])
    assert list(sub.items.values_list("price_id", flat=True)) == [price.pk]
    credit = sub.invoice_items.get(invoice__isnull=True)
    assert credit.amount == -500 and credit.proration


def test_removing_every_item_is_refused(account, clock, price):
    sub = _half_way(account, clock, price)
    item = sub.items.get()
    with pytest.raises(ValidationError) as error:
        subs.update_subscription(sub, items=[{"id": item.pk, "deleted": True}])
    assert "items" in error.value.message_dict
    assert sub.items.count() == 1


def test_adding_a_price_already_on_the_subscription_is_refused(account, clock, price):
    sub = _half_way(account, clock, price)
    with pytest.raises(ValidationError) as error:
        subs.update_subscription(sub, items=[{"price": price}])
    assert "items" in error.value.message_dict


def _written_off(account, clock, price):
    """A renewal that failed, whose invoice was then marked uncollectible: the subscription
    counts it as settled and is active again (SPEC R-SUB-3)."""
    sub = _failing_renewal(account, clock, price)
    assert sub.status == SubscriptionStatus.PAST_DUE
    invoice = invoicing.mark_uncollectible(sub.latest_invoice)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    return sub, invoice


def test_a_written_off_invoice_can_still_be_paid_on_request(account, clock, price):
    # SPEC R-INV-8: uncollectible stops the attempts, not the money (as in Stripe, /pay on an
    # uncollectible invoice pays it).
    sub, invoice = _written_off(account, clock, price)
    attempts = invoice.attempt_count
    good = add_card(
        sub.customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
    )

    paid = invoicing.pay_invoice(invoice, payment_method=good)

    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 3000, 0)
    assert paid.attempt_count == attempts  # on request: outside the retry schedule
    assert paid.payment_intent.status == PaymentIntentStatus.SUCCEEDED
    types = _types(sub)
    after = types[types.index("invoice.marked_uncollectible") :]
    assert {"invoice.paid", "invoice.payment_succeeded", "payment_intent.succeeded"} <= set(after)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


def test_a_declined_payment_of_a_written_off_invoice_changes_nothing_else(account, clock, price):
    # SPEC R-INV-8, R-SUB-3: the decline is recorded, but the invoice stays written off, no
    # retry is scheduled and the subscription, settled by the write-off, stays active.
    sub, invoice = _written_off(account, clock, price)
    with pytest.raises(invoicing.CardError):
        invoicing.pay_invoice(invoice)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE
    assert invoice.next_payment_attempt is None
    assert not DueJob.objects.filter(target_id=invoice.pk, status=JobStatus.PENDING).exists()
    assert _types(sub)[-1] == "invoice.payment_failed"
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


def test_the_retry_schedule_never_charges_a_written_off_invoice(account, clock, price):
    # SPEC R-INV-8: an attempt off session (a retry job) is refused.
    _sub, invoice = _written_off(account, clock, price)
    with pytest.raises(ValidationError):
        invoicing.attempt_payment(invoice)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.UNCOLLECTIBLE


def test_a_first_subscription_keeps_the_customers_credit_and_fixes_their_currency(account, clock):
    # SPEC R-INV-8 (balance applied at finalization): a customer with a credit and no currency
    # yet subscribes: the credit pays part of the first invoice and the currency is set; both
    # land on the customer row (two versions of it in one flush once lost one or the other).
    customer = _customer(account, clock)
    invoicing.create_invoice_item(customer, amount=-500, currency="usd")
    invoicing.finalize_invoice(invoicing.create_manual_invoice(customer))
    customer.refresh_from_db()
    assert (customer.currency, customer.balance) == ("", -500)

    sub = subs.create_subscription(customer, items=[{"price": factories.make_price(account)}])

    customer.refresh_from_db()
    assert (customer.currency, customer.balance) == ("usd", 0)
    assert sub.latest_invoice.starting_balance == -500
