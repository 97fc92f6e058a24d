"""Create a secret key for the /v1 API and print it once.

    python manage.py create_api_key [--account ACCOUNT] [--live] [--name NAME]

ACCOUNT is an account id (`acct_…`) or an exact account name. Without it, the only platform
account is used, created ("Relance") when there is none yet. The key is printed alone on the
last line of the output, so scripts can take it with `tail -n 1`; only its hash is stored.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing import services
from billing.choices import AccountType
from billing.models import Account

DEFAULT_ACCOUNT_NAME = "Relance"


def find_account(value: str | None) -> Account:
    """The account `value` names (id or exact name), or the default platform account."""
    if value:
        account = Account.objects.filter(pk=value).first()
        if account is not None:
            return account
        named = list(Account.objects.filter(name=value)[:2])
        if len(named) == 1:
            return named[0]
        if named:
            raise CommandError(f"Several accounts are named {value!r}: pass the account id.")
        raise CommandError(f"No account with id or name {value!r}.")
    platforms = list(Account.objects.filter(type=AccountType.PLATFORM).order_by("created")[:2])
    if len(platforms) > 1:
        raise CommandError("There are several platform accounts: pass --account ID_OR_NAME.")
    if platforms:
        return platforms[0]
    return Account.objects.create(name=DEFAULT_ACCOUNT_NAME)


class Command(BaseCommand):
    help = "Create a secret API key (test mode unless --live) and print it once."

    def add_arguments(self, parser):
        parser.add_argument("--account", help="Account id (acct_…) or exact name.")
        parser.add_argument("--live", action="store_true", help="A live-mode key (sk_live_…).")
        parser.add_argument("--name", default="", help="A label shown on the API keys page.")

    def handle(self, *args, account: str | None, live: bool, name: str, **options):
        with transaction.atomic():
            found = find_account(account)
            key, raw = services.issue_api_key(
                found, livemode=live, name=name or "Created from the command line"
            )
        mode = "live" if live else "test"
        self.stdout.write(
            f"Created a {mode}-mode key {key.redacted} for {found.name} ({found.id})."
        )
        self.stdout.write("It is shown only now; store it somewhere safe.")
        self.stdout.write(raw)
