"""The triggers of SPEC R-AUTO-2: what object each is about, when it applies, when its runs
end, and where its steps' times count from."""

from collections.abc import Callable
from dataclasses import dataclass

from automations.choices import EndReason, Trigger
from billing.choices import (
    BillingReason,
    CollectionMethod,
    InvoiceStatus,
    SubscriptionStatus,
)
from billing.models import Customer, Invoice, Subscription


def _is_send_invoice_with_due_date(invoice: Invoice) -> bool:
    return (
        invoice.collection_method == CollectionMethod.SEND_INVOICE and invoice.due_date is not None
    )


def _is_send_invoice(invoice: Invoice) -> bool:
    return invoice.collection_method == CollectionMethod.SEND_INVOICE


def _first_failure_of_a_subscription_invoice(invoice: Invoice) -> bool:
    """The first failed attempt of an invoice the subscription collects automatically. The
    first invoice of an `incomplete` subscription is not retried (it expires, R-SUB-2), so no
    automation takes it."""
    if not invoice.subscription_id or invoice.attempt_count != 1 or not invoice.auto_advance:
        return False
    if invoice.collection_method != CollectionMethod.CHARGE_AUTOMATICALLY:
        return False
    return not (
        invoice.billing_reason == BillingReason.SUBSCRIPTION_CREATE
        and invoice.subscription.status == SubscriptionStatus.INCOMPLETE
    )


def _ended_paid_or_voided(invoice: Invoice) -> str | None:
    if invoice.status == InvoiceStatus.PAID:
        return EndReason.INVOICE_PAID
    if invoice.status == InvoiceStatus.VOID:
        return EndReason.INVOICE_VOIDED
    return None


def _ended_paid_voided_or_manual(invoice: Invoice) -> str | None:
    reason = _ended_paid_or_voided(invoice)
    if reason is None and not invoice.auto_advance:
        return EndReason.AUTO_ADVANCE_OFF
    return reason


def _never(obj) -> str | None:
    return None


@dataclass(frozen=True)
class TriggerType:
    """One trigger: its object's model, whether an object qualifies, and its end condition."""

    trigger: str
    model: type
    applies: Callable[[object], bool]
    # The reason the run is over, read from the object's current state; None while it goes on.
    ended: Callable[[object], str | None] = _never
    # Steps count their delays from the invoice's due date instead of the trigger's time.
    from_due_date: bool = False


REGISTRY: dict[str, TriggerType] = {
    spec.trigger: spec
    for spec in (
        TriggerType(
            Trigger.INVOICE_DUE_DATE_APPROACHING,
            Invoice,
            _is_send_invoice_with_due_date,
            _ended_paid_or_voided,
            from_due_date=True,
        ),
        TriggerType(
            Trigger.INVOICE_FINALIZED, Invoice, lambda i: True, _ended_paid_voided_or_manual
        ),
        TriggerType(
            Trigger.INVOICE_OVERDUE, Invoice, _is_send_invoice, _ended_paid_voided_or_manual
        ),
        TriggerType(
            Trigger.SUBSCRIPTION_PAYMENT_FAILED,
            Invoice,
            _first_failure_of_a_subscription_invoice,
            _ended_paid_voided_or_manual,
        ),
        TriggerType(Trigger.SUBSCRIPTION_CANCELED, Subscription, lambda s: True),
        TriggerType(Trigger.CUSTOMER_CREATED, Customer, lambda c: c.deleted_at is None),
    )
}

# The triggers whose runs end when their invoice is paid, voided or stops collecting.
INVOICE_RUN_TRIGGERS = tuple(t for t, spec in REGISTRY.items() if spec.model is Invoice)


def get(trigger) -> TriggerType:
    """The trigger type of `trigger`; an unknown trigger is a programming or data error."""
    try:
        return REGISTRY[trigger]
    except (KeyError, TypeError):
        raise ValueError(f"unknown trigger {trigger!r}") from None


def load(trigger: str, object_id: str, *, lock: bool = False):
    """The triggering object, fresh from the database (None if it is gone)."""
    model = get(trigger).model
    queryset = model.objects.all()
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    if model is not Customer:
        queryset = queryset.select_related("customer")
    return queryset.filter(pk=object_id).first()
