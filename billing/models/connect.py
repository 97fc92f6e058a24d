"""Money between accounts (SPEC R-CON-2/3/4): each account's balance ledger, the transfers of
destination charges and the platform fees taken from connected accounts."""

from django.db import models
from django.db.models import F, Q

from billing.choices import LedgerEntryType
from billing.models.base import ModeScoped, account_indexed_by_meta, id_field, metadata_field
from billing.validators import validate_currency


class BalanceTransaction(ModeScoped):
    """Stripe's `balance_transaction`: one movement of an account's balance.

    `account` is whose balance moved; `net` = `amount` - `fee` is what the balance changed by,
    so an account's balance is the sum of its `net` per currency. Funds are available at once
    (there are no payouts or settlement delays to model).
    """

    OBJECT = "balance_transaction"

    id = id_field("txn")
    account = account_indexed_by_meta()
    type = models.CharField(max_length=24, choices=LedgerEntryType.choices)
    amount = models.BigIntegerField()
    fee = models.BigIntegerField(default=0)
    net = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    description = models.CharField(max_length=500, blank=True)
    # The id of what moved the money: a payment intent, transfer, application fee or the
    # destination's payment (`py_…`).
    source = models.CharField(max_length=40)

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["account", "livemode", "currency"]),
            models.Index(fields=["source"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="balance_transaction_net", condition=Q(net=F("amount") - F("fee"))
            ),
            # A payment is settled once: one charge per payment intent.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(type=LedgerEntryType.CHARGE),
                name="balance_transaction_one_charge_per_payment",
            ),
        ]


class Transfer(ModeScoped):
    """Stripe's `transfer`: funds a destination charge sends on to its connected account.

    `account` is the platform that sends it; `destination_payment` is the `py_…` id of the
    payment the destination's balance received.
    """

    OBJECT = "transfer"

    id = id_field("tr")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    destination = models.ForeignKey(
        "billing.Account", on_delete=models.PROTECT, related_name="transfers_received"
    )
    destination_payment = models.CharField(max_length=40)
    description = models.CharField(max_length=500, blank=True)
    payment_intent = models.ForeignKey(
        "billing.PaymentIntent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    transfer_group = models.CharField(max_length=64, blank=True)
    balance_transaction = models.ForeignKey(
        BalanceTransaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    metadata = metadata_field()

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["destination", "livemode", "created", "id"]),
        ]
        constraints = [
            models.CheckConstraint(name="transfer_amount_nonnegative", condition=Q(amount__gte=0)),
            # One transfer per collected payment: a payment settled twice would send twice.
            models.UniqueConstraint(
                fields=["payment_intent"],
                condition=Q(payment_intent__isnull=False),
                name="transfer_one_per_payment",
            ),
        ]


class ApplicationFee(ModeScoped):
    """Stripe's `application_fee`: the platform's share of a payment (SPEC R-CON-3/4).

    `account` is the platform that collected it (whose list it is in); `connected_account` is
    the account it was taken from, rendered as Stripe's `account`.
    """

    OBJECT = "application_fee"

    id = id_field("fee")
    connected_account = models.ForeignKey(
        "billing.Account", on_delete=models.PROTECT, related_name="application_fees_paid"
    )
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, validators=[validate_currency])
    payment_intent = models.ForeignKey(
        "billing.PaymentIntent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    invoice = models.ForeignKey(
        "billing.Invoice", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    balance_transaction = models.ForeignKey(
        BalanceTransaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["connected_account", "livemode", "created", "id"]),
        ]
        constraints = [
            models.CheckConstraint(
                name="application_fee_amount_positive", condition=Q(amount__gt=0)
            ),
            models.UniqueConstraint(
                fields=["payment_intent"],
                condition=Q(payment_intent__isnull=False),
                name="application_fee_one_per_payment",
            ),
        ]
