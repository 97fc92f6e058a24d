"""Webhook endpoints: where an account's events are sent (SPEC R-EVT-2; delivery is issue #5)."""

import secrets

from django.db import models

from billing.choices import WebhookEndpointStatus
from billing.ids import ALPHABET
from billing.models.base import ModeScoped, id_field, metadata_field

SECRET_PREFIX = "whsec_"
SECRET_CHARS = 32


def new_webhook_secret() -> str:
    """A signing secret in Stripe's shape: `whsec_` and 32 random base62 characters."""
    return SECRET_PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(SECRET_CHARS))


class WebhookEndpoint(ModeScoped):
    """A URL that receives the account's events of the types it enables (`*` for all).

    `connect` endpoints receive the events of the account's connected accounts instead of its
    own (R-EVT-4). The secret signs deliveries; the API shows it only when the endpoint is made.
    """

    OBJECT = "webhook_endpoint"

    id = id_field("we")
    url = models.CharField(max_length=2048)
    enabled_events = models.JSONField(default=list)
    secret = models.CharField(max_length=64, default=new_webhook_secret)
    status = models.CharField(
        max_length=20, choices=WebhookEndpointStatus.choices, default=WebhookEndpointStatus.ENABLED
    )
    description = models.TextField(blank=True)
    connect = models.BooleanField(default=False)
    # The API version events are rendered in for this endpoint; blank for the account's.
    api_version = models.CharField(max_length=64, blank=True)
    metadata = metadata_field()

    class Meta:
        indexes = [models.Index(fields=["account", "livemode", "created", "id"])]

    @property
    def enabled(self) -> bool:
        return self.status == WebhookEndpointStatus.ENABLED

    def listens_to(self, event_type: str) -> bool:
        """Whether an event of `event_type` is one this endpoint enabled."""
        return "*" in self.enabled_events or event_type in self.enabled_events
