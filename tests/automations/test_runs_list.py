"""The runs list (pages, filters, account and mode scoping) and an automation's latest runs.

SPEC R-AUTO-8: runs are visible (every one of them, a page at a time) and cancellable.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from automations import services
from automations.choices import RunStatus, StepStatus
from automations.models import AutomationRun, RunStep
from billing.middleware import SESSION_LIVEMODE
from tests import factories
from tests.automations.conftest import memo

BASE = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
URL = reverse("automations:runs")


def make_automation(account, name="Flow", livemode=False):
    return services.save_automation(
        account=account,
        livemode=livemode,
        name=name,
        trigger="customer_created",
        filters=[],
        actions_=[memo()],
    )


def make_runs(automation, count, *, customer=None, status=RunStatus.RUNNING, start=0):
    """`count` runs, one minute apart from minute `start` after BASE, each with two steps."""
    runs = []
    for i in range(start, start + count):
        started = BASE + timedelta(minutes=i)
        run = AutomationRun.objects.create(
            account=automation.account,
            livemode=automation.livemode,
            automation=automation,
            trigger=automation.trigger,
            object_id=customer.pk if customer else f"cus_gone{i}",
            customer=customer,
            status=status,
            started_at=started,
            ended_at=None if status == RunStatus.RUNNING else started,
        )
        for position in range(2):
            RunStep.objects.create(
                run=run,
                position=position,
                kind="email_team_member",
                due_at=started,
                status=StepStatus.WAITING,
            )
        runs.append(run)
    return runs


def newest_first(runs):
    return [run.pk for run in sorted(runs, key=lambda r: (r.started_at, r.pk), reverse=True)]


def ids(response):
    return [run.pk for run in response.context["page"].items]


def older_link(response):
    match = re.search(rb'href="([^"]+)"[^>]*>Older', response.content)
    return match.group(1).decode().replace("&amp;", "&") if match else None


# -- Pages --------------------------------------------------------------------------------------


def test_older_runs_are_reached_through_the_older_link_each_once(member_client, account, settings):
    """SPEC R-AUTO-8: no run is out of sight; every one is on exactly one page, newest first."""
    settings.DASHBOARD_PAGE_SIZE = 4
    runs = make_runs(make_automation(account), 10)
    url, seen, pages = URL, [], 0
    while url:
        response = member_client.get(url)
        assert response.status_code == 200
        seen += ids(response)
        pages += 1
        url = older_link(response)
    assert pages == 3
    assert seen == newest_first(runs)


def test_the_older_link_keeps_the_filters(member_client, account, settings):
    """SPEC R-AUTO-8: paging through the failed runs stays on the failed runs."""
    settings.DASHBOARD_PAGE_SIZE = 2
    automation = make_automation(account)
    failed = make_runs(automation, 3, status=RunStatus.FAILED)
    make_runs(automation, 3, start=10)
    first = member_client.get(URL, {"status": "failed"})
    link = older_link(first)
    assert "status=failed" in link and "after=arun_" in link
    assert ids(first) + ids(member_client.get(link)) == newest_first(failed)


def test_a_bad_cursor_falls_back_to_the_first_page(member_client, account, settings):
    """SPEC R-AUTO-8: a stale link still shows runs (the newest), not an error."""
    settings.DASHBOARD_PAGE_SIZE = 2
    runs = make_runs(make_automation(account), 3)
    for cursor in ("after=arun_gone", "before=nonsense"):
        response = member_client.get(f"{URL}?{cursor}")
        assert response.status_code == 200
        assert ids(response) == newest_first(runs)[:2]


def test_another_account_s_run_is_not_a_cursor(member_client, account, other_account):
    """SPEC R-AUTO-8 / R-CORE-3: a foreign run's id as cursor is unknown: the first page."""
    mine = make_runs(make_automation(account), 2)
    foreign = make_runs(make_automation(other_account), 1, start=-5)
    response = member_client.get(URL, {"after": foreign[0].pk})
    assert ids(response) == newest_first(mine)


def test_the_page_costs_as_many_queries_with_many_runs_as_with_few(
    member_client, account, settings, django_assert_max_num_queries
):
    """SPEC R-AUTO-8: automations, customers and steps are fetched per page, not per run."""
    settings.DASHBOARD_PAGE_SIZE = 25
    automations = [make_automation(account, name=f"Flow {i}") for i in range(3)]
    customer = factories.make_customer(account, email="few@x.test")
    make_runs(automations[0], 2, customer=customer)
    with django_assert_max_num_queries(20) as few:
        assert len(ids(member_client.get(URL))) == 2
    for i, automation in enumerate(automations):
        other = factories.make_customer(account, email=f"many{i}@x.test")
        make_runs(automation, 10, customer=other, start=100 + 20 * i)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(ids(member_client.get(URL))) == 25
    # Filtered pages too, and the second page (which looks its cursor up).
    with django_assert_max_num_queries(len(few.captured_queries) + 2):
        response = member_client.get(URL, {"status": "running", "q": "x.test"})
    with django_assert_max_num_queries(len(few.captured_queries) + 2):
        member_client.get(older_link(response))


