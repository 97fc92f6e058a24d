"""/v1/products, /v1/prices and /v1/coupons."""

from billing import services
from billing.api import lists
from billing.api.base import ApiView, deleted, get_or_404, scoped
from billing.api.errors import not_found
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
)
from billing.models import Coupon, Price, Product
from billing.services.catalog import MAX_UNIT_AMOUNT

UNIT_AMOUNT = Integer(min_value=0, max_value=MAX_UNIT_AMOUNT)
RECURRING = Hash(
    {
        "interval": Enum("day", "week", "month", "year", required=True),
        "interval_count": Integer(min_value=1, max_value=365),
        "usage_type": Enum("licensed", "metered"),
    },
    blank=False,
)


def _unset_blank(params: dict, *names: str) -> dict:
    """Drop parameters sent empty where empty means "the default" at creation."""
    for name in names:
        if params.get(name) in ("", None):
            params.pop(name, None)
    return params


# ---------------------------------------------------------------------------------------------
# Products.
# ---------------------------------------------------------------------------------------------

PRODUCT_FIELDS = {
    "name": String(max_length=250),
    "active": Boolean(),
    "description": String(max_length=40000),
    "metadata": Metadata(),
    "unit_label": String(max_length=12),
}


class ProductsView(ApiView):
    """Create and list products."""

    post_params = Schema(
        {
            **PRODUCT_FIELDS,
            "name": String(max_length=250, required=True),
            "default_price_data": Hash(
                {
                    "currency": String(max_length=3, required=True),
                    "unit_amount": UNIT_AMOUNT,
                    "recurring": RECURRING,
                    "metadata": Metadata(),
                },
                blank=False,
            ),
        }
    )
    get_params = Schema(
        {**lists.LIST_FIELDS, "active": Boolean(), "ids": Array(String(max_length=255))}
    )

    def post(self, ctx, params):
        _unset_blank(params, "description", "unit_label", "metadata")
        return services.create_product(
            ctx.account, livemode=ctx.livemode, request_id=ctx.request_id, **params
        )

    def get(self, ctx, params):
        products = scoped(ctx, Product)
        if "active" in params:
            products = products.filter(active=params["active"])
        if params.get("ids"):
            products = products.filter(pk__in=params["ids"])
        return lists.page(
            products,
            params,
            url="/v1/products",
            object_label="product",
            cursor_queryset=scoped(ctx, Product),
        )


class ProductView(ApiView):
    """Retrieve, update and delete one product."""

    get_params = Schema()
    post_params = Schema({**PRODUCT_FIELDS, "default_price": String(max_length=255)})
    delete_params = Schema()

    def get(self, ctx, params, product_id):
        return get_or_404(ctx, Product, product_id, "product")

    def post(self, ctx, params, product_id):
        product = get_or_404(ctx, Product, product_id, "product")
        return services.update_product(product, request_id=ctx.request_id, **params)

    def delete(self, ctx, params, product_id):
        product = get_or_404(ctx, Product, product_id, "product")
        services.delete_product(product, request_id=ctx.request_id)
        return deleted(product_id, "product")


# ---------------------------------------------------------------------------------------------
# Prices.
# ---------------------------------------------------------------------------------------------


