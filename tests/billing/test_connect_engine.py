"""Connect money through test clocks: platform fees, transfers, balances and disconnection
(SPEC R-CON-2, R-CON-3, R-CON-4, R-CON-7, R-CON-8, R-EVT-4)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.choices import BillingReason, InvoiceStatus, SubscriptionStatus
from billing.models import (
    ApplicationFee,
    BalanceTransaction,
    Event,
    Invoice,
    Transfer,
    WebhookDelivery,
)
from billing.services import connect
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from billing.services.webhooks import create_webhook_endpoint
from tests import factories

START = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _commit_hooks(django_capture_on_commit_callbacks):
    global _capture
    _capture = django_capture_on_commit_callbacks


@pytest.fixture
def connected(account):
    return factories.make_connected_account(account, name="Author")


def _advance(clock, **delta):
    clock.refresh_from_db()
    with _capture(execute=True):
        advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
    clock.refresh_from_db()
    assert clock.status == "ready"
    return clock


def _customer(owner, clock, card="4242424242424242"):
    customer = create_customer(owner, livemode=False, email="reader@example.com", test_clock=clock)
    add_card(
        customer,
        card={"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        set_default=True,
    )
    customer.refresh_from_db()
    return customer


def _balance(account):
    return connect.balance(account, livemode=False)


def _on_behalf_of(account, connected):
    """A platform subscription on a test clock, 30.00 a month, on behalf of `connected`."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], on_behalf_of=connected.id
    )
    return clock, subscription


def _cycle_invoice(subscription):
    return (
        Invoice.objects.filter(
            subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_CYCLE
        )
        .order_by("-created", "-id")
        .first()
    )


# --- direct charges (SPEC R-CON-1, R-CON-3) ---------------------------------------------------


def test_the_reference_fee_example_takes_two_dollars_of_a_discounted_cycle_invoice(
    account, connected
):
    """SPEC R-CON-3: a 30 USD plan plus a 10 USD invoice item, a 50% coupon and a 10% fee take
    (30 + 10) × 50% × 10% = 2.00 USD from the cycle invoice, paid to the platform."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    coupon = factories.make_coupon(connected, percent_off=Decimal("50"))
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        coupon=coupon,
        application_fee_percent=Decimal("10"),
        application=account,
    )
    invoicing.create_invoice_item(
        customer, amount=1000, currency="usd", description="Bonus", subscription=subscription
    )

    _advance(clock, days=32)

    invoice = _cycle_invoice(subscription)
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.amount_paid == 2000
    assert invoice.application_fee_amount == 200
    fee = ApplicationFee.objects.get(invoice=invoice)
    assert (fee.amount, fee.account_id, fee.connected_account_id) == (200, account.id, connected.id)
    # The first invoice (15.00 after the coupon) paid 1.50; the cycle 20.00 paid 2.00.
    assert _balance(account) == {"usd": 150 + 200}
    assert _balance(connected) == {"usd": (1500 - 150) + (2000 - 200)}
    charge = BalanceTransaction.objects.get(source=invoice.payment_intent_id)
    assert (charge.account_id, charge.amount, charge.fee, charge.net) == (
        connected.id,
        2000,
        200,
        1800,
    )


def test_the_fee_is_taken_after_the_customer_balance(account, connected):
    """SPEC R-CON-3: the percentage applies to what the invoice collects after balance
    adjustments: a 10.00 credit on a 30.00 renewal leaves a 2.00 fee at 10%."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="10", application=account
    )
    from billing.services.customers import update_customer

    update_customer(customer, balance=-1000)

    _advance(clock, days=32)

    invoice = _cycle_invoice(subscription)
    assert invoice.amount_due == 2000
    assert invoice.application_fee_amount == 200


