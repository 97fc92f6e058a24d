"""Secret keys for users: `create_api_key`, and the demo's test key in var/demo-login.txt."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing import demo, services
from billing.models import Account, ApiKey
from billing.models.accounts import hash_api_key
from tests import factories

pytestmark = pytest.mark.django_db


def create_api_key(*args) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_the_key_is_printed_alone_on_the_last_line_and_authenticates(client, account):
    lines = create_api_key("--account", account.id, "--name", "CI")
    raw = lines[-1]
    assert raw.startswith("sk_test_")
    key = ApiKey.objects.get(key_hash=hash_api_key(raw))
    assert (key.account_id, key.livemode, key.name) == (account.id, False, "CI")
    # Only the hash is stored.
    assert not ApiKey.objects.filter(key_hash=raw).exists()
    response = client.get("/v1/customers", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200


def test_an_account_is_found_by_name_and_live_keys_are_live(account):
    raw = create_api_key("--account", "Acme Inc.", "--live")[-1]
    assert raw.startswith("sk_live_")
    assert ApiKey.objects.get(key_hash=hash_api_key(raw)).livemode is True


def test_without_an_account_the_only_platform_is_used_or_created(db):
    raw = create_api_key()[-1]
    created = Account.objects.get()
    assert created.name == "Relance"
    assert ApiKey.objects.get(key_hash=hash_api_key(raw)).account == created
    create_api_key()
    assert Account.objects.count() == 1


def test_unknown_or_ambiguous_accounts_are_errors(account, other_account):
    with pytest.raises(CommandError):
        create_api_key("--account", "acct_nope")
    with pytest.raises(CommandError):
        create_api_key()  # two platform accounts: which one?
    factories.make_account("Acme Inc.")
    with pytest.raises(CommandError):
        create_api_key("--account", "Acme Inc.")


def test_the_demo_keeps_its_test_key_in_the_login_file(account, tmp_path):
    path = tmp_path / "demo-login.txt"
    login = demo.DemoLogin(email="demo@relance.local", password="pw", password_set=True)
    demo.ensure_demo_api_key(account, login, path=path)
    assert login.api_key.startswith("sk_test_") and login.api_key_set
    demo.write_login_file(login, path)
    assert path.read_text().splitlines() == ["demo@relance.local", "pw", login.api_key]

    # A second run reuses the key the file holds…
    again = demo.DemoLogin(email="demo@relance.local", password="pw", password_set=False)
    demo.ensure_demo_api_key(account, again, path=path)
    assert (again.api_key, again.api_key_set) == (login.api_key, False)

    # …until it is revoked.
    services.revoke_api_key(
        ApiKey.objects.get(key_hash=hash_api_key(login.api_key)), at=timezone.now()
    )
    third = demo.DemoLogin(email="demo@relance.local", password="pw", password_set=False)
    demo.ensure_demo_api_key(account, third, path=path)
    assert third.api_key_set and third.api_key != login.api_key
