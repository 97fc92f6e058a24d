"""The dashboard shell: every page renders for members, anonymous users go to sign-in."""

import pytest
from django.urls import reverse

from billing.context_processors import NAVIGATION
from billing.middleware import SESSION_ACCOUNT, SESSION_LIVEMODE
from billing.models import Account, Customer
from tests import factories

LIST_PAGES = [
    "dashboard:overview",
    "dashboard:customers",
    "dashboard:subscriptions",
    "dashboard:invoices",
    "dashboard:events",
    "dashboard:test_clocks",
    "dashboard:settings",
]
DETAIL_PAGES = [
    ("dashboard:customer_detail", "customer"),
    ("dashboard:subscription_detail", "subscription"),
    ("dashboard:invoice_detail", "invoice"),
    ("dashboard:event_detail", "event"),
    ("dashboard:test_clock_detail", "test_clock"),
]


def page_urls(objects):
    urls = [reverse(name) for name in LIST_PAGES]
    urls += [reverse(name, args=[objects[key].pk]) for name, key in DETAIL_PAGES]
    return urls


@pytest.mark.parametrize("name", LIST_PAGES)
def test_list_page_renders_for_a_member(member_client, dashboard_objects, name):
    response = member_client.get(reverse(name))
    assert response.status_code == 200
    assert b"Test mode" in response.content


@pytest.mark.parametrize(("name", "key"), DETAIL_PAGES)
def test_detail_page_renders_for_a_member(member_client, dashboard_objects, name, key):
    obj = dashboard_objects[key]
    response = member_client.get(reverse(name, args=[obj.pk]))
    assert response.status_code == 200
    assert obj.pk.encode() in response.content


@pytest.mark.parametrize("name", LIST_PAGES)
def test_anonymous_user_is_sent_to_sign_in(client, db, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


@pytest.mark.parametrize(("name", "key"), DETAIL_PAGES)
def test_anonymous_user_cannot_open_a_detail_page(client, dashboard_objects, name, key):
    response = client.get(reverse(name, args=[dashboard_objects[key].pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    "name", ["dashboard:mode_switch", "dashboard:account_switch", "dashboard:api_key_create"]
)
def test_anonymous_post_is_sent_to_sign_in(client, db, name):
    response = client.post(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_read_only_member_can_view_every_page(read_only_client, dashboard_objects):
    for url in page_urls(dashboard_objects):
        assert read_only_client.get(url).status_code == 200, url


def test_user_without_membership_sees_a_no_access_page(client, db):
    client.force_login(factories.make_user(email="stranger@example.com"))
    response = client.get(reverse("dashboard:customers"))
    assert response.status_code == 403
    assert b"No account access" in response.content
    assert b"stranger@example.com" in response.content


def test_login_page_renders_and_signs_in(client, owner):
    assert client.get(reverse("login")).status_code == 200
    response = client.post(
        reverse("login"), {"username": "owner@acme.test", "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:overview")


def test_wrong_password_shows_an_error(client, owner):
    response = client.post(reverse("login"), {"username": "owner@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert b"correct username and password" in response.content


def test_logout_ends_the_session(member_client):
    response = member_client.post(reverse("logout"))
    assert response.status_code == 302
    assert member_client.get(reverse("dashboard:overview")).status_code == 302


def test_navigation_lists_every_section(member_client):
    response = member_client.get(reverse("dashboard:overview"))
    labels = [item["label"] for item in response.context["navigation"]]
    assert labels == [label for label, _ in NAVIGATION]


def test_navigation_leaves_out_a_page_that_does_not_exist(member_client, monkeypatch):
    monkeypatch.setattr(
        "billing.context_processors.NAVIGATION", [*NAVIGATION, ("Reports", "dashboard:reports")]
    )
    response = member_client.get(reverse("dashboard:overview"))
    labels = [item["label"] for item in response.context["navigation"]]
    assert "Reports" not in labels  # the shell never links to a missing page


def test_navigation_marks_the_current_section(member_client, customer):
    response = member_client.get(reverse("dashboard:customer_detail", args=[customer.pk]))
    active = [item["label"] for item in response.context["navigation"] if item["active"]]
    assert active == ["Customers"]


def test_mode_switch_toggles_live_mode_in_the_session(member_client):
    response = member_client.post(
        reverse("dashboard:mode_switch"), {"next": reverse("dashboard:customers")}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:customers")
    assert member_client.session[SESSION_LIVEMODE] is True
    page = member_client.get(reverse("dashboard:customers"))
    assert b"Live mode" in page.content
    assert b"test-banner" not in page.content

    member_client.post(reverse("dashboard:mode_switch"))
    assert member_client.session[SESSION_LIVEMODE] is False


def test_mode_switch_refuses_a_foreign_next_url(member_client):
    response = member_client.post(
        reverse("dashboard:mode_switch"), {"next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("dashboard:overview")


def test_mode_switch_is_post_only(member_client):
    assert member_client.get(reverse("dashboard:mode_switch")).status_code == 405


def test_account_switch_moves_to_another_membership(member_client, owner, other_account):
    factories.Membership.objects.create(user=owner, account=other_account, role="read_only")
    response = member_client.post(
        reverse("dashboard:account_switch"), {"account": other_account.pk}
    )
    assert response.status_code == 302
    assert member_client.session[SESSION_ACCOUNT] == other_account.pk
    page = member_client.get(reverse("dashboard:overview"))
    assert page.context["current_account"] == other_account
    assert b"Globex" in page.content


def test_account_switch_refuses_an_account_the_user_is_not_in(member_client, other_account):
    response = member_client.post(
        reverse("dashboard:account_switch"), {"account": other_account.pk}
    )
    assert response.status_code == 404
    assert SESSION_ACCOUNT not in member_client.session


def test_account_switcher_shown_only_with_several_memberships(member_client, owner, other_account):
    assert b"account-switch" not in member_client.get(reverse("dashboard:overview")).content
    factories.Membership.objects.create(user=owner, account=other_account)
    assert b"account-switch" in member_client.get(reverse("dashboard:overview")).content


def test_layout_shows_messages_and_vendored_static(member_client):
    member_client.post(reverse("dashboard:settings_update"), _settings_data(name="Acme Two"))
    page = member_client.get(reverse("dashboard:settings"))
    assert b"Account settings saved." in page.content
    assert b"/static/vendor/htmx/htmx.min.js" in page.content
    assert b"/static/css/app.css" in page.content
    assert b"cdn" not in page.content.lower()


def test_dates_are_shown_in_the_account_time_zone(member_client, account, customer):
    account.timezone = "Asia/Tokyo"
    account.save()
    response = member_client.get(reverse("dashboard:customer_detail", args=[customer.pk]))
    assert b'title="' in response.content
    assert b"JST" in response.content


def _settings_data(**overrides):
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


def test_the_customer_page_shows_its_invoice_prefix_and_next_number(member_client, customer):
    # SPEC R-INV-3: the number its next invoice takes when numbered for each customer.
    Customer.objects.filter(pk=customer.pk).update(invoice_prefix="JENNY", next_invoice_sequence=7)
    page = member_client.get(reverse("dashboard:customer_detail", args=[customer.pk]))
    text = page.content.decode()
    assert "JENNY" in text and "next JENNY-0007" in text
    assert "when invoices are numbered for each customer" not in text
    Account.objects.filter(pk=customer.account_id).update(invoice_numbering="account")
    page = member_client.get(reverse("dashboard:customer_detail", args=[customer.pk]))
    assert "when invoices are numbered for each customer" in page.content.decode()
