"""/v1/subscriptions: create, retrieve, update, cancel (`DELETE`), resume, list.

Parameters map one to one onto `billing.services` subscription verbs. Stripe parameters the
services do not implement yet are refused naming them (`Unsupported`), never ignored.
"""

from billing import batching, prepared, services
from billing.api import lists
from billing.api.base import (
    ApiView,
    checked_metadata,
    deleted,
    get_or_404,
    lookup_read,
    scoped,
    scoped_lookup,
)
from billing.api.errors import invalid, not_found
from billing.api.params import (
    Array,
    Boolean,
    DecimalNumber,
    Enum,
    Hash,
    Integer,
    Metadata,
    Schema,
    String,
    Timestamp,
    Unsupported,
)
from billing.choices import (
    CollectionMethod,
    MissingPaymentMethodBehavior,
    PaymentBehavior,
    ProrationBehavior,
    SubscriptionStatus,
)
from billing.models import (
    Account,
    Coupon,
    Customer,
    PaymentMethod,
    Price,
    Subscription,
    SubscriptionItem,
)
from billing.services import connect
from billing.services.subscriptions import MAX_TRIAL_DAYS

ID = String(max_length=255)
QUANTITY = Integer(min_value=1, max_value=2**31 - 1)

CREATE_ITEM = Hash(
    {
        "price": String(max_length=255, required=True),
        "quantity": QUANTITY,
        "metadata": Metadata(),
        "price_data": Unsupported("Create the price first and pass its id."),
        "discounts": Unsupported(),
        "tax_rates": Unsupported(),
    },
    blank=False,
)

INVOICE_ITEM = Hash(
    {
        "price": String(max_length=255, required=True),
        "quantity": QUANTITY,
        "price_data": Unsupported("Create the price first and pass its id."),
        "discounts": Unsupported(),
        "tax_rates": Unsupported(),
    },
    blank=False,
)

DISCOUNT = Hash(
    {
        "coupon": String(max_length=200),
        "promotion_code": Unsupported(),
        "discount": Unsupported(),
    },
    blank=False,
)

TRIAL_SETTINGS = Hash(
    {
        "end_behavior": Hash(
            {
                "missing_payment_method": Enum(*MissingPaymentMethodBehavior.values, required=True),
            },
            blank=False,
            required=True,
        )
    },
    blank=False,
)

# Connect (SPEC R-CON-1/2/3/6): validated and stored; the fee and transfer amounts are #8.
PERCENT = DecimalNumber(places=2, min_value=0, max_value=100)
CONNECT_FIELDS = {
    "application_fee_percent": PERCENT,
    "transfer_data": Hash({"destination": String(max_length=255), "amount_percent": PERCENT}),
    "on_behalf_of": String(max_length=255),
}

CANCELLATION_DETAILS = Hash(
    {
        "comment": String(max_length=5000),
        "feedback": Enum(
            "customer_service",
            "low_quality",
            "missing_features",
            "other",
            "switched_service",
            "too_complex",
            "too_expensive",
            "unused",
        ),
    }
)


def connect_options(ctx, params: dict) -> dict:
    """The Connect parameters given, as the subscription services take them ("" unsets)."""
    options = {}
    if "application_fee_percent" in params:
        if (
            params["application_fee_percent"] not in (None, "")
            and ctx.account.platform_id is not None
            and acting_platform(ctx) is None
        ):
            # The platform's fee is the platform's to set (Stripe-Account); the connected
            # account itself may only remove it (SPEC R-CON-7).
            raise invalid(
                "application_fee_percent",
                "Only your platform can set an application_fee_percent (with the "
                "Stripe-Account header); you may only unset it.",
            )
        options["application_fee_percent"] = params["application_fee_percent"]
    if "transfer_data" in params:
        options["transfer_data"] = params["transfer_data"] or None
    if "on_behalf_of" in params:
        options["on_behalf_of"] = params["on_behalf_of"] or None
    return options


def _one_offs(ctx, params: dict) -> list[dict]:
    """`add_invoice_items` with their prices resolved in the caller's scope."""
    one_offs = []
    for index, item in enumerate(params.pop("add_invoice_items", [])):
        param = f"add_invoice_items[{index}]"
        resolved = {"price": _price(ctx, item["price"], f"{param}[price]")}
        if item.get("quantity") is not None:
            resolved["quantity"] = item["quantity"]
        one_offs.append(resolved)
    return one_offs


