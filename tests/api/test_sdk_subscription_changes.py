"""Subscription updates (description, collection, cancel_at, trial settings, one-off items,
coupons) and cancellation with `prorate` / `invoice_now`, through the official `stripe` SDK."""

import time

import pytest
import stripe

from billing.models import CustomerBalanceTransaction, Event, InvoiceItem
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 24 * 3600


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


@pytest.fixture
def customer(sdk):
    return sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )


@pytest.fixture
def subscription(sdk, customer, price):
    return sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )


def test_update_description_collection_method_and_days_until_due(sdk, subscription):
    """SPEC R-SUB-9: `send_invoice` needs `days_until_due`; back to automatic drops it."""
    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={
            "description": "Team plan",
            "collection_method": "send_invoice",
            "days_until_due": 10,
        },
    )
    assert (updated.description, updated.collection_method, updated.days_until_due) == (
        "Team plan",
        "send_invoice",
        10,
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(
            subscription.id,
            params={"collection_method": "charge_automatically", "days_until_due": 3},
        )
    assert raised.value.param == "days_until_due"
    back = sdk.v1.subscriptions.update(
        subscription.id, params={"collection_method": "charge_automatically", "description": ""}
    )
    assert (back.collection_method, back.days_until_due, back.description) == (
        "charge_automatically",
        None,
        None,
    )


def test_send_invoice_without_days_is_refused_naming_it(sdk, subscription):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(subscription.id, params={"collection_method": "send_invoice"})
    assert raised.value.param == "days_until_due"
    assert sdk.v1.subscriptions.retrieve(subscription.id).collection_method == (
        "charge_automatically"
    )


def test_cancel_at_ends_the_subscription_at_that_time_on_a_test_clock(sdk, price):
    """`cancel_at` in the middle of a period: canceled then, `customer.subscription.deleted`."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = sdk.v1.customers.create(
        params={
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    cancel_at = start + 10 * DAY
    scheduled = sdk.v1.subscriptions.update(
        subscription.id,
        params={"cancel_at": cancel_at, "cancellation_details": {"comment": "Moving on"}},
    )
    assert (scheduled.status, scheduled.cancel_at, scheduled.cancel_at_period_end) == (
        "active",
        cancel_at,
        False,
    )
    assert scheduled.cancellation_details.comment == "Moving on"

    sdk.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": start + 11 * DAY})
    ended = sdk.v1.subscriptions.retrieve(subscription.id)
    assert (ended.status, ended.ended_at) == ("canceled", cancel_at)
    assert ended.cancellation_details.reason == "cancellation_requested"
    assert Event.objects.filter(
        type="customer.subscription.deleted", object_id=subscription.id
    ).exists()


def test_cancel_at_can_be_unset_and_is_exclusive_with_cancel_at_period_end(sdk, subscription):
    later = int(time.time()) + 5 * DAY
    sdk.v1.subscriptions.update(subscription.id, params={"cancel_at": later})
    unset = sdk.v1.subscriptions.update(subscription.id, params={"cancel_at": ""})
    assert (unset.cancel_at, unset.canceled_at) == (None, None)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(
            subscription.id, params={"cancel_at": later, "cancel_at_period_end": True}
        )
    assert raised.value.param == "cancel_at"


def test_trial_settings_and_add_invoice_items_on_update(sdk, account, customer, price):
    """SPEC R-TRIAL-6 set on update; one-off items wait for the next invoice (R-TRIAL-10)."""
    setup = factories.make_price(account, unit_amount=900, interval=None)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 7}
    )
    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
            "add_invoice_items": [{"price": setup.id, "quantity": 2}],
        },
    )
    assert updated.trial_settings.end_behavior.missing_payment_method == "pause"
    pending = InvoiceItem.objects.get(subscription_id=subscription.id, invoice__isnull=True)
    assert (pending.amount, pending.quantity, pending.price_id) == (1800, 2, setup.id)

    ended = sdk.v1.subscriptions.update(
        subscription.id, params={"trial_end": "now", "expand": ["latest_invoice"]}
    )
    lines = ended.latest_invoice.lines.data
    assert [(line.type, line.amount) for line in lines if line.type == "invoiceitem"] == [
        ("invoiceitem", 1800)
    ]
    assert any(line.type == "subscription" for line in lines)


def test_coupon_on_update_replaces_and_removes_the_discount(sdk, subscription):
    sdk.v1.coupons.create(params={"id": "HALF", "percent_off": 50, "duration": "forever"})
    sdk.v1.coupons.create(params={"id": "TENOFF", "amount_off": 1000, "currency": "usd"})
    half = sdk.v1.subscriptions.update(subscription.id, params={"coupon": "HALF"})
    assert half.discount.coupon.id == "HALF"
    ten = sdk.v1.subscriptions.update(subscription.id, params={"discounts": [{"coupon": "TENOFF"}]})
    assert ten.discount.coupon.id == "TENOFF"
    assert len(ten.discounts) == 1
    none = sdk.v1.subscriptions.update(subscription.id, params={"coupon": ""})
    assert (none.discount, none.discounts) == (None, [])
    assert Event.objects.filter(type="customer.discount.deleted").count() == 2
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(subscription.id, params={"coupon": "NOPE"})
    assert raised.value.param == "coupon"


def test_cancel_with_prorate_and_invoice_now_credits_the_unused_time(sdk, subscription):
    """Stripe's `prorate=true` + `invoice_now=true`: a final invoice credits the unused time;
    its negative total goes to the customer's balance."""
    canceled = sdk.v1.subscriptions.cancel(
        subscription.id, params={"prorate": True, "invoice_now": True}
    )
    assert canceled.status == "canceled"
    final = sdk.v1.invoices.retrieve(canceled.latest_invoice)
    assert final.id != subscription.latest_invoice
    assert final.billing_reason == "subscription_update"
    assert final.status == "paid"
    assert -3000 <= final.total < -2900  # almost all of the period is unused
    assert all(line.proration for line in final.lines.data)
    customer = sdk.v1.customers.retrieve(subscription.customer)
    assert customer.balance == final.total
    credit = CustomerBalanceTransaction.objects.get(customer_id=customer.id)
    assert (credit.amount, credit.type, credit.invoice_id) == (
        final.total,
        "applied_to_invoice",
        final.id,
    )


def test_cancel_with_prorate_only_leaves_the_credit_pending(sdk, customer, subscription):
    """Without `invoice_now` the credit waits; an invoice for the subscription collects it."""
    canceled = sdk.v1.subscriptions.cancel(subscription.id, params={"prorate": True})
    assert canceled.latest_invoice == subscription.latest_invoice
    pending = InvoiceItem.objects.get(subscription_id=subscription.id, invoice__isnull=True)
    assert pending.proration and pending.amount < 0
    invoice = sdk.v1.invoices.create(
        params={"customer": customer.id, "subscription": subscription.id}
    )
    assert (invoice.subscription, invoice.total) == (subscription.id, pending.amount)


def test_cancel_with_invoice_now_and_nothing_pending_makes_no_invoice(sdk, subscription):
    canceled = sdk.v1.subscriptions.cancel(subscription.id, params={"invoice_now": True})
    assert canceled.status == "canceled"
    assert canceled.latest_invoice == subscription.latest_invoice
