"""Every billing object rendered in Stripe's API shape: JSON-ready dicts, Stripe's field names.

Timestamps are Unix seconds (or null), amounts are integers in minor units (SPEC R-CORE-1), ids
are strings and every object names itself in `object` (SPEC R-CORE-2). `serialize(obj)` picks the
function through one explicit registry and refuses classes it does not know.

The serializers only follow relations through `.all()` and plain attribute access, so a caller
rendering many objects avoids N+1 queries by preparing the queryset, for example:

- subscriptions: `select_related("test_clock")`,
  `prefetch_related("items__price", "discounts__coupon")`
- invoices: `select_related("customer", "subscription", "payment_intent")`,
  `prefetch_related("lines__price")`
- invoice items: `select_related("customer", "price")`
- customers: `prefetch_related("discounts__coupon")`
- events: `select_related("account")`

The rendering follows API version `2025-03-31.basil` and keeps the pre-basil fields that
integrations still read (`invoice.paid`, `invoice.subscription`, `invoice.payment_intent`,
`subscription.current_period_*`, line `price`): extra fields cost Stripe clients nothing.
"""

import copy
from collections.abc import Callable
from decimal import Decimal

from billing.choices import AccountType, InvoiceStatus, LineItemType, TestClockStatus
from billing.clocks import now_for
from billing.models import (
    Account,
    ApplicationFee,
    BalanceTransaction,
    Coupon,
    Customer,
    CustomerBalanceTransaction,
    Discount,
    Event,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
    TestClock,
    Transfer,
    WebhookEndpoint,
)

# ---------------------------------------------------------------------------------------------
# Small helpers shared by the serializers.
# ---------------------------------------------------------------------------------------------


def timestamp(value) -> int | None:
    """A datetime as Unix seconds, or None."""
    return int(value.timestamp()) if value is not None else None


def number(value: Decimal | int | None) -> int | float | None:
    """A Decimal as a JSON number: int when whole, else float.

    Stripe renders percentages (`application_fee_percent`, `percent_off`) as JSON numbers. The
    engine keeps them as Decimals and computes with them exactly; this is the JSON boundary, the
    only place they become floats, and they never flow back into arithmetic from here.
    """
    if value is None:
        return None
    # A freshly assigned field may still hold the int it was given, not yet a Decimal.
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def blank_to_none(value: str | None) -> str | None:
    """Stripe renders unset strings as null; our models store them as ''."""
    return value or None


def json_copy(value):
    """A deep copy of a JSON field, so the rendered dict never aliases the model's own value."""
    if not value:
        # Most are empty (metadata) or null: skip deepcopy's machinery for them.
        return {} if isinstance(value, dict) else [] if isinstance(value, list) else value
    return copy.deepcopy(value)


def list_object(data: list, url: str) -> dict:
    """Stripe's list envelope around objects embedded in another object (all of them, no paging)."""
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "total_count": len(data),
        "url": url,
    }


def _by_creation(objects) -> list:
    """Objects in creation order; sorted in Python so prefetched relations cost no query."""
    return sorted(objects, key=lambda obj: (obj.created, obj.pk))


def _related(manager, *related: str):
    """`manager.all()`: the prefetched rows if the caller prefetched them, else one query that
    joins `related` (so rendering each row does not fetch its price and product one by one)."""
    cache = getattr(manager.instance, "_prefetched_objects_cache", {})
    if manager.field.remote_field.cache_name in cache:
        return manager.all()
    return manager.select_related(*related)


def _rows(instance, accessor: str, *related: str):
    """`_related(getattr(instance, accessor), …)` without making the related manager when the
    rows were prefetched (Django makes a new one, with its filters, at every access: the
    invoice is rendered several times a renewal)."""
    cache = instance.__dict__.get("_prefetched_objects_cache")
    if cache is not None:
        rows = cache.get(accessor)
        if rows is not None:
            return rows
    return _related(getattr(instance, accessor), *related)


# ---------------------------------------------------------------------------------------------
# Accounts.
# ---------------------------------------------------------------------------------------------


