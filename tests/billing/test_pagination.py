"""Keyset pagination (billing.pagination): every row once, ties on `created` included."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import Customer
from billing.pagination import InvalidCursor, keyset_page
from tests import factories


def make_customers(account, count, *, ties_every=3, livemode=False):
    """`count` customers whose `created` repeats in runs of `ties_every` (like a bulk import)."""
    base = timezone.now().replace(microsecond=0) - timedelta(days=1)
    return [
        factories.make_customer(
            account,
            livemode=livemode,
            email=f"c{i:03d}@example.com",
            name=f"Customer {i:03d}",
            created=base + timedelta(seconds=i // ties_every),
        )
        for i in range(count)
    ]


def expected_order(customers):
    """Newest first; ties on `created` in the database's own id order (collations differ)."""
    pks = [c.pk for c in customers]
    order = list(
        Customer.objects.filter(pk__in=pks).order_by("-created", "-pk").values_list("pk", flat=True)
    )
    assert sorted(order) == sorted(pks)
    created = [c.created for c in sorted(customers, key=lambda c: order.index(c.pk))]
    assert created == sorted(created, reverse=True)
    return order


def walk_older(queryset, limit):
    ids, cursor, pages = [], None, 0
    while True:
        page = keyset_page(queryset, after=cursor, limit=limit)
        ids += [c.pk for c in page.items]
        pages += 1
        if not page.has_more:
            return ids, pages
        cursor = page.next_cursor


def test_following_older_visits_every_row_once_in_order(account):
    customers = make_customers(account, 60)
    ids, pages = walk_older(Customer.objects.filter(account=account), 25)
    assert pages == 3
    assert ids == expected_order(customers)


def test_a_page_boundary_inside_a_run_of_equal_created_neither_repeats_nor_skips(account):
    # All 10 share one `created`: only the id tells them apart.
    customers = make_customers(account, 10, ties_every=10)
    ids, _ = walk_older(Customer.objects.filter(account=account), 3)
    assert ids == expected_order(customers)
    assert len(set(ids)) == 10


def test_following_newer_walks_back_to_the_first_page(account):
    customers = make_customers(account, 60)
    queryset = Customer.objects.filter(account=account)
    order = expected_order(customers)
    last = keyset_page(queryset, after=order[49], limit=25)
    assert [c.pk for c in last.items] == order[50:]
    assert last.has_previous and not last.has_more

    middle = keyset_page(queryset, before=last.previous_cursor, limit=25)
    assert [c.pk for c in middle.items] == order[25:50]
    assert middle.has_more and middle.has_previous

    first = keyset_page(queryset, before=middle.previous_cursor, limit=25)
    assert [c.pk for c in first.items] == order[:25]
    assert first.has_more and not first.has_previous
    assert first.previous_cursor is None


def test_first_page_has_no_previous_and_last_page_no_more(account):
    make_customers(account, 5)
    page = keyset_page(Customer.objects.filter(account=account), limit=25)
    assert len(page.items) == 5
    assert not page.has_more and not page.has_previous
    assert page.next_cursor is None and page.previous_cursor is None


def test_empty_queryset_gives_an_empty_page(account):
    page = keyset_page(Customer.objects.filter(account=account), limit=25)
    assert page.items == [] and not page.has_more and not page.has_previous


def test_unknown_cursor_is_refused(account):
    with pytest.raises(InvalidCursor):
        keyset_page(Customer.objects.filter(account=account), after="cus_nope", limit=10)


def test_cursor_of_another_account_is_refused(account, other_account):
    foreign = factories.make_customer(other_account)
    with pytest.raises(InvalidCursor):
        keyset_page(Customer.objects.filter(account=account), after=foreign.pk, limit=10)


def test_cursor_lookup_can_use_the_unfiltered_queryset(account):
    customers = make_customers(account, 6, ties_every=1)
    order = expected_order(customers)
    base = Customer.objects.filter(account=account)
    # The cursor row no longer matches the filter, yet still marks the position.
    filtered = base.exclude(pk=order[1])
    page = keyset_page(filtered, after=order[1], limit=10, cursor_queryset=base)
    assert [c.pk for c in page.items] == order[2:]
    assert page.has_previous  # order[0] is still newer


def test_after_and_before_together_are_refused(account):
    with pytest.raises(ValueError, match="at most one"):
        keyset_page(Customer.objects.all(), after="cus_a", before="cus_b", limit=10)


def test_limit_must_be_positive(account):
    with pytest.raises(ValueError, match="limit"):
        keyset_page(Customer.objects.all(), limit=0)


def test_a_page_costs_a_bounded_number_of_queries(account, django_assert_max_num_queries):
    customers = make_customers(account, 60)
    cursor = expected_order(customers)[24]
    with django_assert_max_num_queries(3):
        keyset_page(Customer.objects.filter(account=account), after=cursor, limit=25)


def test_dashboard_older_links_visit_every_customer_once(member_client, account, settings):
    settings.DASHBOARD_PAGE_SIZE = 25
    customers = make_customers(account, 60)
    url, seen, pages = reverse("dashboard:customers"), [], 0
    while url:
        response = member_client.get(url)
        assert response.status_code == 200
        seen += [c.pk for c in response.context["page"].items]
        pages += 1
        older = re.search(rb'href="([^"]+)"[^>]*>Older', response.content)
        url = older.group(1).decode().replace("&amp;", "&") if older else None
    assert pages == 3
    assert seen == expected_order(customers)


def test_dashboard_newer_link_goes_back(member_client, account, settings):
    settings.DASHBOARD_PAGE_SIZE = 25
    customers = make_customers(account, 60)
    order = expected_order(customers)
    response = member_client.get(reverse("dashboard:customers") + f"?after={order[24]}")
    newer = re.search(rb'href="([^"]+)"[^>]*>\xe2\x86\x90 Newer', response.content)
    back = member_client.get(newer.group(1).decode().replace("&amp;", "&"))
    assert [c.pk for c in back.context["page"].items] == order[:25]


def test_dashboard_page_links_keep_the_filters(member_client, account, settings):
    settings.DASHBOARD_PAGE_SIZE = 2
    make_customers(account, 5)
    response = member_client.get(reverse("dashboard:customers") + "?q=example.com")
    older = re.search(rb'href="([^"]+)"[^>]*>Older', response.content).group(1).decode()
    assert "q=example.com" in older and "after=cus_" in older


def test_dashboard_ignores_a_stale_cursor(member_client, account):
    make_customers(account, 3)
    response = member_client.get(reverse("dashboard:customers") + "?after=cus_gone")
    assert response.status_code == 200
    assert len(response.context["page"].items) == 3
