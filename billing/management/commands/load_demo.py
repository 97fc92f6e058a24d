"""Load the "Northwind Software" demo account, its dashboard login and a test API key.

    python manage.py load_demo [--reset] [--email demo@relance.local]

Running it again changes nothing; `--reset` deletes the demo account and loads it afresh. The
demo's history is made by the billing engine itself, driven through a test clock over the six
months before now (see `billing.demo`), so loading takes a little while.
"""

from django.core.management.base import BaseCommand
from django.utils import timezone

from billing import demo


class Command(BaseCommand):
    help = "Load a believable, deterministic demo account (test and live data) and its login."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo account and all its data, then load it again.",
        )
        parser.add_argument(
            "--email",
            default=demo.DEFAULT_LOGIN_EMAIL,
            help=f"The dashboard login to create (default {demo.DEFAULT_LOGIN_EMAIL}).",
        )

    def handle(self, *args, reset: bool, email: str, **options):
        if reset or demo.find_demo_account() is None:
            self.stdout.write(
                "Loading the demo account: the billing engine plays "
                f"{demo.HISTORY_MONTHS} months of history on a test clock…"
            )
        result, login = demo.run(email=email, reset=reset, now=timezone.now())
        account = result.account
        if not result.loaded:
            self.stdout.write(
                f"Demo data already loaded: {account.name} ({account.id}). Nothing changed; "
                "use --reset to delete and reload it."
            )
        else:
            verb = "Reloaded" if result.deleted else "Loaded"
            self.stdout.write(
                self.style.SUCCESS(
                    f"{verb} demo account {account.name} ({account.id}) in {result.seconds:.1f} s."
                )
            )
            for job in result.failed_jobs:
                error = job.last_error.strip().splitlines()[-1:] or [""]
                self.stderr.write(f"Warning: due job {job} failed: {error[0]}")
            for livemode in (False, True):
                self.stdout.write(f"{'Live' if livemode else 'Test'} mode:")
                for line in demo.describe(demo.summary(account, livemode)):
                    self.stdout.write(f"  {line}")
        if login.password_set or login.api_key_set:
            self.stdout.write(f"New credentials written to {demo.login_file()}")
        self.stdout.write(f"Dashboard login: {login.email} / {login.password}")
        # The /v1 API with the official SDKs: set the base URL to this server (README).
        self.stdout.write(f"API key (test mode): {login.api_key}")