def test_an_immediate_proration_invoice_carries_no_percentage_fee(account, connected):
    """SPEC R-CON-4: `application_fee_percent` does not apply to invoices outside a billing
    period, such as prorations invoiced at once."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    bigger = factories.make_price(connected, unit_amount=6000, product=price.product)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="10", application=account
    )
    _advance(clock, days=10)
    item = subscription.items.get()

    subs.update_subscription(
        subscription,
        items=[{"id": item.id, "price": bigger}],
        proration_behavior="always_invoice",
    )

    update_invoice = Invoice.objects.get(
        subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_UPDATE
    )
    assert update_invoice.status == InvoiceStatus.PAID
    assert update_invoice.amount_paid > 0
    assert update_invoice.application_fee_amount is None
    assert not ApplicationFee.objects.filter(invoice=update_invoice).exists()


def test_an_invoice_fee_amount_overrides_the_percentage(account, connected):
    """SPEC R-CON-4: `application_fee_amount` set on a draft renewal replaces the percentage."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="10", application=account
    )
    _advance(clock, days=31, minutes=30)  # the renewal draft exists, not yet finalized
    draft = _cycle_invoice(subscription)
    assert draft.status == InvoiceStatus.DRAFT

    invoicing.update_invoice(draft, application_fee_amount=100)
    _advance(clock, hours=2)

    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID
    assert draft.application_fee_amount == 100
    assert ApplicationFee.objects.get(invoice=draft).amount == 100
    with pytest.raises(ValidationError) as error:
        invoicing.update_invoice(
            Invoice.objects.get(pk=subscription.latest_invoice_id), application_fee_amount=5000
        )
    assert "application_fee_amount" in error.value.message_dict


def test_a_declined_renewal_moves_no_money(account, connected):
    """SPEC R-CON-3: fees are taken from collected payments only."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock, card="4000000000000341")
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        application_fee_percent="10",
        application=account,
        trial_period_days=7,
    )

    _advance(clock, days=8)

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.PAST_DUE
    assert not ApplicationFee.objects.exists()
    assert _balance(account) == {}
    assert _balance(connected) == {}


# --- destination charges (SPEC R-CON-2) -------------------------------------------------------


def test_each_paid_destination_invoice_transfers_the_amount_less_the_fee(account, connected):
    """SPEC R-CON-2: a platform subscription with `transfer_data[destination]` sends each paid
    invoice's amount less the platform fee to the destination, and records the fee."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        transfer_data={"destination": connected.id},
        application_fee_percent="10",
    )

    _advance(clock, days=32)

    transfers = list(Transfer.objects.order_by("created", "id"))
    assert [(t.amount, t.destination_id, t.account_id) for t in transfers] == [
        (2700, connected.id, account.id),
        (2700, connected.id, account.id),
    ]
    assert transfers[1].invoice_id == _cycle_invoice(subscription).id
    assert transfers[1].transfer_group == f"group_{transfers[1].payment_intent_id}"
    assert sorted(ApplicationFee.objects.values_list("amount", flat=True)) == [300, 300]
    assert _balance(account) == {"usd": 600}
    assert _balance(connected) == {"usd": 5400}
    assert Event.objects.filter(account=account, type="transfer.created").count() == 2
    assert Event.objects.filter(account=account, type="application_fee.created").count() == 2


def test_a_destination_amount_percent_sends_that_share(account, connected):
    """SPEC R-CON-2 (Stripe's `transfer_data[amount_percent]`): 80% of 30.00 is transferred."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    subs.create_subscription(
        customer,
        items=[{"price": price}],
        transfer_data={"destination": connected.id, "amount_percent": "80"},
    )

    assert Transfer.objects.get().amount == 2400
    assert _balance(account) == {"usd": 600}
    assert _balance(connected) == {"usd": 2400}


def test_a_payment_is_settled_once(account, connected):
    """One transfer per collected payment: settling the same payment again is refused by the
    database rather than sending the money twice."""
    from django.db import IntegrityError, transaction

    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], transfer_data={"destination": connected.id}
    )
    invoice = Invoice.objects.get(pk=subscription.latest_invoice_id)

    with pytest.raises(IntegrityError), transaction.atomic():
        connect.settle_payment(invoice.payment_intent, invoice, now=START)
    assert Transfer.objects.count() == 1


# --- disconnection (SPEC R-CON-7) -------------------------------------------------------------


def test_direct_subscriptions_go_on_with_their_fees_after_disconnection(account, connected):
    """SPEC R-CON-7: nothing is canceled; direct charges continue and the platform keeps
    collecting its fee until the connected account removes it."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="10", application=account
    )

    connect.disconnect_account(connected)
    _advance(clock, days=32)

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert _cycle_invoice(subscription).status == InvoiceStatus.PAID
    assert ApplicationFee.objects.count() == 2

    # The connected account clears the fee itself.
    subs.update_subscription(subscription, application_fee_percent=None)
    _advance(clock, days=31)
    assert ApplicationFee.objects.count() == 2
    assert _cycle_invoice(subscription).application_fee_amount is None


