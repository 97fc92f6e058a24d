"""Connect on subscriptions and invoices through the official `stripe` SDK: every `curl`
example of reference document 003 (Connect subscriptions), with `stripe_account=` where the
curl sends `Stripe-Account`, checked to the cent once the invoice is paid: the platform's fee
(an `application_fee`), the transfer to the destination (amount less the fee), and both
accounts' balances (`/v1/balance` with and without `Stripe-Account`).

Also: the validation of the Connect parameters (connected accounts of the caller's platform,
percentages from 0 to 100 with two decimals, a fee no larger than the invoice), and what a
platform may not change on a connected account (SPEC R-CON-5).
"""

import time

import pytest
import stripe

from billing.models import (
    ApplicationFee,
    Invoice,
    InvoiceItem,
    PaymentIntent,
    Subscription,
    Transfer,
)
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


@pytest.fixture
def as_connected(connected):
    """SDK request options that send `Stripe-Account: <connected>`."""
    return {"stripe_account": connected.id}


@pytest.fixture
def connected_sdk(sdk_for, connected):
    """The connected account acting for itself, with its own secret key."""
    return sdk_for(factories.make_api_key(connected).raw)


def customer_with_card(sdk, **options):
    return sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
        **options,
    )


def available(balance) -> dict:
    """`{currency: amount}` of a `balance` object's available funds."""
    return {entry.currency: entry.amount for entry in balance.available}


def balances(sdk, connected) -> tuple[dict, dict]:
    """The platform's and the connected account's available balances (`GET /v1/balance`
    without and with `Stripe-Account`)."""
    platform = sdk.v1.balance.retrieve()
    theirs = sdk.v1.balance.retrieve(options={"stripe_account": connected.id})
    assert platform.object == theirs.object == "balance"
    assert [entry.amount for entry in platform.pending] == [0] * len(platform.pending)
    return available(platform), available(theirs)


def wait_until_ready(sdk, clock_id: str, **options):
    for _ in range(100):
        clock = sdk.v1.test_helpers.test_clocks.retrieve(clock_id, **options)
        if clock.status == "ready":
            return clock
        time.sleep(0.05)
    raise AssertionError("the test clock did not finish advancing")


# --- the curl examples of reference 003 --------------------------------------------------------


def test_reference_003_direct_charge_pays_the_connected_account_in_full(
    sdk, connected, as_connected
):
    """Reference 003 "paiements directs": `Stripe-Account`, `customer`, `items[0][price]`,
    `expand[0]=latest_invoice.confirmation_secret` (SPEC R-CON-1). Without a fee the whole
    payment is the connected account's; the platform earns nothing."""
    price = factories.make_price(connected, unit_amount=3000)
    customer = customer_with_card(sdk, options=as_connected)

    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.confirmation_secret"],
        },
        options=as_connected,
    )

    assert subscription.status == "active"
    assert subscription.application == connected.platform_id
    invoice = subscription.latest_invoice
    assert (invoice.status, invoice.amount_paid, invoice.application_fee_amount) == (
        "paid",
        3000,
        None,
    )
    assert invoice.confirmation_secret.type == "payment_intent"
    assert Subscription.objects.get(pk=subscription.id).account_id == connected.id
    assert balances(sdk, connected) == ({"usd": 0}, {"usd": 3000})
    assert sdk.v1.application_fees.list().data == []
    assert sdk.v1.transfers.list().data == []
    [charge] = sdk.v1.balance_transactions.list(options=as_connected).data
    assert (charge.type, charge.amount, charge.fee, charge.net, charge.source) == (
        "charge",
        3000,
        0,
        3000,
        invoice.payment_intent,
    )


