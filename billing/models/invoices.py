"""Invoices and their lines."""

from django.db import models
from django.db.models import F, Q

from billing.choices import (
    AutomaticTaxStatus,
    BillingReason,
    CollectionMethod,
    InvoiceStatus,
    LineItemType,
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


class Invoice(ModeScoped):
    """A statement of what a customer owes, collected automatically or sent for payment."""

    OBJECT = "invoice"

    id = id_field("in")
    account = account_indexed_by_meta()
    # Customer and subscription: indexed by Meta's (customer, created) and (subscription, created).
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
        db_index=False,
    )
    status = models.CharField(
        max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT
    )
    billing_reason = models.CharField(max_length=24, choices=BillingReason.choices)
    collection_method = models.CharField(
        max_length=24,
        choices=CollectionMethod.choices,
        default=CollectionMethod.CHARGE_AUTOMATICALLY,
    )
    currency = models.CharField(max_length=3, validators=[validate_currency])
    number = models.CharField(max_length=64, null=True, blank=True)
    description = models.TextField(blank=True)
    due_date = models.DateTimeField(null=True, blank=True)
    auto_advance = models.BooleanField(default=True)
    attempt_count = models.PositiveIntegerField(default=0)
    attempted = models.BooleanField(default=False)
    next_payment_attempt = models.DateTimeField(null=True, blank=True)
    subtotal = models.BigIntegerField(default=0)
    total_discount_amount = models.BigIntegerField(default=0)
    tax = models.BigIntegerField(null=True, blank=True)
    total = models.BigIntegerField(default=0)
    starting_balance = models.BigIntegerField(default=0)
    ending_balance = models.BigIntegerField(null=True, blank=True)
    amount_due = models.BigIntegerField(default=0)
    amount_paid = models.BigIntegerField(default=0)
    amount_remaining = models.BigIntegerField(default=0)
    application_fee_amount = models.BigIntegerField(null=True, blank=True)
    # Stripe's error object: {"type", "code", "message", …} (SPEC R-INV-3).
    last_finalization_error = models.JSONField(null=True, blank=True)
    automatic_tax_enabled = models.BooleanField(default=False)
    automatic_tax_status = models.CharField(
        max_length=32, choices=AutomaticTaxStatus.choices, null=True, blank=True
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    finalized_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    marked_uncollectible_at = models.DateTimeField(null=True, blank=True)
    # When every endpoint subscribed to invoice.created answered 2xx (SPEC R-INV-2).
    webhooks_delivered_at = models.DateTimeField(null=True, blank=True)
    payment_intent = models.ForeignKey(
        "billing.PaymentIntent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_payment_method = optional_payment_method()
    on_behalf_of = optional_account()
    transfer_data_destination = optional_account()
    application = optional_account()
    # A renewal draft held because its `on_behalf_of` account disconnected (SPEC R-CON-7):
    # reconnecting sends it back to automatic collection.
    awaiting_reconnection = models.BooleanField(default=False)
    test_clock = models.ForeignKey(
        "billing.TestClock",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
    )
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["account", "livemode", "status", "created", "id"]),
            models.Index(fields=["customer", "created"]),
            models.Index(fields=["subscription", "created"]),
            index_where_set("default_payment_method", "invoice_default_pm"),
            index_where_set("on_behalf_of", "invoice_on_behalf_of"),
            index_where_set("transfer_data_destination", "invoice_transfer_dest"),
            index_where_set("application", "invoice_application"),
        ]
        constraints = [
            models.CheckConstraint(
                name="invoice_test_clock_test_mode",
                condition=Q(test_clock__isnull=True) | Q(livemode=False),
            ),
            models.CheckConstraint(
                name="invoice_amount_remaining",
                condition=Q(amount_remaining=F("amount_due") - F("amount_paid")),
            ),
            models.CheckConstraint(
                name="invoice_amounts_nonnegative",
                condition=Q(amount_due__gte=0, amount_paid__gte=0, amount_remaining__gte=0),
            ),
            models.CheckConstraint(
                name="invoice_fee_within_total",
                condition=Q(application_fee_amount__isnull=True)
                | Q(application_fee_amount__gte=0, application_fee_amount__lte=F("total")),
            ),
            models.CheckConstraint(
                name="invoice_paid_means_settled",
                condition=~Q(status=InvoiceStatus.PAID) | Q(amount_remaining=0),
            ),
            models.CheckConstraint(
                name="invoice_period_order", condition=Q(period_end__gte=F("period_start"))
            ),
            models.UniqueConstraint(
                fields=["account", "livemode", "number"],
                condition=Q(number__isnull=False),
                name="invoice_number_unique",
            ),
        ]

    def __str__(self):
        return self.number or self.id

    @property
    def paid(self) -> bool:
        return self.status == InvoiceStatus.PAID


class InvoiceLineItem(ModeScoped):
    """One line of an invoice: a subscription item for a period, a proration, or a one-off item."""

    OBJECT = "line_item"

    id = id_field("il")
    # Indexed by Meta's (invoice, created).
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    type = models.CharField(
        max_length=16, choices=LineItemType.choices, default=LineItemType.SUBSCRIPTION
    )
    subscription = models.ForeignKey(
        "billing.Subscription", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subscription_item = models.ForeignKey(
        "billing.SubscriptionItem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    price = models.ForeignKey(
        "billing.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=500, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    quantity = models.PositiveIntegerField(default=1)
    proration = models.BooleanField(default=False)
    discountable = models.BooleanField(default=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    metadata = metadata_field()

    class Meta:
        indexes = [models.Index(fields=["invoice", "created"])]


class InvoiceItem(ModeScoped):
    """A charge waiting for an invoice (`invoice` null) or placed on one: one-off items added to a
    subscription's next invoice, prorations, and the lines of manual invoices."""

    OBJECT = "invoiceitem"

    id = id_field("ii")
    customer = models.ForeignKey(
        "billing.Customer", on_delete=models.CASCADE, related_name="invoice_items"
    )
    subscription = models.ForeignKey(
        "billing.Subscription",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="invoice_items",
    )
    invoice = models.ForeignKey(
        Invoice, null=True, blank=True, on_delete=models.SET_NULL, related_name="invoice_items"
    )
    price = models.ForeignKey(
        "billing.Price", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    description = models.CharField(max_length=500, blank=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    quantity = models.PositiveIntegerField(default=1)
    proration = models.BooleanField(default=False)
    discountable = models.BooleanField(default=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["customer", "invoice", "created"]),
            models.Index(fields=["subscription", "invoice"]),
        ]