def test_destination_invoices_continue_without_transfers_after_disconnection(account, connected):
    """SPEC R-CON-7: destination charges keep invoicing, but no funds move to a disconnected
    account; the platform keeps the payment."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        transfer_data={"destination": connected.id},
        application_fee_percent="10",
    )
    connect.disconnect_account(connected)

    _advance(clock, days=32)

    assert _cycle_invoice(subscription).status == InvoiceStatus.PAID
    assert Transfer.objects.count() == 1  # the first invoice's, before disconnection
    assert _balance(account) == {"usd": 300 + 3000}
    assert _balance(connected) == {"usd": 2700}


def test_on_behalf_of_renewals_stay_drafts_until_the_account_reconnects(account, connected):
    """SPEC R-CON-7: an `on_behalf_of` subscription that charges automatically keeps creating
    its invoices, as drafts with auto_advance=false; reconnecting collects them."""
    clock, subscription = _on_behalf_of(account, connected)
    connect.disconnect_account(connected)

    _advance(clock, days=32)

    held = _cycle_invoice(subscription)
    assert held.status == InvoiceStatus.DRAFT
    assert held.auto_advance is False
    assert held.awaiting_reconnection is True
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE

    connect.reconnect_account(connected)
    _advance(clock, hours=1)

    held.refresh_from_db()
    assert held.status == InvoiceStatus.PAID
    assert held.auto_advance is True
    assert held.awaiting_reconnection is False


def test_a_disconnected_account_cannot_be_named_for_new_arrangements(account, connected):
    """SPEC R-CON-7: after disconnection the platform cannot route new charges to the account."""
    customer = factories.make_customer(account)
    factories.make_card(customer)
    price = factories.make_price(account, unit_amount=3000)
    connect.disconnect_account(connected)

    with pytest.raises(ValidationError) as error:
        subs.create_subscription(
            customer, items=[{"price": price}], transfer_data={"destination": connected.id}
        )
    assert "transfer_data[destination]" in error.value.message_dict


def test_disconnection_events_reach_the_platform_and_then_stop(account, connected):
    """SPEC R-EVT-4, R-CON-7: the platform's Connect endpoints hear
    `account.application.deauthorized` with `account`, then no more of the account's events
    until it reconnects."""
    endpoint = create_webhook_endpoint(
        account,
        livemode=False,
        url="https://platform.example/hooks",
        enabled_events=["*"],
        connect=True,
    )

    with _capture(execute=True):
        connect.disconnect_account(connected)
    deauthorized = Event.objects.get(
        account=connected, type="account.application.deauthorized", livemode=False
    )
    assert deauthorized.data["object"] == {
        "id": account.id,
        "object": "application",
        "name": account.display_name,
    }
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event=deauthorized).exists()

    customer = factories.make_customer(connected)
    from billing.services.customers import update_customer

    with _capture(execute=True):
        update_customer(customer, name="After disconnection")
    updated = Event.objects.get(account=connected, type="customer.updated")
    assert not WebhookDelivery.objects.filter(event=updated).exists()

    with _capture(execute=True):
        connect.reconnect_account(connected)
    authorized = Event.objects.filter(
        account=connected, type="account.application.authorized", livemode=False
    ).latest("created")
    assert WebhookDelivery.objects.filter(endpoint=endpoint, event=authorized).exists()


# --- trials on connected accounts (SPEC R-CON-8) ----------------------------------------------


def test_trials_on_a_connected_account_work_as_on_the_platform(account, connected):
    """SPEC R-CON-8: `trial_period_days` on a connected account: a 0 invoice, trial_will_end
    three days before (an event of the connected account, with `account`), then the first paid
    period with the platform's fee."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        trial_period_days=14,
        application_fee_percent="10",
        application=account,
    )
    assert subscription.status == SubscriptionStatus.TRIALING
    assert Invoice.objects.get(pk=subscription.latest_invoice_id).amount_due == 0
    assert not ApplicationFee.objects.exists()

    _advance(clock, days=12)
    will_end = Event.objects.get(type="customer.subscription.trial_will_end")
    assert will_end.account_id == connected.id
    from billing.serializers import serialize

    assert serialize(will_end)["account"] == connected.id

    _advance(clock, days=3)
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert _cycle_invoice(subscription).status == InvoiceStatus.PAID
    assert ApplicationFee.objects.get().amount == 300


