"""`invoice.upcoming` before a trial's end, as Stripe sends it (SPEC R-INV-6, R-TRIAL-3,
R-TRIAL-5, R-TRIAL-6)."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.choices import BillingReason
from billing.models import Event, Invoice
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _commit_hooks(django_capture_on_commit_callbacks):
    global _capture
    _capture = django_capture_on_commit_callbacks


@pytest.fixture
def clock(account):
    return create_test_clock(account, frozen_time=START)


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


def _advance(clock, **delta):
    clock.refresh_from_db()
    with _capture(execute=True):
        advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
    clock.refresh_from_db()


def _customer(account, clock, card=True):
    customer = create_customer(account, livemode=False, email="t@example.com", test_clock=clock)
    if card:
        add_card(
            customer,
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    customer.refresh_from_db()
    return customer


def _upcoming(customer):
    return list(Event.objects.filter(type="invoice.upcoming", customer_id=customer.pk))


def test_the_first_paid_invoice_is_announced_a_week_before_the_trial_ends(account, clock, price):
    """SPEC R-INV-6, R-TRIAL-3: a 14-day trial gets `invoice.upcoming` 7 days before its end,
    previewing the first period's invoice."""
    customer = _customer(account, clock)
    subs.create_subscription(customer, items=[{"price": price}], trial_period_days=14)

    _advance(clock, days=6, hours=23)
    assert _upcoming(customer) == []
    _advance(clock, hours=2)

    [event] = _upcoming(customer)
    assert event.created == START + timedelta(days=7)
    preview = event.data["object"]
    assert preview["amount_due"] == 3000
    assert preview["lines"]["data"][0]["period"] == {
        "start": int((START + timedelta(days=14)).timestamp()),
        "end": int(datetime(2026, 6, 18, 8, 0, tzinfo=UTC).timestamp()),
    }


def test_the_preview_before_an_anchored_trial_end_is_the_prorated_invoice(account, clock, price):
    """SPEC R-TRIAL-5: with an anchor after the trial, the announced invoice is the prorated
    one the trial's end creates, to the cent."""
    customer = _customer(account, clock)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        trial_end=START + timedelta(days=10),
        billing_cycle_anchor=START + timedelta(days=20),
    )

    _advance(clock, days=11)

    [event] = _upcoming(customer)
    created = Invoice.objects.get(
        subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CYCLE
    )
    assert 0 < created.amount_due < 3000
    assert event.data["object"]["amount_due"] == created.amount_due


def test_a_trial_that_will_cancel_for_want_of_a_card_announces_no_invoice(account, clock, price):
    """SPEC R-TRIAL-6: `missing_payment_method=cancel` without a payment method: the trial's end
    cancels, so no invoice is announced."""
    customer = _customer(account, clock, card=False)
    subs.create_subscription(
        customer, items=[{"price": price}], trial_period_days=14, missing_payment_method="cancel"
    )

    _advance(clock, days=15)

    assert _upcoming(customer) == []


def test_a_short_trial_announces_nothing_it_is_too_late_for(account, clock, price):
    """SPEC R-INV-6: a 5-day trial is shorter than the 7-day notice: no `invoice.upcoming`
    before its end, and the next one comes a week before the first renewal."""
    customer = _customer(account, clock)
    subs.create_subscription(customer, items=[{"price": price}], trial_period_days=5)

    _advance(clock, days=6)
    assert _upcoming(customer) == []
    _advance(clock, days=30)
    assert len(_upcoming(customer)) == 1
