"""Events: the history of every change, in Stripe's shape, and the outbox subscribers read."""

from django.db import models

from billing.models.base import BulkJSONField, ModeScoped, account_indexed_by_meta, id_field

API_VERSION = "2025-03-31.basil"


class Event(ModeScoped):
    """One change (SPEC R-EVT-1). `data` holds `object` and, for updates, `previous_attributes`."""

    OBJECT = "event"

    id = id_field("evt")
    account = account_indexed_by_meta()
    type = models.CharField(max_length=100)
    api_version = models.CharField(max_length=32, default=API_VERSION)
    data = BulkJSONField()
    # The object the event is about, for "events of this customer/invoice" lookups.
    # Indexed in Meta: ids are matched whole, so no second, pattern index (`db_index` makes one
    # on PostgreSQL for a text column), for the ten events of every renewal to write.
    object_id = models.CharField(max_length=64)
    customer_id = models.CharField(max_length=64, blank=True)
    # The API request that caused it: Stripe's request.{id, idempotency_key}.
    request_id = models.CharField(max_length=64, null=True, blank=True)
    request_idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    pending_webhooks = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["account", "livemode", "created", "id"]),
            models.Index(fields=["account", "livemode", "type", "created", "id"]),
            models.Index(fields=["object_id"], name="event_object_id"),
            models.Index(fields=["customer_id"], name="event_customer_id"),
        ]

    def __str__(self):
        return f"{self.type} ({self.id})"
