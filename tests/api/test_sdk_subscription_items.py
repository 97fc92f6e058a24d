"""/v1/subscription_items through the official `stripe` SDK: the same item changes as a
subscription update (validation, prorations, `customer.subscription.updated`)."""

import pytest
import stripe

from billing.models import Event, InvoiceItem, SubscriptionItem
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=2000)


@pytest.fixture
def subscription(sdk, price):
    customer = sdk.v1.customers.create(
        params={
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    return sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )


def test_create_an_item_prorates_the_rest_of_the_period(sdk, account, subscription):
    seats = factories.make_price(account, unit_amount=500, product_name="Seats")
    item = sdk.v1.subscription_items.create(
        params={
            "subscription": subscription.id,
            "price": seats.id,
            "quantity": 3,
            "metadata": {"team": "ops"},
        }
    )
    assert item.id.startswith("si_")
    assert (item.object, item.subscription, item.quantity) == (
        "subscription_item",
        subscription.id,
        3,
    )
    assert item.price.id == seats.id
    assert item.metadata.to_dict() == {"team": "ops"}
    retrieved = sdk.v1.subscriptions.retrieve(subscription.id)
    assert sorted(i.id for i in retrieved["items"].data) == sorted(
        [subscription["items"].data[0].id, item.id]
    )
    proration = InvoiceItem.objects.get(subscription_id=subscription.id, proration=True)
    assert 0 < proration.amount <= 1500
    assert Event.objects.filter(
        type="customer.subscription.updated", object_id=subscription.id
    ).exists()


def test_update_quantity_and_price_with_always_invoice(sdk, account, subscription):
    bigger = factories.make_price(account, unit_amount=5000)
    first = subscription["items"].data[0]
    more = sdk.v1.subscription_items.update(
        first.id, params={"quantity": 2, "proration_behavior": "none"}
    )
    assert (more.quantity, more.price.id) == (2, first.price.id)
    assert not InvoiceItem.objects.filter(subscription_id=subscription.id).exists()

    changed = sdk.v1.subscription_items.update(
        first.id, params={"price": bigger.id, "proration_behavior": "always_invoice"}
    )
    assert (changed.price.id, changed.quantity) == (bigger.id, 2)
    refreshed = sdk.v1.subscriptions.retrieve(
        subscription.id, params={"expand": ["latest_invoice"]}
    )
    assert refreshed.latest_invoice.billing_reason == "subscription_update"
    assert refreshed.latest_invoice.status == "paid"
    assert all(line.proration for line in refreshed.latest_invoice.lines.data)


def test_list_requires_the_subscription_and_pages(sdk, account, subscription):
    extra = factories.make_price(account, unit_amount=100)
    added = sdk.v1.subscription_items.create(
        params={"subscription": subscription.id, "price": extra.id, "proration_behavior": "none"}
    )
    page = sdk.v1.subscription_items.list(params={"subscription": subscription.id, "limit": 1})
    assert [i.id for i in page.data] == [added.id]
    assert page.has_more is True
    everything = sdk.v1.subscription_items.list(params={"subscription": subscription.id})
    assert {i.id for i in everything.data} == {added.id, subscription["items"].data[0].id}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscription_items.list(params={})
    assert raised.value.param == "subscription"


def test_delete_an_item_but_never_the_last(sdk, account, subscription):
    extra = factories.make_price(account, unit_amount=100)
    added = sdk.v1.subscription_items.create(
        params={"subscription": subscription.id, "price": extra.id}
    )
    gone = sdk.v1.subscription_items.delete(added.id, params={"proration_behavior": "none"})
    assert (gone.id, gone.object, gone.deleted) == (added.id, "subscription_item", True)
    assert not SubscriptionItem.objects.filter(pk=added.id).exists()

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscription_items.delete(subscription["items"].data[0].id)
    assert raised.value.http_status == 400
    assert SubscriptionItem.objects.filter(subscription_id=subscription.id).count() == 1


def test_errors_name_the_item_parameters(sdk, account, subscription, price):
    yearly = factories.make_price(account, unit_amount=100, interval="year")
    for params, param in (
        ({"price": price.id}, "price"),  # already on the subscription
        ({"price": yearly.id}, "price"),  # another interval
        ({"price": "price_nope"}, "price"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            sdk.v1.subscription_items.create(params={"subscription": subscription.id, **params})
        assert raised.value.param == param
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscription_items.create(params={"subscription": "sub_nope", "price": price.id})
    assert raised.value.param == "subscription"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscription_items.retrieve("si_nope")
    assert raised.value.http_status == 404
    assert SubscriptionItem.objects.filter(subscription_id=subscription.id).count() == 1


def test_item_metadata_through_a_subscription_update(sdk, subscription):
    """Item metadata is merged as Stripe merges it ("" removes a key)."""
    item = subscription["items"].data[0]
    sdk.v1.subscriptions.update(
        subscription.id, params={"items": [{"id": item.id, "metadata": {"a": "1", "b": "2"}}]}
    )
    updated = sdk.v1.subscription_items.update(item.id, params={"metadata": {"a": ""}})
    assert updated.metadata.to_dict() == {"b": "2"}
