"""Settings page: owners edit the account, rates and API keys; other roles only look."""

import html
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.choices import Role
from billing.models import Account, ApiKey, Event, ExchangeRate
from billing.models.accounts import hash_api_key
from tests import factories


def settings_data(**overrides):
    data = {
        "name": "Acme Inc.",
        "default_currency": "usd",
        "timezone": "UTC",
        "branding_display_name": "",
        "branding_logo_url": "",
        "branding_primary_color": "#4f46e5",
        "invoice_numbering": "customer",
    }
    data.update(overrides)
    return data


def snapshot(account):
    account.refresh_from_db()
    return {f.attname: getattr(account, f.attname) for f in Account._meta.concrete_fields}


# -- Account settings ------------------------------------------------------------------------


def test_owner_updates_the_account_settings(member_client, account):
    response = member_client.post(
        reverse("dashboard:settings_update"),
        settings_data(
            name="Acme Europe",
            default_currency="EUR",
            timezone="Europe/Paris",
            branding_display_name="Acme",
            branding_logo_url="https://acme.test/logo.png",
            branding_primary_color="#112233",
        ),
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Acme Europe"
    assert account.default_currency == "eur"
    assert account.timezone == "Europe/Paris"
    assert account.display_name == "Acme"
    assert account.branding_logo_url == "https://acme.test/logo.png"
    assert account.branding_primary_color == "#112233"


def test_owner_chooses_how_invoices_are_numbered(member_client, account):
    # SPEC R-INV-3. Never chosen, the page shows the default of the account's country (US:
    # for each customer); the choice is then stored and holds whatever the country.
    page = member_client.get(reverse("dashboard:settings")).content.decode()
    assert '<option value="customer" selected>' in page
    # Saved as shown, the default stays the country's, not a choice.
    member_client.post(reverse("dashboard:settings_update"), settings_data(name="Acme Two"))
    account.refresh_from_db()
    assert (account.name, account.invoice_numbering) == ("Acme Two", "")
    member_client.post(
        reverse("dashboard:settings_update"), settings_data(invoice_numbering="account")
    )
    account.refresh_from_db()
    assert (account.invoice_numbering, account.invoice_numbering_in_force) == ("account", "account")
    page = member_client.get(reverse("dashboard:settings")).content.decode()
    assert '<option value="account" selected>' in page


def test_settings_change_emits_account_updated_with_previous_attributes(member_client, account):
    member_client.post(reverse("dashboard:settings_update"), settings_data(name="Acme Two"))
    events = Event.objects.filter(account=account, type="account.updated")
    assert {e.livemode for e in events} == {False, True}
    event = events.first()
    assert event.data["object"]["business_profile"]["name"] == "Acme Two"
    assert event.data["previous_attributes"]["business_profile"] == {"name": "Acme Inc."}


def test_saving_unchanged_settings_emits_nothing(member_client, account):
    member_client.post(reverse("dashboard:settings_update"), settings_data())
    assert not Event.objects.filter(type="account.updated").exists()


@pytest.mark.parametrize(
    ("field", "value", "label"),
    [
        ("timezone", "Mars/Olympus_Mons", "Time zone"),
        ("default_currency", "dollars", "Default currency"),
        ("default_currency", "", "Default currency"),
        ("branding_primary_color", "orange", "Brand colour"),
        ("branding_logo_url", "not a url", "Logo URL"),
        ("name", "", "Account name"),
        ("invoice_numbering", "yearly", "Invoice numbering"),
        ("invoice_numbering", "", "Invoice numbering"),
    ],
)
def test_bad_settings_show_an_inline_error_naming_the_field_and_change_nothing(
    member_client, account, field, value, label
):
    before = snapshot(account)
    # A good change beside the bad one must not be saved either: all or nothing.
    response = member_client.post(
        reverse("dashboard:settings_update"),
        settings_data(**{"branding_display_name": "Changed", field: value}),
    )
    assert response.status_code == 200
    errors = response.context["settings_form"].errors
    assert field in errors
    text = html.unescape(response.content.decode())
    assert f'id="error-{field}"' in text
    assert f"{label}:" in text
    assert snapshot(account) == before
    assert not Event.objects.exists()


def test_read_only_member_cannot_change_settings(read_only_client, account):
    before = snapshot(account)
    response = read_only_client.post(
        reverse("dashboard:settings_update"), settings_data(name="Hacked")
    )
    assert response.status_code == 403
    assert snapshot(account) == before


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT, Role.READ_ONLY])
def test_only_owners_may_post_any_settings_change(client, account, role):
    user = factories.make_member(account, email=f"{role}@acme.test", role=role)
    client.force_login(user)
    key = factories.make_api_key(account)
    factories.make_exchange_rate(account, currency="eur")
    posts = [
        (reverse("dashboard:settings_update"), settings_data(name="Nope")),
        (reverse("dashboard:exchange_rate_set"), {"currency": "gbp", "rate": "1.2"}),
        (reverse("dashboard:exchange_rate_remove", args=["eur"]), {}),
        (reverse("dashboard:api_key_create"), {"name": "Nope"}),
        (reverse("dashboard:api_key_revoke", args=[key.pk]), {}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    key.refresh_from_db()
    assert key.is_active
    assert ApiKey.objects.count() == 1
    assert list(ExchangeRate.objects.values_list("currency", flat=True)) == ["eur"]


def test_non_owner_sees_settings_read_only_without_api_keys(read_only_client, account):
    factories.make_api_key(account, name="Secret thing")
    response = read_only_client.get(reverse("dashboard:settings"))
    assert response.status_code == 200
    assert b"Only owners can change these settings." in response.content
    assert b"Secret thing" not in response.content
    assert b"sk_test_" not in response.content
    assert b"<form" not in response.content.split(b'id="account"')[1].split(b"</section>")[0]


def test_settings_lead_owners_to_edit_the_customer_email_settings(member_client):
    page = member_client.get(reverse("dashboard:settings")).content.decode()
    assert reverse("notifications:settings") in page
    assert "Edit customer emails" in page


def test_settings_lead_other_members_to_view_the_customer_email_settings(read_only_client):
    page = read_only_client.get(reverse("dashboard:settings")).content.decode()
    assert "View customer emails" in page


def test_team_members_are_listed_with_roles(member_client, account, other_account):
    factories.make_member(account, email="viewer@acme.test", role=Role.READ_ONLY)
    factories.make_member(other_account, email="stranger@globex.test")
    response = member_client.get(reverse("dashboard:settings"))
    assert b"owner@acme.test" in response.content
    assert b"viewer@acme.test" in response.content
    assert b"Read-only" in response.content
    assert b"stranger@globex.test" not in response.content


# -- Exchange rates --------------------------------------------------------------------------


def test_owner_sets_and_removes_an_exchange_rate(member_client, account):
    response = member_client.post(
        reverse("dashboard:exchange_rate_set"), {"currency": "EUR", "rate": "1.085"}
    )
    assert response.status_code == 302
    rate = ExchangeRate.objects.get(account=account)
    assert (rate.currency, rate.rate) == ("eur", Decimal("1.085"))

    member_client.post(reverse("dashboard:exchange_rate_set"), {"currency": "eur", "rate": "1.1"})
    assert ExchangeRate.objects.get(account=account).rate == Decimal("1.1")

    member_client.post(reverse("dashboard:exchange_rate_remove", args=["eur"]))
    assert not ExchangeRate.objects.filter(account=account).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"currency": "usd", "rate": "1"}, "currency"),  # the default currency itself
        ({"currency": "euro", "rate": "1"}, "currency"),
        ({"currency": "eur", "rate": "0"}, "rate"),
        ({"currency": "eur", "rate": "-2"}, "rate"),
        ({"currency": "eur", "rate": "lots"}, "rate"),
    ],
)
def test_bad_exchange_rate_is_an_inline_error(member_client, account, data, field):
    response = member_client.post(reverse("dashboard:exchange_rate_set"), data)
    assert response.status_code == 200
    assert field in response.context["rate_form"].errors
    assert f'id="error-{field}"'.encode() in response.content
    assert not ExchangeRate.objects.exists()


