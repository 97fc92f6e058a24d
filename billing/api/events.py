"""/v1/events: retrieve and list, filtered by `type` (with `*` wildcards), `types[]`, `created`,
`delivery_success`."""

from billing.api import lists
from billing.api.base import ApiView, get_or_404, scoped
from billing.api.errors import invalid
from billing.api.params import Array, Boolean, Schema, String
from billing.models import Event

TYPE = String(max_length=100)


def _type_filter(events, pattern: str):
    """`invoice.*` matches every invoice event, as Stripe's `type` filter does."""
    if "*" not in pattern:
        return events.filter(type=pattern)
    if pattern.count("*") > 1 or not pattern.endswith(".*"):
        raise invalid("type", "A wildcard is only allowed at the end, as in invoice.*")
    return events.filter(type__startswith=pattern[:-1])


class EventsView(ApiView):
    """List events, newest first."""

    get_params = Schema(
        {
            **lists.LIST_FIELDS,
            "type": TYPE,
            "types": Array(TYPE, max_items=20),
            "delivery_success": Boolean(),
        }
    )

    def get(self, ctx, params):
        events = scoped(ctx, Event).select_related("account")
        if params.get("type") and params.get("types"):
            raise invalid("types", "You may only specify one of these parameters: type, types.")
        if params.get("type"):
            events = _type_filter(events, params["type"])
        if params.get("types"):
            events = events.filter(type__in=params["types"])
        if params.get("delivery_success") is not None:
            # `pending_webhooks` counts deliveries not yet answered 2xx (pending or failed), as
            # Stripe's does: true lists events every endpoint received, false the others.
            if params["delivery_success"]:
                events = events.filter(pending_webhooks=0)
            else:
                events = events.filter(pending_webhooks__gt=0)
        return lists.page(
            events,
            params,
            url="/v1/events",
            object_label="event",
            cursor_queryset=scoped(ctx, Event),
        )


class EventView(ApiView):
    """Retrieve one event."""

    get_params = Schema()

    def get(self, ctx, params, event_id):
        return get_or_404(
            ctx, Event, event_id, "event", queryset=scoped(ctx, Event).select_related("account")
        )
