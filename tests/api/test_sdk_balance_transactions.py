"""Customer balances and customer balance transactions through the official `stripe` SDK."""

import pytest
import stripe

from billing.models import CustomerBalanceTransaction, Event
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_balance_at_creation_is_recorded_as_the_initial_transaction(sdk):
    customer = sdk.v1.customers.create(params={"email": "a@example.com", "balance": -500})
    assert (customer.balance, customer.currency) == (-500, "usd")
    transactions = sdk.v1.customers.balance_transactions.list(customer.id).data
    assert [(t.type, t.amount, t.ending_balance, t.currency) for t in transactions] == [
        ("initial", -500, -500, "usd")
    ]


def test_changing_the_balance_records_an_adjustment(sdk):
    """Stripe records every change of `customer.balance` as an `adjustment` transaction, and
    sends `customer.updated` with the old balance."""
    customer = sdk.v1.customers.create()
    updated = sdk.v1.customers.update(customer.id, params={"balance": 1200})
    assert updated.balance == 1200
    again = sdk.v1.customers.update(customer.id, params={"balance": 200})
    assert again.balance == 200

    transactions = sdk.v1.customers.balance_transactions.list(customer.id).data
    assert [(t.type, t.amount, t.ending_balance) for t in transactions] == [
        ("adjustment", -1000, 200),
        ("adjustment", 1200, 1200),
    ]
    event = Event.objects.filter(type="customer.updated", object_id=customer.id).latest("id")
    assert event.data["previous_attributes"]["balance"] == 1200
    # Setting the same balance changes nothing and records nothing.
    sdk.v1.customers.update(customer.id, params={"balance": 200})
    assert CustomerBalanceTransaction.objects.filter(customer_id=customer.id).count() == 2


def test_create_retrieve_update_and_list_balance_transactions(sdk):
    customer = sdk.v1.customers.create()
    credit = sdk.v1.customers.balance_transactions.create(
        customer.id,
        params={
            "amount": -2500,
            "currency": "usd",
            "description": "Goodwill credit",
            "metadata": {"ticket": "42"},
        },
    )
    assert credit.id.startswith("cbtxn_")
    assert credit.object == "customer_balance_transaction"
    assert (credit.amount, credit.currency, credit.type) == (-2500, "usd", "adjustment")
    assert (credit.ending_balance, credit.customer, credit.invoice) == (-2500, customer.id, None)
    assert credit.description == "Goodwill credit"
    assert credit.metadata.to_dict() == {"ticket": "42"}
    stored = sdk.v1.customers.retrieve(customer.id)
    assert (stored.balance, stored.currency) == (-2500, "usd")

    debit = sdk.v1.customers.balance_transactions.create(
        customer.id, params={"amount": 1000, "currency": "usd"}
    )
    assert debit.ending_balance == -1500

    fetched = sdk.v1.customers.balance_transactions.retrieve(customer.id, credit.id)
    assert fetched.to_dict() == credit.to_dict()
    changed = sdk.v1.customers.balance_transactions.update(
        customer.id, credit.id, params={"description": "Sorry!", "metadata": {"ticket": ""}}
    )
    assert (changed.description, changed.metadata.to_dict(), changed.amount) == (
        "Sorry!",
        {},
        -2500,
    )

    listed = sdk.v1.customers.balance_transactions.list(customer.id, params={"limit": 1})
    assert [t.id for t in listed.data] == [debit.id]
    assert listed.has_more is True
    assert listed.url == f"/v1/customers/{customer.id}/balance_transactions"
    expanded = sdk.v1.customers.balance_transactions.retrieve(
        customer.id, debit.id, params={"expand": ["customer"]}
    )
    assert expanded.customer.balance == -1500


def test_a_credit_is_applied_to_the_next_invoice(sdk):
    """The balance is used at finalization, recorded as `applied_to_invoice`."""
    customer = sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    sdk.v1.customers.balance_transactions.create(
        customer.id, params={"amount": -700, "currency": "usd"}
    )
    sdk.v1.invoice_items.create(params={"customer": customer.id, "amount": 2000, "currency": "usd"})
    invoice = sdk.v1.invoices.create(params={"customer": customer.id})
    invoice = sdk.v1.invoices.finalize_invoice(invoice.id)
    assert (invoice.starting_balance, invoice.ending_balance, invoice.amount_due) == (
        -700,
        0,
        1300,
    )
    latest = sdk.v1.customers.balance_transactions.list(customer.id).data[0]
    assert (latest.type, latest.amount, latest.invoice) == ("applied_to_invoice", 700, invoice.id)


def test_a_transaction_in_another_currency_is_refused_naming_it(sdk):
    customer = sdk.v1.customers.create(params={"balance": 100})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.balance_transactions.create(
            customer.id, params={"amount": -100, "currency": "eur"}
        )
    assert raised.value.param == "currency"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.balance_transactions.create(customer.id, params={"currency": "usd"})
    assert (raised.value.param, raised.value.code) == ("amount", "parameter_missing")
    assert sdk.v1.customers.retrieve(customer.id).balance == 100
    assert CustomerBalanceTransaction.objects.count() == 1


def test_another_customers_or_accounts_transactions_are_not_found(sdk, other_account):
    customer = sdk.v1.customers.create()
    other = sdk.v1.customers.create()
    credit = sdk.v1.customers.balance_transactions.create(
        customer.id, params={"amount": -100, "currency": "usd"}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.balance_transactions.retrieve(other.id, credit.id)
    assert raised.value.http_status == 404
    foreign = factories.make_customer(other_account)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.balance_transactions.list(foreign.id)
    assert raised.value.http_status == 404