def serialize_account(account: Account) -> dict:
    """An `account`: platforms render as `standard`, connected accounts as platform-controlled."""
    connected = account.type == AccountType.CONNECTED
    if connected:
        # The platform created and controls it (Stripe's "custom" accounts, R-CON-1).
        controller = {"type": "application", "is_controller": True}
    else:
        controller = {"type": "account"}
    return {
        "id": account.id,
        "object": "account",
        "business_profile": {
            "mcc": None,
            "name": account.name,
            "product_description": None,
            "support_address": None,
            "support_email": blank_to_none(account.email),
            "support_phone": None,
            "support_url": None,
            "url": None,
        },
        "business_type": None,
        "capabilities": {},
        "charges_enabled": True,
        "controller": controller,
        "country": account.country,
        "created": timestamp(account.created),
        "default_currency": account.default_currency,
        "details_submitted": True,
        "email": blank_to_none(account.email),
        "metadata": json_copy(account.metadata),
        "payouts_enabled": True,
        "settings": {
            "branding": {
                "icon": None,
                # Stripe holds a file id here; we hold the logo's URL.
                "logo": blank_to_none(account.branding_logo_url),
                "primary_color": account.branding_primary_color,
                "secondary_color": None,
            },
            "dashboard": {
                "display_name": account.display_name,
                "timezone": account.timezone,
            },
        },
        "type": "custom" if connected else "standard",
    }


# ---------------------------------------------------------------------------------------------
# Customers, payment methods, balance transactions.
# ---------------------------------------------------------------------------------------------


def _current_discount(discounts, at) -> Discount | None:
    """The discount in force at `at`: the latest started one that has not ended."""
    current = [d for d in discounts if d.start <= at and (d.end is None or d.end > at)]
    return max(current, key=lambda d: (d.start, d.pk), default=None)


def serialize_customer(customer: Customer) -> dict:
    """A `customer`; a deleted one renders as Stripe's deletion stub."""
    if customer.deleted_at is not None:
        return {"id": customer.id, "object": "customer", "deleted": True}
    own_discounts = [d for d in customer.discounts.all() if d.subscription_id is None]
    discount = _current_discount(own_discounts, now_for(customer)) if own_discounts else None
    return {
        "id": customer.id,
        "object": "customer",
        "address": json_copy(customer.address),
        "balance": customer.balance,
        "created": timestamp(customer.created),
        "currency": blank_to_none(customer.currency),
        "default_source": blank_to_none(customer.default_source),
        "description": blank_to_none(customer.description),
        "discount": serialize_discount(discount) if discount else None,
        "email": blank_to_none(customer.email),
        "invoice_prefix": customer.invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": customer.invoice_settings_default_payment_method_id,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": customer.livemode,
        "metadata": json_copy(customer.metadata),
        "name": blank_to_none(customer.name),
        "next_invoice_sequence": customer.next_invoice_sequence,
        "phone": blank_to_none(customer.phone),
        "preferred_locales": json_copy(customer.preferred_locales),
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": customer.test_clock_id,
    }


# Stripe's `display_brand` spells some brands differently from `brand`.
DISPLAY_BRANDS = {"amex": "american_express"}


