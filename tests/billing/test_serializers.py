"""Objects render in Stripe's API shape (billing.serializers)."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.choices import (
    BalanceTransactionType,
    InvoiceStatus,
    LineItemType,
    MissingPaymentMethodBehavior,
    PauseCollectionBehavior,
)
from billing.choices import (
    TestClockStatus as ClockStatus,
)
from billing.models import ApiKey, Subscription
from billing.serializers import number, serialize
from tests import factories

T0 = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)
T0_UNIX = 1736942400


# Builders of one saved object per model, for the checks every object must pass.
def _account(account):
    return account


def _customer(account):
    return factories.make_customer(account)


def _payment_method(account):
    return factories.make_card(factories.make_customer(account))


def _balance_transaction(account):
    return factories.make_balance_transaction(factories.make_customer(account))


def _product(account):
    return factories.make_price(account).product


def _price(account):
    return factories.make_price(account)


def _coupon(account):
    return factories.make_coupon(account)


def _discount(account):
    return factories.make_discount(factories.make_customer(account))


def _subscription(account):
    return factories.make_subscription(factories.make_customer(account))


def _subscription_item(account):
    return _subscription(account).items.get()


def _invoice(account):
    return factories.make_invoice(factories.make_customer(account))


def _line_item(account):
    return _invoice(account).lines.get()


def _payment_intent(account):
    return factories.make_payment_intent(_invoice(account))


def _test_clock(account):
    return factories.make_test_clock(account)


def _event(account):
    return factories.make_event(account)


EVERY_OBJECT = [
    # (builder, Stripe object name, id prefix, carries livemode)
    (_account, "account", "acct_", False),
    (_customer, "customer", "cus_", True),
    (_payment_method, "payment_method", "pm_", True),
    (_balance_transaction, "customer_balance_transaction", "cbtxn_", True),
    (_product, "product", "prod_", True),
    (_price, "price", "price_", True),
    (_coupon, "coupon", "SPRING25", True),
    (_discount, "discount", "di_", True),
    (_subscription, "subscription", "sub_", True),
    (_subscription_item, "subscription_item", "si_", True),
    (_invoice, "invoice", "in_", True),
    (_line_item, "line_item", "il_", True),
    (_payment_intent, "payment_intent", "pi_", True),
    (_test_clock, "test_helpers.test_clock", "clock_", True),
    (_event, "event", "evt_", True),
]
EVERY_OBJECT_IDS = [row[1] for row in EVERY_OBJECT]


def first_timestamp(object_name: str, rendered: dict):
    """The object's main timestamp: Stripe gives discounts and invoice lines no `created`."""
    if object_name == "discount":
        return rendered["start"]
    if object_name == "line_item":
        return rendered["period"]["start"]
    return rendered["created"]


@pytest.mark.parametrize(
    ("build", "object_name", "prefix", "has_livemode"), EVERY_OBJECT, ids=EVERY_OBJECT_IDS
)
def test_every_object_names_itself_and_its_id(account, build, object_name, prefix, has_livemode):
    # SPEC R-CORE-2
    rendered = serialize(build(account))

    assert rendered["object"] == object_name
    assert isinstance(rendered["id"], str)
    assert rendered["id"].startswith(prefix)


@pytest.mark.parametrize(
    ("build", "object_name", "prefix", "has_livemode"), EVERY_OBJECT, ids=EVERY_OBJECT_IDS
)
def test_every_object_carries_livemode(account, build, object_name, prefix, has_livemode):
    # SPEC R-CORE-3 (Stripe's account object alone has no mode: it spans both)
    rendered = serialize(build(account))

    if has_livemode:
        assert rendered["livemode"] is False
    else:
        assert "livemode" not in rendered


