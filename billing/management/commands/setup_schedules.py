"""Create (or repair) the recurring django-q2 schedules the product needs. Idempotent."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

# name → (function, minutes between runs). The tick claims due jobs of the timeline; a minute
# is django-q2's finest recurring schedule, so wall-clock work runs at most about a minute late.
SCHEDULES = {
    "billing: run due jobs": ("billing.tasks.tick", 1),
    # Idempotency keys are replayed for 24 hours (Stripe's window); older ones only take space.
    "api: prune idempotency keys": ("billing.api.idempotency.prune", 60),
}


class Command(BaseCommand):
    help = "Create the recurring schedules (due-jobs tick). Safe to run any number of times."

    def handle(self, *args, **options):
        for name, (func, minutes) in SCHEDULES.items():
            _, created = Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"{'created' if created else 'kept'} schedule {name!r} ({func})")
