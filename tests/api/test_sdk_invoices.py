"""Invoices, invoice items, line items, the upcoming invoice and payment intents through the
official `stripe` SDK against a live server."""

import pytest
import stripe

from billing.models import Event, Invoice, InvoiceItem
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(sdk):
    """A customer with a card that succeeds as its default (SPEC R-INV-10)."""
    return sdk.v1.customers.create(
        params={
            "email": "jenny@example.com",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )


def draft_invoice(sdk, customer_id: str, *amounts: int, **params):
    for amount in amounts or (1500,):
        sdk.v1.invoice_items.create(
            params={"customer": customer_id, "amount": amount, "currency": "usd"}
        )
    return sdk.v1.invoices.create(params={"customer": customer_id, **params})


def test_invoice_items_wait_for_a_manual_invoice_which_is_finalized_and_paid(sdk, customer):
    """SPEC R-INV-1, R-INV-3, R-INV-4: draft → open → paid, with its events."""
    item = sdk.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "amount": 2500,
            "currency": "usd",
            "description": "Onboarding",
            "metadata": {"ticket": "42"},
        }
    )
    assert item.id.startswith("ii_")
    assert (item.object, item.invoice, item.amount) == ("invoiceitem", None, 2500)
    assert sdk.v1.invoice_items.retrieve(item.id).description == "Onboarding"
    pending = sdk.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert [i.id for i in pending.data] == [item.id]

    invoice = sdk.v1.invoices.create(
        params={"customer": customer.id, "description": "May services", "metadata": {"po": "7"}}
    )
    assert (invoice.status, invoice.billing_reason, invoice.total) == ("draft", "manual", 2500)
    assert invoice.auto_advance is False
    assert invoice.confirmation_secret is None
    assert sdk.v1.invoice_items.retrieve(item.id).invoice == invoice.id
    assert sdk.v1.invoice_items.list(params={"customer": customer.id, "pending": True}).data == []

    finalized = sdk.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "open"
    assert finalized.number is not None

    card = sdk.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    paid = sdk.v1.invoices.pay(
        invoice.id, params={"payment_method": card.id, "expand": ["payment_intent"]}
    )
    assert (paid.status, paid.paid, paid.amount_paid, paid.amount_remaining) == (
        "paid",
        True,
        2500,
        0,
    )
    assert paid.payment_intent.payment_method == card.id
    assert paid.confirmation_secret.client_secret == paid.payment_intent.client_secret
    types = set(Event.objects.filter(object_id=invoice.id).values_list("type", flat=True))
    assert {"invoice.created", "invoice.finalized", "invoice.paid"} <= types


def test_a_declined_payment_is_a_402_with_its_decline_code_and_is_recorded(sdk, customer):
    """SPEC R-INV-4, R-INV-10: the invoice stays open, the failed attempt is kept."""
    invoice = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    card = sdk.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000009995", "exp_month": 12, "exp_year": 2040},
        }
    )
    declined = sdk.v1.payment_methods.attach(card.id, params={"customer": customer.id})

    with pytest.raises(stripe.CardError) as raised:
        sdk.v1.invoices.pay(invoice.id, params={"payment_method": declined.id})

    assert raised.value.http_status == 402
    assert raised.value.code == "card_declined"
    assert raised.value.error.decline_code == "insufficient_funds"
    after = sdk.v1.invoices.retrieve(invoice.id, params={"expand": ["payment_intent"]})
    assert (after.status, after.attempt_count, after.attempted) == ("open", 1, True)
    assert after.payment_intent.last_payment_error.decline_code == "insufficient_funds"
    assert Event.objects.filter(type="invoice.payment_failed", object_id=invoice.id).exists()