def serialize_payment_method(pm: PaymentMethod) -> dict:
    """A `payment_method` of type `card`."""
    details = pm.billing_details or {}
    address = details.get("address") or {}
    return {
        "id": pm.id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                key: address.get(key)
                for key in ("city", "country", "line1", "line2", "postal_code", "state")
            },
            "email": details.get("email"),
            "name": details.get("name"),
            "phone": details.get("phone"),
        },
        "card": {
            "brand": pm.card_brand,
            # No address or CVC is verified by the test gateway: Stripe renders that as null.
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": None,
            },
            "country": pm.card_country,
            "display_brand": DISPLAY_BRANDS.get(pm.card_brand, pm.card_brand),
            "exp_month": pm.card_exp_month,
            "exp_year": pm.card_exp_year,
            "fingerprint": blank_to_none(pm.card_fingerprint),
            "funding": pm.card_funding,
            "generated_from": None,
            "last4": pm.card_last4,
            "networks": {"available": [pm.card_brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": timestamp(pm.created),
        "customer": pm.customer_id,
        "livemode": pm.livemode,
        "metadata": json_copy(pm.metadata),
        "type": pm.type,
    }


def serialize_customer_balance_transaction(txn: CustomerBalanceTransaction) -> dict:
    """A `customer_balance_transaction`."""
    return {
        "id": txn.id,
        "object": "customer_balance_transaction",
        "amount": txn.amount,
        "checkout_session": None,
        "created": timestamp(txn.created),
        "credit_note": None,
        "currency": txn.currency,
        "customer": txn.customer_id,
        "description": blank_to_none(txn.description),
        "ending_balance": txn.ending_balance,
        "invoice": txn.invoice_id,
        "livemode": txn.livemode,
        "metadata": json_copy(txn.metadata),
        "type": txn.type,
    }


# ---------------------------------------------------------------------------------------------
# Catalog: products, prices, coupons, discounts.
# ---------------------------------------------------------------------------------------------


def serialize_product(product: Product) -> dict:
    """A `product`."""
    return {
        "id": product.id,
        "object": "product",
        "active": product.active,
        "created": timestamp(product.created),
        "default_price": product.default_price_id,
        "description": blank_to_none(product.description),
        "images": [],
        "livemode": product.livemode,
        "marketing_features": [],
        "metadata": json_copy(product.metadata),
        "name": product.name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "unit_label": blank_to_none(product.unit_label),
        # The model keeps no modification time; `created` is the best lower bound we have.
        "updated": timestamp(product.created),
        "url": None,
    }


def serialize_price(price: Price) -> dict:
    """A `price`, one-off or recurring."""
    recurring = None
    if price.is_recurring:
        recurring = {
            "aggregate_usage": None,
            "interval": price.recurring_interval,
            "interval_count": price.recurring_interval_count,
            "meter": None,
            "trial_period_days": None,
            "usage_type": price.recurring_usage_type,
        }
    return {
        "id": price.id,
        "object": "price",
        "active": price.active,
        "billing_scheme": "per_unit",
        "created": timestamp(price.created),
        "currency": price.currency,
        "custom_unit_amount": None,
        "livemode": price.livemode,
        "lookup_key": price.lookup_key,
        "metadata": json_copy(price.metadata),
        "nickname": blank_to_none(price.nickname),
        "product": price.product_id,
        "recurring": recurring,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": price.type,
        "unit_amount": price.unit_amount,
        "unit_amount_decimal": str(price.unit_amount),
    }


def serialize_plan(price: Price) -> dict | None:
    """The legacy `plan` view of a recurring price (Stripe still renders it); None if one-off."""
    if not price.is_recurring:
        return None
    return {
        "id": price.id,
        "object": "plan",
        "active": price.active,
        "aggregate_usage": None,
        "amount": price.unit_amount,
        "amount_decimal": str(price.unit_amount),
        "billing_scheme": "per_unit",
        "created": timestamp(price.created),
        "currency": price.currency,
        "interval": price.recurring_interval,
        "interval_count": price.recurring_interval_count,
        "livemode": price.livemode,
        "metadata": json_copy(price.metadata),
        "meter": None,
        "nickname": blank_to_none(price.nickname),
        "product": price.product_id,
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": price.recurring_usage_type,
    }


def serialize_coupon(coupon: Coupon) -> dict:
    """A `coupon`: its Stripe id is the merchant's `code`, not our primary key."""
    return {
        "id": coupon.code,
        "object": "coupon",
        "amount_off": coupon.amount_off,
        "created": timestamp(coupon.created),
        "currency": blank_to_none(coupon.currency),
        "duration": coupon.duration,
        "duration_in_months": coupon.duration_in_months,
        "livemode": coupon.livemode,
        "max_redemptions": coupon.max_redemptions,
        "metadata": json_copy(coupon.metadata),
        "name": blank_to_none(coupon.name),
        "percent_off": number(coupon.percent_off),
        "redeem_by": timestamp(coupon.redeem_by),
        "times_redeemed": coupon.times_redeemed,
        "valid": coupon.valid,
    }


def serialize_discount(discount: Discount) -> dict:
    """A `discount`, with its coupon nested as Stripe does."""
    return {
        "id": discount.id,
        "object": "discount",
        "checkout_session": None,
        "coupon": serialize_coupon(discount.coupon),
        "customer": discount.customer_id,
        "end": timestamp(discount.end),
        "invoice": None,
        "invoice_item": None,
        # Not in Stripe's discount, but every object here carries its mode (SPEC R-CORE-3).
        "livemode": discount.livemode,
        "promotion_code": None,
        "start": timestamp(discount.start),
        "subscription": discount.subscription_id,
        "subscription_item": None,
    }


# ---------------------------------------------------------------------------------------------
# Subscriptions.
# ---------------------------------------------------------------------------------------------


def serialize_subscription_item(
    item: SubscriptionItem, subscription: Subscription | None = None
) -> dict:
    """A `subscription_item` with its full price; `subscription` saves a lookup when known."""
    subscription = subscription or item.subscription
    return {
        "id": item.id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": timestamp(item.created),
        # Stripe's 2025 API moved the period onto items; all our items share the subscription's.
        "current_period_end": timestamp(subscription.current_period_end),
        "current_period_start": timestamp(subscription.current_period_start),
        "discounts": [],
        # Not in Stripe's subscription item, but every object here carries it (SPEC R-CORE-3).
        "livemode": item.livemode,
        "metadata": json_copy(item.metadata),
        "plan": serialize_plan(item.price),
        "price": serialize_price(item.price),
        "quantity": item.quantity,
        "subscription": subscription.id,
        "tax_rates": [],
    }


def serialize_subscription(sub: Subscription) -> dict:
    """A `subscription`, its items embedded as a list object."""
    items = _by_creation(_rows(sub, "items", "price__product"))
    discounts = list(sub.discounts.all())
    discount = _current_discount(discounts, now_for(sub)) if discounts else None
    # Stripe fills the legacy `plan` and `quantity` only for a single-item subscription.
    single = items[0] if len(items) == 1 else None

    pause_collection = None
    if sub.pause_collection_behavior:
        pause_collection = {
            "behavior": sub.pause_collection_behavior,
            "resumes_at": timestamp(sub.pause_collection_resumes_at),
        }
    transfer_data = None
    if sub.transfer_data_destination_id:
        transfer_data = {
            "amount_percent": number(sub.transfer_data_amount_percent),
            "destination": sub.transfer_data_destination_id,
        }
    details = sub.cancellation_details or {}

    return {
        "id": sub.id,
        "object": "subscription",
        "application": sub.application_id,
        "application_fee_percent": number(sub.application_fee_percent),
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": timestamp(sub.billing_cycle_anchor),
        "billing_cycle_anchor_config": None,
        "billing_thresholds": None,
        "cancel_at": timestamp(sub.cancel_at),
        "cancel_at_period_end": sub.cancel_at_period_end,
        "canceled_at": timestamp(sub.canceled_at),
        "cancellation_details": {
            "comment": details.get("comment"),
            "feedback": details.get("feedback"),
            "reason": details.get("reason"),
        },
        "collection_method": sub.collection_method,
        "created": timestamp(sub.created),
        "currency": sub.currency,
        "current_period_end": timestamp(sub.current_period_end),
        "current_period_start": timestamp(sub.current_period_start),
        "customer": sub.customer_id,
        "days_until_due": sub.days_until_due,
        "default_payment_method": sub.default_payment_method_id,
        "default_source": blank_to_none(sub.default_source),
        "default_tax_rates": [],
        "description": blank_to_none(sub.description),
        "discount": serialize_discount(discount) if discount else None,
        "discounts": [d.id for d in _by_creation(discounts)],
        "ended_at": timestamp(sub.ended_at),
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object(
            [serialize_subscription_item(item, sub) for item in items],
            f"/v1/subscription_items?subscription={sub.id}",
        ),
        "latest_invoice": sub.latest_invoice_id,
        "livemode": sub.livemode,
        "metadata": json_copy(sub.metadata),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": sub.on_behalf_of_id,
        "pause_collection": pause_collection,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "plan": serialize_plan(single.price) if single else None,
        "quantity": single.quantity if single else None,
        "schedule": None,
        "start_date": timestamp(sub.start_date),
        "status": sub.status,
        "test_clock": sub.test_clock_id,
        "transfer_data": transfer_data,
        "trial_end": timestamp(sub.trial_end),
        "trial_settings": {
            "end_behavior": {"missing_payment_method": sub.trial_settings_missing_payment_method}
        },
        "trial_start": timestamp(sub.trial_start),
    }


# ---------------------------------------------------------------------------------------------
# Invoices and payments.
# ---------------------------------------------------------------------------------------------


def serialize_invoice_line_item(line: InvoiceLineItem) -> dict:
    """A `line_item` of an invoice, in both the basil (`parent`, `pricing`) and legacy shapes."""
    price = line.price if line.price_id else None
    proration_details = {"credited_items": None}
    if line.type == LineItemType.SUBSCRIPTION:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": line.proration,
                "proration_details": proration_details,
                "subscription": line.subscription_id,
                "subscription_item": line.subscription_item_id,
            },
        }
    else:
        parent = {
            "type": "invoice_item_details",
            "invoice_item_details": {
                # One-off items have no invoice item object of their own here.
                "invoice_item": None,
                "proration": line.proration,
                "proration_details": proration_details,
                "subscription": line.subscription_id,
            },
            "subscription_item_details": None,
        }
    pricing = None
    if price is not None:
        pricing = {
            "price_details": {"price": price.id, "product": price.product_id},
            "type": "price_details",
            "unit_amount_decimal": str(price.unit_amount),
        }
    return {
        "id": line.id,
        "object": "line_item",
        "amount": line.amount,
        "currency": line.currency,
        "description": blank_to_none(line.description),
        "discount_amounts": [],
        "discountable": line.discountable,
        "discounts": [],
        "invoice": line.invoice_id,
        "invoice_item": None,
        "livemode": line.livemode,
        "metadata": json_copy(line.metadata),
        "parent": parent,
        "period": {"end": timestamp(line.period_end), "start": timestamp(line.period_start)},
        "price": serialize_price(price) if price is not None else None,
        "pricing": pricing,
        "proration": line.proration,
        "proration_details": proration_details,
        "quantity": line.quantity,
        "subscription": line.subscription_id,
        "subscription_item": line.subscription_item_id,
        "tax_amounts": [],
        "tax_rates": [],
        "type": line.type,
    }