class PricesView(ApiView):
    """Create and list prices."""

    post_params = Schema(
        {
            "currency": String(max_length=3, required=True),
            "unit_amount": UNIT_AMOUNT,
            "product": String(max_length=255),
            "product_data": Hash(
                {
                    "name": String(max_length=250, required=True),
                    "active": Boolean(),
                    "metadata": Metadata(),
                    "unit_label": String(max_length=12),
                },
                blank=False,
            ),
            "recurring": RECURRING,
            "active": Boolean(),
            "nickname": String(max_length=250),
            "lookup_key": String(max_length=200),
            "transfer_lookup_key": Boolean(),
            "metadata": Metadata(),
        }
    )
    get_params = Schema(
        {
            **lists.LIST_FIELDS,
            "active": Boolean(),
            "currency": String(max_length=3),
            "product": String(max_length=255),
            "type": Enum("one_time", "recurring"),
            "lookup_keys": Array(String(max_length=200), max_items=10),
            # Stripe's list filter: only recurring prices, of this interval or usage type.
            "recurring": Hash(
                {
                    "interval": Enum("day", "week", "month", "year"),
                    "usage_type": Enum("licensed", "metered"),
                },
                blank=False,
            ),
        }
    )

    def post(self, ctx, params):
        _unset_blank(params, "nickname", "metadata", "lookup_key", "product")
        if "product" in params:
            params["product"] = get_or_404(
                ctx, Product, params["product"], "product", param="product"
            )
        if "unit_amount" not in params:
            # Relance has no tiers or custom amounts: every price has a unit amount.
            params["unit_amount"] = None
        return services.create_price(
            ctx.account, livemode=ctx.livemode, request_id=ctx.request_id, **params
        )

    def get(self, ctx, params):
        prices = scoped(ctx, Price)
        if "active" in params:
            prices = prices.filter(active=params["active"])
        if params.get("currency"):
            prices = prices.filter(currency=params["currency"].lower())
        if params.get("product"):
            prices = prices.filter(product_id=params["product"])
        if params.get("type"):
            prices = prices.filter(type=params["type"])
        if params.get("lookup_keys"):
            prices = prices.filter(lookup_key__in=params["lookup_keys"])
        if "recurring" in params:
            recurring = params["recurring"]
            prices = prices.filter(type="recurring")
            if recurring.get("interval"):
                prices = prices.filter(recurring_interval=recurring["interval"])
            if recurring.get("usage_type"):
                prices = prices.filter(recurring_usage_type=recurring["usage_type"])
        return lists.page(
            prices,
            params,
            url="/v1/prices",
            object_label="price",
            cursor_queryset=scoped(ctx, Price),
        )


class PriceView(ApiView):
    """Retrieve and update one price (prices cannot be deleted, as in Stripe)."""

    get_params = Schema()
    post_params = Schema(
        {
            "active": Boolean(),
            "nickname": String(max_length=250),
            "lookup_key": String(max_length=200),
            "transfer_lookup_key": Boolean(),
            "metadata": Metadata(),
        }
    )

    def get(self, ctx, params, price_id):
        return get_or_404(ctx, Price, price_id, "price")

    def post(self, ctx, params, price_id):
        price = get_or_404(ctx, Price, price_id, "price")
        return services.update_price(price, request_id=ctx.request_id, **params)


# ---------------------------------------------------------------------------------------------
# Coupons: their Stripe id is the merchant's code, unique per account and mode.
# ---------------------------------------------------------------------------------------------


def _coupon_or_404(ctx, code: str) -> Coupon:
    coupon = scoped(ctx, Coupon).filter(code=code).first() if "\x00" not in code else None
    if coupon is None:
        raise not_found("coupon", code)
    return coupon


class CouponsView(ApiView):
    """Create and list coupons."""

    post_params = Schema(
        {
            "id": String(max_length=200),
            "percent_off": DecimalNumber(places=2),
            "amount_off": Integer(min_value=1, max_value=MAX_UNIT_AMOUNT),
            "currency": String(max_length=3),
            "duration": Enum("forever", "once", "repeating"),
            "duration_in_months": Integer(min_value=1, max_value=1200),
            "max_redemptions": Integer(min_value=1, max_value=2**31 - 1),
            "redeem_by": Timestamp(),
            "name": String(max_length=40),
            "metadata": Metadata(),
        }
    )
    get_params = Schema(lists.LIST_FIELDS)

    def post(self, ctx, params):
        _unset_blank(params, "id", "name", "metadata", "currency", "duration")
        return services.create_coupon(
            ctx.account, livemode=ctx.livemode, request_id=ctx.request_id, **params
        )

    def get(self, ctx, params):
        coupons = scoped(ctx, Coupon)
        return lists.page(
            coupons,
            params,
            url="/v1/coupons",
            object_label="coupon",
            cursor_queryset=coupons,
            cursor_to_pk=lambda code: (
                coupons.filter(code=code).values_list("pk", flat=True).first()
            ),
        )


class CouponView(ApiView):
    """Retrieve, update and delete one coupon."""

    get_params = Schema()
    post_params = Schema({"name": String(max_length=40), "metadata": Metadata()})
    delete_params = Schema()

    def get(self, ctx, params, coupon_id):
        return _coupon_or_404(ctx, coupon_id)

    def post(self, ctx, params, coupon_id):
        coupon = _coupon_or_404(ctx, coupon_id)
        return services.update_coupon(coupon, request_id=ctx.request_id, **params)

    def delete(self, ctx, params, coupon_id):
        coupon = _coupon_or_404(ctx, coupon_id)
        services.delete_coupon(coupon, request_id=ctx.request_id)
        return deleted(coupon_id, "coupon")
