"""Subscriptions: list and detail."""

from billing.forms import SubscriptionFilterForm
from billing.models import Event, Invoice, Subscription
from billing.views.base import DetailView, ListView
from billing.views.customers import RELATED_LIMIT, items_prefetch


class SubscriptionListView(ListView):
    """Subscriptions with their customer and plan, filterable by status."""

    model = Subscription
    filter_form_class = SubscriptionFilterForm
    table_template = "dashboard/subscriptions/_table.html"
    title = "Subscriptions"

    def decorate(self, queryset):
        return queryset.select_related("customer").prefetch_related(items_prefetch())


class SubscriptionDetailView(DetailView):
    """A subscription with its items, invoices and events."""

    model = Subscription
    template_name = "dashboard/subscriptions/detail.html"

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .select_related("customer", "default_payment_method", "latest_invoice", "test_clock")
            .prefetch_related(items_prefetch())
        )

    def get_context(self, subscription):
        invoices = self.scope(Invoice).filter(subscription=subscription).order_by("-created", "-pk")
        events = self.scope(Event).filter(object_id=subscription.pk).order_by("-created", "-pk")
        return {
            "subscription": subscription,
            "invoices": invoices[:RELATED_LIMIT],
            "events": events[:RELATED_LIMIT],
            "related_limit": RELATED_LIMIT,
        }
