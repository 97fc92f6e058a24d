from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Accounts, customers, catalog, subscriptions, invoices, payments, events, test clocks."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The `__among` lookup (batches' loaders).
        from billing import lookups  # noqa: F401

        # Due-job handlers register themselves when their service modules load.
        from billing.services import invoices, subscriptions  # noqa: F401
