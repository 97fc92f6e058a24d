"""Catalog services: products, prices and coupons.

Validation errors are keyed by Stripe's parameter names (`recurring[interval]`,
`product_data[name]`…) so the API renders them as Stripe does; every verb runs in one
transaction and emits Stripe's `product.*`, `price.*` and `coupon.*` events.
"""

import secrets
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from billing import events
from billing.choices import CouponDuration, Interval, PriceType, UsageType
from billing.ids import ALPHABET
from billing.models import Account, Coupon, Price, Product
from billing.serializers import serialize
from billing.services.accounts import changed_attributes
from billing.validators import validate_currency, validate_metadata

# What each update verb may change; anything else is a programming error, refused loudly.
PRODUCT_UPDATE_FIELDS = frozenset(
    {"name", "description", "active", "metadata", "unit_label", "default_price"}
)
PRICE_UPDATE_FIELDS = frozenset({"active", "nickname", "lookup_key", "metadata"})
COUPON_UPDATE_FIELDS = frozenset({"name", "metadata"})

# Stripe's longest billing interval: one year, however it is counted.
MAX_INTERVAL_COUNT = {Interval.DAY: 365, Interval.WEEK: 52, Interval.MONTH: 12, Interval.YEAR: 1}
# Stripe's largest unit amount (8 digits of the minor unit).
MAX_UNIT_AMOUNT = 99_999_999


def _invalid(param: str, message: str, code: str | None = None) -> ValidationError:
    return ValidationError({param: ValidationError(message, code=code)})


def _metadata(value, param: str = "metadata") -> dict:
    """New metadata: "" and None mean none; empty values are not set (Stripe)."""
    if value in (None, ""):
        return {}
    try:
        validate_metadata(value)
    except ValidationError as error:
        raise _invalid(param, error.messages[0]) from None
    return {key: item for key, item in value.items() if item != ""}


