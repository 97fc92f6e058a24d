"""/v1/webhook_endpoints: create (the answer carries the signing `secret`, as in Stripe, and
only that one), retrieve, update, delete and list. Delivering events to them is issue #5.

A platform acting as a connected account (`Stripe-Account`) may list and retrieve the account's
endpoints but not create, update or delete them: an endpoint it made there would keep receiving
the account's events after the account disconnects, when the platform must stop receiving them
(SPEC R-CON-7). Its Connect endpoints (`connect=true`, on the platform) receive them while the
account is connected."""

from billing import services
from billing.api import lists
from billing.api.base import ApiView, checked_metadata, deleted, get_or_404, scoped
from billing.api.errors import invalid
from billing.api.params import Array, Boolean, Metadata, Schema, String
from billing.api.subscriptions import acting_platform
from billing.models import WebhookEndpoint
from billing.serializers import serialize_webhook_endpoint
from billing.services.webhooks import MAX_DESCRIPTION_LENGTH, MAX_URL_LENGTH

EVENTS_PARAM = Array(String(max_length=100), max_items=200)
LABEL = "webhook endpoint"


def _with_secret(endpoint: WebhookEndpoint) -> dict:
    """The endpoint as Stripe answers its creation: with `secret`, just after `metadata`."""
    rendered = serialize_webhook_endpoint(endpoint)
    ordered = {}
    for key, value in rendered.items():
        ordered[key] = value
        if key == "metadata":
            ordered["secret"] = endpoint.secret
    return ordered


def _endpoint_or_404(ctx, endpoint_id: str) -> WebhookEndpoint:
    return get_or_404(ctx, WebhookEndpoint, endpoint_id, LABEL)


def _refuse_acting_platform(ctx, verb: str) -> None:
    """SPEC R-CON-7: a 400 when the request acts as a connected account through its platform."""
    if acting_platform(ctx) is None:
        return
    raise invalid(
        None,
        f"Your platform cannot {verb} a connected account's webhook endpoints: only the account "
        "itself may, with its own API key, since an endpoint your platform set up there would "
        "keep receiving its events after it disconnects. To receive your connected accounts' "
        "events, use a Connect webhook endpoint on your platform (connect=true).",
    )


class WebhookEndpointsView(ApiView):
    """Create and list webhook endpoints."""

    post_params = Schema(
        {
            "url": String(max_length=MAX_URL_LENGTH, required=True),
            "enabled_events": Array(String(max_length=100), max_items=200, required=True),
            "description": String(max_length=MAX_DESCRIPTION_LENGTH),
            "connect": Boolean(),
            "api_version": String(max_length=64),
            "metadata": Metadata(),
            "disabled": Boolean(),
        }
    )
    get_params = Schema(
        {key: field for key, field in lists.LIST_FIELDS.items() if key != "created"}
    )

    def post(self, ctx, params):
        if params.get("metadata"):
            checked_metadata(params["metadata"])
        # `connect` on a connected account is refused to anyone, naming the parameter, by the
        # service; any other endpoint only to the platform acting as the account.
        if not params.get("connect"):
            _refuse_acting_platform(ctx, "create")
        endpoint = services.create_webhook_endpoint(
            ctx.account,
            livemode=ctx.livemode,
            url=params["url"],
            enabled_events=params["enabled_events"],
            description=params.get("description", ""),
            connect=params.get("connect", False),
            api_version=params.get("api_version", ""),
            metadata=params.get("metadata") or None,
            disabled=params.get("disabled", False),
        )
        return _with_secret(endpoint)

    def get(self, ctx, params):
        return lists.page(
            scoped(ctx, WebhookEndpoint),
            params,
            url="/v1/webhook_endpoints",
            object_label=LABEL,
        )


class WebhookEndpointView(ApiView):
    """Retrieve, update and delete one webhook endpoint (never showing its secret again)."""

    get_params = Schema()
    post_params = Schema(
        {
            "url": String(max_length=MAX_URL_LENGTH),
            "enabled_events": EVENTS_PARAM,
            "description": String(max_length=MAX_DESCRIPTION_LENGTH),
            "metadata": Metadata(),
            "disabled": Boolean(),
        }
    )
    delete_params = Schema()

    def get(self, ctx, params, endpoint_id):
        return _endpoint_or_404(ctx, endpoint_id)

    def post(self, ctx, params, endpoint_id):
        endpoint = _endpoint_or_404(ctx, endpoint_id)
        _refuse_acting_platform(ctx, "update")
        return services.update_webhook_endpoint(endpoint, **params)

    def delete(self, ctx, params, endpoint_id):
        endpoint = _endpoint_or_404(ctx, endpoint_id)
        _refuse_acting_platform(ctx, "delete")
        services.delete_webhook_endpoint(endpoint)
        return deleted(endpoint_id, "webhook_endpoint")
