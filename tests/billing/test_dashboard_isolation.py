"""Account and mode isolation on every dashboard page (SPEC R-CORE-3).

A member of account A never sees account B's objects; test-mode pages never show live data,
and live-mode pages never show test data. Detail URLs of the other side are 404s.
"""

import pytest
from django.urls import reverse

from billing.middleware import SESSION_LIVEMODE
from tests import factories

LISTS = {
    "customer": "dashboard:customers",
    "subscription": "dashboard:subscriptions",
    "invoice": "dashboard:invoices",
    "event": "dashboard:events",
}
DETAILS = {
    "customer": "dashboard:customer_detail",
    "subscription": "dashboard:subscription_detail",
    "invoice": "dashboard:invoice_detail",
    "event": "dashboard:event_detail",
}


@pytest.fixture
def foreign(other_account):
    """Account B's objects, in test mode like A's member; B's customer shares A's email."""
    customer = factories.make_customer(
        other_account, email="jenny.rosen@example.com", name="Globex Jenny"
    )
    return factories.make_dashboard_objects(customer)


@pytest.fixture
def live(account):
    """Account A's own live-mode objects."""
    customer = factories.make_customer(
        account, livemode=True, email="live.buyer@example.com", name="Live Buyer"
    )
    return factories.make_dashboard_objects(customer)


def switch_to_live(client):
    session = client.session
    session[SESSION_LIVEMODE] = True
    session.save()


@pytest.mark.parametrize("kind", LISTS)
def test_another_accounts_objects_never_appear_in_lists(member_client, foreign, kind):
    response = member_client.get(reverse(LISTS[kind]))
    assert response.status_code == 200
    assert foreign[kind].pk.encode() not in response.content


@pytest.mark.parametrize("kind", ["customer", "subscription", "invoice"])
def test_another_accounts_objects_never_appear_in_search(member_client, foreign, kind):
    for q in (foreign[kind].pk, "jenny.rosen@example.com", foreign["customer"].pk):
        response = member_client.get(reverse(LISTS[kind]), {"q": q})
        assert response.context["page"].items == [], q


def test_another_accounts_events_never_appear_when_filtering(member_client, foreign):
    response = member_client.get(
        reverse("dashboard:events"), {"type": "customer.*", "object_id": foreign["customer"].pk}
    )
    assert response.context["page"].items == []


@pytest.mark.parametrize("kind", [*DETAILS, "test_clock"])
def test_another_accounts_detail_pages_are_404(member_client, foreign, kind):
    name = DETAILS.get(kind, "dashboard:test_clock_detail")
    response = member_client.get(reverse(name, args=[foreign[kind].pk]))
    assert response.status_code == 404


def test_overview_counts_only_the_members_account(member_client, customer, foreign):
    response = member_client.get(reverse("dashboard:overview"))
    counts = {row["status"]: row["count"] for row in response.context["status_counts"]}
    assert counts["active"] == 0
    assert response.context["mrr"] == {}
    assert response.context["open_invoices"] == []
    assert list(response.context["recent_events"]) == []


def test_another_accounts_cursor_does_not_leak(member_client, customer, foreign):
    response = member_client.get(reverse("dashboard:customers"), {"after": foreign["customer"].pk})
    # The foreign cursor is unknown here: the first page, of A's own customers only.
    assert [c.pk for c in response.context["page"].items] == [customer.pk]


# -- Test and live mode (SPEC R-CORE-3) ---------------------------------------------------


@pytest.mark.parametrize("kind", LISTS)
def test_test_mode_lists_never_show_live_data(member_client, live, kind):
    response = member_client.get(reverse(LISTS[kind]))
    assert live[kind].pk.encode() not in response.content


@pytest.mark.parametrize("kind", LISTS)
def test_live_mode_lists_never_show_test_data(member_client, dashboard_objects, live, kind):
    switch_to_live(member_client)
    response = member_client.get(reverse(LISTS[kind]))
    assert live[kind].pk.encode() in response.content
    assert dashboard_objects[kind].pk.encode() not in response.content


@pytest.mark.parametrize("kind", DETAILS)
def test_live_detail_pages_are_404_in_test_mode(member_client, live, kind):
    response = member_client.get(reverse(DETAILS[kind], args=[live[kind].pk]))
    assert response.status_code == 404


@pytest.mark.parametrize("kind", DETAILS)
def test_test_detail_pages_are_404_in_live_mode(member_client, dashboard_objects, kind):
    switch_to_live(member_client)
    response = member_client.get(reverse(DETAILS[kind], args=[dashboard_objects[kind].pk]))
    assert response.status_code == 404


def test_search_in_test_mode_never_finds_live_customers(member_client, live):
    response = member_client.get(reverse("dashboard:customers"), {"q": "live.buyer"})
    assert response.context["page"].items == []


def test_switching_mode_shows_the_other_modes_data(member_client, dashboard_objects, live):
    url = reverse("dashboard:customers")
    assert dashboard_objects["customer"].pk.encode() in member_client.get(url).content
    member_client.post(reverse("dashboard:mode_switch"), {"next": url})
    page = member_client.get(url)
    assert live["customer"].pk.encode() in page.content
    assert dashboard_objects["customer"].pk.encode() not in page.content
    member_client.post(reverse("dashboard:mode_switch"), {"next": url})
    page = member_client.get(url)
    assert dashboard_objects["customer"].pk.encode() in page.content
    assert live["customer"].pk.encode() not in page.content


def test_overview_counts_only_the_current_mode(member_client, dashboard_objects, live):
    response = member_client.get(reverse("dashboard:overview"))
    counts = {row["status"]: row["count"] for row in response.context["status_counts"]}
    assert counts["active"] == 1
    assert [e.pk for e in response.context["recent_events"]] == [dashboard_objects["event"].pk]


def test_customer_detail_never_shows_related_rows_of_the_other_mode(member_client, customer):
    # Even a mis-linked row (a live card on a test customer) stays out of a test-mode page.
    from billing.models import PaymentMethod

    stray = PaymentMethod.objects.create(
        account=customer.account,
        livemode=True,
        customer=customer,
        card_last4="0005",
        card_exp_month=1,
        card_exp_year=2040,
    )
    response = member_client.get(reverse("dashboard:customer_detail", args=[customer.pk]))
    assert stray.pk.encode() not in response.content


def test_api_keys_list_only_the_current_mode(member_client, account):
    test_key = factories.make_api_key(account, livemode=False, name="Test one")
    live_key = factories.make_api_key(account, livemode=True, name="Live one")
    page = member_client.get(reverse("dashboard:settings"))
    assert test_key.redacted.encode() in page.content
    assert live_key.redacted.encode() not in page.content
    switch_to_live(member_client)
    page = member_client.get(reverse("dashboard:settings"))
    assert live_key.redacted.encode() in page.content
    assert test_key.redacted.encode() not in page.content


def test_test_clocks_page_in_live_mode_shows_no_clocks(member_client, dashboard_objects):
    switch_to_live(member_client)
    response = member_client.get(reverse("dashboard:test_clocks"))
    assert dashboard_objects["test_clock"].pk.encode() not in response.content
    assert b"test-mode tool" in response.content
