"""Dashboard lists: filters, search, htmx partial refresh, and a bounded number of queries."""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.choices import CollectionMethod, InvoiceStatus, SubscriptionStatus
from tests import factories


def ids(response):
    return [obj.pk for obj in response.context["page"].items]


# -- Customers ------------------------------------------------------------------------------


def test_customer_search_by_email_is_case_insensitive(member_client, account):
    jenny = factories.make_customer(account, email="jenny@rosen.test", name="Jenny")
    factories.make_customer(account, email="bob@builder.test", name="Bob")
    response = member_client.get(reverse("dashboard:customers"), {"q": "ROSEN"})
    assert ids(response) == [jenny.pk]


def test_customer_search_by_name(member_client, account):
    factories.make_customer(account, email="a@x.test", name="Alice Liddell")
    bob = factories.make_customer(account, email="b@x.test", name="Bob Builder")
    response = member_client.get(reverse("dashboard:customers"), {"q": "build"})
    assert ids(response) == [bob.pk]


def test_customer_search_by_exact_id(member_client, account):
    target = factories.make_customer(account, email="a@x.test")
    factories.make_customer(account, email="b@x.test")
    assert ids(member_client.get(reverse("dashboard:customers"), {"q": target.pk})) == [target.pk]
    # An id is matched exactly, not as a fragment.
    assert ids(member_client.get(reverse("dashboard:customers"), {"q": target.pk[:-1]})) == []


def test_deleted_customers_are_not_listed(member_client, account):
    gone = factories.make_customer(account, email="gone@x.test", deleted_at=timezone.now())
    assert gone.pk not in ids(member_client.get(reverse("dashboard:customers")))


def test_created_date_range_filters(member_client, account):
    now = timezone.now()
    old = factories.make_customer(account, email="old@x.test", created=now - timedelta(days=40))
    new = factories.make_customer(account, email="new@x.test", created=now)
    url = reverse("dashboard:customers")
    since = (now - timedelta(days=1)).date().isoformat()
    until = (now - timedelta(days=30)).date().isoformat()
    assert ids(member_client.get(url, {"created_from": since})) == [new.pk]
    assert ids(member_client.get(url, {"created_to": until})) == [old.pk]


def test_invalid_filter_is_reported_inline_and_ignored(member_client, customer):
    response = member_client.get(reverse("dashboard:customers"), {"created_from": "yesterday"})
    assert response.status_code == 200
    assert b'id="error-created_from"' in response.content
    assert ids(response) == [customer.pk]


def test_reversed_date_range_is_reported(member_client, customer):
    response = member_client.get(
        reverse("dashboard:customers"), {"created_from": "2025-02-01", "created_to": "2025-01-01"}
    )
    assert b'id="error-created_to"' in response.content


# -- Subscriptions ---------------------------------------------------------------------------


def test_subscriptions_filter_by_status(member_client, customer):
    active = factories.make_subscription(customer, status=SubscriptionStatus.ACTIVE)
    past_due = factories.make_subscription(customer, status=SubscriptionStatus.PAST_DUE)
    url = reverse("dashboard:subscriptions")
    assert ids(member_client.get(url, {"status": "past_due"})) == [past_due.pk]
    assert ids(member_client.get(url, {"status": "active"})) == [active.pk]
    assert set(ids(member_client.get(url))) == {active.pk, past_due.pk}


def test_subscriptions_search_by_customer_email(member_client, account, customer):
    mine = factories.make_subscription(customer)
    other = factories.make_customer(account, email="someone@else.test")
    factories.make_subscription(other)
    response = member_client.get(reverse("dashboard:subscriptions"), {"q": "jenny.rosen"})
    assert ids(response) == [mine.pk]


def test_subscriptions_search_by_subscription_or_customer_id(member_client, account, customer):
    mine = factories.make_subscription(customer)
    factories.make_subscription(factories.make_customer(account, email="z@z.test"))
    url = reverse("dashboard:subscriptions")
    assert ids(member_client.get(url, {"q": mine.pk})) == [mine.pk]
    assert ids(member_client.get(url, {"q": customer.pk})) == [mine.pk]


def test_unknown_status_is_an_inline_error(member_client, customer):
    response = member_client.get(reverse("dashboard:subscriptions"), {"status": "bogus"})
    assert response.status_code == 200
    assert b'id="error-status"' in response.content


# -- Invoices --------------------------------------------------------------------------------


def test_invoices_filter_by_status_and_collection_method(member_client, customer):
    open_auto = factories.make_invoice(customer, status=InvoiceStatus.OPEN)
    paid = factories.make_invoice(customer, status=InvoiceStatus.PAID)
    open_sent = factories.make_invoice(
        customer, status=InvoiceStatus.OPEN, collection_method=CollectionMethod.SEND_INVOICE
    )
    url = reverse("dashboard:invoices")
    assert ids(member_client.get(url, {"status": "paid"})) == [paid.pk]
    assert ids(member_client.get(url, {"status": "open"})) == [open_sent.pk, open_auto.pk]
    only_sent = member_client.get(url, {"status": "open", "collection_method": "send_invoice"})
    assert ids(only_sent) == [open_sent.pk]


