"""Service verbs behind the /v1 resources issue #4 completes: customer balances, subscription
items, Connect settings on subscriptions, invoice updates, invoice item deletion, cancellation
with prorations. Each is atomic: on error nothing is written."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing import services
from billing.choices import InvoiceStatus
from billing.models import (
    CustomerBalanceTransaction,
    Event,
    Invoice,
    InvoiceItem,
    Subscription,
    SubscriptionItem,
)
from tests import factories

pytestmark = pytest.mark.django_db


def params_of(excinfo) -> set[str]:
    return set(excinfo.value.error_dict)


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


@pytest.fixture
def paying(account):
    customer = factories.make_customer(account)
    card = factories.make_card(customer)
    customer.invoice_settings_default_payment_method = card
    customer.save()
    return customer


@pytest.fixture
def subscription(paying, price):
    return services.create_subscription(paying, items=[{"price": price}])


# --- customer balance --------------------------------------------------------------------------


def test_a_balance_change_records_an_adjustment(customer):
    services.update_customer(customer, balance=-800)
    txn = CustomerBalanceTransaction.objects.get(customer=customer)
    assert (txn.type, txn.amount, txn.ending_balance, txn.currency) == (
        "adjustment",
        -800,
        -800,
        "usd",
    )
    assert Event.objects.filter(type="customer.updated", object_id=customer.pk).exists()


def test_a_balance_is_whole_minor_units(customer):
    """SPEC R-CORE-1: never a float."""
    with pytest.raises(ValidationError) as raised:
        services.update_customer(customer, balance=10.5)
    assert params_of(raised) == {"balance"}
    assert not CustomerBalanceTransaction.objects.exists()


def test_a_balance_transaction_in_the_wrong_currency_writes_nothing(customer):
    services.create_balance_transaction(customer, amount=-100, currency="usd")
    with pytest.raises(ValidationError) as raised:
        services.create_balance_transaction(customer, amount=-100, currency="eur")
    assert params_of(raised) == {"currency"}
    customer.refresh_from_db()
    assert customer.balance == -100
    assert CustomerBalanceTransaction.objects.count() == 1


# --- Connect settings on subscriptions (stored; amounts are #8) -------------------------------


def test_application_fee_percent_is_stored_on_a_connected_accounts_subscription(account):
    # SPEC R-CON-3: 0 to 100, at most two decimals.
    connected = factories.make_connected_account(account)
    customer = factories.make_customer(connected)
    price = factories.make_price(connected)
    subscription = services.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="12.34", trial_period_days=7
    )
    assert subscription.application_fee_percent == Decimal("12.34")


@pytest.mark.parametrize("value", ["100.5", "-1", "1.234", "abc"])
def test_an_application_fee_percent_out_of_range_writes_nothing(account, value):
    # SPEC R-CON-3
    connected = factories.make_connected_account(account)
    customer = factories.make_customer(connected)
    with pytest.raises(ValidationError) as raised:
        services.create_subscription(
            customer,
            items=[{"price": factories.make_price(connected)}],
            application_fee_percent=value,
        )
    assert params_of(raised) == {"application_fee_percent"}
    assert not Subscription.objects.exists()


def test_a_destination_must_be_a_connected_account_of_the_platform(
    paying, price, account, other_account
):
    # SPEC R-CON-1, R-CON-2
    theirs = factories.make_connected_account(other_account)
    for destination in (theirs, account, "acct_nope"):
        with pytest.raises(ValidationError) as raised:
            services.create_subscription(
                paying, items=[{"price": price}], transfer_data={"destination": destination}
            )
        assert params_of(raised) == {"transfer_data[destination]"}
    ours = factories.make_connected_account(account)
    subscription = services.create_subscription(
        paying,
        items=[{"price": price}],
        transfer_data={"destination": ours.pk, "amount_percent": "75"},
        on_behalf_of=ours,
    )
    assert (subscription.transfer_data_destination_id, subscription.on_behalf_of_id) == (
        ours.pk,
        ours.pk,
    )
    assert subscription.transfer_data_amount_percent == Decimal("75")
    # SPEC R-CON-6: invoices carry who settles and where funds go.
    invoice = subscription.latest_invoice
    assert (invoice.on_behalf_of_id, invoice.transfer_data_destination_id) == (ours.pk, ours.pk)


# --- subscription updates and items -------------------------------------------------------------


def test_an_invalid_update_writes_nothing(subscription, account):
    one_off = factories.make_price(account, unit_amount=500, interval=None)
    coupon = factories.make_coupon(factories.make_account("Elsewhere"))
    with pytest.raises(ValidationError) as raised:
        services.update_subscription(
            subscription,
            description="New",
            add_invoice_items=[{"price": one_off}],
            coupon=coupon,
        )
    assert params_of(raised) == {"coupon"}
    subscription.refresh_from_db()
    assert subscription.description == ""
    assert not InvoiceItem.objects.filter(subscription=subscription).exists()


def test_subscription_items_reuse_the_update_and_prorate(subscription, account):
    seats = factories.make_price(account, unit_amount=600)
    item = services.create_subscription_item(subscription, price=seats, quantity=2)
    assert (item.quantity, item.price_id) == (2, seats.pk)
    assert InvoiceItem.objects.filter(subscription=subscription, proration=True).count() == 1
    services.update_subscription_item(item, quantity=3, proration_behavior="none")
    item.refresh_from_db()
    assert item.quantity == 3
    services.delete_subscription_item(item, proration_behavior="none")
    assert not SubscriptionItem.objects.filter(pk=item.pk).exists()
    last = SubscriptionItem.objects.get(subscription=subscription)
    with pytest.raises(ValidationError) as raised:
        services.delete_subscription_item(last)
    assert params_of(raised) == {"subscription"}


def test_cancel_with_prorate_credits_the_unused_time(subscription):
    """SPEC R-SUB-6 with Stripe's `prorate` and `invoice_now`: the credit reaches the balance."""
    services.cancel_subscription(subscription, prorate=True, invoice_now=True)
    subscription.refresh_from_db()
    assert subscription.status == "canceled"
    final = subscription.latest_invoice
    assert final.status == InvoiceStatus.PAID and final.total < 0
    subscription.customer.refresh_from_db()
    assert subscription.customer.balance == final.total


