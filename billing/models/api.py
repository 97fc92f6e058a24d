"""What the /v1 API itself keeps: idempotency keys and the responses they replay."""

from django.db import models
from django.utils.timezone import now


class IdempotencyKey(models.Model):
    """A POST's `Idempotency-Key`, in progress or with its response, replayed for 24 hours.

    Scoped to the account the request acted as and its mode, as Stripe scopes keys. A row with
    no `status_code` is a request still running: a duplicate gets 409 until it finishes.
    """

    account = models.ForeignKey("billing.Account", on_delete=models.CASCADE, related_name="+")
    livemode = models.BooleanField(default=False)
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.TextField()
    # sha256 of the method, path and decoded parameters: a reuse with other ones is refused.
    fingerprint = models.CharField(max_length=64)
    request_id = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "livemode", "key"], name="idempotency_key_unique"
            ),
        ]
        # Pruning deletes by age.
        indexes = [models.Index(fields=["created"], name="idempotency_key_created")]

    def __str__(self):
        return f"{self.key} ({self.method} {self.path})"

    @property
    def in_progress(self) -> bool:
        return self.status_code is None
