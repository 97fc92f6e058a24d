"""Events: list (filter by type, object and date) and detail (the event's JSON)."""

import json

from billing.forms import EVENT_TYPES, EventFilterForm
from billing.models import Event
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
    """One event and its JSON."""

    model = Event
    template_name = "dashboard/events/detail.html"

    def get_context(self, event):
        return {
            "event": event,
            "data_json": json.dumps(event.data, indent=2, ensure_ascii=False),
            "data_object": (event.data or {}).get("object") or {},
            "previous_attributes": (event.data or {}).get("previous_attributes"),
        }