def acting_platform(ctx) -> Account | None:
    """The platform when the request acts as one of its connected accounts (`Stripe-Account`),
    else None (the account acts for itself)."""
    if ctx.account.pk != ctx.api_key.account_id:
        return ctx.api_key.account
    return None


def check_may_change(ctx, subscription: Subscription) -> None:
    """SPEC R-CON-5: acting as a connected account, a platform may only update, cancel or
    resume the subscriptions it created there (400 otherwise, nothing changed)."""
    connect.check_platform_may_change(subscription, acting_platform(ctx))


LIST_STATUSES = (*SubscriptionStatus.values, "all", "ended")
ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)


def subscriptions_of(ctx):
    """The caller's subscriptions, ready to render without a query per row."""
    return scoped(ctx, Subscription).prefetch_related("items__price__product", "discounts__coupon")


def _subscription_or_404(ctx, subscription_id: str) -> Subscription:
    return get_or_404(ctx, Subscription, subscription_id, "subscription")


# With its product: invoice lines are labelled with the product's name.
_PRICE = scoped_lookup(Price, ("product",))
# A new subscription's customer (`live_customers`), with the card a first invoice is charged
# to by default, and locked: the create locks it anyway (balance, first currency).
_CREATE_CUSTOMER = scoped_lookup(
    Customer, ("invoice_settings_default_payment_method",), for_update=True, deleted_at__isnull=True
)


def _price(ctx, price_id: str, param: str) -> Price:
    return get_or_404(ctx, Price, price_id, "price", param=param, lookup=_PRICE)


def _coupon(ctx, code: str, param: str) -> Coupon:
    coupon = scoped(ctx, Coupon).filter(code=code).first()
    if coupon is None:
        raise not_found("coupon", code, param=param)
    return coupon


def _payment_method(ctx, value: str, param: str) -> PaymentMethod | None:
    """The payment method `value` names, or None for "" (unset)."""
    if not value:
        return None
    return get_or_404(ctx, PaymentMethod, value, "PaymentMethod", param=param)


def _coupon_from(ctx, params: dict) -> Coupon | None:
    """The one coupon given as `coupon` or `discounts[0][coupon]` (the service applies one)."""
    code = params.pop("coupon", "") or None
    discounts = params.pop("discounts", [])
    if discounts and code:
        raise invalid(
            "discounts", "You may only specify one of these parameters: coupon, discounts."
        )
    if len(discounts) > 1:
        raise invalid("discounts", "Relance applies one discount per subscription.")
    if discounts:
        if not discounts[0].get("coupon"):
            raise invalid("discounts[0][coupon]", "Missing required param: discounts[0][coupon].")
        return _coupon(ctx, discounts[0]["coupon"], "discounts[0][coupon]")
    return _coupon(ctx, code, "coupon") if code else None


