"""Connect in the dashboard: a platform's connected accounts with their figures, creating one,
switching into one and back, disconnecting and reconnecting with the consequences spelled out,
held invoices, Connect fields on subscriptions, the admin's connection actions, who sees a
connected account's customers, and what a platform may do inside one (webhook endpoints, test
clocks) (SPEC R-CON-1..7)."""

import html
import re
from decimal import Decimal

import pytest
from django.contrib import messages
from django.contrib.admin.utils import quote
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.choices import (
    CollectionMethod,
    InvoiceStatus,
    LedgerEntryType,
    Role,
    SubscriptionStatus,
)
from billing.middleware import SESSION_ACCOUNT, SESSION_LIVEMODE
from billing.models import (
    Account,
    ApiKey,
    ApplicationFee,
    BalanceTransaction,
    Event,
    Membership,
    Subscription,
    Transfer,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.services import connect as connect_services
from billing.services import webhooks as webhook_services
from tests import factories

LIST = reverse("dashboard:connected_accounts")


def detail_url(account):
    return reverse("dashboard:connected_account_detail", args=[account.pk])


def disconnect_url(account):
    return reverse("dashboard:connected_account_disconnect", args=[account.pk])


def reconnect_url(account):
    return reverse("dashboard:connected_account_reconnect", args=[account.pk])


def text(response) -> str:
    """The page's text, tags turned to spaces, entities decoded and whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", response.content.decode())).split())


def ledger(account, amount, *, livemode=False, fee=0, type=LedgerEntryType.CHARGE, **kwargs):
    return BalanceTransaction.objects.create(
        account=account,
        livemode=livemode,
        type=type,
        amount=amount,
        fee=fee,
        net=amount - fee,
        currency=kwargs.pop("currency", "usd"),
        source=kwargs.pop("source", "pi_test"),
        **kwargs,
    )


def fee(platform, connected, amount, *, livemode=False, invoice=None):
    return ApplicationFee.objects.create(
        account=platform,
        livemode=livemode,
        connected_account=connected,
        amount=amount,
        currency="usd",
        invoice=invoice,
    )


def transfer(platform, destination, amount, *, livemode=False, invoice=None):
    return Transfer.objects.create(
        account=platform,
        livemode=livemode,
        destination=destination,
        amount=amount,
        currency="usd",
        destination_payment="py_test",
        invoice=invoice,
    )


@pytest.fixture
def connected(account):
    return factories.make_connected_account(account, name="Shop One", email="shop@one.test")


@pytest.fixture
def arrangements(account, connected):
    """In test mode: one direct subscription on `connected` with a 10% platform fee and one
    without, one platform subscription transferring to it, one charged on behalf of it
    automatically, one invoiced on behalf of it, a canceled one (not counted), and a live one;
    with a fee, a transfer and balances."""
    shop_customer = factories.make_customer(connected, email="buyer@shop.test")
    platform_customer = factories.make_customer(account, email="payer@acme.test")
    direct_fee = factories.make_subscription(
        shop_customer, application_fee_percent=Decimal("10.00")
    )
    direct_plain = factories.make_subscription(shop_customer)
    destination = factories.make_subscription(
        platform_customer, transfer_data_destination=connected, application_fee_percent=5
    )
    on_behalf = factories.make_subscription(platform_customer, on_behalf_of=connected)
    on_behalf_manual = factories.make_subscription(
        platform_customer,
        on_behalf_of=connected,
        collection_method=CollectionMethod.SEND_INVOICE,
        days_until_due=30,
    )
    factories.make_subscription(
        platform_customer,
        transfer_data_destination=connected,
        status=SubscriptionStatus.CANCELED,
    )
    live_customer = factories.make_customer(account, livemode=True, email="live@acme.test")
    live = factories.make_subscription(live_customer, transfer_data_destination=connected)
    invoice = factories.make_invoice(platform_customer, subscription=destination, amount=1000)
    fee(account, connected, 300, invoice=invoice)
    transfer(account, connected, 900, invoice=invoice)
    ledger(connected, 900, type=LedgerEntryType.PAYMENT, source="py_test")
    ledger(account, 1000)
    ledger(account, -900, type=LedgerEntryType.TRANSFER, source="tr_test")
    return {
        "direct_fee": direct_fee,
        "direct_plain": direct_plain,
        "destination": destination,
        "on_behalf": on_behalf,
        "on_behalf_manual": on_behalf_manual,
        "live": live,
        "invoice": invoice,
    }


def held_invoice(account, connected, **kwargs):
    """A renewal draft of a platform subscription on behalf of `connected`, held (R-CON-7)."""
    customer = factories.make_customer(account, email=kwargs.pop("email", "held@acme.test"))
    subscription = factories.make_subscription(customer, on_behalf_of=connected)
    return factories.make_invoice(
        customer,
        subscription=subscription,
        status=InvoiceStatus.DRAFT,
        on_behalf_of=connected,
        awaiting_reconnection=True,
        auto_advance=False,
        **kwargs,
    )


def client_as(client, account, role, email=None):
    user = factories.make_member(account, email=email or f"{role}@acme.test", role=role)
    client.force_login(user)
    return client


def switch_into(client, account):
    return client.post(reverse("dashboard:account_switch"), {"account": account.pk})


# ---------------------------------------------------------------------------------------------
# The list


def test_navigation_shows_connected_accounts_on_a_platform(member_client):
    """SPEC R-CON-1: a platform has connected accounts, so its shell links to them."""
    response = member_client.get(reverse("dashboard:overview"))
    labels = [item["label"] for item in response.context["navigation"]]
    assert "Connected accounts" in labels


def test_list_shows_each_accounts_figures_in_the_current_mode(
    member_client, connected, arrangements
):
    """SPEC R-CON-2/3: per connected account, its subscriptions, fees, transfers and balance."""
    response = member_client.get(LIST)

    assert response.status_code == 200
    (row,) = response.context["page"].items
    assert row.pk == connected.pk
    assert row.direct_count == 2
    # Destination, charge-automatically on_behalf_of and send_invoice on_behalf_of; not the
    # canceled one, nor the live one.
    assert row.platform_count == 3
    assert row.fees == ["$3.00"]
    assert row.transferred == ["$9.00"]
    assert row.balance == ["$9.00"]
    assert response.context["platform_balance"] == ["$1.00"]
    page = text(response)
    assert "Shop One" in page and connected.pk in page
    assert "Connected" in page


def test_list_in_live_mode_shows_live_figures(member_client, connected, arrangements):
    """SPEC R-CORE-3 with R-CON-2: test-mode money never shows in live mode."""
    session = member_client.session
    session[SESSION_LIVEMODE] = True
    session.save()

    (row,) = member_client.get(LIST).context["page"].items

    assert (row.direct_count, row.platform_count) == (0, 1)
    assert row.fees == row.transferred == row.balance == []


def test_a_subscription_transferring_to_and_on_behalf_of_one_account_counts_once(
    member_client, account, connected
):
    """SPEC R-CON-2/6: one subscription, one count, whatever roles the account plays in it."""
    customer = factories.make_customer(account)
    factories.make_subscription(
        customer, transfer_data_destination=connected, on_behalf_of=connected
    )

    (row,) = member_client.get(LIST).context["page"].items

    assert row.platform_count == 1


def test_list_shows_only_this_platforms_connected_accounts(member_client, connected, other_account):
    """SPEC R-CON-1: another platform's connected accounts are not listed."""
    foreign = factories.make_connected_account(other_account, name="Globex Shop")

    response = member_client.get(LIST)

    assert [a.pk for a in response.context["page"].items] == [connected.pk]
    assert foreign.pk not in response.content.decode()


def test_list_filters_by_connection_status(member_client, account, connected):
    """SPEC R-CON-7: disconnected accounts can be told apart."""
    gone = factories.make_connected_account(account, name="Gone shop")
    connect_services.disconnect_account(gone)

    response = member_client.get(LIST, {"status": "disconnected"})

    assert [a.pk for a in response.context["page"].items] == [gone.pk]
    assert "Disconnected" in text(response)


def test_list_queries_do_not_grow_with_accounts(member_client, account, connected):
    """SPEC R-CON-1: a platform with many connected accounts gets its list as fast as one."""
    member_client.get(LIST)
    with CaptureQueriesContext(connection) as one:
        member_client.get(LIST)
    for i in range(5):
        shop = factories.make_connected_account(account, name=f"Shop {i}")
        fee(account, shop, 100)
        transfer(account, shop, 200)
        ledger(shop, 200, source=f"pi_test_{i}")  # one charge per payment
    with CaptureQueriesContext(connection) as six:
        member_client.get(LIST)
    assert len(six) == len(one)


# ---------------------------------------------------------------------------------------------
# Creating one


def test_owner_creates_a_connected_account(member_client, account):
    """SPEC R-CON-1: the new account belongs to the platform, with the fields given."""
    response = member_client.post(
        LIST,
        {"name": "Shop Two", "email": "two@shop.test", "country": "fr", "default_currency": "EUR"},
    )

    created = Account.objects.get(name="Shop Two")
    assert response.status_code == 302
    assert response.url == detail_url(created)
    assert created.platform == account
    assert created.is_connected_account
    assert (created.email, created.country, created.default_currency) == (
        "two@shop.test",
        "FR",
        "eur",
    )
    assert Event.objects.filter(account=created, type="account.application.authorized").exists()


def test_create_with_a_bad_currency_names_the_field_and_writes_nothing(member_client, account):
    """SPEC R-CON-1: a refused account is not half-created."""
    accounts_before = Account.objects.count()
    events_before = Event.objects.count()

    response = member_client.post(
        LIST, {"name": "Shop Two", "email": "", "country": "US", "default_currency": "dollars"}
    )

    assert response.status_code == 400
    form = response.context["create_form"]
    assert "default_currency" in form.errors
    assert 'data-field="default_currency"' in response.content.decode()
    assert "Default currency:" in text(response)
    assert Account.objects.count() == accounts_before
    assert Event.objects.count() == events_before


def test_create_with_a_bad_country_keeps_what_was_typed(member_client):
    """SPEC R-CON-1: the form comes back with the error beside the country."""
    response = member_client.post(
        LIST, {"name": "Shop Two", "country": "USA", "default_currency": "usd"}
    )

    assert response.status_code == 400
    assert "country" in response.context["create_form"].errors
    assert 'value="Shop Two"' in response.content.decode()
    assert not Account.objects.filter(name="Shop Two").exists()


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT, Role.READ_ONLY])
def test_only_owners_create_connected_accounts(client, account, role):
    """SPEC R-CON-1: creating an account of the platform is an owner's decision."""
    client_as(client, account, role)

    response = client.post(LIST, {"name": "Shop Two", "country": "US", "default_currency": "usd"})

    assert response.status_code == 403
    assert not Account.objects.filter(name="Shop Two").exists()
    assert "new-connected-account" not in client.get(LIST).content.decode()


