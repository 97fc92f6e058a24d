"""Events: the history of every change, in Stripe's shape, and the outbox subscribers read."""

from django.db import models

from billing.models.base import BulkJSONField, ModeScoped, id_field

API_VERSION = "2025-03-31.basil"


class Event(ModeScoped):
    """One change (SPEC R-EVT-1). `data` holds `object` and, for updates, `previous_attributes`."""

    OBJECT = "event"

    id = id_field("evt")
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=32, default=API_VERSION)
    data = BulkJSONField()
    # The object the event is about, for "events of this customer/invoice" lookups.
    object_id = models.CharField(max_length=64, db_index=True)
    customer_id = models.CharField(max_length=64, blank=True, db_index=True)
    # The API request that caused it: Stripe's request.{id, idempotency_key}.
    request_id = models.CharField(max_length=64, null=True, blank=True)
    request_idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    pending_webhooks = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["account", "livemode", "type", "created", "id"]),
        ]

    def __str__(self):
        return f"{self.type} ({self.id})"