def test_invoices_search_by_customer_email_and_number(member_client, account, customer):
    mine = factories.make_invoice(customer, number="ACME-0001")
    factories.make_invoice(factories.make_customer(account, email="other@x.test"))
    url = reverse("dashboard:invoices")
    assert ids(member_client.get(url, {"q": "jenny"})) == [mine.pk]
    assert ids(member_client.get(url, {"q": "ACME-0001"})) == [mine.pk]


# -- Events ----------------------------------------------------------------------------------


def test_events_filter_by_exact_type(member_client, account):
    paid = factories.make_event(account, type="invoice.paid")
    factories.make_event(account, type="customer.created")
    response = member_client.get(reverse("dashboard:events"), {"type": "invoice.paid"})
    assert ids(response) == [paid.pk]


def test_events_filter_by_type_family(member_client, account):
    paid = factories.make_event(account, type="invoice.paid")
    created = factories.make_event(account, type="invoice.created")
    factories.make_event(account, type="customer.created")
    response = member_client.get(reverse("dashboard:events"), {"type": "invoice.*"})
    assert set(ids(response)) == {paid.pk, created.pk}


def test_events_filter_by_object(member_client, account, customer):
    mine = factories.make_event(account, obj=customer)
    factories.make_event(account)
    response = member_client.get(reverse("dashboard:events"), {"object_id": customer.pk})
    assert ids(response) == [mine.pk]


def test_event_detail_shows_pretty_json(member_client, account, customer):
    event = factories.make_event(account, obj=customer)
    response = member_client.get(reverse("dashboard:event_detail", args=[event.pk]))
    text = html.unescape(response.content.decode())
    assert f'"id": "{customer.pk}"' in text
    assert '\n  "object": {' in text


# -- htmx ------------------------------------------------------------------------------------


def test_htmx_filter_request_returns_only_the_table(member_client, customer):
    paid = factories.make_invoice(customer, status=InvoiceStatus.PAID)
    factories.make_invoice(customer, status=InvoiceStatus.OPEN)
    response = member_client.get(
        reverse("dashboard:invoices"),
        {"status": "paid"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body and "sidebar" not in body
    assert ids(response) == [paid.pk]
    assert "HX-Request" in response["Vary"]


def test_htmx_pushes_a_url_with_only_the_filters_that_are_set(member_client, customer):
    response = member_client.get(
        reverse("dashboard:invoices"),
        {"q": "", "status": "paid", "collection_method": "", "created_from": ""},
        headers={"HX-Request": "true", "HX-Target": "results"},
    )
    assert response["HX-Push-Url"] == "/invoices/?status=paid"


def test_full_page_without_htmx_has_the_filter_form_wired_for_htmx(member_client, customer):
    body = member_client.get(reverse("dashboard:invoices")).content.decode()
    assert "<html" in body
    assert 'hx-get="/invoices/"' in body and 'hx-target="#results"' in body
    assert 'method="get" action="/invoices/"' in body  # works without JS too


def test_htmx_history_restore_gets_the_full_page(member_client, customer):
    response = member_client.get(
        reverse("dashboard:invoices"),
        headers={
            "HX-Request": "true",
            "HX-Target": "results",
            "HX-History-Restore-Request": "true",
        },
    )
    assert b"<html" in response.content


# -- Bounded queries -------------------------------------------------------------------------


def fill(account, rows):
    for i in range(rows):
        customer = factories.make_customer(account, email=f"c{i}@x.test")
        subscription = factories.make_subscription(customer)
        factories.make_invoice(customer, subscription=subscription)
        factories.make_event(account, obj=customer)


@pytest.mark.parametrize(
    "name",
    [
        "dashboard:customers",
        "dashboard:subscriptions",
        "dashboard:invoices",
        "dashboard:events",
        "dashboard:test_clocks",
        "dashboard:overview",
    ],
)
def test_list_pages_issue_a_bounded_number_of_queries(
    member_client, account, settings, django_assert_max_num_queries, name
):
    settings.DASHBOARD_PAGE_SIZE = 5
    fill(account, 3)
    with django_assert_max_num_queries(12) as few:
        member_client.get(reverse(name))
    fill(account, 9)
    with django_assert_max_num_queries(len(few.captured_queries)):
        member_client.get(reverse(name))


def test_lists_never_count_the_whole_table(
    member_client, account, settings, django_assert_max_num_queries
):
    settings.DASHBOARD_PAGE_SIZE = 5
    fill(account, 6)
    for name in ("dashboard:customers", "dashboard:invoices", "dashboard:events"):
        with django_assert_max_num_queries(12) as queries:
            member_client.get(reverse(name))
        sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
        assert "COUNT(" not in sql, name
        assert "OFFSET" not in sql, name