# ---------------------------------------------------------------------------------------------
# The detail page


def test_detail_shows_subscriptions_fees_transfers_and_balance(
    member_client, connected, arrangements
):
    """SPEC R-CON-2/3/6: what the account carries and what moved between the two."""
    response = member_client.get(detail_url(connected))

    assert response.status_code == 200
    ctx = response.context
    assert {s.pk for s in ctx["direct"]} == {
        arrangements["direct_fee"].pk,
        arrangements["direct_plain"].pk,
    }
    # Every platform subscription pointing at it in this mode, canceled included (history).
    assert arrangements["destination"] in ctx["pointing"]
    assert arrangements["on_behalf"] in ctx["pointing"]
    assert arrangements["live"] not in ctx["pointing"]
    assert len(ctx["fees"]) == 1 and len(ctx["transfers"]) == 1
    page = text(response)
    assert "10%" in page
    assert "Transfers to it" in page and "On behalf of it" in page
    assert "$3.00" in page and "$9.00" in page
    invoice_url = reverse("dashboard:invoice_detail", args=[arrangements["invoice"].pk])
    assert invoice_url in response.content.decode()
    assert "shop@one.test" in page


def test_detail_lists_invoices_held_until_reconnection(member_client, account, connected):
    """SPEC R-CON-7: renewal drafts held for a disconnected on_behalf_of account are listed."""
    invoice = held_invoice(account, connected)
    connect_services.disconnect_account(connected)

    response = member_client.get(detail_url(connected))

    assert [i.pk for i in response.context["held"]] == [invoice.pk]
    assert "Disconnected since" in text(response)