def test_reference_003_destination_charge_transfers_the_whole_amount(sdk, connected, price):
    """Reference 003 "paiements indirects": `transfer_data[destination]` and
    `expand[0]=latest_invoice.confirmation_secret` (SPEC R-CON-2): the platform collects
    30.00 USD and, without a fee, transfers all of it to the destination."""
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

    [transfer] = sdk.v1.transfers.list().data
    assert (transfer.amount, transfer.currency, transfer.destination) == (3000, "usd", connected.id)
    assert (transfer.payment_intent, transfer.invoice) == (invoice.payment_intent_id, invoice.id)
    assert transfer.transfer_group == f"group_{invoice.payment_intent_id}"
    assert sdk.v1.transfers.retrieve(transfer.id).amount == 3000
    assert sdk.v1.application_fees.list().data == []
    assert balances(sdk, connected) == ({"usd": 0}, {"usd": 3000})
    platform_ledger = sdk.v1.balance_transactions.list().data
    assert sorted((t.type, t.amount) for t in platform_ledger) == [
        ("charge", 3000),
        ("transfer", -3000),
    ]
    [received] = sdk.v1.balance_transactions.list(options={"stripe_account": connected.id}).data
    assert (received.type, received.amount, received.source) == (
        "payment",
        3000,
        transfer.destination_payment,
    )


def test_reference_003_application_fee_percent_on_a_direct_charge(sdk, connected, as_connected):
    """Reference 003 "Encaisser des frais": `Stripe-Account` + `application_fee_percent=10`
    (SPEC R-CON-1, R-CON-3): 10% of the 30.00 USD invoice, 3.00 USD, goes to the platform as an
    `application_fee`; the connected account keeps 27.00 USD."""
    price = factories.make_price(connected, unit_amount=3000)
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
    invoice = subscription.latest_invoice
    assert (invoice.status, invoice.total, invoice.application_fee_amount) == ("paid", 3000, 300)
    retrieved = sdk.v1.subscriptions.retrieve(subscription.id, options=as_connected)
    assert retrieved.application_fee_percent == 10

    [fee] = sdk.v1.application_fees.list().data
    assert (fee.object, fee.amount, fee.currency) == ("application_fee", 300, "usd")
    assert (fee.account, fee.application) == (connected.id, connected.platform_id)
    assert (fee.payment_intent, fee.invoice) == (invoice.payment_intent, invoice.id)
    assert sdk.v1.application_fees.retrieve(fee.id).amount == 300
    assert sdk.v1.transfers.list().data == []
    assert balances(sdk, connected) == ({"usd": 300}, {"usd": 2700})
    [charge] = sdk.v1.balance_transactions.list(options=as_connected).data
    assert (charge.type, charge.amount, charge.fee, charge.net) == ("charge", 3000, 300, 2700)
    [earning] = sdk.v1.balance_transactions.list().data
    assert (earning.type, earning.amount, earning.source) == ("application_fee", 300, fee.id)
    assert fee.balance_transaction == earning.id


def test_reference_003_application_fee_percent_on_a_destination_charge(sdk, connected, price):
    """Reference 003: `application_fee_percent=10` with `transfer_data[destination]`
    (SPEC R-CON-2, R-CON-3): the platform keeps 3.00 USD of the 30.00 USD payment and
    transfers 27.00 USD to the destination."""
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
    invoice = subscription.latest_invoice
    assert invoice.transfer_data.destination == connected.id
    assert (invoice.status, invoice.application_fee_amount) == ("paid", 300)

    [transfer] = sdk.v1.transfers.list(params={"destination": connected.id}).data
    assert (transfer.amount, transfer.destination, transfer.invoice) == (
        2700,
        connected.id,
        invoice.id,
    )
    [fee] = sdk.v1.application_fees.list().data
    assert (fee.amount, fee.account, fee.invoice) == (300, connected.id, invoice.id)
    assert balances(sdk, connected) == ({"usd": 300}, {"usd": 2700})