def test_new_default_currency_drops_its_own_rate(account):
    factories.make_exchange_rate(account, currency="eur")
    factories.make_exchange_rate(account, currency="gbp", rate="1.25")
    services.update_account_settings(account, default_currency="eur")
    assert list(account.exchange_rates.values_list("currency", flat=True)) == ["gbp"]


def test_set_exchange_rate_refuses_floats(account):
    with pytest.raises(TypeError):
        services.set_exchange_rate(account, currency="eur", rate=1.1)


def test_update_account_settings_refuses_unknown_fields(account):
    with pytest.raises(ValueError, match="platform"):
        services.update_account_settings(account, platform=None)


def test_update_account_settings_validates_the_time_zone(account):
    with pytest.raises(ValidationError) as error:
        services.update_account_settings(account, timezone="Nowhere/Special")
    assert "timezone" in error.value.message_dict
    account.refresh_from_db()
    assert account.timezone == "UTC"


# -- API keys --------------------------------------------------------------------------------


def test_new_api_key_secret_is_shown_once_then_only_redacted(member_client, account):
    response = member_client.post(reverse("dashboard:api_key_create"), {"name": "Exports"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = response.context["new_secret"]
    assert secret.startswith("sk_test_")
    assert secret.encode() in response.content

    key = ApiKey.objects.get(account=account)
    assert key.name == "Exports" and key.livemode is False
    assert key.key_hash == hash_api_key(secret)  # only the hash is stored
    assert secret not in {key.key_hash, key.name, key.last4}

    again = member_client.get(reverse("dashboard:settings"))
    assert secret.encode() not in again.content
    assert f"sk_test_…{secret[-4:]}".encode() in again.content
    assert secret.encode() not in str(dict(member_client.session)).encode()


def test_api_key_is_made_for_the_current_mode(member_client, account):
    session = member_client.session
    session["relance_livemode"] = True
    session.save()
    response = member_client.post(reverse("dashboard:api_key_create"), {"name": "Prod"})
    assert response.context["new_secret"].startswith("sk_live_")
    assert ApiKey.objects.get(account=account).livemode is True


def test_owner_revokes_a_key_and_it_is_marked_revoked(member_client, account):
    key = factories.make_api_key(account, name="Old")
    response = member_client.post(reverse("dashboard:api_key_revoke", args=[key.pk]))
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None and not key.is_active
    page = member_client.get(reverse("dashboard:settings"))
    assert b"Revoked" in page.content
    assert f"Key {key.redacted} revoked.".encode() in page.content


def test_revoking_another_accounts_key_is_404(member_client, other_account):
    key = factories.make_api_key(other_account)
    response = member_client.post(reverse("dashboard:api_key_revoke", args=[key.pk]))
    assert response.status_code == 404
    key.refresh_from_db()
    assert key.is_active


def test_revoking_twice_keeps_the_first_time(account):
    key = factories.make_api_key(account)
    first = timezone.now()
    services.revoke_api_key(key, at=first)
    services.revoke_api_key(key, at=first + timezone.timedelta(hours=1))
    key.refresh_from_db()
    assert key.revoked_at == first


def test_issue_api_key_returns_the_raw_secret_and_stores_its_hash(account):
    key, raw = services.issue_api_key(account, livemode=True, name="  CI  ")
    assert raw.startswith("sk_live_") and len(raw) == len("sk_live_") + 48
    assert key.name == "CI"
    assert key.last4 == raw[-4:]
    assert ApiKey.objects.get(key_hash=hash_api_key(raw)) == key