def test_another_platforms_connected_account_is_404(member_client, other_account):
    """SPEC R-CON-1: a platform sees only its own connected accounts."""
    foreign = factories.make_connected_account(other_account, name="Globex Shop")

    for url in (detail_url(foreign), disconnect_url(foreign), reconnect_url(foreign)):
        assert member_client.get(url).status_code == 404, url
    assert member_client.post(disconnect_url(foreign)).status_code == 404
    foreign.refresh_from_db()
    assert not foreign.is_disconnected


def test_a_connected_accounts_own_member_cannot_see_connected_accounts(client, connected):
    """SPEC R-CON-1: connected accounts have no connected accounts of their own."""
    client_as(client, connected, Role.OWNER, email="owner@one.test")

    overview = client.get(reverse("dashboard:overview"))
    assert "Connected accounts" not in [i["label"] for i in overview.context["navigation"]]
    assert client.get(LIST).status_code == 404
    assert client.get(detail_url(connected)).status_code == 404


def test_read_only_member_sees_figures_but_no_switch_or_disconnect(read_only_client, connected):
    """SPEC R-CON-1/7: looking is for everyone; acting inside and disconnecting are not."""
    response = read_only_client.get(detail_url(connected))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Switch into" not in page
    assert disconnect_url(connected) not in page


# ---------------------------------------------------------------------------------------------
# Switching into a connected account and back


def test_owner_switches_into_a_connected_account_with_their_platform_role(
    member_client, account, connected, customer
):
    """SPEC R-CON-1: the platform works inside its connected account, on its own customers."""
    shop_customer = factories.make_customer(connected, email="buyer@shop.test")

    response = switch_into(member_client, connected)
    assert response.status_code == 302
    assert response.url == reverse("dashboard:overview")

    page = member_client.get(reverse("dashboard:customers"))
    assert page.status_code == 200
    assert page.wsgi_request.account == connected
    assert page.wsgi_request.membership.role == Role.OWNER
    assert page.wsgi_request.membership.pk is None
    assert [c.pk for c in page.context["page"].items] == [shop_customer.pk]
    body = text(page)
    assert "You are working inside Shop One" in body
    assert "a connected account of Acme Inc." in body
    assert "Back to Acme Inc." in body
    assert "Connected accounts" not in [i["label"] for i in page.context["navigation"]]


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT])
def test_finance_and_support_switch_in_with_their_role(client, account, connected, role):
    """SPEC R-CON-1: the role held on the platform is the role inside."""
    client_as(client, account, role)

    assert switch_into(client, connected).status_code == 302

    response = client.get(reverse("dashboard:overview"))
    assert response.wsgi_request.account == connected
    assert response.wsgi_request.membership.role == role


def test_read_only_platform_member_cannot_switch_in(read_only_client, connected):
    """SPEC R-CON-1: read-only platform members see figures, not the accounts' customers."""
    assert switch_into(read_only_client, connected).status_code == 404
    response = read_only_client.get(reverse("dashboard:overview"))
    assert response.wsgi_request.account != connected


