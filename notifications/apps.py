from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Customer emails, the 30-day email log and hosted customer pages."""

    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Event subscribers and due-job handlers register themselves when their modules load.
        from notifications import subscribers  # noqa: F401
        from notifications.services import emails, sending  # noqa: F401