def test_paying_a_paid_invoice_is_refused(sdk, customer):
    invoice = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    sdk.v1.invoices.pay(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.pay(invoice.id)
    assert raised.value.http_status == 400
    assert raised.value.param is None


def test_void_and_mark_uncollectible_close_open_invoices(sdk, customer):
    """SPEC R-INV-1, R-INV-8."""
    first = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(first.id)
    voided = sdk.v1.invoices.void_invoice(first.id)
    assert voided.status == "void"
    assert voided.status_transitions.voided_at is not None

    second = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(second.id)
    bad_debt = sdk.v1.invoices.mark_uncollectible(second.id)
    assert bad_debt.status == "uncollectible"
    # Stripe's transitions: a written-off invoice can still be voided.
    voided = sdk.v1.invoices.void_invoice(second.id)
    assert voided.status == "void"
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.invoices.void_invoice(second.id)


def test_an_uncollectible_invoice_can_still_be_paid(sdk, customer):
    """SPEC R-INV-8: as in Stripe, /pay settles an invoice that was written off."""
    invoice = draft_invoice(sdk, customer.id, collection_method="send_invoice", days_until_due=30)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    sdk.v1.invoices.mark_uncollectible(invoice.id)

    paid = sdk.v1.invoices.pay(invoice.id)

    assert (paid.status, paid.amount_paid, paid.amount_remaining) == ("paid", 1500, 0)
    assert paid.status_transitions.marked_uncollectible_at is not None
    assert paid.status_transitions.paid_at is not None


def test_marking_the_latest_invoice_uncollectible_makes_a_past_due_subscription_active(sdk):
    """SPEC R-SUB-3: a past-due subscription is active again once its latest invoice is
    marked uncollectible."""
    customer = sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Seat"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 5}
    )
    failing = sdk.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer.id}
    )
    sdk.v1.subscriptions.update(subscription.id, params={"default_payment_method": failing.id})
    ended = sdk.v1.subscriptions.update(subscription.id, params={"trial_end": "now"})
    # The trial's end opens a cycle invoice, finalized about an hour later (SPEC R-TRIAL-3).
    invoice = Invoice.objects.get(pk=ended.latest_invoice)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "past_due"

    sdk.v1.invoices.mark_uncollectible(invoice.id)
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "active"


def test_list_invoices_by_customer_subscription_and_status(sdk, customer):
    other = sdk.v1.customers.create()
    open_invoice = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(open_invoice.id)
    draft = draft_invoice(sdk, customer.id, 700)
    theirs = draft_invoice(sdk, other.id, 300)
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1000,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Seat"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )

    def listed(**params):
        return [i.id for i in sdk.v1.invoices.list(params=params).auto_paging_iter()]

    assert listed(customer=customer.id) == [subscription.latest_invoice, draft.id, open_invoice.id]
    assert listed(customer=other.id) == [theirs.id]
    assert listed(status="draft") == [theirs.id, draft.id]
    assert listed(status="open", customer=customer.id) == [open_invoice.id]
    assert listed(subscription=subscription.id) == [subscription.latest_invoice]
    assert listed(created={"gte": draft.created}, customer=other.id) == [theirs.id]


def test_invoice_lines_are_listed_and_paginated(sdk, customer):
    invoice = draft_invoice(sdk, customer.id, 100, 200, 300)
    lines = sdk.v1.invoices.line_items.list(invoice.id, params={"limit": 2})
    assert len(lines.data) == 2 and lines.has_more is True
    assert lines.url == f"/v1/invoices/{invoice.id}/lines"
    everything = list(sdk.v1.invoices.line_items.list(invoice.id).auto_paging_iter())
    assert sorted(line.amount for line in everything) == [100, 200, 300]
    assert {line.object for line in everything} == {"line_item"}
    assert {line.invoice for line in everything} == {invoice.id}