@pytest.mark.parametrize(
    ("build", "object_name", "prefix", "has_livemode"), EVERY_OBJECT, ids=EVERY_OBJECT_IDS
)
def test_every_object_renders_created_as_unix_seconds(
    account, build, object_name, prefix, has_livemode
):
    # SPEC R-CORE-4: timestamps in the API are Unix seconds
    rendered = serialize(build(account))

    assert isinstance(first_timestamp(object_name, rendered), int)


@pytest.mark.parametrize(
    ("build", "object_name", "prefix", "has_livemode"), EVERY_OBJECT, ids=EVERY_OBJECT_IDS
)
def test_every_object_is_json_ready(account, build, object_name, prefix, has_livemode):
    rendered = serialize(build(account))

    assert json.loads(json.dumps(rendered)) == rendered


def test_unknown_class_raises(account):
    key = ApiKey(account=account)

    with pytest.raises(ValueError, match="no serializer for 'ApiKey'"):
        serialize(key)


def test_timestamps_are_exact_unix_seconds(customer):
    customer.created = T0

    assert serialize(customer)["created"] == T0_UNIX


def test_decimal_becomes_int_when_whole_and_float_otherwise():
    assert number(Decimal("10.00")) == 10
    assert isinstance(number(Decimal("10.00")), int)
    assert number(Decimal("12.5")) == 12.5
    assert number(None) is None


# Accounts ---------------------------------------------------------------------------------------


def test_platform_account_renders_as_standard_with_branding(account):
    account.branding_primary_color = "#112233"
    account.branding_logo_url = "https://acme.test/logo.png"

    rendered = serialize(account)

    assert rendered["type"] == "standard"
    assert rendered["business_profile"]["name"] == "Acme Inc."
    assert rendered["settings"]["branding"] == {
        "icon": None,
        "logo": "https://acme.test/logo.png",
        "primary_color": "#112233",
        "secondary_color": None,
    }
    assert rendered["default_currency"] == "usd"


def test_connected_account_is_controlled_by_its_platform(account):
    connected = factories.make_connected_account(account)

    rendered = serialize(connected)

    assert rendered["type"] == "custom"
    assert rendered["controller"] == {"type": "application", "is_controller": True}


# Customers ---------------------------------------------------------------------------------------


def test_customer_renders_contact_balance_and_invoice_settings(customer):
    card = factories.make_card(customer)
    customer.invoice_settings_default_payment_method = card
    customer.balance = -500
    customer.metadata = {"plan": "gold"}

    rendered = serialize(customer)

    assert rendered["email"] == "jenny.rosen@example.com"
    assert rendered["name"] == "Jenny Rosen"
    assert rendered["balance"] == -500
    assert rendered["metadata"] == {"plan": "gold"}
    assert rendered["invoice_settings"] == {
        "custom_fields": None,
        "default_payment_method": card.id,
        "footer": None,
        "rendering_options": None,
    }
    assert rendered["test_clock"] is None


def test_customer_renders_unset_strings_as_null(account):
    customer = factories.make_customer(account, email="", name="")

    rendered = serialize(customer)

    assert rendered["email"] is None
    assert rendered["name"] is None
    assert rendered["phone"] is None
    assert rendered["currency"] is None


def test_deleted_customer_renders_as_deletion_stub(customer):
    customer.deleted_at = timezone.now()

    assert serialize(customer) == {"id": customer.id, "object": "customer", "deleted": True}


def test_customer_on_a_test_clock_names_its_clock(account):
    clock = factories.make_test_clock(account)
    customer = factories.make_customer(account, test_clock=clock)

    assert serialize(customer)["test_clock"] == clock.id


def test_customer_renders_its_own_current_discount(customer):
    discount = factories.make_discount(customer)

    assert serialize(customer)["discount"]["id"] == discount.id