def test_switching_back_lands_on_the_accounts_page_on_the_platform(
    member_client, account, connected
):
    """SPEC R-CON-1: the way back from a connected account leads to the platform."""
    switch_into(member_client, connected)

    response = member_client.post(
        reverse("dashboard:account_switch"),
        {"account": account.pk, "next": detail_url(connected)},
    )

    assert response.url == detail_url(connected)
    page = member_client.get(response.url)
    assert page.wsgi_request.account == account
    assert "You are working inside" not in text(page)


def test_another_platforms_connected_account_cannot_be_switched_into(member_client, other_account):
    """SPEC R-CON-1: only the platform's own connected accounts."""
    foreign = factories.make_connected_account(other_account, name="Globex Shop")

    assert switch_into(member_client, foreign).status_code == 404


def test_a_forged_session_cannot_enter_another_platforms_account(
    member_client, account, other_account
):
    """SPEC R-CON-1: the session's choice is checked on every request, not only at switching."""
    foreign = factories.make_connected_account(other_account, name="Globex Shop")
    session = member_client.session
    session[SESSION_ACCOUNT] = foreign.pk
    session.save()

    response = member_client.get(reverse("dashboard:customers"))

    assert response.wsgi_request.account == account


def test_a_disconnected_account_cannot_be_switched_into(member_client, connected):
    """SPEC R-CON-7: once disconnected, the platform lost access to the account."""
    connect_services.disconnect_account(connected)

    assert switch_into(member_client, connected).status_code == 404
    assert "Switch into" not in member_client.get(detail_url(connected)).content.decode()


def test_working_inside_an_account_that_disconnects_returns_to_the_platform(
    member_client, account, connected
):
    """SPEC R-CON-7: access ends at once, even for a member already inside."""
    switch_into(member_client, connected)
    connect_services.disconnect_account(connected)

    response = member_client.get(reverse("dashboard:customers"))

    assert response.wsgi_request.account == account


def test_a_member_of_both_works_inside_with_their_own_membership(client, account, connected):
    """SPEC R-CON-1: a direct membership on the connected account wins over the platform's."""
    user = factories.make_member(account, email="both@acme.test", role=Role.READ_ONLY)
    Membership.objects.create(user=user, account=connected, role=Role.FINANCE)
    client.force_login(user)

    assert switch_into(client, connected).status_code == 302
    request = client.get(reverse("dashboard:overview")).wsgi_request
    assert request.membership.pk is not None
    assert request.membership.role == Role.FINANCE


DASHBOARD_PAGES = [
    "dashboard:overview",
    "dashboard:customers",
    "dashboard:subscriptions",
    "dashboard:invoices",
    "dashboard:events",
    "dashboard:webhooks",
    "dashboard:test_clocks",
    "dashboard:settings",
    "dashboard:recovery_settings",
    "automations:list",
    "notifications:emails",
]


@pytest.mark.parametrize("name", DASHBOARD_PAGES)
def test_every_page_works_inside_a_connected_account(member_client, connected, name):
    """SPEC R-CON-1: the dashboard works as usual without a Membership row on the account."""
    shop_customer = factories.make_customer(connected, email="buyer@shop.test")
    factories.make_dashboard_objects(shop_customer)
    switch_into(member_client, connected)

    response = member_client.get(reverse(name))

    assert response.status_code == 200
    assert response.wsgi_request.account == connected
    assert "You are working inside" in text(response)


def test_detail_pages_work_inside_a_connected_account(member_client, connected):
    """SPEC R-CON-1: the account's objects open as they would for its own team."""
    objects = factories.make_dashboard_objects(factories.make_customer(connected))
    switch_into(member_client, connected)

    for kind, name in [
        ("customer", "dashboard:customer_detail"),
        ("subscription", "dashboard:subscription_detail"),
        ("invoice", "dashboard:invoice_detail"),
        ("event", "dashboard:event_detail"),
        ("test_clock", "dashboard:test_clock_detail"),
    ]:
        response = member_client.get(reverse(name, args=[objects[kind].pk]))
        assert response.status_code == 200, kind


def test_the_platform_does_not_issue_api_keys_inside_a_connected_account(member_client, connected):
    """SPEC R-CON-7: a key made by the platform would outlive the account's disconnection."""
    switch_into(member_client, connected)

    response = member_client.post(reverse("dashboard:api_key_create"), {"name": "Platform key"})

    assert response.status_code == 403
    assert not ApiKey.objects.filter(account=connected).exists()


def test_an_acting_owner_may_change_the_connected_accounts_settings(member_client, connected):
    """SPEC R-CON-1: with the owner role inside, the owner's settings page works."""
    switch_into(member_client, connected)

    response = member_client.post(
        reverse("dashboard:settings_update"),
        {
            "name": "Shop One Ltd",
            "default_currency": "usd",
            "timezone": "UTC",
            "branding_display_name": "",
            "branding_logo_url": "",
            "branding_primary_color": "#112233",
            "invoice_numbering": "account",
        },
    )

    assert response.status_code == 302
    connected.refresh_from_db()
    assert connected.name == "Shop One Ltd"


