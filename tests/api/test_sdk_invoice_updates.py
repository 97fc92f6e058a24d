"""`POST /v1/invoices/{id}`, manual invoices of a subscription or empty, and the preview of a
paused subscription's resumption, through the official `stripe` SDK."""

import time

import pytest
import stripe

from billing.models import DueJob, Event, Invoice
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 24 * 3600


@pytest.fixture
def customer(sdk):
    return sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )


def draft(sdk, customer_id, **params):
    sdk.v1.invoice_items.create(params={"customer": customer_id, "amount": 1500, "currency": "usd"})
    return sdk.v1.invoices.create(params={"customer": customer_id, **params})


def test_update_a_draft_description_metadata_and_due_date(sdk, customer):
    invoice = draft(sdk, customer.id, collection_method="send_invoice", days_until_due=30)
    updated = sdk.v1.invoices.update(
        invoice.id,
        params={"description": "March", "metadata": {"po": "123"}, "days_until_due": 5},
    )
    assert (updated.description, updated.metadata.to_dict()) == ("March", {"po": "123"})
    assert updated.due_date - updated.created == 5 * DAY
    due = int(time.time()) + 20 * DAY
    assert sdk.v1.invoices.update(invoice.id, params={"due_date": due}).due_date == due
    event = Event.objects.filter(type="invoice.updated", object_id=invoice.id).latest("id")
    assert "due_date" in event.data["previous_attributes"]


def test_auto_advance_schedules_or_cancels_the_finalization(sdk, customer):
    """SPEC R-INV-2: an `auto_advance` draft is finalized about an hour later."""
    invoice = draft(sdk, customer.id)
    assert invoice.auto_advance is False
    on = sdk.v1.invoices.update(invoice.id, params={"auto_advance": True})
    assert on.auto_advance is True
    assert DueJob.objects.filter(kind="finalize_invoice", target_id=invoice.id).exists()
    off = sdk.v1.invoices.update(invoice.id, params={"auto_advance": False})
    assert off.auto_advance is False
    assert not DueJob.objects.filter(
        kind="finalize_invoice", target_id=invoice.id, status="pending"
    ).exists()


def test_finalized_invoices_keep_their_terms(sdk, customer):
    invoice = draft(sdk, customer.id)
    sdk.v1.invoices.finalize_invoice(invoice.id)
    sdk.v1.invoices.pay(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.update(invoice.id, params={"description": "too late"})
    assert raised.value.param == "description"
    # Metadata can always change.
    paid = sdk.v1.invoices.update(invoice.id, params={"metadata": {"note": "ok"}})
    assert (paid.status, paid.metadata.to_dict()) == ("paid", {"note": "ok"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.update(invoice.id, params={"footer": "x"})
    assert (raised.value.param, raised.value.code) == ("footer", "parameter_unsupported")


def test_an_empty_draft_with_pending_invoice_items_behavior_exclude(sdk, customer):
    sdk.v1.invoice_items.create(params={"customer": customer.id, "amount": 700, "currency": "usd"})
    empty = sdk.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "exclude"}
    )
    assert (empty.status, empty.total, empty.lines.data, empty.currency) == ("draft", 0, [], "usd")
    # The pending item still waits for the next invoice.
    assert sdk.v1.invoices.create(params={"customer": customer.id}).total == 700


def test_a_manual_invoice_of_a_subscriptions_pending_items(sdk, account, customer):
    price = factories.make_price(account, unit_amount=2000)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    sdk.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "amount": 450,
            "currency": "usd",
            "subscription": subscription.id,
        }
    )
    invoice = sdk.v1.invoices.create(
        params={"customer": customer.id, "subscription": subscription.id}
    )
    assert (invoice.subscription, invoice.billing_reason, invoice.total) == (
        subscription.id,
        "manual",
        450,
    )
    other = sdk.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.create(params={"customer": other.id, "subscription": subscription.id})
    assert raised.value.param == "subscription"


def test_preview_of_resuming_a_paused_subscription(sdk):
    """Reference 004 "Facturation d'un abonnement": `subscription_resume_at` previews the
    invoice resuming a paused subscription creates (SPEC R-TRIAL-8); nothing is saved."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = sdk.v1.customers.create(params={"test_clock": clock.id})
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Team"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_period_days": 1,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    sdk.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": start + 2 * DAY})
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "paused"
    invoices_before = Invoice.objects.count()

    for params in (
        {"subscription": subscription.id, "subscription_resume_at": "now"},
        {"subscription": subscription.id, "subscription_details": {"resume_at": "now"}},
    ):
        preview = sdk.v1.invoices.create_preview(params=params)
        assert preview.id is None
        assert (preview.total, preview.billing_reason) == (1200, "subscription_update")
        assert preview.lines.data[0].period.start == start + 2 * DAY

    assert Invoice.objects.count() == invoices_before
    # Without it, a paused subscription has no upcoming invoice.
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.create_preview(params={"subscription": subscription.id})
    assert raised.value.code == "invoice_upcoming_none"


def test_resume_preview_of_a_live_subscription_names_the_parameter(sdk, account, customer):
    price = factories.make_price(account)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.invoices.create_preview(
            params={"subscription": subscription.id, "subscription_resume_at": "now"}
        )
    assert raised.value.param == "subscription_resume_at"
