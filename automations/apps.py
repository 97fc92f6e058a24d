from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    """No-code revenue-recovery flows: trigger, filters, delayed actions."""

    name = "automations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The step job handler and the event subscribers register themselves on import.
        from automations import engine, subscribers  # noqa: F401