def _merged_metadata(current: dict, update) -> dict:
    """Stripe's metadata update: keys merge, a key set to "" is removed, "" clears all."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise _invalid("metadata", "Invalid hash: metadata must be a hash.")
    merged = dict(current)
    for key, item in update.items():
        if item in ("", None):
            merged.pop(key, None)
        else:
            merged[key] = item
    try:
        validate_metadata(merged)
    except ValidationError as error:
        raise _invalid("metadata", error.messages[0]) from None
    return merged


def _text(value, param: str, max_length: int, *, required: bool = False) -> str:
    value = (value or "").strip() if isinstance(value, str) or value is None else value
    if not isinstance(value, str):
        raise _invalid(param, f"Invalid string: {param} must be a string.")
    if required and not value:
        raise _invalid(param, f"Missing required param: {param}.", "parameter_missing")
    if len(value) > max_length:
        raise _invalid(
            param, f"{param} must be at most {max_length} characters.", "string_too_long"
        )
    return value


def _currency(value, param: str = "currency") -> str:
    value = (value or "").lower()
    if not value:
        raise _invalid(param, f"Missing required param: {param}.", "parameter_missing")
    try:
        validate_currency(value)
    except ValidationError:
        raise _invalid(param, f"Invalid currency: {value[:10]}.") from None
    return value


# ---------------------------------------------------------------------------------------------
# Products.
# ---------------------------------------------------------------------------------------------


def _price_fields(
    *,
    currency,
    unit_amount,
    recurring: dict | None,
    prefix: str = "",
) -> dict:
    """The Price model fields from Stripe's parameters, validated; `prefix` names nested ones
    (`default_price_data[…]`)."""

    def name(param):
        return f"{prefix}[{param}]" if prefix else param

    fields = {"currency": _currency(currency, name("currency"))}
    if unit_amount is None:
        raise _invalid(
            name("unit_amount"),
            f"Missing required param: {name('unit_amount')}.",
            "parameter_missing",
        )
    if (
        isinstance(unit_amount, bool)
        or not isinstance(unit_amount, int)
        or not (0 <= unit_amount <= MAX_UNIT_AMOUNT)
    ):
        raise _invalid(
            name("unit_amount"),
            f"unit_amount must be an integer between 0 and {MAX_UNIT_AMOUNT}.",
            "parameter_invalid_integer",
        )
    fields["unit_amount"] = unit_amount
    if recurring:
        interval = recurring.get("interval")
        if interval not in Interval.values:
            raise _invalid(
                name("recurring[interval]"),
                "Invalid interval: must be one of day, week, month, or year.",
            )
        count = recurring.get("interval_count") or 1
        if not 1 <= count <= MAX_INTERVAL_COUNT[interval]:
            raise _invalid(
                name("recurring[interval_count]"),
                "Maximum interval of 1 year (1 year, 12 months, 52 weeks or 365 days) is allowed.",
            )
        usage_type = recurring.get("usage_type") or UsageType.LICENSED
        if usage_type not in UsageType.values:
            raise _invalid(name("recurring[usage_type]"), "Invalid usage_type.")
        fields.update(
            type=PriceType.RECURRING,
            recurring_interval=interval,
            recurring_interval_count=count,
            recurring_usage_type=usage_type,
        )
    else:
        fields["type"] = PriceType.ONE_TIME
    return fields


@transaction.atomic
def create_product(
    account: Account,
    *,
    livemode: bool,
    name: str,
    description: str = "",
    active: bool = True,
    unit_label: str = "",
    metadata: dict | None = None,
    default_price_data: dict | None = None,
    request_id: str | None = None,
) -> Product:
    """A new product (`product.created`); with `default_price_data`, its default price too
    (`price.created`), as Stripe does."""
    product = Product(
        account=account,
        livemode=bool(livemode),
        name=_text(name, "name", 250, required=True),
        description=_text(description, "description", 40000),
        active=bool(active),
        unit_label=_text(unit_label, "unit_label", 12),
        metadata=_metadata(metadata),
        created=timezone.now(),
    )
    price = None
    if default_price_data:
        price_fields = _price_fields(
            currency=default_price_data.get("currency"),
            unit_amount=default_price_data.get("unit_amount"),
            recurring=default_price_data.get("recurring") or None,
            prefix="default_price_data",
        )
        price_metadata = _metadata(
            default_price_data.get("metadata"), "default_price_data[metadata]"
        )
    product.save(force_insert=True)
    events.emit("product.created", product, request_id=request_id)
    if default_price_data:
        price = Price(
            account=account,
            livemode=product.livemode,
            product=product,
            metadata=price_metadata,
            created=product.created,
            **price_fields,
        )
        price.save(force_insert=True)
        events.emit("price.created", price, request_id=request_id)
        product.default_price = price
        product.save(update_fields=["default_price"])
    return product


@transaction.atomic
def update_product(product: Product, *, request_id: str | None = None, **fields) -> Product:
    """Change some of a product's fields (`product.updated` when anything changed)."""
    unknown = set(fields) - PRODUCT_UPDATE_FIELDS
    if unknown:
        raise ValueError(f"not product fields: {', '.join(sorted(unknown))}")
    locked = Product.objects.select_for_update().get(pk=product.pk)
    before = serialize(locked)
    for field, value in fields.items():
        if field == "name":
            locked.name = _text(value, "name", 250, required=True)
        elif field == "description":
            locked.description = _text(value, "description", 40000)
        elif field == "unit_label":
            locked.unit_label = _text(value, "unit_label", 12)
        elif field == "active":
            locked.active = bool(value)
        elif field == "metadata":
            locked.metadata = _merged_metadata(locked.metadata, value)
        elif field == "default_price":
            price = None
            if value not in (None, ""):
                price = Price.objects.filter(pk=getattr(value, "pk", value), product=locked).first()
                if price is None:
                    raise _invalid(
                        "default_price",
                        f"No such price: '{getattr(value, 'pk', value)}' on this product.",
                        "resource_missing",
                    )
                if not price.active:
                    raise _invalid(
                        "default_price", "The default price must be active.", "price_inactive"
                    )
            locked.default_price = price
    locked.save()
    previous = changed_attributes(before, serialize(locked))
    if previous:
        events.emit("product.updated", locked, previous_attributes=previous, request_id=request_id)
    product.refresh_from_db()
    return product


@transaction.atomic
def delete_product(product: Product, *, request_id: str | None = None) -> None:
    """Delete a product that has no prices (Stripe refuses otherwise); `product.deleted`."""
    locked = Product.objects.select_for_update().get(pk=product.pk)
    if Price.objects.filter(product=locked).exists():
        raise _invalid(
            "id",
            "This product cannot be deleted because it has one or more user-created prices.",
            "product_has_prices",
        )
    events.emit("product.deleted", locked, request_id=request_id)
    locked.delete()


