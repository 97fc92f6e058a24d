"""Subscriptions and their items."""

from django.db import models
from django.db.models import Q

from billing.choices import (
    CollectionMethod,
    MissingPaymentMethodBehavior,
    PauseCollectionBehavior,
    SubscriptionStatus,
)
from billing.models.base import (
    ModeScoped,
    account_indexed_by_meta,
    id_field,
    index_where_set,
    metadata_field,
    optional_account,
    optional_payment_method,
)
from billing.validators import validate_currency

# Statuses in which a subscription still bills (the engine's renewals look at these).
LIVE_STATUSES = (
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.UNPAID,
    SubscriptionStatus.INCOMPLETE,
)


class Subscription(ModeScoped):
    """A customer's recurring purchase of one or more prices."""

    OBJECT = "subscription"

    id = id_field("sub")
    account = account_indexed_by_meta()
    # Indexed by Meta's (customer, created).
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.PROTECT, related_name="subscriptions", db_index=False
    )
    status = models.CharField(max_length=20, choices=SubscriptionStatus.choices)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    description = models.CharField(max_length=500, blank=True)
    start_date = models.DateTimeField()
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    billing_cycle_anchor = models.DateTimeField()
    trial_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(null=True, blank=True)
    trial_settings_missing_payment_method = models.CharField(
        max_length=16,
        choices=MissingPaymentMethodBehavior.choices,
        default=MissingPaymentMethodBehavior.CREATE_INVOICE,
    )
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Stripe's cancellation_details: {"comment", "feedback", "reason"}.
    cancellation_details = models.JSONField(default=dict, blank=True)
    # pause_collection is not the `paused` status: invoices keep being created (R-SUB-7).
    pause_collection_behavior = models.CharField(
        max_length=20, choices=PauseCollectionBehavior.choices, null=True, blank=True
    )
    pause_collection_resumes_at = models.DateTimeField(null=True, blank=True)
    collection_method = models.CharField(
        max_length=24,
        choices=CollectionMethod.choices,
        default=CollectionMethod.CHARGE_AUTOMATICALLY,
    )
    days_until_due = models.PositiveSmallIntegerField(null=True, blank=True)
    default_payment_method = optional_payment_method()
    default_source = models.CharField(max_length=255, blank=True)
    # Connect (SPEC R-CON-*): the platform's share, where the funds go, who settles.
    application_fee_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    transfer_data_destination = optional_account()
    transfer_data_amount_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    on_behalf_of = optional_account()
    # The platform that created it while acting as this account (R-CON-5); null otherwise.
    application = optional_account()
    latest_invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    test_clock = models.ForeignKey(
        "billing.TestClock",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="subscriptions",
    )
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["account", "livemode", "status", "created", "id"]),
            models.Index(fields=["customer", "created"]),
            index_where_set("default_payment_method", "subscription_default_pm"),
            index_where_set("on_behalf_of", "subscription_on_behalf_of"),
            index_where_set("transfer_data_destination", "subscription_transfer_dest"),
            index_where_set("application", "subscription_application"),
        ]
        constraints = [
            models.CheckConstraint(
                name="subscription_test_clock_test_mode",
                condition=Q(test_clock__isnull=True) | Q(livemode=False),
            ),
            models.CheckConstraint(
                name="subscription_period_order",
                condition=Q(current_period_end__gte=models.F("current_period_start")),
            ),
            models.CheckConstraint(
                name="subscription_trial_order",
                condition=Q(trial_start__isnull=True)
                | Q(trial_end__isnull=True)
                | Q(trial_end__gte=models.F("trial_start")),
            ),
            models.CheckConstraint(
                name="subscription_fee_percent_range",
                condition=Q(application_fee_percent__isnull=True)
                | Q(application_fee_percent__gte=0, application_fee_percent__lte=100),
            ),
            models.CheckConstraint(
                name="subscription_send_invoice_has_days",
                condition=~Q(collection_method=CollectionMethod.SEND_INVOICE)
                | Q(days_until_due__isnull=False),
            ),
        ]

    @property
    def is_trialing(self) -> bool:
        return self.status == SubscriptionStatus.TRIALING


class SubscriptionItem(ModeScoped):
    """One price on a subscription, with its quantity."""

    OBJECT = "subscription_item"

    id = id_field("si")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="items")
    price = models.ForeignKey("billing.Price", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    metadata = metadata_field()

    class Meta:
        indexes = [models.Index(fields=["subscription", "created"])]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "price"], name="subscription_item_price_unique"
            ),
        ]

    @property
    def amount(self) -> int:
        return self.price.unit_amount * self.quantity