def test_trial_end_now_on_a_connected_account_starts_the_paid_period(account, connected):
    """SPEC R-CON-8, R-TRIAL-2, R-TRIAL-3: `trial_end=now` on a connected account ends the
    trial; its
    first period's invoice is collected an hour later, with the platform's fee."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        trial_end=START + timedelta(days=30),
        application_fee_percent="10",
        application=account,
    )

    subs.update_subscription(subscription, trial_end="now")
    _advance(clock, hours=2)

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert ApplicationFee.objects.get().amount == 300
    assert _balance(connected) == {"usd": 2700}


def test_a_held_draft_can_be_collected_without_its_on_behalf_of(account, connected):
    """SPEC R-CON-7: instead of reconnecting, the platform removes `on_behalf_of` from the held
    draft, finalizes it and retries the payment: it is charged on the platform."""
    clock, subscription = _on_behalf_of(account, connected)
    connect.disconnect_account(connected)
    _advance(clock, days=32)
    held = _cycle_invoice(subscription)

    invoicing.update_invoice(held, on_behalf_of="")
    invoicing.finalize_invoice(held)
    invoicing.pay_invoice(held)

    held.refresh_from_db()
    assert held.status == InvoiceStatus.PAID
    assert held.on_behalf_of_id is None
    assert held.awaiting_reconnection is False
    assert _balance(account) == {"usd": 6000}


def test_a_draft_due_after_its_account_disconnected_is_held_not_finalized(account, connected):
    """SPEC R-CON-7: a renewal draft created while connected, whose finalization falls after the
    disconnection, is held as the next ones are; finalizing it by hand is refused."""
    clock, subscription = _on_behalf_of(account, connected)
    _advance(clock, days=31, minutes=30)
    draft = _cycle_invoice(subscription)
    assert draft.status == InvoiceStatus.DRAFT and draft.auto_advance

    connect.disconnect_account(connected)
    _advance(clock, hours=2)

    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.DRAFT
    assert (draft.auto_advance, draft.awaiting_reconnection) == (False, True)
    with pytest.raises(ValidationError) as error:
        invoicing.finalize_invoice(draft)
    assert "on_behalf_of" in error.value.message_dict

    connect.reconnect_account(connected)
    _advance(clock, minutes=5)
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID


# --- edges found in review --------------------------------------------------------------------


def test_a_credit_renewal_finalizes_with_no_fee(account, connected):
    """SPEC R-CON-3/4: a cycle invoice that collects nothing (its credits exceed its charges)
    takes no fee and still finalizes."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="10", application=account
    )
    invoicing.create_invoice_item(
        customer, amount=-7000, currency="usd", description="Credit", subscription=subscription
    )

    _advance(clock, days=32)

    invoice = _cycle_invoice(subscription)
    assert invoice.total == -4000
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.application_fee_amount is None


def test_a_fee_never_exceeds_the_invoice_total(account, connected):
    """SPEC R-CON-4: what the customer owed from before raises amount_due, not the fee's cap:
    80% of 60.00 due on a 30.00 invoice is capped at 30.00."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], application_fee_percent="80", application=account
    )
    from billing.services.customers import update_customer

    update_customer(customer, balance=3000)
    _advance(clock, days=32)

    invoice = _cycle_invoice(subscription)
    assert (invoice.total, invoice.amount_due) == (3000, 6000)
    assert invoice.application_fee_amount == 3000


def test_reconnecting_does_not_charge_the_held_draft_of_a_canceled_subscription(account, connected):
    """SPEC R-CON-7, R-SUB-6: a held renewal whose subscription was canceled meanwhile stays an
    uncollected draft when the account reconnects."""
    clock, subscription = _on_behalf_of(account, connected)
    connect.disconnect_account(connected)
    _advance(clock, days=32)
    held = _cycle_invoice(subscription)
    subs.cancel_subscription(subscription)

    connect.reconnect_account(connected)
    _advance(clock, hours=2)

    held.refresh_from_db()
    assert held.status == InvoiceStatus.DRAFT
    assert (held.auto_advance, held.awaiting_reconnection) == (False, False)


def test_a_connected_accounts_own_on_behalf_of_subscription_is_never_held(account, connected):
    """SPEC R-CON-7: direct subscriptions continue after disconnection, even those naming the
    account itself as on_behalf_of (reference 003's example)."""
    clock = create_test_clock(connected, frozen_time=START)
    customer = _customer(connected, clock)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], on_behalf_of=connected.id, application=account
    )
    connect.disconnect_account(connected)

    _advance(clock, days=32)

    assert _cycle_invoice(subscription).status == InvoiceStatus.PAID