# ---------------------------------------------------------------------------------------------
# Prices.
# ---------------------------------------------------------------------------------------------


def _lookup_key(account, livemode, value, *, exclude=None, transfer: bool) -> str | None:
    """A free lookup key, or with `transfer` one taken from the price that holds it."""
    if value in (None, ""):
        return None
    value = _text(value, "lookup_key", 200)
    holders = Price.objects.select_for_update().filter(
        account=account, livemode=livemode, lookup_key=value
    )
    if exclude is not None:
        holders = holders.exclude(pk=exclude.pk)
    holder = holders.first()
    if holder is not None:
        if not transfer:
            raise _invalid(
                "lookup_key",
                f"A price (`{holder.pk}`) already uses that lookup key.",
                "lookup_key_already_exists",
            )
        holder.lookup_key = None
        holder.save(update_fields=["lookup_key"])
    return value


@transaction.atomic
def create_price(
    account: Account,
    *,
    livemode: bool,
    currency: str,
    unit_amount: int | None,
    product: Product | None = None,
    product_data: dict | None = None,
    recurring: dict | None = None,
    active: bool = True,
    nickname: str = "",
    lookup_key: str | None = None,
    transfer_lookup_key: bool = False,
    metadata: dict | None = None,
    request_id: str | None = None,
) -> Price:
    """A new price of an existing product or of one made from `product_data` (`price.created`,
    and `product.created` for a new product)."""
    livemode = bool(livemode)
    if (product is None) == (not product_data):
        raise _invalid(
            "product",
            "You must specify exactly one of product or product_data.",
            "parameter_missing" if product is None else "parameters_exclusive",
        )
    fields = _price_fields(currency=currency, unit_amount=unit_amount, recurring=recurring)
    nickname = _text(nickname, "nickname", 250)
    clean_metadata = _metadata(metadata)
    if product is not None and (product.account_id != account.id or product.livemode != livemode):
        raise _invalid("product", f"No such product: '{product.pk}'", "resource_missing")
    if product_data:
        product_name = _text(product_data.get("name"), "product_data[name]", 250, required=True)
        product_metadata = _metadata(product_data.get("metadata"), "product_data[metadata]")
    key = _lookup_key(account, livemode, lookup_key, transfer=transfer_lookup_key)
    if product is None:
        product = create_product(
            account,
            livemode=livemode,
            name=product_name,
            active=product_data.get("active", True),
            unit_label=product_data.get("unit_label", ""),
            metadata=product_metadata,
            request_id=request_id,
        )
    price = Price(
        account=account,
        livemode=livemode,
        product=product,
        active=bool(active),
        nickname=nickname,
        lookup_key=key,
        metadata=clean_metadata,
        created=timezone.now(),
        **fields,
    )
    price.save(force_insert=True)
    events.emit("price.created", price, request_id=request_id)
    return price


@transaction.atomic
def update_price(
    price: Price, *, transfer_lookup_key: bool = False, request_id: str | None = None, **fields
) -> Price:
    """Change a price's `active`, `nickname`, `lookup_key` or `metadata` (`price.updated`);
    amounts and intervals never change, as in Stripe."""
    unknown = set(fields) - PRICE_UPDATE_FIELDS
    if unknown:
        raise ValueError(f"not price fields: {', '.join(sorted(unknown))}")
    locked = Price.objects.select_for_update().get(pk=price.pk)
    before = serialize(locked)
    for field, value in fields.items():
        if field == "active":
            locked.active = bool(value)
        elif field == "nickname":
            locked.nickname = _text(value, "nickname", 250)
        elif field == "metadata":
            locked.metadata = _merged_metadata(locked.metadata, value)
        elif field == "lookup_key":
            locked.lookup_key = _lookup_key(
                locked.account,
                locked.livemode,
                value,
                exclude=locked,
                transfer=transfer_lookup_key,
            )
    locked.save()
    previous = changed_attributes(before, serialize(locked))
    if previous:
        events.emit("price.updated", locked, previous_attributes=previous, request_id=request_id)
    price.refresh_from_db()
    return price


# ---------------------------------------------------------------------------------------------
# Coupons.
# ---------------------------------------------------------------------------------------------


def _coupon_code() -> str:
    """Stripe's generated coupon ids: 8 random letters and digits."""
    return "".join(secrets.choice(ALPHABET) for _ in range(8))