def _unit_amount_decimal(amount: int, quantity: int) -> str:
    """`amount / quantity` as Stripe's decimal string (at most 12 decimal places, no exponent)."""
    value = (Decimal(amount) / Decimal(quantity or 1)).quantize(Decimal("1e-12"))
    return f"{value.normalize():f}"


def serialize_invoiceitem(item: InvoiceItem) -> dict:
    """An `invoiceitem`, in both the basil (`parent`, `pricing`) and legacy (`price`,
    `subscription`, `unit_amount`) shapes. Stripe's `date` is our `created`; the test clock is
    the customer's (invoice items have none of their own)."""
    price = item.price if item.price_id else None
    quantity = item.quantity or 1
    unit_amount_decimal = _unit_amount_decimal(item.amount, quantity)
    # `amount` is always `unit_amount * quantity`; a proration split unevenly has no whole unit.
    unit_amount = item.amount // quantity if item.amount % quantity == 0 else None
    parent = None
    if item.subscription_id:
        parent = {
            "subscription_details": {
                "subscription": item.subscription_id,
                # Invoice items do not record the subscription item they were computed for.
                "subscription_item": None,
            },
            "type": "subscription_details",
        }
    pricing = None
    if price is not None:
        pricing = {
            "price_details": {"price": price.id, "product": price.product_id},
            "type": "price_details",
            "unit_amount_decimal": unit_amount_decimal,
        }
    return {
        "id": item.id,
        "object": "invoiceitem",
        "amount": item.amount,
        "currency": item.currency,
        "customer": item.customer_id,
        "date": timestamp(item.created),
        "description": blank_to_none(item.description),
        "discountable": item.discountable,
        "discounts": [],
        "invoice": item.invoice_id,
        "livemode": item.livemode,
        "metadata": json_copy(item.metadata),
        "parent": parent,
        "period": {"end": timestamp(item.period_end), "start": timestamp(item.period_start)},
        "plan": serialize_plan(price) if price is not None else None,
        "price": serialize_price(price) if price is not None else None,
        "pricing": pricing,
        "proration": item.proration,
        "proration_details": {"credited_items": None},
        "quantity": item.quantity,
        "subscription": item.subscription_id,
        "subscription_item": None,
        "tax_rates": [],
        "test_clock": item.customer.test_clock_id,
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal,
    }