def test_create_preview_shows_the_next_renewal(sdk, customer):
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 3000,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Pro"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id, "quantity": 2}]}
    )
    preview = sdk.v1.invoices.create_preview(params={"subscription": subscription.id})
    assert preview.id is None
    assert (preview.total, preview.billing_reason) == (6000, "subscription_cycle")
    assert preview.lines.data[0].period.start == subscription.current_period_end
    by_customer = sdk.v1.invoices.create_preview(params={"customer": customer.id})
    assert by_customer.total == 6000

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.create_preview(
            params={"subscription": subscription.id, "subscription_resume_at": "now"}
        )
    assert raised.value.param == "subscription_resume_at"


def test_no_upcoming_invoice_for_a_subscription_ending_at_the_period_end(sdk, account, customer):
    """SPEC R-SUB-8: nothing renews."""
    price = factories.make_price(account, unit_amount=1000)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "cancel_at_period_end": True,
        }
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.create_preview(params={"subscription": subscription.id})
    assert (raised.value.http_status, raised.value.code) == (404, "invoice_upcoming_none")


def test_a_payment_intent_is_retrieved_listed_and_cannot_be_confirmed_twice(sdk, customer):
    invoice = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    paid = sdk.v1.invoices.pay(invoice.id)
    intent = sdk.v1.payment_intents.retrieve(paid.payment_intent)
    assert (intent.object, intent.status, intent.invoice) == (
        "payment_intent",
        "succeeded",
        invoice.id,
    )
    listed = sdk.v1.payment_intents.list(params={"customer": customer.id})
    assert [pi.id for pi in listed.data] == [intent.id]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.payment_intents.confirm(intent.id)
    assert raised.value.code == "payment_intent_unexpected_state"


def test_a_declined_confirmation_is_a_402_and_the_intent_keeps_the_error(sdk):
    """SPEC R-INV-5, R-INV-10: 3-D Secure passed, then the bank declines."""
    customer = sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_authenticationRequired",
            "invoice_settings": {"default_payment_method": "pm_card_authenticationRequired"},
        }
    )
    invoice = draft_invoice(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    pending = sdk.v1.invoices.pay(invoice.id, params={"expand": ["payment_intent"]})
    assert pending.payment_intent.status == "requires_action"

    with pytest.raises(stripe.CardError) as raised:
        sdk.v1.payment_intents.confirm(
            pending.payment_intent.id, params={"payment_method": "pm_card_chargeDeclined"}
        )
    assert raised.value.error.decline_code == "generic_decline"
    intent = sdk.v1.payment_intents.retrieve(pending.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == "generic_decline"
    assert sdk.v1.invoices.retrieve(invoice.id).status == "open"


def test_nothing_to_invoice_names_the_customer(sdk, customer):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.create(params={"customer": customer.id})
    assert raised.value.param == "customer"
    assert not Invoice.objects.exists()


def test_a_pending_invoice_item_is_deleted_and_an_invoiced_one_is_not(sdk, customer):
    item = sdk.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 100, "currency": "usd"}
    )
    gone = sdk.v1.invoice_items.delete(item.id)
    assert (gone.id, gone.object, gone.deleted) == (item.id, "invoiceitem", True)
    assert not InvoiceItem.objects.filter(pk=item.id).exists()
    assert Event.objects.filter(type="invoiceitem.deleted", object_id=item.id).exists()

    invoiced = sdk.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 300, "currency": "usd"}
    )
    sdk.v1.invoices.create(params={"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoice_items.delete(invoiced.id)
    assert raised.value.http_status == 400
    assert InvoiceItem.objects.filter(pk=invoiced.id).exists()


def test_an_invoice_item_from_a_one_off_price(sdk, account, customer):
    price = factories.make_price(account, unit_amount=1250, interval=None)
    item = sdk.v1.invoice_items.create(
        params={"customer": customer.id, "price": price.id, "quantity": 2}
    )
    assert (item.amount, item.quantity, item.price.id) == (2500, 2, price.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoice_items.create(params={"customer": customer.id, "price": "price_nope"})
    assert (raised.value.param, raised.value.code) == ("price", "resource_missing")
