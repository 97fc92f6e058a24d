from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Customer emails, the 30-day email log and hosted customer pages."""

    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"
