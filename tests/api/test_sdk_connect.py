"""Connect on subscriptions and invoices through the official `stripe` SDK: the `curl`
examples of reference document 003 that set `application_fee_percent`, `transfer_data`,
`on_behalf_of` and `application_fee_amount`.

What issue #4 covers is checked here: the parameters are accepted, validated (connected
accounts of the caller's platform, percentages from 0 to 100 with two decimals, a fee no larger
than the invoice), stored, rendered and copied onto the invoices and payment intents. The fee
and transfer *amounts* (SPEC R-CON-2/3: the platform's share of each paid invoice, the
transfer to the destination) arrive with issue #8; until then `application_fee_amount` stays
null on subscription invoices.
"""

import time

import pytest
import stripe

from billing.models import Invoice, PaymentIntent, Subscription
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 24 * 3600


@pytest.fixture
def connected(account):
    """A connected account of `account`'s platform (SPEC R-CON-1)."""
    return factories.make_connected_account(account, name="Author")


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


def customer_with_card(sdk, **options):
    return sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
        **options,
    )


def test_reference_003_destination_charge_with_transfer_data(sdk, connected, price):
    """Reference 003 "paiements indirects": `transfer_data[destination]` and
    `expand[0]=latest_invoice.confirmation_secret` (SPEC R-CON-2). The transfer itself is #8."""
    customer = customer_with_card(sdk)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.confirmation_secret"],
            "transfer_data": {"destination": connected.id},
        }
    )

    assert subscription.status == "active"
    assert subscription.transfer_data.to_dict() == {
        "amount_percent": None,
        "destination": connected.id,
    }
    assert subscription.application_fee_percent is None
    invoice = Invoice.objects.select_related("payment_intent").get(
        pk=subscription.latest_invoice.id
    )
    assert subscription.latest_invoice.transfer_data.destination == connected.id
    assert subscription.latest_invoice.confirmation_secret.client_secret == (
        invoice.payment_intent.client_secret
    )
    assert invoice.payment_intent.transfer_data_destination_id == connected.id
    # The subscription lives on the platform (destination charges), not on the destination.
    assert Subscription.objects.get(pk=subscription.id).account_id == connected.platform_id


def test_reference_003_application_fee_percent_on_a_direct_charge(sdk, connected):
    """Reference 003 "Encaisser des frais": `Stripe-Account` + `application_fee_percent=10`
    (SPEC R-CON-1, R-CON-3). The fee amount (10% of each cycle invoice) is computed by #8."""
    price = factories.make_price(connected, unit_amount=3000)
    as_connected = {"stripe_account": connected.id}
    customer = customer_with_card(sdk, options=as_connected)

    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.confirmation_secret"],
            "application_fee_percent": 10,
        },
        options=as_connected,
    )

    assert subscription.status == "active"
    assert subscription.application_fee_percent == 10
    assert subscription.application == connected.platform_id
    assert subscription.latest_invoice.confirmation_secret.type == "payment_intent"
    # Amounts arrive with #8: nothing is computed from the percentage yet.
    assert subscription.latest_invoice.application_fee_amount is None
    retrieved = sdk.v1.subscriptions.retrieve(subscription.id, options=as_connected)
    assert retrieved.application_fee_percent == 10


def test_reference_003_application_fee_percent_on_a_destination_charge(sdk, connected, price):
    """Reference 003: `application_fee_percent=10` with `transfer_data[destination]`
    (SPEC R-CON-2, R-CON-3); amounts arrive with #8."""
    customer = customer_with_card(sdk)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.confirmation_secret"],
            "application_fee_percent": 10,
            "transfer_data": {"destination": connected.id},
        }
    )
    assert (subscription.application_fee_percent, subscription.transfer_data.destination) == (
        10,
        connected.id,
    )
    assert subscription.latest_invoice.transfer_data.destination == connected.id


def test_reference_003_on_behalf_of_on_a_direct_charge(sdk, connected):
    """Reference 003 "on_behalf_of": `Stripe-Account` + `on_behalf_of` the connected account
    itself (SPEC R-CON-6), copied onto its invoices and payment intents."""
    price = factories.make_price(connected, unit_amount=1200)
    as_connected = {"stripe_account": connected.id}
    customer = customer_with_card(sdk, options=as_connected)

    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "on_behalf_of": connected.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice"],
        },
        options=as_connected,
    )

    assert subscription.on_behalf_of == connected.id
    assert subscription.latest_invoice.on_behalf_of == connected.id
    intent = PaymentIntent.objects.get(invoice_id=subscription.latest_invoice.id)
    assert intent.on_behalf_of_id == connected.id
    assert subscription.latest_invoice.status == "paid"


def test_reference_003_on_behalf_of_with_a_destination_charge_and_a_fee(sdk, connected, price):
    """Reference 003: `on_behalf_of` + `application_fee_percent=10` +
    `transfer_data[destination]` on the platform (SPEC R-CON-2/3/6); amounts arrive with #8."""
    customer = customer_with_card(sdk)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "on_behalf_of": connected.id,
            "application_fee_percent": 10,
            "transfer_data": {"destination": connected.id},
            "items": [{"price": price.id}],
        }
    )
    stored = Subscription.objects.get(pk=subscription.id)
    assert (stored.on_behalf_of_id, stored.transfer_data_destination_id) == (
        connected.id,
        connected.id,
    )
    assert str(stored.application_fee_percent) == "10.00"
    assert (subscription.on_behalf_of, subscription.application_fee_percent) == (connected.id, 10)
    invoice = sdk.v1.invoices.retrieve(subscription.latest_invoice)
    assert (invoice.on_behalf_of, invoice.transfer_data.destination) == (
        connected.id,
        connected.id,
    )


