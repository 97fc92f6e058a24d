"""Which committed events start or end automation runs (DESIGN "The flow of a change", step 4).

Runs start from committed events through the subscriber registry, except a subscription's
first failed payment, which the billing engine claims synchronously inside its transaction
(so it can leave the default retry out, SPEC R-INV-9); its subscriber here only records the
event on the match, or claims late if the engine did not.
"""

from django.db import transaction

from automations import engine, triggers
from automations.choices import EndReason, Trigger
from automations.models import TriggerMatch
from billing.choices import CollectionMethod
from billing.subscribers import subscribe


@subscribe("customer.created")
def on_customer_created(event):
    engine.claim_from_event(Trigger.CUSTOMER_CREATED, event)


@subscribe("customer.subscription.deleted")
def on_subscription_deleted(event):
    engine.claim_from_event(Trigger.SUBSCRIPTION_CANCELED, event)


@subscribe("invoice.finalized")
def on_invoice_finalized(event):
    engine.claim_from_event(Trigger.INVOICE_FINALIZED, event)
    invoice = event.data.get("object", {})
    if invoice.get("collection_method") == CollectionMethod.SEND_INVOICE and invoice.get(
        "due_date"
    ):
        engine.claim_from_event(Trigger.INVOICE_DUE_DATE_APPROACHING, event)


@subscribe("invoice.overdue")
def on_invoice_overdue(event):
    engine.claim_from_event(Trigger.INVOICE_OVERDUE, event)


@subscribe("invoice.payment_failed")
def on_payment_failed(event):
    """Name the event on the engine's match; without one (the engine did not ask), match now."""
    with transaction.atomic():
        matched = TriggerMatch.objects.filter(
            trigger=Trigger.SUBSCRIPTION_PAYMENT_FAILED, object_id=event.object_id, cause=""
        )
        if matched.filter(event_id="").update(event_id=event.id) or matched.exists():
            return
    engine.claim_from_event(Trigger.SUBSCRIPTION_PAYMENT_FAILED, event)


def _end(event, reason, trigger_list=triggers.INVOICE_RUN_TRIGGERS):
    with transaction.atomic():
        engine.end_runs(event.object_id, trigger_list, reason=reason, now=event.created)


@subscribe("invoice.paid")
def on_invoice_paid(event):
    _end(event, EndReason.INVOICE_PAID)


@subscribe("invoice.voided")
def on_invoice_voided(event):
    _end(event, EndReason.INVOICE_VOIDED)


@subscribe("invoice.updated")
def on_invoice_updated(event):
    """`auto_advance` turned off ends the runs of the triggers that end on it (R-AUTO-2)."""
    previous = event.data.get("previous_attributes") or {}
    if "auto_advance" not in previous or event.data.get("object", {}).get("auto_advance"):
        return
    _end(
        event,
        EndReason.AUTO_ADVANCE_OFF,
        [t for t in triggers.INVOICE_RUN_TRIGGERS if t != Trigger.INVOICE_DUE_DATE_APPROACHING],
    )