def test_cancel_at_period_end_cannot_prorate(subscription):
    with pytest.raises(ValidationError) as raised:
        services.cancel_subscription(subscription, at_period_end=True, prorate=True)
    assert params_of(raised) == {"prorate"}


# --- invoices ------------------------------------------------------------------------------------


def test_an_application_fee_amount_cannot_exceed_the_total(account):
    """SPEC R-CON-4."""
    connected = factories.make_connected_account(account)
    customer = factories.make_customer(connected)
    services.create_invoice_item(customer, amount=1000, currency="usd")
    invoice = services.create_manual_invoice(customer)
    with pytest.raises(ValidationError) as raised:
        services.update_invoice(invoice, application_fee_amount=1001)
    assert params_of(raised) == {"application_fee_amount"}
    updated = services.update_invoice(invoice, application_fee_amount=1000)
    assert updated.application_fee_amount == 1000
    assert Event.objects.filter(type="invoice.updated", object_id=invoice.pk).exists()


def test_a_fee_is_refused_on_a_paid_invoice(account):
    """SPEC R-CON-4: only drafts and open invoices take a fee."""
    connected = factories.make_connected_account(account)
    customer = factories.make_customer(connected)
    invoice = factories.make_invoice(customer, status=InvoiceStatus.PAID)
    with pytest.raises(ValidationError) as raised:
        services.update_invoice(invoice, application_fee_amount=100)
    assert params_of(raised) == {"application_fee_amount"}
    assert Invoice.objects.get(pk=invoice.pk).application_fee_amount is None


def test_a_due_date_must_be_in_the_future(customer):
    services.create_invoice_item(customer, amount=1000, currency="usd")
    invoice = services.create_manual_invoice(
        customer, collection_method="send_invoice", days_until_due=30
    )
    with pytest.raises(ValidationError) as raised:
        services.update_invoice(invoice, due_date=timezone.now())
    assert params_of(raised) == {"due_date"}


def test_only_pending_invoice_items_are_deleted(customer):
    pending = services.create_invoice_item(customer, amount=100, currency="usd")
    services.delete_invoice_item(pending)
    assert not InvoiceItem.objects.filter(pk=pending.pk).exists()
    assert Event.objects.filter(type="invoiceitem.deleted", object_id=pending.pk).exists()
    taken = services.create_invoice_item(customer, amount=100, currency="usd")
    services.create_manual_invoice(customer)
    with pytest.raises(ValidationError):
        services.delete_invoice_item(taken)
    assert InvoiceItem.objects.filter(pk=taken.pk).exists()


def test_an_empty_manual_invoice_with_exclude(customer):
    invoice = services.create_manual_invoice(customer, pending_invoice_items_behavior="exclude")
    assert (invoice.status, invoice.total, invoice.currency) == ("draft", 0, "usd")