class SubscriptionsView(ApiView):
    """Create and list subscriptions."""

    post_params = Schema(
        {
            "customer": String(max_length=255, required=True),
            "items": Array(CREATE_ITEM, max_items=20, required=True),
            "trial_end": Timestamp(allow_now=True),
            "trial_period_days": Integer(min_value=0, max_value=MAX_TRIAL_DAYS),
            "billing_cycle_anchor": Timestamp(),
            "trial_settings": TRIAL_SETTINGS,
            "payment_behavior": Enum(*PaymentBehavior.values),
            "collection_method": Enum(*CollectionMethod.values),
            "days_until_due": Integer(min_value=0, max_value=730),
            "default_payment_method": String(max_length=255),
            "add_invoice_items": Array(INVOICE_ITEM, max_items=20),
            "coupon": String(max_length=200),
            "discounts": Array(DISCOUNT, max_items=20),
            "cancel_at_period_end": Boolean(),
            "description": String(max_length=500),
            "metadata": Metadata(),
            **CONNECT_FIELDS,
        }
    )
    get_params = Schema(
        {
            **lists.LIST_FIELDS,
            "customer": ID,
            "price": ID,
            "status": Enum(*LIST_STATUSES),
            "collection_method": Enum(*CollectionMethod.values),
            "test_clock": ID,
        }
    )

    def post(self, ctx, params):
        customer_id = params.pop("customer")
        # What the create reads before it writes goes out in one round trip (PostgreSQL): the
        # customer, its prices, and what the service reads for them; its writes go out in
        # one flush when the block ends (nothing at all if anything raises).
        reads = lookup_read(ctx, _CREATE_CUSTOMER, customer_id)
        if reads:
            for item in params["items"]:
                reads += lookup_read(ctx, _PRICE, item["price"])
            reads += services.create_subscription_reads(ctx.account.pk, ctx.livemode, customer_id)
        with batching.deferred(), prepared.ahead(*reads):
            customer = get_or_404(
                ctx, Customer, customer_id, "customer", param="customer", lookup=_CREATE_CUSTOMER
            )
            batching.register_locked(customer)
            return self._create(ctx, params, customer)

    def _create(self, ctx, params, customer):
        items = []
        for index, item in enumerate(params.pop("items")):
            param = f"items[{index}]"
            resolved = {"price": _price(ctx, item["price"], f"{param}[price]")}
            if item.get("quantity") is not None:
                resolved["quantity"] = item["quantity"]
            if item.get("metadata"):
                resolved["metadata"] = checked_metadata(item["metadata"], f"{param}[metadata]")
            items.append(resolved)
        one_offs = _one_offs(ctx, params)
        options = {
            "items": items,
            "add_invoice_items": one_offs,
            "coupon": _coupon_from(ctx, params),
            "default_payment_method": _payment_method(
                ctx, params.get("default_payment_method", ""), "default_payment_method"
            ),
            "metadata": checked_metadata(params.get("metadata") or {}),
            "description": params.get("description", ""),
            "cancel_at_period_end": bool(params.get("cancel_at_period_end")),
            **connect_options(ctx, params),
        }
        platform = acting_platform(ctx)
        if platform is not None:
            # Created by the platform acting as its connected account (SPEC R-CON-1, R-CON-5).
            options["application"] = platform
        for name in (
            "trial_end",
            "trial_period_days",
            "billing_cycle_anchor",
            "payment_behavior",
            "collection_method",
            "days_until_due",
        ):
            if params.get(name) is not None:
                options[name] = params[name]
        trial_settings = params.get("trial_settings")
        if trial_settings:
            options["missing_payment_method"] = trial_settings["end_behavior"][
                "missing_payment_method"
            ]
        return services.create_subscription(customer, request_id=ctx.request_id, **options)

    def get(self, ctx, params):
        subscriptions = subscriptions_of(ctx)
        status = params.get("status")
        if status == "ended":
            subscriptions = subscriptions.filter(status__in=ENDED)
        elif status and status != "all":
            subscriptions = subscriptions.filter(status=status)
        elif not status:
            # Stripe lists the subscriptions that were not canceled unless asked otherwise.
            subscriptions = subscriptions.exclude(status=SubscriptionStatus.CANCELED)
        if params.get("customer"):
            subscriptions = subscriptions.filter(customer_id=params["customer"])
        if params.get("price"):
            subscriptions = subscriptions.filter(items__price_id=params["price"]).distinct()
        if params.get("collection_method"):
            subscriptions = subscriptions.filter(collection_method=params["collection_method"])
        if params.get("test_clock"):
            subscriptions = subscriptions.filter(test_clock_id=params["test_clock"])
        return lists.page(
            subscriptions,
            params,
            url="/v1/subscriptions",
            object_label="subscription",
            cursor_queryset=scoped(ctx, Subscription),
        )


UPDATE_ITEM = Hash(
    {
        "id": String(max_length=255),
        "price": String(max_length=255),
        "quantity": QUANTITY,
        "deleted": Boolean(),
        "metadata": Metadata(),
        "price_data": Unsupported("Create the price first and pass its id."),
        "clear_usage": Unsupported(),
        "discounts": Unsupported(),
        "tax_rates": Unsupported(),
    },
    blank=False,
)


def _not_on_update(name: str) -> Unsupported:
    return Unsupported(f"The service cannot change {name} after creation yet.")


