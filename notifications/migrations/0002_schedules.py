"""The email log's recurring work, as django-q2 schedules (created or repaired idempotently).

- daily: purge log entries older than 30 days (SPEC R-MAIL-9);
- every 10 minutes: retry, once, sends a dying worker interrupted (notifications.services.sending).
"""

from django.db import migrations

SCHEDULES = {
    "notifications: purge email log": ("notifications.tasks.purge_email_log", "D", None),
    "notifications: recover interrupted sends": (
        "notifications.tasks.recover_stale_emails",
        "I",
        10,
    ),
}


def create_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": schedule_type,
                "minutes": minutes,
                "repeats": -1,
            },
        )


def remove_schedules(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.filter(name__in=SCHEDULES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