# ---------------------------------------------------------------------------------------------
# Disconnecting and reconnecting


def test_disconnect_confirmation_states_the_consequences_with_counts(
    member_client, connected, arrangements
):
    """SPEC R-CON-7: direct subscriptions go on with their fees, destination ones stop
    transferring, on_behalf_of ones that charge automatically are held; nothing is canceled."""
    response = member_client.get(disconnect_url(connected))

    assert response.status_code == 200
    page = text(response)
    assert "Disconnect Shop One from Acme Inc.?" in page
    assert "Direct subscriptions continue." in page
    assert "2 subscriptions (0 in live mode, 2 in test mode) on the account keep renewing" in page
    assert "Platform fees keep being collected on 1 subscription (0 in live mode, 1 in test" in page
    assert "Destination subscriptions keep invoicing, but no funds transfer." in page
    # Test-mode destination and the live one; the canceled one is not counted.
    assert "2 subscriptions (1 in live mode, 1 in test mode) of your platform transfer" in page
    assert "Renewals on behalf of it are held as drafts." in page
    # The send_invoice one is not held.
    assert "1 subscription (0 in live mode, 1 in test mode) of your platform on behalf" in page
    assert "Nothing is canceled." in page
    connected.refresh_from_db()
    assert not connected.is_disconnected


def test_disconnect_with_nothing_attached_says_so(member_client, connected):
    """SPEC R-CON-7: counts are real, zero included."""
    page = text(member_client.get(disconnect_url(connected)))

    assert "no subscriptions on the account keep renewing" in page


def test_disconnecting_keeps_every_subscription(member_client, connected, arrangements):
    """SPEC R-CON-7: disconnecting cancels nothing."""
    statuses = dict(Subscription.objects.values_list("pk", "status"))

    response = member_client.post(disconnect_url(connected))

    assert response.status_code == 302
    assert response.url == detail_url(connected)
    connected.refresh_from_db()
    assert connected.is_disconnected
    assert dict(Subscription.objects.values_list("pk", "status")) == statuses
    reported = [m.message for m in get_messages(response.wsgi_request)]
    assert reported == ["Shop One is disconnected from your platform. Nothing was canceled."]
    assert reconnect_url(connected) in member_client.get(detail_url(connected)).content.decode()


def test_reconnect_confirmation_counts_the_held_drafts(member_client, account, connected):
    """SPEC R-CON-7: reconnecting finalizes and collects what was held."""
    held_invoice(account, connected, email="one@acme.test")
    held_invoice(account, connected, email="two@acme.test")
    connect_services.disconnect_account(connected)

    page = text(member_client.get(reconnect_url(connected)))

    assert "Reconnect Shop One to Acme Inc.?" in page
    assert (
        "2 draft invoices (0 in live mode, 2 in test mode) held while it was disconnected will "
        "be finalized and charged automatically." in page
    )


def test_reconnecting_releases_the_held_drafts(member_client, account, connected):
    """SPEC R-CON-7: held drafts go back to automatic collection."""
    invoice = held_invoice(account, connected)
    connect_services.disconnect_account(connected)

    response = member_client.post(reconnect_url(connected))

    connected.refresh_from_db()
    invoice.refresh_from_db()
    assert not connected.is_disconnected
    assert not invoice.awaiting_reconnection and invoice.auto_advance
    reported = [m.message for m in get_messages(response.wsgi_request)]
    assert reported == [
        "Shop One is connected to your platform again. 1 held invoice is being finalized and "
        "collected."
    ]


def test_reconnect_of_a_connected_account_only_informs(member_client, connected):
    """SPEC R-CON-7: nothing to reconnect."""
    response = member_client.get(reconnect_url(connected))

    assert response.status_code == 302
    assert [m.message for m in get_messages(response.wsgi_request)] == ["Shop One is connected."]


@pytest.mark.parametrize("role", [Role.FINANCE, Role.SUPPORT, Role.READ_ONLY])
def test_only_owners_disconnect_or_reconnect(client, account, connected, role):
    """SPEC R-CON-7: changing how money settles is an owner's decision."""
    client_as(client, account, role)

    assert client.get(disconnect_url(connected)).status_code == 403
    assert client.post(disconnect_url(connected)).status_code == 403
    connected.refresh_from_db()
    assert not connected.is_disconnected
    connect_services.disconnect_account(connected)
    assert client.post(reconnect_url(connected)).status_code == 403
    connected.refresh_from_db()
    assert connected.is_disconnected


def test_disconnect_is_refused_from_inside_the_connected_account(member_client, connected):
    """SPEC R-CON-7: the platform disconnects from its own dashboard, not the account's."""
    switch_into(member_client, connected)

    assert member_client.post(disconnect_url(connected)).status_code == 404
    connected.refresh_from_db()
    assert not connected.is_disconnected


# ---------------------------------------------------------------------------------------------
# Invoices and subscriptions


def test_held_invoice_page_says_why_it_is_held(member_client, account, connected):
    """SPEC R-CON-7: a held draft says it waits for the on_behalf_of account to reconnect."""
    invoice = held_invoice(account, connected)
    connect_services.disconnect_account(connected)

    page = text(member_client.get(reverse("dashboard:invoice_detail", args=[invoice.pk])))

    assert "Held until Shop One reconnects." in page
    assert "has disconnected from the platform" in page
    assert "finalized and collected automatically" in page


