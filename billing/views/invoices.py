"""Invoices: list, detail, and the finance actions on one (SPEC R-INV)."""

from billing.choices import InvoiceStatus, PaymentIntentStatus
from billing.clocks import now_for
from billing.forms import InvoiceFilterForm
from billing.models import Event, Invoice, PaymentIntent
from billing.money import format_amount
from billing.services import invoices as invoicing
from billing.views.actions import (
    Action,
    ObjectActionView,
    actions_by_slug,
    available_actions,
    next_due,
)
from billing.views.base import DetailView, ListView
from billing.views.customers import RELATED_LIMIT


class InvoiceListView(ListView):
    """Invoices, filterable by status and collection method."""

    model = Invoice
    filter_form_class = InvoiceFilterForm
    table_template = "dashboard/invoices/_table.html"
    title = "Invoices"

    def decorate(self, queryset):
        return queryset.select_related("customer")


def status_transitions(invoice) -> list[dict]:
    """The `status_transitions` that happened, in lifecycle order, for the invoice's timeline."""
    steps = [
        ("Created", invoice.created, "draft"),
        ("Finalized", invoice.finalized_at, "open"),
        ("Paid", invoice.paid_at, "paid"),
        ("Voided", invoice.voided_at, "void"),
        ("Marked uncollectible", invoice.marked_uncollectible_at, "uncollectible"),
    ]
    return [{"label": label, "at": at, "status": status} for label, at, status in steps if at]


def _is_open(invoice) -> bool:
    return invoice.status == InvoiceStatus.OPEN


def _open_or_written_off(invoice) -> bool:
    """Still payable, or voidable: a written-off invoice can be collected (its subscription
    stays as it is) until it is voided, as in Stripe."""
    return invoice.status in (InvoiceStatus.OPEN, InvoiceStatus.UNCOLLECTIBLE)


def _amount(invoice) -> str:
    return format_amount(invoice.amount_remaining, invoice.currency)


def _pay(invoice, data):
    # A decline raises CardError; the view shows its message as an error.
    invoice = invoicing.pay_invoice(invoice)
    if invoice.status == InvoiceStatus.PAID:
        return f"Payment succeeded: invoice {invoice.number or invoice.pk} is paid."
    intent = invoice.payment_intent
    if intent is not None and intent.status == PaymentIntentStatus.REQUIRES_ACTION:
        return (
            "warning",
            "The card requires authentication: the customer must confirm this payment.",
        )
    return ("warning", f"The invoice is still {invoice.status}.")


def _void(invoice, data):
    invoicing.void_invoice(invoice)
    return "Invoice voided."


def _mark_uncollectible(invoice, data):
    invoicing.mark_uncollectible(invoice)
    return "Invoice marked uncollectible."


def _finalize(invoice, data):
    invoice = invoicing.finalize_invoice(invoice)
    invoice.refresh_from_db()
    if invoice.status == InvoiceStatus.DRAFT:
        error = invoice.last_finalization_error or {}
        return ("error", f"Finalization failed: {error.get('message', 'unknown error')}")
    if invoice.status == InvoiceStatus.PAID:
        return f"Invoice {invoice.number} finalized and paid."
    if invoice.attempt_count and invoice.payment_intent_id:
        error = invoice.payment_intent.last_payment_error or {}
        if error.get("message"):
            return (
                "warning",
                f"Invoice {invoice.number} finalized; its payment failed: {error['message']}",
            )
    return f"Invoice {invoice.number} finalized: it is {invoice.status}."


INVOICE_ACTIONS = actions_by_slug(
    Action(
        slug="finalize",
        label="Finalize now",
        question="Finalize this draft now?",
        explain=lambda i: (
            "The invoice gets its number and becomes open now instead of at its scheduled time. "
            + (
                "It is charged to the customer's payment method at once."
                if i.collection_method == "charge_automatically" and i.auto_advance
                else "It is then due from the customer."
            )
        ),
        confirm="Finalize invoice",
        run=_finalize,
        available=lambda i: i.status == InvoiceStatus.DRAFT,
    ),
    Action(
        slug="pay",
        label="Retry payment now",
        question="Retry the payment now?",
        explain=lambda i: (
            f"{_amount(i)} is charged now to the customer's default payment method. "
            "If the card is declined, you will see why."
        ),
        confirm="Charge now",
        run=_pay,
        available=_open_or_written_off,
    ),
    Action(
        slug="mark-uncollectible",
        label="Mark uncollectible",
        question="Mark this invoice uncollectible?",
        explain=lambda i: (
            f"The {_amount(i)} still due is treated as bad debt: no more payment attempts. "
            "For a subscription it counts as settled, like a payment."
        ),
        confirm="Mark uncollectible",
        run=_mark_uncollectible,
        available=_is_open,
        danger=True,
    ),
    Action(
        slug="void",
        label="Void invoice",
        question="Void this invoice?",
        explain=lambda i: (
            f"Nothing more is owed on it ({_amount(i)} remaining) and nothing more is collected. "
            "This cannot be undone."
        ),
        confirm="Void invoice",
        run=_void,
        available=_open_or_written_off,
        danger=True,
    ),
)


class InvoiceDetailView(DetailView):
    """An invoice with its lines, payment attempts, amounts, status history, events, next due
    jobs and actions."""

    model = Invoice
    template_name = "dashboard/invoices/detail.html"

    def get_queryset(self):
        return super().get_queryset().select_related("customer", "subscription", "test_clock")

    def get_context(self, invoice):
        now = now_for(invoice)
        return {
            "invoice": invoice,
            "lines": invoice.lines.select_related("price__product").order_by("created", "pk"),
            "payment_intents": self.scope(PaymentIntent)
            .filter(invoice=invoice)
            .select_related("payment_method")
            .order_by("-created", "-pk"),
            "transitions": status_transitions(invoice),
            "events": self.scope(Event)
            .filter(object_id=invoice.pk)
            .order_by("-created", "-pk")[:RELATED_LIMIT],
            "due_jobs": next_due(invoice, now=now),
            "clock_now": now if invoice.test_clock_id else None,
            "actions": available_actions(self.request, INVOICE_ACTIONS, invoice),
        }


class InvoiceActionView(ObjectActionView):
    """Confirm and run one of INVOICE_ACTIONS."""

    model = Invoice
    actions = INVOICE_ACTIONS
    detail_url_name = "dashboard:invoice_detail"
    noun = "invoice"