def test_an_immediate_invoice_on_behalf_of_a_disconnected_account_is_held(account, connected):
    """SPEC R-CON-7: an always_invoice update still applies; its invoice waits as a held draft
    instead of failing the update."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    bigger = factories.make_price(account, unit_amount=6000, product=price.product)
    subscription = subs.create_subscription(
        customer, items=[{"price": price}], on_behalf_of=connected.id
    )
    connect.disconnect_account(connected)
    _advance(clock, days=10)

    subs.update_subscription(
        subscription,
        items=[{"id": subscription.items.get().id, "price": bigger}],
        proration_behavior="always_invoice",
    )

    update = Invoice.objects.get(
        subscription=subscription, billing_reason=BillingReason.SUBSCRIPTION_UPDATE
    )
    assert update.status == InvoiceStatus.DRAFT
    assert update.awaiting_reconnection is True
    assert subscription.items.get().price_id == bigger.id


def test_retries_of_an_open_invoice_wait_for_the_reconnection(account, connected):
    """SPEC R-CON-7: an invoice already open on behalf of an account that disconnects is not
    charged again until the account reconnects; then its retry runs."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock, card="4000000000000341")
    price = factories.make_price(account, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        on_behalf_of=connected.id,
        trial_period_days=7,
    )
    _advance(clock, days=8)  # the first paid invoice declines: open, retry scheduled
    invoice = _cycle_invoice(subscription)
    assert invoice.status == InvoiceStatus.OPEN and invoice.next_payment_attempt is not None
    attempts = invoice.attempt_count

    connect.disconnect_account(connected)
    _advance(clock, days=10)
    invoice.refresh_from_db()
    assert invoice.attempt_count == attempts
    assert (invoice.awaiting_reconnection, invoice.next_payment_attempt) == (True, None)

    connect.reconnect_account(connected)
    _advance(clock, minutes=5)
    invoice.refresh_from_db()
    assert invoice.attempt_count == attempts + 1
    assert invoice.awaiting_reconnection is False


def test_a_connected_account_cannot_route_payments_to_a_sibling(account, connected):
    """SPEC R-CON-1/2: a connected account bills for itself; it cannot transfer to, or bill on
    behalf of, another connected account of its platform."""
    sibling = factories.make_connected_account(account, name="Sibling")
    customer = factories.make_customer(connected)
    factories.make_card(customer)
    price = factories.make_price(connected, unit_amount=3000)

    for options, param in (
        ({"transfer_data": {"destination": sibling.id}}, "transfer_data[destination]"),
        ({"on_behalf_of": sibling.id}, "on_behalf_of"),
    ):
        with pytest.raises(ValidationError) as error:
            subs.create_subscription(customer, items=[{"price": price}], **options)
        assert param in error.value.message_dict
    assert not customer.subscriptions.exists()


def test_the_transferred_share_is_fixed_when_the_payment_is_created(account, connected):
    """SPEC R-CON-2: `transfer_data[amount_percent]` becomes the payment's `transfer_data.amount`
    when the payment is created, and that is what the transfer sends."""
    clock = create_test_clock(account, frozen_time=START)
    customer = _customer(account, clock)
    price = factories.make_price(account, unit_amount=3000)
    subscription = subs.create_subscription(
        customer,
        items=[{"price": price}],
        transfer_data={"destination": connected.id, "amount_percent": "50"},
    )
    invoice = Invoice.objects.get(pk=subscription.latest_invoice_id)
    from billing.serializers import serialize

    assert serialize(invoice.payment_intent)["transfer_data"] == {
        "amount": 1500,
        "destination": connected.id,
    }
    assert Transfer.objects.get().amount == 1500