def test_ordinary_invoice_page_has_no_held_notice(member_client, dashboard_objects):
    """SPEC R-CON-7: only held invoices carry the notice."""
    invoice = dashboard_objects["invoice"]

    response = member_client.get(reverse("dashboard:invoice_detail", args=[invoice.pk]))

    assert "held-invoice-notice" not in response.content.decode()


def test_subscription_page_shows_its_connect_fields(member_client, account, connected):
    """SPEC R-CON-2/3/6: fee percent, destination and on_behalf_of are shown."""
    customer = factories.make_customer(account)
    subscription = factories.make_subscription(
        customer,
        application_fee_percent=Decimal("12.5"),
        transfer_data_destination=connected,
        on_behalf_of=connected,
    )

    response = member_client.get(reverse("dashboard:subscription_detail", args=[subscription.pk]))

    page = text(response)
    assert "Platform fee 12.50% of each billing-period invoice" in page
    assert "Transfers to Shop One" in page
    assert "On behalf of Shop One" in page
    assert detail_url(connected) in response.content.decode()


# ---------------------------------------------------------------------------------------------
# The admin's connection actions


def run_admin_action(client, action, accounts):
    response = client.post(
        reverse("admin:billing_account_changelist"),
        {"action": action, "_selected_action": [a.pk for a in accounts]},
    )
    assert response.status_code == 302
    return [(m.level, m.message) for m in get_messages(response.wsgi_request)]


def test_admin_disconnects_a_connected_account_through_the_service(admin_client, connected):
    """SPEC R-CON-7: the admin action disconnects, with its event, and cancels nothing."""
    reported = run_admin_action(admin_client, "disconnect_from_platform", [connected])

    connected.refresh_from_db()
    assert connected.is_disconnected
    assert reported[0][0] == messages.SUCCESS
    assert reported[0][1].startswith(f"{connected}: disconnected from its platform.")
    assert Event.objects.filter(account=connected, type="account.application.deauthorized").exists()


def test_admin_disconnect_reports_each_account_on_its_own(admin_client, account, connected):
    """SPEC R-CON-7: a platform cannot disconnect; the connected account still does."""
    reported = run_admin_action(admin_client, "disconnect_from_platform", [account, connected])

    levels = {message.split(":")[0]: level for level, message in reported}
    assert levels[str(account)] == messages.ERROR
    assert levels[str(connected)] == messages.SUCCESS


def test_admin_reconnect_releases_held_invoices(admin_client, account, connected):
    """SPEC R-CON-7: reconnecting from the admin sends the held drafts to collection."""
    invoice = held_invoice(account, connected)
    connect_services.disconnect_account(connected)

    reported = run_admin_action(admin_client, "reconnect_to_platform", [connected])

    connected.refresh_from_db()
    invoice.refresh_from_db()
    assert not connected.is_disconnected
    assert not invoice.awaiting_reconnection
    assert reported == [
        (
            messages.SUCCESS,
            f"{connected}: reconnected to its platform; 1 held invoice go back to automatic "
            "collection.",
        )
    ]


def test_admin_account_list_shows_the_connection(admin_client, account, connected):
    """SPEC R-CON-7: support sees at a glance which accounts disconnected."""
    gone = factories.make_connected_account(account, name="Gone shop")
    connect_services.disconnect_account(gone)

    response = admin_client.get(
        reverse("admin:billing_account_changelist"), {"connection": "disconnected"}
    )

    page = response.content.decode()
    change = reverse("admin:billing_account_change", args=[quote(gone.pk)])
    assert change in page
    assert reverse("admin:billing_account_change", args=[quote(connected.pk)]) not in page
    assert "Disconnected since" in page


def test_admin_lists_transfers_and_fees_linking_to_accounts(admin_client, account, connected):
    """SPEC R-CON-2/3: transfers and fees are readable, with links to both accounts."""
    sent = transfer(account, connected, 700)
    taken = fee(account, connected, 70)

    for model, obj in (("transfer", sent), ("applicationfee", taken)):
        response = admin_client.get(reverse(f"admin:billing_{model}_changelist"), {"q": obj.pk})
        page = response.content.decode()
        assert reverse(f"admin:billing_{model}_change", args=[quote(obj.pk)]) in page
        assert reverse("admin:billing_account_change", args=[quote(connected.pk)]) in page
        assert reverse("admin:billing_account_change", args=[quote(account.pk)]) in page


# ---------------------------------------------------------------------------------------------
# What a platform may change inside a connected account (SPEC R-CON-5)


def _connected_subscription(connected, *, application=None):
    customer = factories.make_customer(connected, email="member@shop.test")
    factories.make_card(customer)
    price = factories.make_price(connected, unit_amount=3000)
    subscription = factories.make_subscription(customer, price=price)
    if application is not None:
        Subscription.objects.filter(pk=subscription.pk).update(application=application)
    return subscription