def _confirmation_secret(invoice: Invoice) -> dict | None:
    """Stripe's (basil) `confirmation_secret`: the client secret of the PaymentIntent made at
    finalization, for Stripe.js to confirm the payment; null while there is none."""
    if not invoice.payment_intent_id:
        return None
    return {"client_secret": invoice.payment_intent.client_secret, "type": "payment_intent"}


def serialize_invoice(invoice: Invoice) -> dict:
    """An `invoice`, its lines embedded as a list object."""
    customer = invoice.customer
    lines = _by_creation(_rows(invoice, "lines", "price__product"))
    parent = None
    if invoice.subscription_id:
        parent = {
            "quote_details": None,
            "subscription_details": {
                "metadata": json_copy(invoice.subscription.metadata),
                "subscription": invoice.subscription_id,
            },
            "type": "subscription_details",
        }
    transfer_data = None
    if invoice.transfer_data_destination_id:
        transfer_data = {"amount": None, "destination": invoice.transfer_data_destination_id}
    total_discount_amounts = []
    if invoice.total_discount_amount:
        # The model keeps the total only, not which discount produced it.
        total_discount_amounts = [{"amount": invoice.total_discount_amount, "discount": None}]
    tax = invoice.tax or 0

    return {
        "id": invoice.id,
        "object": "invoice",
        "amount_due": invoice.amount_due,
        "amount_overpaid": 0,
        "amount_paid": invoice.amount_paid,
        "amount_remaining": invoice.amount_remaining,
        "amount_shipping": 0,
        "application": invoice.application_id,
        "application_fee_amount": invoice.application_fee_amount,
        "attempt_count": invoice.attempt_count,
        "attempted": invoice.attempted,
        "auto_advance": invoice.auto_advance,
        "automatic_tax": {
            "enabled": invoice.automatic_tax_enabled,
            "liability": None,
            "status": invoice.automatic_tax_status,
        },
        "billing_reason": invoice.billing_reason,
        "collection_method": invoice.collection_method,
        "confirmation_secret": _confirmation_secret(invoice),
        "created": timestamp(invoice.created),
        "currency": invoice.currency,
        "custom_fields": None,
        "customer": invoice.customer_id,
        "customer_address": json_copy(customer.address),
        "customer_email": blank_to_none(customer.email),
        "customer_name": blank_to_none(customer.name),
        "customer_phone": blank_to_none(customer.phone),
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "default_payment_method": invoice.default_payment_method_id,
        "default_source": None,
        "default_tax_rates": [],
        "description": blank_to_none(invoice.description),
        "discounts": [],
        "due_date": timestamp(invoice.due_date),
        "effective_at": timestamp(invoice.finalized_at),
        "ending_balance": invoice.ending_balance,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": json_copy(invoice.last_finalization_error),
        "latest_revision": None,
        "lines": list_object(
            [serialize_invoice_line_item(line) for line in lines],
            f"/v1/invoices/{invoice.id}/lines",
        ),
        "livemode": invoice.livemode,
        "metadata": json_copy(invoice.metadata),
        "next_payment_attempt": timestamp(invoice.next_payment_attempt),
        "number": invoice.number,
        "on_behalf_of": invoice.on_behalf_of_id,
        "paid": invoice.status == InvoiceStatus.PAID,
        "paid_out_of_band": False,
        "parent": parent,
        "payment_intent": invoice.payment_intent_id,
        "period_end": timestamp(invoice.period_end),
        "period_start": timestamp(invoice.period_start),
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "starting_balance": invoice.starting_balance,
        "statement_descriptor": None,
        "status": invoice.status,
        "status_transitions": {
            "finalized_at": timestamp(invoice.finalized_at),
            "marked_uncollectible_at": timestamp(invoice.marked_uncollectible_at),
            "paid_at": timestamp(invoice.paid_at),
            "voided_at": timestamp(invoice.voided_at),
        },
        "subscription": invoice.subscription_id,
        "subtotal": invoice.subtotal,
        "subtotal_excluding_tax": invoice.subtotal,
        "tax": invoice.tax,
        "test_clock": invoice.test_clock_id,
        "total": invoice.total,
        "total_discount_amounts": total_discount_amounts,
        "total_excluding_tax": invoice.total - tax,
        "transfer_data": transfer_data,
        "webhooks_delivered_at": timestamp(invoice.webhooks_delivered_at),
    }