def test_reference_003_trial_on_a_connected_account(sdk, connected, as_connected):
    """Reference 003 "périodes d'essai": `Stripe-Account` + `trial_end` (SPEC R-CON-8): the
    subscription is `trialing` with a 0.00 USD invoice and nothing moves; at the trial's end
    the first period is invoiced (R-TRIAL-3) and the platform takes its 10%."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(
        params={"frozen_time": start}, options=as_connected
    )
    price = factories.make_price(connected, unit_amount=3000)
    customer = sdk.v1.customers.create(
        params={
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
        options=as_connected,
    )
    trial_end = start + 7 * DAY

    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_end": trial_end,
            "application_fee_percent": 10,
            "expand": ["latest_invoice"],
        },
        options=as_connected,
    )

    assert (subscription.status, subscription.trial_end) == ("trialing", trial_end)
    assert (subscription.latest_invoice.total, subscription.latest_invoice.status) == (0, "paid")
    # Nothing is collected, so no fee: null, as Stripe shows it.
    assert subscription.latest_invoice.application_fee_amount is None
    assert sdk.v1.application_fees.list().data == []
    assert balances(sdk, connected) == ({"usd": 0}, {"usd": 0})

    sdk.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": trial_end + 3 * 3600}, options=as_connected
    )
    wait_until_ready(sdk, clock.id, options=as_connected)

    after = sdk.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice"]}, options=as_connected
    )
    assert after.status == "active"
    assert (after.latest_invoice.amount_paid, after.latest_invoice.application_fee_amount) == (
        3000,
        300,
    )
    assert balances(sdk, connected) == ({"usd": 300}, {"usd": 2700})


def test_reference_003_trial_end_now_ends_a_trial(sdk, price):
    """Reference 003: `POST /v1/subscriptions/{id}` with `trial_end=now`, as the curl sends it
    (no `Stripe-Account`: the platform's own subscription, SPEC R-TRIAL-2): the trial ends at
    once and the first period's invoice is collected (R-TRIAL-3: about an hour later)."""
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
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 14}
    )
    assert subscription.status == "trialing"

    ended = sdk.v1.subscriptions.update(subscription.id, params={"trial_end": "now"})

    assert ended.status == "active"
    assert ended.trial_end == start
    sdk.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": start + 2 * 3600})
    wait_until_ready(sdk, clock.id)
    assert sdk.v1.invoices.retrieve(ended.latest_invoice).amount_paid == 3000
    assert available(sdk.v1.balance.retrieve()) == {"usd": 3000}


def test_reference_003_on_behalf_of_on_a_direct_charge(sdk, connected, as_connected):
    """Reference 003 "on_behalf_of": `Stripe-Account` + `on_behalf_of` the connected account
    itself (SPEC R-CON-6), copied onto its invoices and payment intents; the payment is the
    connected account's."""
    price = factories.make_price(connected, unit_amount=1200)
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
    assert balances(sdk, connected) == ({"usd": 0}, {"usd": 1200})


def test_reference_003_on_behalf_of_with_a_destination_charge_and_a_fee(sdk, connected, price):
    """Reference 003: `on_behalf_of` + `application_fee_percent=10` +
    `transfer_data[destination]` on the platform (SPEC R-CON-2/3/6): 3.00 USD fee, 27.00 USD
    transferred."""
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
    assert (invoice.status, invoice.application_fee_amount) == ("paid", 300)
    [transfer] = sdk.v1.transfers.list().data
    assert (transfer.amount, transfer.destination) == (2700, connected.id)
    assert [fee.amount for fee in sdk.v1.application_fees.list().data] == [300]
    assert balances(sdk, connected) == ({"usd": 300}, {"usd": 2700})