def test_payment_method_renders_card_details(customer):
    card = factories.make_card(customer, card_exp_month=4, card_exp_year=2031)

    rendered = serialize(card)

    assert rendered["type"] == "card"
    assert rendered["customer"] == customer.id
    assert rendered["card"]["brand"] == "visa"
    assert rendered["card"]["last4"] == "4242"
    assert rendered["card"]["exp_month"] == 4
    assert rendered["card"]["exp_year"] == 2031
    assert rendered["card"]["funding"] == "credit"
    assert rendered["card"]["country"] == "US"
    assert set(rendered["card"]["checks"]) == {
        "address_line1_check",
        "address_postal_code_check",
        "cvc_check",
    }


def test_payment_method_fills_billing_details_with_nulls(customer):
    card = factories.make_card(customer, billing_details={"name": "Jenny Rosen"})

    details = serialize(card)["billing_details"]

    assert details["name"] == "Jenny Rosen"
    assert details["email"] is None
    assert details["address"]["postal_code"] is None


def test_balance_transaction_renders_amounts_as_ints(customer):
    txn = factories.make_balance_transaction(customer, amount=-700)

    rendered = serialize(txn)

    assert rendered["amount"] == -700
    assert rendered["ending_balance"] == -700
    assert rendered["type"] == BalanceTransactionType.ADJUSTMENT
    assert rendered["customer"] == customer.id


# Catalog -----------------------------------------------------------------------------------------


def test_product_renders_default_price_and_nulls(account):
    price = factories.make_price(account)
    product = price.product
    product.default_price = price

    rendered = serialize(product)

    assert rendered["name"] == "Pro plan"
    assert rendered["default_price"] == price.id
    assert rendered["description"] is None
    assert rendered["active"] is True


