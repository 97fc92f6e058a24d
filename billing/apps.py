from django.apps import AppConfig


class BillingConfig(AppConfig):
    """Accounts, customers, catalog, subscriptions, invoices, payments, events, test clocks."""

    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"
