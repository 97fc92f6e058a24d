"""Customers: list and detail."""

from django.db.models import Prefetch, Q

from billing.forms import CustomerFilterForm
from billing.models import Customer, Event, Invoice, Subscription, SubscriptionItem
from billing.views.base import DetailView, ListView
from notifications.views import customer_emails

# Detail pages show the latest few related rows and link to the filtered list for the rest.
RELATED_LIMIT = 10


def items_prefetch():
    """Subscription items with their price and product, in one query per page."""
    return Prefetch(
        "items",
        queryset=SubscriptionItem.objects.select_related("price__product").order_by("created"),
    )


class CustomerListView(ListView):
    """Customers of the account and mode, newest first (deleted ones left out)."""

    model = Customer
    filter_form_class = CustomerFilterForm
    table_template = "dashboard/customers/_table.html"
    title = "Customers"

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class CustomerDetailView(DetailView):
    """A customer with its subscriptions, invoices, cards, balance, metadata and events."""

    model = Customer
    template_name = "dashboard/customers/detail.html"

    def get_queryset(self):
        return super().get_queryset().select_related("test_clock")

    def get_context(self, customer):
        subscriptions = (
            self.scope(Subscription)
            .filter(customer=customer)
            .prefetch_related(items_prefetch())
            .order_by("-created", "-pk")
        )
        invoices = self.scope(Invoice).filter(customer=customer).order_by("-created", "-pk")
        events = (
            self.scope(Event)
            .filter(Q(customer_id=customer.pk) | Q(object_id=customer.pk))
            .order_by("-created", "-pk")
        )
        return {
            "customer": customer,
            "subscriptions": subscriptions[:RELATED_LIMIT],
            "invoices": invoices[:RELATED_LIMIT],
            "payment_methods": customer.payment_methods.filter(
                account=customer.account, livemode=customer.livemode
            ).order_by("-created"),
            "events": events[:RELATED_LIMIT],
            "related_limit": RELATED_LIMIT,
            # The customer's recent emails (SPEC R-MAIL-9), shown by the notifications partial.
            "customer_emails": customer_emails(self.request, customer),
        }