def serialize_payment_intent(pi: PaymentIntent) -> dict:
    """A `payment_intent` for card payments, confirmed and captured automatically."""
    transfer_data = None
    if pi.transfer_data_destination_id:
        transfer_data = {
            "amount": pi.transfer_data_amount,
            "destination": pi.transfer_data_destination_id,
        }
    return {
        "id": pi.id,
        "object": "payment_intent",
        "amount": pi.amount,
        "amount_capturable": 0,
        "amount_received": pi.amount_received,
        "application": None,
        "application_fee_amount": pi.application_fee_amount,
        "automatic_payment_methods": None,
        "canceled_at": timestamp(pi.canceled_at),
        "cancellation_reason": blank_to_none(pi.cancellation_reason),
        "capture_method": "automatic",
        "client_secret": pi.client_secret,
        "confirmation_method": "automatic",
        "created": timestamp(pi.created),
        "currency": pi.currency,
        "customer": pi.customer_id,
        "description": blank_to_none(pi.description),
        "invoice": pi.invoice_id,
        "last_payment_error": json_copy(pi.last_payment_error),
        "latest_charge": None,
        "livemode": pi.livemode,
        "metadata": json_copy(pi.metadata),
        "next_action": json_copy(pi.next_action),
        "on_behalf_of": pi.on_behalf_of_id,
        "payment_method": pi.payment_method_id,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "setup_future_usage": None,
        "shipping": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": pi.status,
        "transfer_data": transfer_data,
        "transfer_group": None,
    }


