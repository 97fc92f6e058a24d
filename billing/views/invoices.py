"""Invoices: list and detail."""

from billing.forms import InvoiceFilterForm
from billing.models import Event, Invoice, PaymentIntent
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


class InvoiceDetailView(DetailView):
    """An invoice with its lines, payment attempts, amounts, status history and events."""

    model = Invoice
    template_name = "dashboard/invoices/detail.html"

    def get_queryset(self):
        return super().get_queryset().select_related("customer", "subscription", "test_clock")

    def get_context(self, invoice):
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
        }