def test_recurring_price_renders_recurring_hash(account):
    price = factories.make_price(account, unit_amount=1999, interval_count=3)

    rendered = serialize(price)

    assert rendered["type"] == "recurring"
    assert rendered["unit_amount"] == 1999
    assert rendered["unit_amount_decimal"] == "1999"
    assert rendered["product"] == price.product_id
    assert rendered["billing_scheme"] == "per_unit"
    assert rendered["tax_behavior"] == "unspecified"
    assert rendered["recurring"] == {
        "aggregate_usage": None,
        "interval": "month",
        "interval_count": 3,
        "meter": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def test_one_time_price_has_no_recurring_hash(account):
    price = factories.make_price(account, interval=None)

    rendered = serialize(price)

    assert rendered["type"] == "one_time"
    assert rendered["recurring"] is None


def test_coupon_id_is_its_code(account):
    coupon = factories.make_coupon(account, code="WELCOME")

    assert serialize(coupon)["id"] == "WELCOME"


def test_coupon_percent_off_renders_as_a_number(account):
    coupon = factories.make_coupon(account, percent_off=Decimal("12.50"))
    coupon.refresh_from_db()

    assert serialize(coupon)["percent_off"] == 12.5


def test_amount_off_coupon_renders_amount_and_currency(account):
    coupon = factories.make_coupon(account, amount_off=500, currency="eur")

    rendered = serialize(coupon)

    assert rendered["amount_off"] == 500
    assert rendered["currency"] == "eur"
    assert rendered["percent_off"] is None


def test_discount_nests_its_coupon(customer):
    discount = factories.make_discount(customer)

    rendered = serialize(discount)

    assert rendered["coupon"]["object"] == "coupon"
    assert rendered["coupon"]["id"] == "SPRING25"
    assert rendered["customer"] == customer.id
    assert rendered["end"] is None


# Subscriptions -----------------------------------------------------------------------------------


def test_subscription_renders_its_items_as_a_list_object(customer):
    subscription = factories.make_subscription(customer, quantity=3)
    item = subscription.items.get()

    items = serialize(subscription)["items"]

    assert items["object"] == "list"
    assert items["has_more"] is False
    assert items["total_count"] == 1
    assert items["url"] == f"/v1/subscription_items?subscription={subscription.id}"
    assert [row["id"] for row in items["data"]] == [item.id]
    assert items["data"][0]["quantity"] == 3


def test_subscription_renders_current_period_on_itself_and_its_items(customer):
    subscription = factories.make_subscription(customer, start=T0)

    rendered = serialize(subscription)

    period = (T0_UNIX, T0_UNIX + 30 * 86400)
    assert (rendered["current_period_start"], rendered["current_period_end"]) == period
    item = rendered["items"]["data"][0]
    assert (item["current_period_start"], item["current_period_end"]) == period


def test_single_item_subscription_renders_legacy_plan_and_quantity(customer):
    subscription = factories.make_subscription(customer, quantity=2)
    price = subscription.items.get().price

    rendered = serialize(subscription)

    assert rendered["plan"]["object"] == "plan"
    assert rendered["plan"]["id"] == price.id
    assert rendered["plan"]["amount"] == 2000
    assert rendered["quantity"] == 2


def test_subscription_renders_status_customer_and_trial_settings(customer):
    subscription = factories.make_subscription(
        customer, trial_settings_missing_payment_method=MissingPaymentMethodBehavior.CANCEL
    )

    rendered = serialize(subscription)

    assert rendered["status"] == "active"
    assert rendered["customer"] == customer.id
    assert rendered["trial_settings"] == {"end_behavior": {"missing_payment_method": "cancel"}}
    assert rendered["cancellation_details"] == {"comment": None, "feedback": None, "reason": None}


def test_subscription_without_pause_collection_renders_null(customer):
    subscription = factories.make_subscription(customer)

    assert serialize(subscription)["pause_collection"] is None


def test_subscription_pause_collection_renders_behavior_and_resume_time(customer):
    # SPEC R-SUB-7: pause_collection is not the `paused` status
    subscription = factories.make_subscription(
        customer,
        pause_collection_behavior=PauseCollectionBehavior.KEEP_AS_DRAFT,
        pause_collection_resumes_at=T0,
    )

    assert serialize(subscription)["pause_collection"] == {
        "behavior": "keep_as_draft",
        "resumes_at": T0_UNIX,
    }


def test_subscription_application_fee_percent_is_a_json_number(account, customer):
    # SPEC R-CON-3: 0–100 with at most two decimals, a number in the JSON
    subscription = factories.make_subscription(
        customer, application=account, application_fee_percent=Decimal("12.50")
    )
    subscription.refresh_from_db()

    rendered = serialize(subscription)

    assert rendered["application_fee_percent"] == 12.5
    assert rendered["application"] == account.id


def test_subscription_transfer_data_renders_destination(account, customer):
    # SPEC R-CON-2
    destination = factories.make_connected_account(account)
    subscription = factories.make_subscription(
        customer,
        transfer_data_destination=destination,
        transfer_data_amount_percent=Decimal("80"),
    )
    subscription.refresh_from_db()

    assert serialize(subscription)["transfer_data"] == {
        "amount_percent": 80,
        "destination": destination.id,
    }


def test_subscription_without_transfer_renders_null_transfer_data(customer):
    subscription = factories.make_subscription(customer)

    assert serialize(subscription)["transfer_data"] is None


def test_subscription_renders_latest_invoice_and_payment_method_ids(customer):
    card = factories.make_card(customer)
    subscription = factories.make_subscription(customer, default_payment_method=card)
    invoice = factories.make_invoice(customer, subscription)
    subscription.latest_invoice = invoice

    rendered = serialize(subscription)

    assert rendered["latest_invoice"] == invoice.id
    assert rendered["default_payment_method"] == card.id


def test_subscription_renders_its_current_discount(customer):
    subscription = factories.make_subscription(customer)
    discount = factories.make_discount(customer, subscription=subscription)

    rendered = serialize(subscription)

    assert rendered["discount"]["id"] == discount.id
    assert rendered["discounts"] == [discount.id]


def test_subscription_ignores_an_ended_discount(customer):
    subscription = factories.make_subscription(customer)
    factories.make_discount(
        customer,
        subscription=subscription,
        start=timezone.now() - timedelta(days=90),
        end=timezone.now() - timedelta(days=1),
    )

    assert serialize(subscription)["discount"] is None


def test_prefetched_subscriptions_render_without_further_queries(
    customer, django_assert_num_queries
):
    for _ in range(3):
        factories.make_subscription(customer)
    subscriptions = list(Subscription.objects.prefetch_related("items__price", "discounts__coupon"))

    with django_assert_num_queries(0):
        for subscription in subscriptions:
            serialize(subscription)


def test_subscription_item_nests_its_full_price(customer):
    subscription = factories.make_subscription(customer)
    item = subscription.items.get()

    rendered = serialize(item)

    assert rendered["price"] == serialize(item.price)
    assert rendered["subscription"] == subscription.id
    assert rendered["quantity"] == 1


# Invoices and payments ---------------------------------------------------------------------------


def test_invoice_renders_its_lines_as_a_list_object(customer):
    invoice = factories.make_invoice(customer, amount=4200)
    line = invoice.lines.get()

    lines = serialize(invoice)["lines"]

    assert lines["object"] == "list"
    assert lines["url"] == f"/v1/invoices/{invoice.id}/lines"
    assert lines["total_count"] == 1
    assert lines["data"][0]["id"] == line.id
    assert lines["data"][0]["amount"] == 4200


@pytest.mark.parametrize(
    ("status", "paid"),
    [
        (InvoiceStatus.DRAFT, False),
        (InvoiceStatus.OPEN, False),
        (InvoiceStatus.PAID, True),
        (InvoiceStatus.VOID, False),
        (InvoiceStatus.UNCOLLECTIBLE, False),
    ],
)
def test_invoice_paid_follows_its_status(customer, status, paid):
    # SPEC R-INV-4: a paid invoice has paid=true
    invoice = factories.make_invoice(customer, status=status)

    assert serialize(invoice)["paid"] is paid


def test_invoice_renders_amounts_as_ints(customer):
    invoice = factories.make_invoice(customer, amount=2500, status=InvoiceStatus.PAID)

    rendered = serialize(invoice)

    assert rendered["amount_due"] == 2500
    assert rendered["amount_paid"] == 2500
    assert rendered["amount_remaining"] == 0
    assert rendered["total"] == 2500
    assert rendered["subtotal"] == 2500
    assert rendered["starting_balance"] == 0


def test_invoice_renders_status_transitions(customer):
    invoice = factories.make_invoice(customer, status=InvoiceStatus.PAID)
    invoice.finalized_at = T0
    invoice.paid_at = T0 + timedelta(hours=1)

    assert serialize(invoice)["status_transitions"] == {
        "finalized_at": T0_UNIX,
        "marked_uncollectible_at": None,
        "paid_at": T0_UNIX + 3600,
        "voided_at": None,
    }


def test_invoice_copies_customer_contact(customer):
    invoice = factories.make_invoice(customer)

    rendered = serialize(invoice)

    assert rendered["customer"] == customer.id
    assert rendered["customer_email"] == "jenny.rosen@example.com"
    assert rendered["customer_name"] == "Jenny Rosen"


def test_subscription_invoice_names_its_subscription_and_parent(customer):
    subscription = factories.make_subscription(customer, metadata={"team": "a"})
    invoice = factories.make_invoice(customer, subscription)

    rendered = serialize(invoice)

    assert rendered["subscription"] == subscription.id
    assert rendered["billing_reason"] == "subscription_cycle"
    assert rendered["parent"]["type"] == "subscription_details"
    assert rendered["parent"]["subscription_details"] == {
        "metadata": {"team": "a"},
        "subscription": subscription.id,
    }


def test_invoice_renders_automatic_tax_and_finalization_error(customer):
    # SPEC R-INV-3
    error = {"type": "invalid_request_error", "code": "customer_tax_location_invalid"}
    invoice = factories.make_invoice(
        customer,
        automatic_tax_enabled=True,
        automatic_tax_status="requires_location_inputs",
        last_finalization_error=error,
    )

    rendered = serialize(invoice)

    assert rendered["automatic_tax"] == {
        "enabled": True,
        "liability": None,
        "status": "requires_location_inputs",
    }
    assert rendered["last_finalization_error"] == error


def test_invoice_renders_payment_intent_and_connect_fields(account, customer):
    destination = factories.make_connected_account(account)
    invoice = factories.make_invoice(
        customer, application_fee_amount=200, transfer_data_destination=destination
    )
    intent = factories.make_payment_intent(invoice)
    invoice.payment_intent = intent

    rendered = serialize(invoice)

    assert rendered["payment_intent"] == intent.id
    assert rendered["application_fee_amount"] == 200
    assert rendered["transfer_data"] == {"amount": None, "destination": destination.id}


def test_line_item_renders_period_price_and_subscription(customer):
    price = factories.make_price(customer.account)
    subscription = factories.make_subscription(customer, price=price)
    invoice = factories.make_invoice(customer, subscription, period_start=T0)
    line = invoice.lines.get()
    line.price = price
    line.subscription_item = subscription.items.get()

    rendered = serialize(line)

    assert rendered["period"] == {"start": T0_UNIX, "end": T0_UNIX + 30 * 86400}
    assert rendered["price"] == serialize(price)
    assert rendered["pricing"]["price_details"] == {"price": price.id, "product": price.product_id}
    assert rendered["subscription"] == subscription.id
    assert rendered["subscription_item"] == line.subscription_item_id
    assert rendered["type"] == "subscription"
    assert rendered["invoice"] == invoice.id
    assert rendered["parent"]["subscription_item_details"]["subscription"] == subscription.id


def test_one_off_line_item_renders_invoice_item_parent(customer):
    invoice = factories.make_invoice(customer)
    line = invoice.lines.get()
    line.type = LineItemType.INVOICEITEM

    rendered = serialize(line)

    assert rendered["type"] == "invoiceitem"
    assert rendered["parent"]["type"] == "invoice_item_details"
    assert rendered["price"] is None


def test_payment_intent_renders_amounts_status_and_card_methods(customer):
    invoice = factories.make_invoice(customer, amount=1500)
    intent = factories.make_payment_intent(invoice)

    rendered = serialize(intent)

    assert rendered["amount"] == 1500
    assert rendered["amount_received"] == 0
    assert rendered["status"] == "requires_payment_method"
    assert rendered["client_secret"].startswith(f"{intent.id}_secret_")
    assert rendered["invoice"] == invoice.id
    assert rendered["customer"] == customer.id
    assert rendered["payment_method_types"] == ["card"]
    assert rendered["capture_method"] == "automatic"
    assert rendered["confirmation_method"] == "automatic"


def test_payment_intent_renders_3ds_next_action(customer):
    # SPEC R-INV-5
    intent = factories.make_payment_intent(
        factories.make_invoice(customer),
        status="requires_action",
        next_action={"type": "use_stripe_sdk"},
    )

    rendered = serialize(intent)

    assert rendered["status"] == "requires_action"
    assert rendered["next_action"] == {"type": "use_stripe_sdk"}


# Test clocks and events --------------------------------------------------------------------------


def test_test_clock_renders_frozen_time_and_status(account):
    clock = factories.make_test_clock(account, frozen_time=T0, name="Renewals")

    rendered = serialize(clock)

    assert rendered["frozen_time"] == T0_UNIX
    assert rendered["status"] == "ready"
    assert rendered["name"] == "Renewals"
    assert rendered["status_details"] == {}


def test_advancing_test_clock_renders_its_target(account):
    # SPEC R-CLOCK-2
    clock = factories.make_test_clock(
        account,
        frozen_time=T0,
        status=ClockStatus.ADVANCING,
        advancing_to=T0 + timedelta(days=1),
    )

    assert serialize(clock)["status_details"] == {
        "advancing": {"target_frozen_time": T0_UNIX + 86400}
    }


def test_event_of_a_connected_account_carries_account(account):
    # SPEC R-EVT-4
    connected = factories.make_connected_account(account)
    event = factories.make_event(connected)

    assert serialize(event)["account"] == connected.id


def test_event_of_a_platform_has_no_account(account):
    event = factories.make_event(account)

    assert "account" not in serialize(event)


def test_event_renders_stripe_event_fields(account):
    # SPEC R-EVT-1
    event = factories.make_event(account, type="invoice.paid")

    rendered = serialize(event)

    assert rendered["type"] == "invoice.paid"
    assert rendered["api_version"] == event.api_version
    assert rendered["data"] == event.data
    assert rendered["pending_webhooks"] == 0
    assert rendered["request"] == {"id": None, "idempotency_key": None}


# Invoice items ---------------------------------------------------------------------------------


def test_invoice_item_renders_stripe_invoiceitem_fields(customer):
    price = factories.make_price(customer.account, interval=None, unit_amount=750)
    subscription = factories.make_subscription(customer)
    item = factories.make_invoice_item(
        customer,
        amount=1500,
        quantity=2,
        price=price,
        subscription=subscription,
        period_start=T0,
        period_end=T0 + timedelta(days=30),
        created=T0,
        metadata={"order": "42"},
    )

    rendered = serialize(item)

    assert rendered["object"] == "invoiceitem"
    assert rendered["id"].startswith("ii_")
    assert (rendered["amount"], rendered["currency"], rendered["quantity"]) == (1500, "usd", 2)
    assert (rendered["unit_amount"], rendered["unit_amount_decimal"]) == (750, "750")
    assert rendered["customer"] == customer.id
    assert rendered["date"] == T0_UNIX
    assert rendered["period"] == {"start": T0_UNIX, "end": T0_UNIX + 30 * 86400}
    assert rendered["price"] == serialize(price)
    assert rendered["pricing"] == {
        "price_details": {"price": price.id, "product": price.product_id},
        "type": "price_details",
        "unit_amount_decimal": "750",
    }
    assert rendered["subscription"] == subscription.id
    assert rendered["parent"] == {
        "subscription_details": {"subscription": subscription.id, "subscription_item": None},
        "type": "subscription_details",
    }
    assert rendered["invoice"] is None
    assert rendered["livemode"] is False
    assert rendered["metadata"] == {"order": "42"}
    assert rendered["test_clock"] is None
    assert json.loads(json.dumps(rendered)) == rendered


def test_invoice_item_without_price_or_subscription_renders_nulls(account):
    clock = factories.make_test_clock(account)
    customer = factories.make_customer(account, test_clock=clock)
    invoice = factories.make_invoice(customer)
    item = factories.make_invoice_item(customer, amount=1000, quantity=3, invoice=invoice)

    rendered = serialize(item)

    assert rendered["price"] is None
    assert rendered["pricing"] is None
    assert rendered["parent"] is None
    assert rendered["subscription"] is None
    assert rendered["invoice"] == invoice.id
    assert rendered["test_clock"] == clock.id
    # 1000 / 3 has no whole unit amount; the decimal one keeps 12 places, as Stripe's does.
    assert rendered["unit_amount"] is None
    assert rendered["unit_amount_decimal"] == "333.333333333333"


def test_proration_credit_renders_negative_amounts(customer):
    item = factories.make_invoice_item(
        customer, amount=-1000, proration=True, discountable=False, description=""
    )

    rendered = serialize(item)

    assert (rendered["amount"], rendered["unit_amount"]) == (-1000, -1000)
    assert rendered["unit_amount_decimal"] == "-1000"
    assert rendered["proration"] is True
    assert rendered["discountable"] is False
    assert rendered["description"] is None
