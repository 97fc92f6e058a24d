"""Payment intents: one attempt to collect an invoice, through the payment gateway."""

from django.db import models
from django.db.models import Q

from billing.choices import PaymentIntentStatus
from billing.models.base import (
    ModeScoped,
    account_indexed_by_meta,
    id_field,
    index_where_set,
    metadata_field,
    optional_account,
)
from billing.validators import validate_currency


class PaymentIntent(ModeScoped):
    """Stripe's PaymentIntent: collects `amount` from a payment method, perhaps after 3-D Secure."""

    OBJECT = "payment_intent"

    id = id_field("pi")
    account = account_indexed_by_meta()
    customer = models.ForeignKey(
        "billing.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payment_intents",
    )
    # Indexed by Meta's (invoice, created).
    invoice = models.ForeignKey(
        "billing.Invoice",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="payment_intents",
        db_index=False,
    )
    amount = models.BigIntegerField()
    amount_received = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, validators=[validate_currency])
    status = models.CharField(
        max_length=32,
        choices=PaymentIntentStatus.choices,
        default=PaymentIntentStatus.REQUIRES_PAYMENT_METHOD,
    )
    payment_method = models.ForeignKey(
        "billing.PaymentMethod", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    description = models.CharField(max_length=1000, blank=True)
    client_secret = models.CharField(max_length=100, editable=False)
    # Stripe's error object for the last failed attempt (code, decline_code, message…).
    last_payment_error = models.JSONField(null=True, blank=True)
    # Stripe's next_action, e.g. {"type": "use_stripe_sdk"} when 3-D Secure is needed.
    next_action = models.JSONField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=32, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    application_fee_amount = models.BigIntegerField(null=True, blank=True)
    on_behalf_of = optional_account()
    transfer_data_destination = optional_account()
    # Stripe's transfer_data.amount: what a destination charge sends on; None = all less fees.
    transfer_data_amount = models.BigIntegerField(null=True, blank=True)
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["invoice", "created"]),
            models.Index(fields=["status", "created"]),
            index_where_set("on_behalf_of", "payment_intent_on_behalf_of"),
            index_where_set("transfer_data_destination", "payment_intent_transfer_dest"),
        ]
        constraints = [
            models.CheckConstraint(
                name="payment_intent_amount_positive", condition=Q(amount__gte=0)
            ),
            models.CheckConstraint(
                name="payment_intent_received_within_amount",
                condition=Q(amount_received__gte=0, amount_received__lte=models.F("amount")),
            ),
        ]

    def ensure_client_secret(self) -> None:
        """Give the intent its secret (bulk inserts skip `save`, so services call this)."""
        if not self.client_secret:
            import secrets

            self.client_secret = f"{self.id}_secret_{secrets.token_urlsafe(18)}"

    def save(self, *args, **kwargs):
        self.ensure_client_secret()
        super().save(*args, **kwargs)