def test_reference_003_application_fee_amount_on_an_invoice_of_a_direct_charge(sdk, connected):
    """Reference 003 "Gérer les factures": `POST /v1/invoices/{id}` with
    `application_fee_amount=100` and `Stripe-Account` (SPEC R-CON-4). It is stored on the
    invoice and its PaymentIntent; collecting it is #8."""
    price = factories.make_price(connected, unit_amount=3000)
    as_connected = {"stripe_account": connected.id}
    customer = sdk.v1.customers.create(options=as_connected)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
        },
        options=as_connected,
    )

    invoice = sdk.v1.invoices.update(
        subscription.latest_invoice,
        params={"application_fee_amount": 100, "expand": ["payment_intent"]},
        options=as_connected,
    )

    assert invoice.status == "open"
    assert invoice.application_fee_amount == 100
    assert invoice.payment_intent.application_fee_amount == 100
    # R-CON-4: never more than the invoice's total.
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.update(
            invoice.id, params={"application_fee_amount": 3001}, options=as_connected
        )
    assert raised.value.param == "application_fee_amount"
    assert Invoice.objects.get(pk=invoice.id).application_fee_amount == 100


def test_reference_003_application_fee_amount_and_transfer_data_on_a_renewal_draft(
    sdk, connected, price
):
    """Reference 003: on the draft of a renewal (`invoice.created`), `application_fee_amount=100`
    and `transfer_data[destination]` on the platform (destination charge, SPEC R-CON-4)."""
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
    # To the renewal, before the draft is finalized an hour later (SPEC R-INV-2).
    sdk.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": subscription.current_period_end + 60}
    )
    draft = sdk.v1.invoices.list(params={"subscription": subscription.id, "status": "draft"}).data
    assert len(draft) == 1

    invoice = sdk.v1.invoices.update(
        draft[0].id,
        params={"application_fee_amount": 100, "transfer_data": {"destination": connected.id}},
    )

    assert invoice.status == "draft"
    assert invoice.application_fee_amount == 100
    assert invoice.transfer_data.destination == connected.id
    assert invoice.billing_reason == "subscription_cycle"


def test_an_application_fee_amount_needs_a_connected_account_to_take_it_from(sdk, account):
    """A fee on the platform's own invoice, without `transfer_data`, has no payer (Stripe's
    rule); refused naming the parameter."""
    customer = customer_with_card(sdk)
    sdk.v1.invoice_items.create(params={"customer": customer.id, "amount": 500, "currency": "usd"})
    invoice = sdk.v1.invoices.create(params={"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.update(invoice.id, params={"application_fee_amount": 100})
    assert raised.value.param == "application_fee_amount"


@pytest.mark.parametrize(
    "params, param",
    [
        ({"on_behalf_of": "acct_nope"}, "on_behalf_of"),
        ({"transfer_data": {"destination": "acct_nope"}}, "transfer_data[destination]"),
        ({"application_fee_percent": "10.555"}, "application_fee_percent"),
        ({"application_fee_percent": "100.01"}, "application_fee_percent"),
        (
            {"transfer_data": {"destination": "OTHER", "amount_percent": "101"}},
            "transfer_data[amount_percent]",
        ),
    ],
)
def test_invalid_connect_parameters_are_named_and_write_nothing(
    sdk, connected, price, params, param
):
    """SPEC R-CON-1/3: unknown accounts and out-of-range percentages are refused naming the
    parameter."""
    if params.get("transfer_data", {}).get("destination") == "OTHER":
        params = {"transfer_data": {**params["transfer_data"], "destination": connected.id}}
    customer = customer_with_card(sdk)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.create(
            params={"customer": customer.id, "items": [{"price": price.id}], **params}
        )
    assert raised.value.param == param
    assert not Subscription.objects.exists()


def test_another_platforms_connected_account_is_refused(sdk, other_account, price):
    """A connected account of another platform is not the caller's to name (SPEC R-CON-1)."""
    theirs = factories.make_connected_account(other_account)
    customer = customer_with_card(sdk)
    for params, param in (
        ({"on_behalf_of": theirs.id}, "on_behalf_of"),
        ({"transfer_data": {"destination": theirs.id}}, "transfer_data[destination]"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            sdk.v1.subscriptions.create(
                params={"customer": customer.id, "items": [{"price": price.id}], **params}
            )
        assert raised.value.param == param
        assert theirs.id in raised.value.user_message
    assert not Subscription.objects.exists()


def test_connect_settings_are_updated_and_unset(sdk, connected, price):
    """Update with `application_fee_percent`, `transfer_data` and `on_behalf_of`; "" unsets."""
    customer = customer_with_card(sdk)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={
            "application_fee_percent": "12.5",
            "transfer_data": {"destination": connected.id, "amount_percent": "80"},
            "on_behalf_of": connected.id,
        },
    )
    assert updated.application_fee_percent == 12.5
    assert updated.transfer_data.to_dict() == {"amount_percent": 80, "destination": connected.id}
    assert updated.on_behalf_of == connected.id

    # Without a destination the platform fee has no payer on the platform's own subscription.
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(subscription.id, params={"transfer_data": ""})
    assert raised.value.param == "application_fee_percent"

    cleared = sdk.v1.subscriptions.update(
        subscription.id,
        params={"application_fee_percent": "", "transfer_data": "", "on_behalf_of": ""},
    )
    assert cleared.application_fee_percent is None
    assert cleared.transfer_data is None
    assert cleared.on_behalf_of is None