def test_the_platform_cannot_cancel_a_subscription_it_did_not_create(member_client, connected):
    """SPEC R-CON-5: inside the connected account, the platform sees no actions on the account's
    own subscriptions, and posting one is refused with a clear message."""
    subscription = _connected_subscription(connected)
    switch_into(member_client, connected)
    detail = reverse("dashboard:subscription_detail", args=[subscription.pk])
    cancel = reverse("dashboard:subscription_action", args=[subscription.pk, "cancel"])

    assert member_client.get(detail).context["actions"] == []
    response = member_client.post(cancel)

    assert response.status_code == 302
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert "was not created by your platform" in message
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE


def test_the_platform_may_cancel_a_subscription_it_created_there(member_client, account, connected):
    """SPEC R-CON-5: what the platform created as the account, it may change."""
    subscription = _connected_subscription(connected, application=account)
    switch_into(member_client, connected)
    detail = reverse("dashboard:subscription_detail", args=[subscription.pk])
    cancel = reverse("dashboard:subscription_action", args=[subscription.pk, "cancel"])

    assert "cancel" in [a.slug for a in member_client.get(detail).context["actions"]]
    member_client.post(cancel)

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELED


def test_a_connected_accounts_own_members_may_change_anything(client, connected):
    """SPEC R-CON-5 binds the platform only: the account's own owner cancels its subscription."""
    subscription = _connected_subscription(connected)
    client.force_login(factories.make_member(connected, email="owner@shop.test"))

    client.post(reverse("dashboard:subscription_action", args=[subscription.pk, "cancel"]))

    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.CANCELED


def test_inside_a_connected_account_the_platform_is_offered_no_key_form(member_client, connected):
    """SPEC R-CON-7: keys made by the platform would outlive its access, so the settings page
    inside a connected account offers neither creating nor revoking them."""
    factories.make_api_key(connected)
    switch_into(member_client, connected)

    page = member_client.get(reverse("dashboard:settings"))

    body = page.content.decode()
    assert "Only the connected account's own team can create or revoke its keys." in text(page)
    assert reverse("dashboard:api_key_create") not in body
    assert "Revoke</button>" not in body


# ---------------------------------------------------------------------------------------------
# Who sees a connected account's own customers on its page (SPEC R-CON-1, R-CON-7)


@pytest.fixture
def shop_subscription(connected):
    """A direct subscription on `connected`, of a customer with a name and an email."""
    customer = factories.make_customer(connected, email="buyer@shop.test", name="Bea Buyer")
    return factories.make_subscription(customer)


def test_a_member_who_may_switch_in_sees_the_accounts_customers(
    member_client, connected, shop_subscription
):
    """SPEC R-CON-1: an owner may work inside the connected account, so its page names the
    customers of the subscriptions on it."""
    response = member_client.get(detail_url(connected))

    assert response.context["show_customers"] is True
    page = text(response)
    assert "buyer@shop.test" in page
    assert shop_subscription.pk in page


def test_a_read_only_member_sees_the_accounts_figures_but_not_who_its_customers_are(
    read_only_client, connected, arrangements
):
    """SPEC R-CON-1: read-only platform members cannot work inside the account; its customers
    are its own, so they see counts and amounts only, and the platform's own customers."""
    customer = factories.make_customer(connected, name="Bea Buyer")
    factories.make_subscription(customer)

    response = read_only_client.get(detail_url(connected))

    assert response.status_code == 200
    assert response.context["show_customers"] is False
    assert response.context["direct_total"] == 3
    page = text(response)
    assert "buyer@shop.test" not in page
    assert "Bea Buyer" not in page
    assert arrangements["direct_fee"].pk in page
    assert "$3.00" in page and "$9.00" in page
    assert "payer@acme.test" in page  # the platform's own customer


def test_after_disconnection_no_member_sees_who_the_accounts_customers_are(
    member_client, connected, shop_subscription
):
    """SPEC R-CON-7: once disconnected, the platform lost access to the account's data: even an
    owner sees its subscriptions' figures only."""
    connect_services.disconnect_account(connected)

    response = member_client.get(detail_url(connected))

    assert response.context["show_customers"] is False
    assert response.context["direct_total"] == 1
    page = text(response)
    assert "buyer@shop.test" not in page
    assert "Bea Buyer" not in page
    assert shop_subscription.pk in page
    assert "not shown while it is disconnected" in page


# ---------------------------------------------------------------------------------------------
# Webhook endpoints inside a connected account (SPEC R-CON-7)


@pytest.fixture
def shop_endpoint(connected):
    """The connected account's own endpoint, in test mode."""
    return webhook_services.create_webhook_endpoint(
        connected,
        livemode=False,
        url="https://hooks.shop.test/relance",
        enabled_events=["invoice.paid"],
    )


def webhook_form(**overrides):
    return {
        "url": "https://hooks.acme.test/spy",
        "description": "",
        "enabled_events": ["invoice.paid"],
        "retry_schedule": "",
        **overrides,
    }


def test_an_acting_owner_cannot_add_a_webhook_endpoint_inside_a_connected_account(
    member_client, connected
):
    """SPEC R-CON-7: an endpoint the platform added inside the account would keep receiving its
    events after it disconnects, so the form is not offered and posting it is refused."""
    switch_into(member_client, connected)

    page = member_client.get(reverse("dashboard:webhooks"))
    response = member_client.post(reverse("dashboard:webhooks"), webhook_form())

    assert page.status_code == 200
    assert 'id="new-endpoint"' not in page.content.decode()
    assert "Only the connected account's own team can add, change or delete" in text(page)
    assert response.status_code == 403
    assert not WebhookEndpoint.objects.filter(account=connected).exists()


