"""Events: list (filter by type, object and date) and detail (the event's JSON)."""

import json

from billing.forms import EVENT_TYPES, EventFilterForm
from billing.models import Event, WebhookDelivery
from billing.views.base import DetailView, ListView


class EventListView(ListView):
    """Events, filterable by type (or `family.*`) and object."""

    model = Event
    filter_form_class = EventFilterForm
    table_template = "dashboard/events/_table.html"
    title = "Events"

    def get_queryset(self):
        # The list never shows `data`; leaving it out keeps pages of big events light.
        return super().get_queryset().defer("data")

    def get_context(self):
        return {"event_types": EVENT_TYPES}


class EventDetailView(DetailView):
    """One event, its JSON, and its deliveries to this account's webhook endpoints."""

    model = Event
    template_name = "dashboard/events/detail.html"

    def get_context(self, event):
        return {
            "event": event,
            "data_json": json.dumps(event.data, indent=2, ensure_ascii=False),
            "data_object": (event.data or {}).get("object") or {},
            "previous_attributes": (event.data or {}).get("previous_attributes"),
            # Deliveries to this account's endpoints only: a connected account's event also
            # goes to its platform's Connect endpoints, which are not this account's to see.
            "deliveries": WebhookDelivery.objects.filter(event=event, account=self.request.account)
            .select_related("endpoint")
            .order_by("created", "pk"),
        }