class SubscriptionView(ApiView):
    """Retrieve, update and cancel (`DELETE`) one subscription."""

    get_params = Schema()
    post_params = Schema(
        {
            "items": Array(UPDATE_ITEM, max_items=20),
            "proration_behavior": Enum(*ProrationBehavior.values),
            "trial_end": Timestamp(allow_now=True),
            "cancel_at_period_end": Boolean(),
            "pause_collection": Hash(
                {
                    "behavior": Enum("keep_as_draft", "mark_uncollectible", "void", required=True),
                    "resumes_at": Timestamp(),
                }
            ),
            "default_payment_method": String(max_length=255),
            "metadata": Metadata(),
            "description": String(max_length=500),
            "collection_method": Enum(*CollectionMethod.values),
            "days_until_due": Integer(min_value=0, max_value=730),
            "cancel_at": Timestamp(),
            "cancellation_details": CANCELLATION_DETAILS,
            "trial_settings": TRIAL_SETTINGS,
            "add_invoice_items": Array(INVOICE_ITEM, max_items=20),
            "coupon": String(max_length=200),
            "discounts": Array(DISCOUNT, max_items=20),
            **CONNECT_FIELDS,
            **{
                name: _not_on_update(name)
                for name in (
                    "billing_cycle_anchor",
                    "payment_behavior",
                    "proration_date",
                    "trial_from_plan",
                )
            },
        }
    )
    delete_params = Schema(
        {
            "cancellation_details": CANCELLATION_DETAILS,
            "invoice_now": Boolean(),
            "prorate": Boolean(),
        }
    )
    # "This subscription is already canceled" is about the object, not a parameter.
    param_aliases = {"subscription": None}

    def get(self, ctx, params, subscription_id):
        return _subscription_or_404(ctx, subscription_id)

    def post(self, ctx, params, subscription_id):
        subscription = _subscription_or_404(ctx, subscription_id)
        check_may_change(ctx, subscription)
        options = {}
        if "items" in params:
            options["items"] = [
                self._item(ctx, item, f"items[{index}]")
                for index, item in enumerate(params["items"])
            ]
        if params.get("proration_behavior"):
            options["proration_behavior"] = params["proration_behavior"]
        if params.get("trial_end") is not None:
            options["trial_end"] = params["trial_end"]
        if "cancel_at_period_end" in params:
            options["cancel_at_period_end"] = params["cancel_at_period_end"]
        if "pause_collection" in params:
            # "" resumes collection (Stripe's way to unset a hash).
            options["pause_collection"] = params["pause_collection"] or None
        if "default_payment_method" in params:
            options["default_payment_method"] = _payment_method(
                ctx, params["default_payment_method"], "default_payment_method"
            )
        if "metadata" in params:
            metadata = params["metadata"]
            if metadata == "":
                # Unset every key, as `metadata=""` does in Stripe.
                metadata = dict.fromkeys(subscription.metadata, "")
            options["metadata"] = metadata
        if "description" in params:
            options["description"] = params["description"]
        if params.get("collection_method"):
            options["collection_method"] = params["collection_method"]
        if "days_until_due" in params:
            options["days_until_due"] = params["days_until_due"]
        if "cancel_at" in params:
            options["cancel_at"] = params["cancel_at"]  # None ("") unsets
        if params.get("cancellation_details"):
            options["cancellation_details"] = params["cancellation_details"]
        if params.get("trial_settings"):
            options["missing_payment_method"] = params["trial_settings"]["end_behavior"][
                "missing_payment_method"
            ]
        if "add_invoice_items" in params:
            options["add_invoice_items"] = _one_offs(ctx, params)
        if "coupon" in params or "discounts" in params:
            # "" (or an empty discounts list) removes the subscription's discount.
            options["coupon"] = _coupon_from(ctx, params)
        options.update(connect_options(ctx, params))
        return services.update_subscription(subscription, request_id=ctx.request_id, **options)

    @staticmethod
    def _item(ctx, item: dict, param: str) -> dict:
        resolved = {}
        if item.get("id"):
            resolved["id"] = item["id"]
        if item.get("deleted"):
            if not item.get("id"):
                raise invalid(f"{param}[id]", f"Missing required param: {param}[id].")
            resolved["deleted"] = True
            return resolved
        if item.get("price"):
            resolved["price"] = _price(ctx, item["price"], f"{param}[price]")
        elif not item.get("id"):
            raise invalid(f"{param}[price]", f"Missing required param: {param}[price].")
        if item.get("quantity") is not None:
            resolved["quantity"] = item["quantity"]
        if "metadata" in item:
            resolved["metadata"] = item["metadata"]
        return resolved

    def delete(self, ctx, params, subscription_id):
        subscription = _subscription_or_404(ctx, subscription_id)
        check_may_change(ctx, subscription)
        details = params.get("cancellation_details") or {}
        return services.cancel_subscription(
            subscription,
            cancellation_details=details,
            prorate=bool(params.get("prorate")),
            invoice_now=bool(params.get("invoice_now")),
            request_id=ctx.request_id,
        )


class SubscriptionResumeView(ApiView):
    """Resume a paused subscription (SPEC R-TRIAL-8)."""

    post_params = Schema(
        {
            "billing_cycle_anchor": Enum("now", "unchanged"),
            "proration_behavior": Unsupported(harmless=("create_prorations",)),
            "proration_date": Unsupported(),
        }
    )
    param_aliases = {"subscription": None}

    def post(self, ctx, params, subscription_id):
        subscription = _subscription_or_404(ctx, subscription_id)
        check_may_change(ctx, subscription)
        return services.resume_subscription(
            subscription,
            billing_cycle_anchor=params.get("billing_cycle_anchor") or "now",
            request_id=ctx.request_id,
        )


