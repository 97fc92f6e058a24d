"""Products, prices and coupons through the official `stripe` SDK against a live server."""

import time
from decimal import Decimal

import pytest
import stripe

from billing.models import Event, Price, Product
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_product_lifecycle(sdk):
    product = sdk.v1.products.create(
        params={"name": "Pro plan", "description": "Everything", "metadata": {"tier": "2"}}
    )
    assert product.id.startswith("prod_")
    assert product.active is True
    assert sdk.v1.products.retrieve(product.id).name == "Pro plan"

    updated = sdk.v1.products.update(
        product.id, params={"active": False, "description": "", "unit_label": "seat"}
    )
    assert (updated.active, updated.description, updated.unit_label) == (False, None, "seat")
    assert Event.objects.filter(type="product.updated", object_id=product.id).exists()

    assert [p.id for p in sdk.v1.products.list(params={"active": False}).data] == [product.id]
    assert sdk.v1.products.list(params={"active": True}).data == []

    gone = sdk.v1.products.delete(product.id)
    assert gone.deleted is True
    assert not Product.objects.filter(pk=product.id).exists()
    assert Event.objects.filter(type="product.deleted", object_id=product.id).exists()


def test_a_product_with_default_price_data_gets_its_default_price(sdk):
    product = sdk.v1.products.create(
        params={
            "name": "Starter",
            "default_price_data": {
                "currency": "eur",
                "unit_amount": 900,
                "recurring": {"interval": "month"},
            },
            "expand": ["default_price"],
        }
    )
    price = product.default_price
    assert (price.unit_amount, price.currency, price.product) == (900, "eur", product.id)
    assert price.recurring.interval == "month"


def test_a_product_with_prices_cannot_be_deleted(sdk, account):
    price = factories.make_price(account)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.products.delete(price.product_id)
    assert "prices" in str(raised.value.user_message)
    assert Product.objects.filter(pk=price.product_id).exists()


def test_create_recurring_and_one_time_prices(sdk):
    """SPEC R-CORE-1: amounts are integers in minor units."""
    product = sdk.v1.products.create(params={"name": "Pro"})
    monthly = sdk.v1.prices.create(
        params={
            "product": product.id,
            "currency": "usd",
            "unit_amount": 3000,
            "recurring": {"interval": "month", "interval_count": 3},
            "nickname": "Quarterly",
            "lookup_key": "pro_quarterly",
        }
    )
    assert monthly.type == "recurring"
    assert (monthly.recurring.interval, monthly.recurring.interval_count) == ("month", 3)
    assert monthly.unit_amount == 3000 and monthly.unit_amount_decimal == Decimal("3000")
    setup = sdk.v1.prices.create(
        params={"product": product.id, "currency": "jpy", "unit_amount": 5000}
    )
    assert setup.type == "one_time" and setup.recurring is None

    listed = sdk.v1.prices.list(params={"product": product.id, "type": "recurring"})
    assert [p.id for p in listed.data] == [monthly.id]
    by_key = sdk.v1.prices.list(params={"lookup_keys": ["pro_quarterly"]})
    assert [p.id for p in by_key.data] == [monthly.id]


def test_list_prices_by_recurring_interval_and_usage_type(sdk):
    product = sdk.v1.products.create(params={"name": "Plans"})

    def price(**options):
        return sdk.v1.prices.create(
            params={"product": product.id, "currency": "usd", "unit_amount": 900, **options}
        ).id

    monthly = price(recurring={"interval": "month"})
    yearly = price(recurring={"interval": "year"})
    metered = price(recurring={"interval": "month", "usage_type": "metered"})
    price()  # one-time: never listed under `recurring`

    def listed(recurring):
        found = sdk.v1.prices.list(params={"product": product.id, "recurring": recurring})
        return {p.id for p in found.data}

    assert listed({"interval": "month"}) == {monthly, metered}
    assert listed({"interval": "year"}) == {yearly}
    assert listed({"usage_type": "metered"}) == {metered}
    assert listed({"interval": "month", "usage_type": "licensed"}) == {monthly}
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.prices.list(params={"recurring": {"interval": "fortnight"}})
    assert raised.value.param == "recurring[interval]"


def test_a_price_with_product_data_creates_the_product(sdk):
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1000,
            "product_data": {"name": "Add-on"},
            "expand": ["product"],
        }
    )
    assert price.product.name == "Add-on"
    assert Event.objects.filter(type="product.created", object_id=price.product.id).exists()
    assert Event.objects.filter(type="price.created", object_id=price.id).exists()


def test_update_a_price_and_transfer_its_lookup_key(sdk, account):
    old = factories.make_price(account, lookup_key="pro")
    new = factories.make_price(account, product=old.product)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.prices.update(new.id, params={"lookup_key": "pro"})
    assert raised.value.param == "lookup_key"

    moved = sdk.v1.prices.update(
        new.id, params={"lookup_key": "pro", "transfer_lookup_key": True, "active": False}
    )
    assert moved.lookup_key == "pro" and moved.active is False
    assert Price.objects.get(pk=old.id).lookup_key is None


def test_prices_keep_their_amount(sdk, account):
    """Stripe never lets a price's amount change; neither does Relance."""
    price = factories.make_price(account)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.prices.update(price.id, params={"unit_amount": 1})
    assert raised.value.code == "parameter_unknown"


def test_prices_refuse_intervals_longer_than_a_year(sdk):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.prices.create(
            params={
                "currency": "usd",
                "unit_amount": 100,
                "product_data": {"name": "X"},
                "recurring": {"interval": "week", "interval_count": 53},
            }
        )
    assert raised.value.param == "recurring[interval_count]"


def test_coupon_lifecycle(sdk):
    coupon = sdk.v1.coupons.create(
        params={
            "id": "SPRING25",
            "percent_off": 25.5,
            "duration": "repeating",
            "duration_in_months": 3,
            "name": "Spring",
            "max_redemptions": 100,
            "redeem_by": int(time.time()) + 86400,
        }
    )
    assert coupon.id == "SPRING25"
    assert coupon.percent_off == 25.5
    assert coupon.duration_in_months == 3

    renamed = sdk.v1.coupons.update("SPRING25", params={"name": "Spring sale"})
    assert renamed.name == "Spring sale"
    assert [c.id for c in sdk.v1.coupons.list().data] == ["SPRING25"]

    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.coupons.create(params={"id": "SPRING25", "percent_off": 10})
    assert raised.value.code == "resource_already_exists"

    assert sdk.v1.coupons.delete("SPRING25").deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.coupons.retrieve("SPRING25")


def test_amount_off_coupons_need_a_currency_and_get_generated_ids(sdk):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.coupons.create(params={"amount_off": 500})
    assert raised.value.param == "currency"
    coupon = sdk.v1.coupons.create(params={"amount_off": 500, "currency": "usd"})
    assert len(coupon.id) == 8
    assert coupon.duration == "once"


def test_coupons_need_exactly_one_discount(sdk):
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.coupons.create(params={"percent_off": 10, "amount_off": 100, "currency": "usd"})
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.coupons.create(params={"percent_off": 101})


def test_a_coupon_in_use_is_not_deleted(sdk, account):
    """Relance differs from Stripe here: see docs; the discount keeps its coupon."""
    coupon = factories.make_coupon(account, code="LOYAL")
    factories.make_discount(factories.make_customer(account), coupon=coupon)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.coupons.delete("LOYAL")
    assert raised.value.code == "coupon_in_use"