@transaction.atomic
def create_coupon(
    account: Account,
    *,
    livemode: bool,
    id: str | None = None,
    percent_off: Decimal | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration: str = CouponDuration.ONCE,
    duration_in_months: int | None = None,
    max_redemptions: int | None = None,
    redeem_by=None,
    name: str = "",
    metadata: dict | None = None,
    request_id: str | None = None,
) -> Coupon:
    """A new coupon: `percent_off` or `amount_off` (with `currency`), for `duration`
    (`coupon.created`)."""
    livemode = bool(livemode)
    if (percent_off is None) == (amount_off is None):
        raise _invalid(
            "percent_off" if percent_off is not None else "amount_off",
            "You must pass exactly one of percent_off or amount_off.",
            "parameters_exclusive" if percent_off is not None else "parameter_missing",
        )
    if percent_off is not None:
        percent_off = Decimal(percent_off)
        if not (0 < percent_off <= 100) or percent_off.as_tuple().exponent < -2:
            raise _invalid("percent_off", "percent_off must be greater than 0 and at most 100.")
        currency = ""
    else:
        if (
            isinstance(amount_off, bool)
            or not isinstance(amount_off, int)
            or not (0 < amount_off <= MAX_UNIT_AMOUNT)
        ):
            raise _invalid(
                "amount_off",
                f"amount_off must be between 1 and {MAX_UNIT_AMOUNT}.",
                "parameter_invalid_integer",
            )
        currency = _currency(currency)
    if duration not in CouponDuration.values:
        raise _invalid("duration", "Invalid duration: must be one of forever, once, or repeating")
    if duration == CouponDuration.REPEATING:
        if not duration_in_months:
            raise _invalid(
                "duration_in_months",
                "Missing required param: duration_in_months.",
                "parameter_missing",
            )
    elif duration_in_months is not None:
        raise _invalid(
            "duration_in_months",
            "duration_in_months can only be set when duration is repeating.",
        )
    now = timezone.now()
    if redeem_by is not None and redeem_by <= now:
        raise _invalid("redeem_by", "redeem_by must be in the future.")
    code = _text(id, "id", 200) if id not in (None, "") else _coupon_code()
    if Coupon.objects.filter(account=account, livemode=livemode, code=code).exists():
        raise _invalid("id", "Coupon already exists.", "resource_already_exists")
    coupon = Coupon(
        account=account,
        livemode=livemode,
        code=code,
        name=_text(name, "name", 40),
        percent_off=percent_off,
        amount_off=amount_off,
        currency=currency,
        duration=duration,
        duration_in_months=duration_in_months,
        max_redemptions=max_redemptions,
        redeem_by=redeem_by,
        metadata=_metadata(metadata),
        created=now,
    )
    coupon.save(force_insert=True)
    events.emit("coupon.created", coupon, request_id=request_id)
    return coupon


@transaction.atomic
def update_coupon(coupon: Coupon, *, request_id: str | None = None, **fields) -> Coupon:
    """Change a coupon's `name` or `metadata` (the rest is fixed, as in Stripe)."""
    unknown = set(fields) - COUPON_UPDATE_FIELDS
    if unknown:
        raise ValueError(f"not coupon fields: {', '.join(sorted(unknown))}")
    locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
    before = serialize(locked)
    if "name" in fields:
        locked.name = _text(fields["name"], "name", 40)
    if "metadata" in fields:
        locked.metadata = _merged_metadata(locked.metadata, fields["metadata"])
    locked.save()
    previous = changed_attributes(before, serialize(locked))
    if previous:
        events.emit("coupon.updated", locked, previous_attributes=previous, request_id=request_id)
    coupon.refresh_from_db()
    return coupon


@transaction.atomic
def delete_coupon(coupon: Coupon, *, request_id: str | None = None) -> None:
    """Delete a coupon nobody uses (`coupon.deleted`).

    Stripe keeps the discounts of a deleted coupon running; here a discount holds its coupon
    row, so a coupon in use cannot be deleted yet (it can be left to expire with `redeem_by`).
    """
    locked = Coupon.objects.select_for_update().get(pk=coupon.pk)
    if locked.discounts.exists():
        raise _invalid(
            "id",
            "This coupon is applied to customers or subscriptions and cannot be deleted.",
            "coupon_in_use",
        )
    events.emit("coupon.deleted", locked, request_id=request_id)
    locked.delete()
