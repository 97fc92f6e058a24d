"""The `invoice.created` hold on renewal invoices (SPEC R-INV-2).

A renewal (subscription-cycle) draft is finalized about an hour after every enabled endpoint
listening to `invoice.created` answered 2xx for that invoice's `invoice.created` event, and
at most 72 hours after its creation whatever happens. With no such endpoint: one hour, as
before. Stripe does the same so that merchants can add items to the draft from the webhook.

`schedule_finalization` asks `finalization_delay` (72 h when someone listens); the delivery
that completes the set calls `delivered`, which brings the finalization forward.
"""

from datetime import timedelta

from billing import timeline
from billing.choices import BillingReason, InvoiceStatus, JobStatus
from billing.models import DueJob, Invoice, WebhookDelivery, WebhookDeliveryStatus
from billing.models.webhooks import WebhookEndpointStatus
from billing.webhooks.routing import listening

HOLD_EVENT = "invoice.created"
MAX_HOLD = timedelta(hours=72)
AFTER_SUCCESS = timedelta(hours=1)
FINALIZE_KIND = "finalize_invoice"


def finalization_delay(invoice: Invoice) -> timedelta | None:
    """72 hours for a renewal invoice whose `invoice.created` some endpoint listens to; None
    (the usual hour) otherwise. Reads the endpoints once per batch."""
    if invoice.billing_reason != BillingReason.SUBSCRIPTION_CYCLE:
        return None
    if listening(invoice.account_id, invoice.livemode, HOLD_EVENT):
        return MAX_HOLD
    return None


def delivered(deliveries: list[WebhookDelivery]) -> None:
    """These `invoice.created` deliveries just succeeded: when every delivery of their event
    to an enabled endpoint has, finalize the invoice an hour after the last success (but not
    before an hour after its creation). Runs in the transaction recording the attempts."""
    for delivery in deliveries:
        event = delivery.event
        waiting = (
            WebhookDelivery.objects.filter(
                event_id=event.pk, endpoint__status=WebhookEndpointStatus.ENABLED
            )
            .exclude(status=WebhookDeliveryStatus.SUCCEEDED)
            .exists()
        )
        if waiting:
            continue
        invoice = Invoice.objects.select_for_update().filter(pk=event.object_id).first()
        if (
            invoice is None
            or invoice.billing_reason != BillingReason.SUBSCRIPTION_CYCLE
            or invoice.status != InvoiceStatus.DRAFT
            or not invoice.auto_advance
        ):
            continue
        job = DueJob.objects.filter(
            kind=FINALIZE_KIND, target_id=invoice.pk, status=JobStatus.PENDING
        ).first()
        at = max(invoice.created + AFTER_SUCCESS, delivery.attempt_at + AFTER_SUCCESS)
        # Only ever earlier: a finalization already brought forward (or moved by a person)
        # is left alone.
        if job is not None and at < job.due_at:
            timeline.schedule(FINALIZE_KIND, invoice, at=at)