# ---------------------------------------------------------------------------------------------
# Connect money: balance transactions, transfers, application fees (SPEC R-CON-2/3/4).
# ---------------------------------------------------------------------------------------------

# Stripe's reporting category of each balance transaction type.
_REPORTING_CATEGORIES = {
    "charge": "charge",
    "payment": "charge",
    "transfer": "transfer",
    "application_fee": "platform_earning",
}


def serialize_balance_transaction(txn: BalanceTransaction) -> dict:
    """A `balance_transaction`: funds are available at once (Relance has no payouts)."""
    fee_details = []
    if txn.fee:
        fee_details.append(
            {
                "amount": txn.fee,
                "application": None,
                "currency": txn.currency,
                "description": "Application fee",
                "type": "application_fee",
            }
        )
    return {
        "id": txn.id,
        "object": "balance_transaction",
        "amount": txn.amount,
        "available_on": timestamp(txn.created),
        "created": timestamp(txn.created),
        "currency": txn.currency,
        "description": blank_to_none(txn.description),
        "exchange_rate": None,
        "fee": txn.fee,
        "fee_details": fee_details,
        "net": txn.net,
        "reporting_category": _REPORTING_CATEGORIES[txn.type],
        "source": txn.source,
        "status": "available",
        "type": txn.type,
    }


def serialize_transfer(transfer: Transfer) -> dict:
    """A `transfer` of a destination charge. Relance has no Charge objects: the payment it
    comes from is the PaymentIntent named in `transfer_group` (and in `payment_intent`)."""
    return {
        "id": transfer.id,
        "object": "transfer",
        "amount": transfer.amount,
        "amount_reversed": 0,
        "balance_transaction": transfer.balance_transaction_id,
        "created": timestamp(transfer.created),
        "currency": transfer.currency,
        "description": blank_to_none(transfer.description),
        "destination": transfer.destination_id,
        "destination_payment": transfer.destination_payment,
        "invoice": transfer.invoice_id,
        "livemode": transfer.livemode,
        "metadata": json_copy(transfer.metadata),
        "payment_intent": transfer.payment_intent_id,
        "reversals": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/transfers/{transfer.id}/reversals",
        },
        "reversed": False,
        "source_transaction": None,
        "source_type": "card",
        "transfer_group": blank_to_none(transfer.transfer_group),
    }


def serialize_application_fee(fee: ApplicationFee) -> dict:
    """An `application_fee`: `account` is the connected account it was taken from,
    `application` the platform that collected it."""
    return {
        "id": fee.id,
        "object": "application_fee",
        "account": fee.connected_account_id,
        "amount": fee.amount,
        "amount_refunded": 0,
        "application": fee.account_id,
        "balance_transaction": fee.balance_transaction_id,
        "charge": None,
        "created": timestamp(fee.created),
        "currency": fee.currency,
        "invoice": fee.invoice_id,
        "livemode": fee.livemode,
        "originating_transaction": None,
        "payment_intent": fee.payment_intent_id,
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "total_count": 0,
            "url": f"/v1/application_fees/{fee.id}/refunds",
        },
    }


