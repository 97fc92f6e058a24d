"""What an account sells: products, their prices, and coupons."""

from django.db import models
from django.db.models import Q

from billing.choices import CouponDuration, Interval, PriceType, UsageType
from billing.models.base import ModeScoped, id_field, metadata_field
from billing.validators import validate_currency


class Product(ModeScoped):
    """Something sold, with one or more prices."""

    OBJECT = "product"

    id = id_field("prod")
    name = models.CharField(max_length=250)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    default_price = models.ForeignKey(
        "billing.Price", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    unit_label = models.CharField(max_length=12, blank=True)
    metadata = metadata_field()

    class Meta:
        indexes = [models.Index(fields=["account", "livemode", "created", "id"])]

    def __str__(self):
        return self.name


class Price(ModeScoped):
    """A product's amount and currency: one-off, or recurring every `interval_count` intervals."""

    OBJECT = "price"

    id = id_field("price")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    active = models.BooleanField(default=True)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    unit_amount = models.BigIntegerField()
    type = models.CharField(max_length=16, choices=PriceType.choices, default=PriceType.RECURRING)
    recurring_interval = models.CharField(
        max_length=8, choices=Interval.choices, null=True, blank=True
    )
    recurring_interval_count = models.PositiveSmallIntegerField(null=True, blank=True)
    recurring_usage_type = models.CharField(
        max_length=10, choices=UsageType.choices, null=True, blank=True
    )
    nickname = models.CharField(max_length=250, blank=True)
    lookup_key = models.CharField(max_length=200, null=True, blank=True)
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["product", "active"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="price_unit_amount_nonnegative", condition=Q(unit_amount__gte=0)
            ),
            models.CheckConstraint(
                name="price_recurring_has_interval",
                condition=(
                    Q(
                        type=PriceType.RECURRING,
                        recurring_interval__isnull=False,
                        recurring_interval_count__gte=1,
                        recurring_usage_type__isnull=False,
                    )
                    | Q(
                        type=PriceType.ONE_TIME,
                        recurring_interval__isnull=True,
                        recurring_interval_count__isnull=True,
                        recurring_usage_type__isnull=True,
                    )
                ),
            ),
            models.UniqueConstraint(
                fields=["account", "livemode", "lookup_key"],
                condition=Q(lookup_key__isnull=False),
                name="price_lookup_key_unique",
            ),
        ]

    def __str__(self):
        from billing.money import format_amount

        amount = format_amount(self.unit_amount, self.currency)
        if self.type == PriceType.RECURRING:
            every = self.recurring_interval
            if self.recurring_interval_count != 1:
                every = f"{self.recurring_interval_count} {self.recurring_interval}s"
            return f"{amount} / {every}"
        return amount

    @property
    def is_recurring(self) -> bool:
        return self.type == PriceType.RECURRING


class Coupon(ModeScoped):
    """A discount: a percentage or an amount off, once, for some months, or forever.

    Stripe lets merchants choose coupon ids, so they are unique per account and mode, not
    globally: `code` is the Stripe `id`, and the primary key stays internal.
    """

    OBJECT = "coupon"

    code = models.CharField(max_length=200)
    name = models.CharField(max_length=40, blank=True)
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, validators=[validate_currency])
    duration = models.CharField(max_length=10, choices=CouponDuration.choices)
    duration_in_months = models.PositiveSmallIntegerField(null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    redeem_by = models.DateTimeField(null=True, blank=True)
    valid = models.BooleanField(default=True)
    metadata = metadata_field()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "livemode", "code"], name="coupon_code_unique"
            ),
            models.CheckConstraint(
                name="coupon_percent_or_amount",
                condition=(
                    Q(
                        percent_off__isnull=False,
                        percent_off__gt=0,
                        percent_off__lte=100,
                        amount_off__isnull=True,
                    )
                    | Q(percent_off__isnull=True, amount_off__isnull=False, amount_off__gt=0)
                    & ~Q(currency="")
                ),
            ),
            models.CheckConstraint(
                name="coupon_repeating_has_months",
                condition=(
                    Q(
                        duration=CouponDuration.REPEATING,
                        duration_in_months__isnull=False,
                        duration_in_months__gte=1,
                    )
                    | (~Q(duration=CouponDuration.REPEATING) & Q(duration_in_months__isnull=True))
                ),
            ),
        ]
        indexes = [models.Index(fields=["account", "livemode", "created", "id"])]

    def __str__(self):
        return self.code


class Discount(ModeScoped):
    """A coupon applied to a customer or a subscription, from `start` until `end`."""

    OBJECT = "discount"

    id = id_field("di")
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="discounts")
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.CASCADE, related_name="discounts"
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="discounts",
    )
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["subscription", "start"])]
