"""The one registry of who reacts to committed events (DESIGN "The flow of a change", step 4).

Webhooks, automations and notifications register a handler per event type (or `*` for all)
with `@subscribe(...)` in a module their AppConfig.ready imports. `billing.tasks.dispatch_event`
calls them after the event's transaction committed. No Django signals: the registry is explicit
and refuses event types the product does not know.
"""

from collections import defaultdict
from collections.abc import Callable

from billing.events import validate_event_type

ALL = "*"

# event type (or ALL) → handlers, in registration order.
_handlers: dict[str, list[Callable]] = defaultdict(list)


def register(event_type: str, handler: Callable) -> Callable:
    """Make `handler(event)` run for every committed event of `event_type` (or `*`)."""
    if event_type != ALL:
        validate_event_type(event_type)
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)
    return handler


def subscribe(event_type: str) -> Callable[[Callable], Callable]:
    """Decorator form of `register`: `@subscribe("invoice.paid")`."""

    def decorator(handler: Callable) -> Callable:
        return register(event_type, handler)

    return decorator


def handlers_for(event_type: str) -> list[Callable]:
    """The handlers for `event_type`: those registered for it, then those for every type."""
    return [*_handlers.get(event_type, ()), *_handlers.get(ALL, ())]