def test_reference_003_application_fee_amount_on_an_invoice_of_a_direct_charge(
    sdk, connected, as_connected
):
    """Reference 003 "Gérer les factures": `POST /v1/invoices/{id}` with
    `application_fee_amount=100` and `Stripe-Account` (SPEC R-CON-4): it overrides the 10%
    (3.00 USD) computed at finalization; once paid the platform earns 1.00 USD and the
    connected account keeps 29.00 USD."""
    price = factories.make_price(connected, unit_amount=3000)
    customer = customer_with_card(sdk, options=as_connected)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "application_fee_percent": 10,
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice"],
        },
        options=as_connected,
    )
    assert subscription.latest_invoice.application_fee_amount == 300

    invoice = sdk.v1.invoices.update(
        subscription.latest_invoice.id,
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

    paid = sdk.v1.invoices.pay(invoice.id, options=as_connected)
    assert (paid.status, paid.application_fee_amount) == ("paid", 100)
    [fee] = sdk.v1.application_fees.list().data
    assert (fee.amount, fee.account, fee.invoice) == (100, connected.id, invoice.id)
    assert balances(sdk, connected) == ({"usd": 100}, {"usd": 2900})


def test_reference_003_application_fee_amount_and_transfer_data_on_a_renewal_draft(
    sdk, connected, price
):
    """Reference 003: on the draft of a renewal (`invoice.created`), `application_fee_amount=100`
    and `transfer_data[destination]` on the platform (destination charge, SPEC R-CON-4): once
    collected, 29.00 USD go to the destination and the platform keeps 1.00 USD of it."""
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
    wait_until_ready(sdk, clock.id)
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

    sdk.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": subscription.current_period_end + 3 * 3600}
    )
    wait_until_ready(sdk, clock.id)
    collected = sdk.v1.invoices.retrieve(invoice.id)
    assert (collected.status, collected.amount_paid, collected.application_fee_amount) == (
        "paid",
        3000,
        100,
    )
    [transfer] = sdk.v1.transfers.list().data
    assert (transfer.amount, transfer.destination, transfer.invoice) == (
        2900,
        connected.id,
        invoice.id,
    )
    [fee] = sdk.v1.application_fees.list().data
    assert (fee.amount, fee.invoice) == (100, invoice.id)
    # The first invoice (no destination) stays the platform's: 30.00 + 1.00 USD.
    assert balances(sdk, connected) == ({"usd": 3100}, {"usd": 2900})


def test_reference_003_fee_example_takes_10_percent_after_the_coupon(sdk, connected, as_connected):
    """SPEC R-CON-3's worked example (reference 003 "Calcul du pourcentage"): a 30 USD plan,
    a 10 USD pending invoice item and a 50% coupon with `application_fee_percent=10`: the cycle
    invoice collects 20.00 USD and the platform's fee is 2.00 USD."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(
        params={"frozen_time": start}, options=as_connected
    )
    coupon = sdk.v1.coupons.create(
        params={"id": "HALF", "percent_off": 50, "duration": "forever"}, options=as_connected
    )
    price = factories.make_price(connected, unit_amount=3000)
    customer = sdk.v1.customers.create(
        params={
            "test_clock": clock.id,
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        },
        options=as_connected,
    )
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "discounts": [{"coupon": coupon.id}],
            "application_fee_percent": 10,
            "expand": ["latest_invoice"],
        },
        options=as_connected,
    )
    # The first period: 30 USD × 50% = 15.00 USD, fee 1.50 USD.
    assert (
        subscription.latest_invoice.total,
        subscription.latest_invoice.application_fee_amount,
    ) == (
        1500,
        150,
    )
    sdk.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "subscription": subscription.id,
            "amount": 1000,
            "currency": "usd",
        },
        options=as_connected,
    )

    sdk.v1.test_helpers.test_clocks.advance(
        clock.id,
        params={"frozen_time": subscription.current_period_end + 3 * 3600},
        options=as_connected,
    )
    wait_until_ready(sdk, clock.id, options=as_connected)

    [cycle] = sdk.v1.invoices.list(
        params={"subscription": subscription.id, "status": "paid"}, options=as_connected
    ).data[:1]
    assert cycle.billing_reason == "subscription_cycle"
    assert (cycle.subtotal, cycle.total, cycle.amount_paid) == (4000, 2000, 2000)
    assert cycle.application_fee_amount == 200
    fees = {fee.invoice: fee.amount for fee in sdk.v1.application_fees.list().data}
    assert fees == {subscription.latest_invoice.id: 150, cycle.id: 200}
    assert balances(sdk, connected) == ({"usd": 350}, {"usd": 1500 - 150 + 2000 - 200})


# --- validation of the Connect parameters ---------------------------------------------------


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
            "transfer_data": {"destination": connected.id, "amount_percent": "80"},
            "on_behalf_of": connected.id,
        },
    )
    assert updated.transfer_data.to_dict() == {"amount_percent": 80, "destination": connected.id}
    assert updated.on_behalf_of == connected.id
    # A transferred share and a platform fee are two ways of splitting one payment (as Stripe
    # refuses transfer_data[amount] with application_fee_amount).
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(subscription.id, params={"application_fee_percent": "12.5"})
    assert raised.value.param == "application_fee_percent"
    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={
            "application_fee_percent": "12.5",
            "transfer_data": {"destination": connected.id},
        },
    )
    assert updated.application_fee_percent == 12.5
    assert updated.transfer_data.to_dict() == {"amount_percent": None, "destination": connected.id}

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


# --- what a platform may not change (SPEC R-CON-5) --------------------------------------------


@pytest.fixture
def their_subscription(connected, connected_sdk):
    """A subscription the connected account created itself (its own key): not the platform's."""
    price = factories.make_price(connected, unit_amount=3000)
    customer = customer_with_card(connected_sdk)
    return connected_sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )


def test_a_platform_cannot_add_items_to_a_subscription_it_did_not_create(
    sdk, as_connected, their_subscription
):
    """SPEC R-CON-5: invoice items for someone else's subscription would change what it bills."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoice_items.create(
            params={
                "customer": their_subscription.customer,
                "amount": 500,
                "currency": "usd",
                "subscription": their_subscription.id,
            },
            options=as_connected,
        )
    assert raised.value.param == "subscription"
    assert not InvoiceItem.objects.filter(subscription_id=their_subscription.id).exists()


def test_a_platform_cannot_update_a_subscription_it_did_not_create(
    sdk, as_connected, their_subscription
):
    """SPEC R-CON-5: acting as the connected account, the platform may not change a
    subscription the account created itself; nothing changes."""
    assert their_subscription.application is None
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(
            their_subscription.id,
            params={"application_fee_percent": 10, "metadata": {"by": "platform"}},
            options=as_connected,
        )
    assert raised.value.http_status == 400
    assert "cannot modify this subscription" in raised.value.user_message
    assert "not created by your platform" in raised.value.user_message
    stored = Subscription.objects.get(pk=their_subscription.id)
    assert (stored.application_fee_percent, stored.metadata) == (None, {})


def test_a_platform_cannot_cancel_or_resume_a_subscription_it_did_not_create(
    sdk, as_connected, their_subscription
):
    """SPEC R-CON-5: nor cancel it (or resume it); it stays active."""
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.cancel(their_subscription.id, options=as_connected)
    assert "cannot modify this subscription" in raised.value.user_message
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.subscriptions.resume(their_subscription.id, options=as_connected)
    assert Subscription.objects.get(pk=their_subscription.id).status == "active"


def test_a_platform_cannot_change_the_items_of_a_subscription_it_did_not_create(
    sdk, connected, as_connected, their_subscription
):
    """SPEC R-CON-5: adding, changing or removing an item updates the subscription too."""
    other_price = factories.make_price(connected, unit_amount=500)
    item = their_subscription["items"].data[0]
    calls = [
        lambda: sdk.v1.subscription_items.create(
            params={"subscription": their_subscription.id, "price": other_price.id},
            options=as_connected,
        ),
        lambda: sdk.v1.subscription_items.update(
            item.id, params={"quantity": 2}, options=as_connected
        ),
        lambda: sdk.v1.subscription_items.delete(item.id, options=as_connected),
    ]
    for call in calls:
        with pytest.raises(stripe.InvalidRequestError) as raised:
            call()
        assert "cannot modify this subscription" in raised.value.user_message
    stored = Subscription.objects.get(pk=their_subscription.id)
    assert [(i.price_id, i.quantity) for i in stored.items.all()] == [(item.price.id, 1)]


def test_the_connected_account_still_changes_its_own_subscription(
    connected_sdk, their_subscription
):
    """SPEC R-CON-5 restricts the platform only: the account acting for itself may."""
    updated = connected_sdk.v1.subscriptions.update(
        their_subscription.id, params={"metadata": {"by": "account"}}
    )
    assert updated.metadata.to_dict() == {"by": "account"}
    assert connected_sdk.v1.subscriptions.cancel(their_subscription.id).status == "canceled"


def test_a_platform_changes_and_cancels_the_subscriptions_it_created(sdk, connected, as_connected):
    """SPEC R-CON-5: a subscription the platform created as the account carries
    `application` = the platform, which may update and cancel it."""
    price = factories.make_price(connected, unit_amount=3000)
    customer = customer_with_card(sdk, options=as_connected)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}, options=as_connected
    )
    updated = sdk.v1.subscriptions.update(
        subscription.id, params={"application_fee_percent": 5}, options=as_connected
    )
    assert updated.application_fee_percent == 5
    assert sdk.v1.subscriptions.cancel(subscription.id, options=as_connected).status == "canceled"


def test_a_platform_cannot_add_a_fee_to_an_invoice_it_did_not_create(
    sdk, connected_sdk, as_connected
):
    """SPEC R-CON-5: `application_fee_amount` on an invoice the connected account made itself
    is refused naming the parameter; on one the platform made as the account it is taken."""
    customer = customer_with_card(connected_sdk)
    connected_sdk.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 2000, "currency": "usd"}
    )
    theirs = connected_sdk.v1.invoices.create(params={"customer": customer.id})
    assert theirs.application is None

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.update(
            theirs.id, params={"application_fee_amount": 100}, options=as_connected
        )
    assert raised.value.param == "application_fee_amount"
    assert "cannot add an application fee to this invoice" in raised.value.user_message
    assert Invoice.objects.get(pk=theirs.id).application_fee_amount is None

    sdk.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 2000, "currency": "usd"}, options=as_connected
    )
    ours = sdk.v1.invoices.create(params={"customer": customer.id}, options=as_connected)
    assert ours.application == sdk.v1.accounts.retrieve_current().id
    updated = sdk.v1.invoices.update(
        ours.id, params={"application_fee_amount": 100}, options=as_connected
    )
    assert updated.application_fee_amount == 100
    sdk.v1.invoices.finalize_invoice(ours.id, options=as_connected)
    assert sdk.v1.invoices.pay(ours.id, options=as_connected).status == "paid"
    assert ApplicationFee.objects.get(invoice_id=ours.id).amount == 100
    assert not Transfer.objects.exists()


# --- connected accounts through the SDK (SPEC R-CON-1) ----------------------------------------


def test_connected_accounts_round_trip_through_the_sdk(sdk, account):
    """`stripe.Account` create, retrieve, update, list and `retrieve_current` (with and
    without `stripe_account`) through the official SDK (SPEC R-CON-1)."""
    created = sdk.v1.accounts.create(
        params={
            "type": "custom",
            "country": "US",
            "email": "author@example.com",
            "business_profile": {"name": "Author"},
            "settings": {"dashboard": {"display_name": "The Author"}},
            "metadata": {"ref": "7"},
        }
    )
    assert isinstance(created, stripe.Account)
    assert (created.type, created.email, created.metadata.to_dict()) == (
        "custom",
        "author@example.com",
        {"ref": "7"},
    )
    assert sdk.v1.accounts.retrieve(created.id).settings.dashboard.display_name == "The Author"

    updated = sdk.v1.accounts.update(
        created.id,
        params={"settings": {"branding": {"primary_color": "#000000"}}, "metadata": {"x": "1"}},
    )
    assert updated.settings.branding.primary_color == "#000000"
    assert updated.metadata.to_dict() == {"ref": "7", "x": "1"}
    assert [a.id for a in sdk.v1.accounts.list().auto_paging_iter()] == [created.id]
    assert sdk.v1.accounts.retrieve_current().id == account.id
    current = sdk.v1.accounts.retrieve_current(options={"stripe_account": created.id})
    assert current.id == created.id

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.accounts.create(params={"individual": {"first_name": "Jane"}})
    assert raised.value.param == "individual"
    with pytest.raises(stripe.PermissionError):
        sdk.v1.accounts.retrieve("acct_unknown")