def test_an_acting_owner_reads_the_accounts_endpoints_without_managing_them(
    member_client, connected, shop_endpoint
):
    """SPEC R-CON-7: the list and the endpoint's page stay readable inside the account, without
    edit, delete, test or enable/disable buttons or the signing secret; replaying stays."""
    switch_into(member_client, connected)

    listing = member_client.get(reverse("dashboard:webhooks"))
    response = member_client.get(reverse("dashboard:webhook_detail", args=[shop_endpoint.pk]))

    assert listing.status_code == 200
    assert [e.pk for e in listing.context["page"].items] == [shop_endpoint.pk]
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("dashboard:webhook_edit", args=[shop_endpoint.pk]) not in body
    assert reverse("dashboard:webhook_delete", args=[shop_endpoint.pk]) not in body
    for action in ("test", "disable", "roll-secret"):
        assert reverse("dashboard:webhook_action", args=[shop_endpoint.pk, action]) not in body
    assert shop_endpoint.secret not in body
    assert 'id="signing-secret"' not in body
    assert reverse("dashboard:webhook_action", args=[shop_endpoint.pk, "replay"]) in body


def test_an_acting_owner_cannot_edit_roll_disable_or_delete_an_endpoint(
    member_client, connected, shop_endpoint
):
    """SPEC R-CON-7: every change to the account's endpoints is refused to the platform (403)
    and changes nothing."""
    switch_into(member_client, connected)
    edit = reverse("dashboard:webhook_edit", args=[shop_endpoint.pk])
    delete = reverse("dashboard:webhook_delete", args=[shop_endpoint.pk])

    assert member_client.get(edit).status_code == 403
    edited = member_client.post(edit, webhook_form(url="https://hooks.acme.test/spy"))
    assert edited.status_code == 403
    for action in ("roll-secret", "disable", "enable", "test"):
        url = reverse("dashboard:webhook_action", args=[shop_endpoint.pk, action])
        assert member_client.post(url, {"overlap_hours": "0"}).status_code == 403, action
    assert member_client.get(delete).status_code == 403
    assert member_client.post(delete).status_code == 403

    endpoint = WebhookEndpoint.objects.get(pk=shop_endpoint.pk)
    assert endpoint.url == "https://hooks.shop.test/relance"
    assert endpoint.secret == shop_endpoint.secret
    assert endpoint.status == shop_endpoint.status
    assert not WebhookDelivery.objects.filter(endpoint=shop_endpoint).exists()


def test_the_connected_accounts_own_owner_still_manages_its_endpoints(client, connected):
    """SPEC R-CON-7 binds the platform only: the account's own owner adds, edits and deletes."""
    client_as(client, connected, Role.OWNER, email="owner@shop.test")

    created = client.post(reverse("dashboard:webhooks"), webhook_form())
    endpoint = WebhookEndpoint.objects.get(account=connected)
    edited = client.post(
        reverse("dashboard:webhook_edit", args=[endpoint.pk]),
        webhook_form(url="https://hooks.shop.test/v2"),
    )
    deleted = client.post(reverse("dashboard:webhook_delete", args=[endpoint.pk]))

    assert created.status_code == edited.status_code == deleted.status_code == 302
    assert not WebhookEndpoint.objects.filter(account=connected).exists()


# ---------------------------------------------------------------------------------------------
# Test clocks inside a connected account (SPEC R-CON-5)


def add_clock_customer(client, clock, price, email):
    return client.post(
        reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
        {
            "customer-email": email,
            "customer-card": "4242424242424242",
            "customer-price": price.pk,
        },
    )


def test_a_subscription_the_platform_creates_on_a_test_clock_inside_records_it(
    member_client, account, connected
):
    """SPEC R-CON-5: a subscription the platform creates from a test clock of the connected
    account records the platform as its `application`, so the platform may cancel it later."""
    clock = factories.make_test_clock(connected)
    price = factories.make_price(connected, unit_amount=3000)
    switch_into(member_client, connected)

    response = add_clock_customer(member_client, clock, price, "clock@shop.test")

    assert response.status_code == 302
    subscription = Subscription.objects.get(customer__email="clock@shop.test")
    assert subscription.account_id == connected.pk
    assert subscription.application_id == account.pk
    detail = member_client.get(reverse("dashboard:subscription_detail", args=[subscription.pk]))
    assert "cancel" in [a.slug for a in detail.context["actions"]]


def test_a_subscription_the_accounts_own_team_creates_on_a_test_clock_has_no_application(
    client, connected
):
    """SPEC R-CON-5: the connected account's own subscriptions name no platform."""
    clock = factories.make_test_clock(connected)
    price = factories.make_price(connected, unit_amount=3000)
    client_as(client, connected, Role.OWNER, email="owner@shop.test")

    assert add_clock_customer(client, clock, price, "own@shop.test").status_code == 302

    assert Subscription.objects.get(customer__email="own@shop.test").application_id is None