# --- subscription items -----------------------------------------------------------------------

PRORATION = Enum(*ProrationBehavior.values)
ITEM_UNSUPPORTED = {
    "price_data": Unsupported("Create the price first and pass its id."),
    "discounts": Unsupported(),
    "tax_rates": Unsupported(),
    "billing_thresholds": Unsupported(),
    "payment_behavior": Unsupported(harmless=("allow_incomplete",)),
    "proration_date": Unsupported(),
}


def _items_of(ctx):
    return scoped(ctx, SubscriptionItem).select_related("price__product", "subscription")


def _item_or_404(ctx, item_id: str) -> SubscriptionItem:
    return get_or_404(ctx, SubscriptionItem, item_id, "subscription_item", queryset=_items_of(ctx))


class SubscriptionItemsView(ApiView):
    """Add an item to a subscription, and list a subscription's items (`subscription` is
    required, as in Stripe). Changes go through the subscription update service: same
    validation, prorations (`proration_behavior`) and `customer.subscription.updated`."""

    post_params = Schema(
        {
            "subscription": String(max_length=255, required=True),
            "price": String(max_length=255, required=True),
            "quantity": QUANTITY,
            "metadata": Metadata(),
            "proration_behavior": PRORATION,
            **ITEM_UNSUPPORTED,
        }
    )
    get_params = Schema(
        {
            **{key: field for key, field in lists.LIST_FIELDS.items() if key != "created"},
            "subscription": String(max_length=255, required=True),
        }
    )
    param_aliases = {"subscription": None}

    def post(self, ctx, params):
        subscription = get_or_404(
            ctx, Subscription, params["subscription"], "subscription", param="subscription"
        )
        check_may_change(ctx, subscription)
        price = _price(ctx, params["price"], "price")
        return services.create_subscription_item(
            subscription,
            price=price,
            quantity=params.get("quantity") or 1,
            metadata=checked_metadata(params.get("metadata") or {}),
            proration_behavior=params.get("proration_behavior")
            or ProrationBehavior.CREATE_PRORATIONS,
            request_id=ctx.request_id,
        )

    def get(self, ctx, params):
        subscription = get_or_404(
            ctx, Subscription, params["subscription"], "subscription", param="subscription"
        )
        items = _items_of(ctx).filter(subscription=subscription)
        return lists.page(
            items,
            params,
            url="/v1/subscription_items",
            object_label="subscription_item",
            cursor_queryset=scoped(ctx, SubscriptionItem).filter(subscription=subscription),
        )


class SubscriptionItemView(ApiView):
    """Retrieve, update (price, quantity, metadata) and delete one subscription item."""

    get_params = Schema()
    post_params = Schema(
        {
            "price": String(max_length=255),
            "quantity": QUANTITY,
            "metadata": Metadata(),
            "proration_behavior": PRORATION,
            "off_session": Unsupported(harmless=("false",)),
            **ITEM_UNSUPPORTED,
        }
    )
    delete_params = Schema(
        {
            "proration_behavior": PRORATION,
            "clear_usage": Unsupported(harmless=("false",)),
            "payment_behavior": ITEM_UNSUPPORTED["payment_behavior"],
            "proration_date": Unsupported(),
        }
    )
    # "A subscription needs at least one item" and "canceled" are about the item's subscription.
    param_aliases = {"subscription": None}

    def get(self, ctx, params, item_id):
        return _item_or_404(ctx, item_id)

    def post(self, ctx, params, item_id):
        item = _item_or_404(ctx, item_id)
        check_may_change(ctx, item.subscription)
        return services.update_subscription_item(
            item,
            price=_price(ctx, params["price"], "price") if params.get("price") else None,
            quantity=params.get("quantity"),
            metadata=params.get("metadata"),
            proration_behavior=params.get("proration_behavior")
            or ProrationBehavior.CREATE_PRORATIONS,
            request_id=ctx.request_id,
        )

    def delete(self, ctx, params, item_id):
        item = _item_or_404(ctx, item_id)
        check_may_change(ctx, item.subscription)
        services.delete_subscription_item(
            item,
            proration_behavior=params.get("proration_behavior")
            or ProrationBehavior.CREATE_PRORATIONS,
            request_id=ctx.request_id,
        )
        return deleted(item.id, "subscription_item")