def serialize_balance(amounts: dict[str, int], livemode: bool) -> dict:
    """The `balance` object from per-currency totals (`services.connect.balance`)."""
    return {
        "object": "balance",
        "available": [
            {"amount": amount, "currency": currency, "source_types": {"card": amount}}
            for currency, amount in amounts.items()
        ],
        "livemode": livemode,
        "pending": [
            {"amount": 0, "currency": currency, "source_types": {"card": 0}} for currency in amounts
        ],
    }


# ---------------------------------------------------------------------------------------------
# Test clocks and events.
# ---------------------------------------------------------------------------------------------


def serialize_test_clock(clock: TestClock) -> dict:
    """A `test_helpers.test_clock`."""
    status_details = {}
    if clock.status == TestClockStatus.ADVANCING and clock.advancing_to is not None:
        status_details = {"advancing": {"target_frozen_time": timestamp(clock.advancing_to)}}
    return {
        "id": clock.id,
        "object": "test_helpers.test_clock",
        "created": timestamp(clock.created),
        "deletes_after": timestamp(clock.deletes_after),
        "frozen_time": timestamp(clock.frozen_time),
        "livemode": clock.livemode,
        "name": blank_to_none(clock.name),
        "status": clock.status,
        "status_details": status_details,
    }


def serialize_event(event: Event) -> dict:
    """An `event`; `account` appears only for a connected account's events (SPEC R-EVT-4)."""
    rendered = {"id": event.id, "object": "event"}
    if event.account.type == AccountType.CONNECTED:
        rendered["account"] = event.account_id
    rendered.update(
        {
            "api_version": event.api_version,
            "created": timestamp(event.created),
            "data": json_copy(event.data),
            "livemode": event.livemode,
            "pending_webhooks": event.pending_webhooks,
            "request": {
                "id": event.request_id,
                "idempotency_key": event.request_idempotency_key,
            },
            "type": event.type,
        }
    )
    return rendered


def serialize_webhook_endpoint(endpoint: WebhookEndpoint) -> dict:
    """A `webhook_endpoint`, without its `secret`: Stripe shows that only at creation."""
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "api_version": blank_to_none(endpoint.api_version),
        "application": None,
        "created": timestamp(endpoint.created),
        "description": blank_to_none(endpoint.description),
        "enabled_events": list(endpoint.enabled_events),
        "livemode": endpoint.livemode,
        "metadata": json_copy(endpoint.metadata),
        "status": endpoint.status,
        "url": endpoint.url,
    }


# ---------------------------------------------------------------------------------------------
# The registry.
# ---------------------------------------------------------------------------------------------

# Keyed by exact class: a new model gets a serializer here on purpose, never by inheritance.
SERIALIZERS: dict[type, Callable[[object], dict]] = {
    Account: serialize_account,
    ApplicationFee: serialize_application_fee,
    BalanceTransaction: serialize_balance_transaction,
    Coupon: serialize_coupon,
    Customer: serialize_customer,
    CustomerBalanceTransaction: serialize_customer_balance_transaction,
    Discount: serialize_discount,
    Event: serialize_event,
    Invoice: serialize_invoice,
    InvoiceItem: serialize_invoiceitem,
    InvoiceLineItem: serialize_invoice_line_item,
    PaymentIntent: serialize_payment_intent,
    PaymentMethod: serialize_payment_method,
    Price: serialize_price,
    Product: serialize_product,
    Subscription: serialize_subscription,
    SubscriptionItem: serialize_subscription_item,
    TestClock: serialize_test_clock,
    Transfer: serialize_transfer,
    WebhookEndpoint: serialize_webhook_endpoint,
}


def serialize(obj) -> dict:
    """`obj` in Stripe's API shape; an unknown class is a programming error."""
    try:
        serializer = SERIALIZERS[type(obj)]
    except KeyError:
        raise ValueError(f"no serializer for {type(obj).__name__!r}") from None
    return serializer(obj)