def test_the_list_never_counts_or_offsets(
    member_client, account, settings, django_assert_max_num_queries
):
    """SPEC R-AUTO-8: keyset pages, whatever the number of runs."""
    settings.DASHBOARD_PAGE_SIZE = 2
    make_runs(make_automation(account), 5)
    with django_assert_max_num_queries(20) as queries:
        member_client.get(URL)
    sql = " ".join(q["sql"].upper() for q in queries.captured_queries)
    assert "OFFSET" not in sql
    assert "COUNT(" not in sql


def test_an_htmx_filter_change_returns_only_the_results(member_client, account):
    """SPEC R-AUTO-8: the filter form swaps the results in place and updates the address."""
    automation = make_automation(account)
    make_runs(automation, 2)
    response = member_client.get(
        URL, {"status": "running"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="results"
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="results"')
    assert 'class="filters' not in body
    assert automation.name in body
    assert response["HX-Push-Url"] == f"{URL}?status=running"


def test_the_whole_page_has_the_filters_and_links_to_each_run(member_client, account):
    """SPEC R-AUTO-8: each run links to its page, where it can be canceled."""
    automation = make_automation(account)
    (run,) = make_runs(automation, 1)
    html = member_client.get(URL).content.decode()
    assert 'class="filters card"' in html
    assert 'id="results"' in html
    assert reverse("automations:run", args=[run.pk]) in html
    assert reverse("automations:detail", args=[automation.pk]) in html
    run_page = member_client.get(reverse("automations:run", args=[run.pk])).content.decode()
    assert "Cancel run" in run_page


def test_no_runs_shows_the_empty_state(member_client, account):
    """SPEC R-AUTO-8"""
    html = member_client.get(URL).content.decode()
    assert "No runs yet" in html
    html = member_client.get(URL, {"status": "failed"}).content.decode()
    assert "No matches" in html


# -- Filters ------------------------------------------------------------------------------------


def test_the_status_filter_shows_only_runs_of_that_status(member_client, account):
    """SPEC R-AUTO-8"""
    automation = make_automation(account)
    running = make_runs(automation, 2)
    canceled = make_runs(automation, 2, status=RunStatus.CANCELED, start=10)
    assert ids(member_client.get(URL, {"status": "canceled"})) == newest_first(canceled)
    assert ids(member_client.get(URL, {"status": "running"})) == newest_first(running)


def test_an_unknown_status_is_reported_and_ignored(member_client, account):
    """SPEC R-AUTO-8"""
    runs = make_runs(make_automation(account), 2)
    response = member_client.get(URL, {"status": "exploded"})
    assert response.status_code == 200
    assert "status" in response.context["form"].errors
    assert ids(response) == newest_first(runs)


def test_the_automation_filter_shows_only_that_automation_s_runs(member_client, account):
    """SPEC R-AUTO-8"""
    first, second = make_automation(account, name="First"), make_automation(account, name="Second")
    mine = make_runs(first, 2)
    make_runs(second, 2, start=10)
    response = member_client.get(URL, {"automation": first.pk})
    assert ids(response) == newest_first(mine)
    assert response.context["form"].is_filtered


def test_the_automation_filter_offers_only_this_account_s_automations_in_this_mode(
    member_client, account, other_account
):
    """SPEC R-AUTO-8 / R-CORE-3"""
    mine = make_automation(account, name="Mine")
    make_automation(account, name="Live one", livemode=True)
    make_automation(other_account, name="Theirs")
    html = member_client.get(URL).content.decode()
    select = html[html.index('name="automation"') :]
    select = select[: select.index("</select>")]
    assert f'value="{mine.pk}"' in select
    assert "Live one" not in select and "Theirs" not in select


def test_another_account_s_automation_in_the_filter_is_invalid_and_shows_none_of_its_runs(
    member_client, account, other_account
):
    """SPEC R-AUTO-8 / R-CORE-3: the filter is reported invalid and ignored; the list stays
    this account's."""
    mine = make_runs(make_automation(account), 2)
    foreign_automation = make_automation(other_account, name="Theirs")
    foreign = make_runs(foreign_automation, 2, start=10)
    response = member_client.get(URL, {"automation": foreign_automation.pk})
    assert response.status_code == 200
    assert "automation" in response.context["form"].errors
    assert ids(response) == newest_first(mine)
    assert not {run.pk for run in foreign} & set(ids(response))
    assert "Theirs" not in response.content.decode()


def test_the_other_mode_s_automation_in_the_filter_is_invalid(member_client, account):
    """SPEC R-AUTO-8 / R-CORE-3"""
    mine = make_runs(make_automation(account), 1)
    live = make_automation(account, name="Live", livemode=True)
    make_runs(live, 2, start=10)
    response = member_client.get(URL, {"automation": live.pk})
    assert "automation" in response.context["form"].errors
    assert ids(response) == newest_first(mine)


def test_search_finds_runs_by_customer_email_or_id(member_client, account):
    """SPEC R-AUTO-8"""
    automation = make_automation(account)
    jenny = factories.make_customer(account, email="jenny@rosen.test")
    bob = factories.make_customer(account, email="bob@builder.test")
    jennys = make_runs(automation, 2, customer=jenny)
    bobs = make_runs(automation, 1, customer=bob, start=10)
    assert ids(member_client.get(URL, {"q": "ROSEN"})) == newest_first(jennys)
    assert ids(member_client.get(URL, {"q": bob.pk})) == newest_first(bobs)
    assert ids(member_client.get(URL, {"q": bobs[0].pk})) == [bobs[0].pk]
    # An id is matched exactly, not as a fragment.
    assert ids(member_client.get(URL, {"q": bob.pk[:-1]})) == []


def test_the_start_date_filters_by_when_runs_started(member_client, account):
    """SPEC R-AUTO-8"""
    automation = make_automation(account)
    early = make_runs(automation, 1)
    late = make_runs(automation, 1, start=3 * 24 * 60)
    day_after = (BASE + timedelta(days=1)).date().isoformat()
    assert ids(member_client.get(URL, {"created_from": day_after})) == [late[0].pk]
    assert ids(member_client.get(URL, {"created_to": BASE.date().isoformat()})) == [early[0].pk]
    response = member_client.get(URL, {"created_from": day_after, "created_to": "2026-01-01"})
    assert "Started from" in response.context["form"].errors["created_to"][0]


# -- Scoping ------------------------------------------------------------------------------------


def test_another_account_s_runs_never_appear(member_client, account, other_account):
    """SPEC R-AUTO-8 / R-CORE-3"""
    mine = make_runs(make_automation(account), 2)
    foreign = make_automation(other_account, name="Theirs")
    make_runs(foreign, 3, start=10)
    for params in ({}, {"status": "running"}, {"q": "cus_gone11"}):
        response = member_client.get(URL, params)
        assert set(ids(response)) <= {run.pk for run in mine}
        assert "Theirs" not in response.content.decode()


def test_the_other_mode_s_runs_never_appear(member_client, account):
    """SPEC R-AUTO-8 / R-CORE-3: test-mode pages show test runs, live-mode pages live runs."""
    test_runs = make_runs(make_automation(account, name="Test flow"), 2)
    live_runs = make_runs(make_automation(account, name="Live flow", livemode=True), 2, start=10)
    assert ids(member_client.get(URL)) == newest_first(test_runs)
    session = member_client.session
    session[SESSION_LIVEMODE] = True
    session.save()
    response = member_client.get(URL)
    assert ids(response) == newest_first(live_runs)
    assert "Test flow" not in response.content.decode()


# -- An automation's page -----------------------------------------------------------------------


def test_the_automation_page_shows_its_latest_runs_and_links_to_all(member_client, account):
    """SPEC R-AUTO-8: the latest few here, every one on the runs list filtered by it."""
    automation = make_automation(account)
    runs = make_runs(automation, 14)
    response = member_client.get(reverse("automations:detail", args=[automation.pk]))
    html = response.content.decode()
    shown = re.findall(r'data-run="([^"]+)"', html)
    assert shown == newest_first(runs)[:10]
    link = re.search(r'<a id="all-runs" href="([^"]+)">All runs of this automation</a>', html)
    all_runs = member_client.get(link.group(1).replace("&amp;", "&"))
    assert all_runs.context["form"].cleaned_data["automation"] == automation


def test_the_automation_page_counts_every_running_run_not_only_those_shown(member_client, account):
    """SPEC R-AUTO-8: the running count covers the runs beyond the latest few."""
    automation = make_automation(account)
    make_runs(automation, 12)
    make_runs(automation, 3, status=RunStatus.COMPLETED, start=100)
    make_runs(make_automation(account, name="Other"), 4, start=200)
    html = member_client.get(reverse("automations:detail", args=[automation.pk])).content.decode()
    assert '<span class="muted small" id="running-count">12 running</span>' in html
    assert len(re.findall(r'data-run="', html)) == 10


@pytest.mark.parametrize("count", [0, 1])
def test_the_automation_page_links_to_its_runs_even_with_few(member_client, account, count):
    """SPEC R-AUTO-8"""
    automation = make_automation(account)
    make_runs(automation, count)
    html = member_client.get(reverse("automations:detail", args=[automation.pk])).content.decode()
    assert f"{URL}?automation={automation.pk}" in html
    assert f"{count} running" in html
