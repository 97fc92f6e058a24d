"""A test clock's crowd of jobs due at one instant, run side by side by helpers (SPEC
R-CLOCK-2): the same rows and events as one process running them, each job once."""

import logging
import queue
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from billing import tasks, timeline
from billing.choices import JobStatus
from billing.models import DueJob, Event, Invoice
from billing.services import subscriptions as subs
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories
from tests.billing.test_batching import (
    START,
    _advance,
    _customer,
    _first_difference,
    _history,
    _population,
    _renewals,
)


def _advance_with_helpers(clock, helpers="relance", **delta):
    """Mark the clock advancing (the worker's task would start after commit), then advance it
    here, as that task does, with `helpers`."""
    clock.refresh_from_db()
    advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
    timeline.advance_clock(clock.pk, helpers=helpers)
    clock.refresh_from_db()
    assert clock.status == "ready"


def _same_histories(batched: dict, alone: dict) -> None:
    assert list(batched) == list(alone)
    for email in alone:
        assert batched[email] == alone[email], (
            email,
            _first_difference(batched[email], alone[email]),
        )


def test_helpers_that_run_their_batches_first_write_what_one_process_writes(
    account, other_account, monkeypatch
):
    # django-q2 runs tasks inline in tests: each batch handed to a helper runs as it is
    # queued, before the advancing process (working from the back) reaches it.
    monkeypatch.setattr(timeline, "BATCH_SIZE", 3)
    _advance(_population(other_account), days=75)
    alone = _history(other_account)
    handed = []
    real = tasks.run_clock_jobs
    monkeypatch.setattr(
        tasks, "run_clock_jobs", lambda *args: handed.append(real(*args)) or handed[-1]
    )
    _advance_with_helpers(_population(account), days=75)
    _same_histories(_history(account), alone)
    # Crowds were split and handed out, and the helpers did run batches.
    assert len(handed) > 1 and sum(handed) > 0


def test_helpers_that_come_late_find_their_batches_done(account, other_account, monkeypatch):
    monkeypatch.setattr(timeline, "BATCH_SIZE", 3)
    _advance(_population(other_account), days=75)
    alone = _history(other_account)
    queued = []

    import django_q.tasks

    real_async_task = django_q.tasks.async_task

    def hold(func, *args, **options):
        if func != "billing.tasks.run_clock_jobs":
            return real_async_task(func, *args, **options)
        queued.append((func, args, options))

    monkeypatch.setattr(django_q.tasks, "async_task", hold)
    _advance_with_helpers(_population(account), days=75)
    assert queued
    assert {options["cluster"] for _, _, options in queued} == {"relance"}
    assert all(1 <= len(args[2]) <= 3 for _, args, _ in queued)
    ran_late = [tasks.run_clock_jobs(*args) for _, args, _ in queued]
    assert ran_late == [0] * len(queued)
    _same_histories(_history(account), alone)


def test_without_helpers_a_crowd_runs_in_batches_of_the_batch_size(account, monkeypatch):
    monkeypatch.setattr(timeline, "BATCH_SIZE", 4)
    clock = _renewals(account, 10)
    sizes = []
    real = timeline.run_many
    monkeypatch.setattr(timeline, "run_many", lambda ids: sizes.append(len(ids)) or real(ids))
    _advance(clock, days=31, hours=2)
    assert max(sizes) <= 4
    assert (
        Invoice.objects.filter(test_clock=clock, billing_reason="subscription_cycle").count() == 10
    )


def _advance_beside_helper_threads(clock, monkeypatch, threads: int, **delta) -> list:
    """Advance `clock` while `threads` helper threads run the batches handed to them, as a
    cluster's workers would; the counts of jobs each batch they took ran."""
    import django_q.tasks
    from django_q.conf import Conf

    # Tasks are queued, not run inline: the advance the service queues after its commit is
    # left in the queue (no cluster here), and this test advances the clock itself.
    monkeypatch.setattr(Conf, "SYNC", False)
    handed = queue.Queue()
    ran, errors = [], []

    def helper():
        try:
            while (task := handed.get()) is not None:
                ran.append(tasks.run_clock_jobs(*task))
        except Exception as error:  # surfaced below; a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connections.close_all()

    real_async_task = django_q.tasks.async_task

    def hand(func, *args, **options):
        if func != "billing.tasks.run_clock_jobs":
            return real_async_task(func, *args, **options)
        handed.put(args)

    monkeypatch.setattr(django_q.tasks, "async_task", hand)
    helpers = [threading.Thread(target=helper) for _ in range(threads)]
    for thread in helpers:
        thread.start()
    try:
        _advance_with_helpers(clock, **delta)
    finally:
        for _ in helpers:
            handed.put(None)
        for thread in helpers:
            thread.join()
    assert errors == []
    return ran


@pytest.mark.django_db(transaction=True)
def test_a_helper_running_beside_the_advancing_process_runs_each_job_once(account, monkeypatch):
    # DESIGN "Time and due work": a batch locks its jobs' rows and skips the ones already run,
    # so a helper and the advancing process taking batches from both ends run each job once.
    monkeypatch.setattr(timeline, "BATCH_SIZE", 3)
    clock = _renewals(account, 24)
    ran = _advance_beside_helper_threads(clock, monkeypatch, 1, days=31, hours=2)
    assert ran  # the helper was handed batches (how many it ran first depends on timing)
    renewals = Invoice.objects.filter(test_clock=clock, billing_reason="subscription_cycle")
    assert renewals.count() == 24
    assert renewals.values("subscription_id").distinct().count() == 24
    done = DueJob.objects.filter(test_clock=clock, status=JobStatus.DONE)
    assert set(done.values_list("attempts", flat=True)) == {1}
    paid = [
        event
        for event in Event.objects.filter(type="invoice.paid")
        if event.data["object"]["billing_reason"] == "subscription_cycle"
    ]
    assert len(paid) == 24


@pytest.mark.django_db(transaction=True)
def test_batches_sharing_customers_side_by_side_never_deadlock(account, monkeypatch, caplog):
    # Each customer has subscriptions in several batches of the same crowd: every loader locks
    # its customers first, in key order (`batching.lock_in_order`), so batches run beside one
    # another wait for each other instead of deadlocking (a deadlock rolls a batch back and
    # runs its jobs one by one, which the log would say).
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's")
    monkeypatch.setattr(timeline, "BATCH_SIZE", 2)
    clock = create_test_clock(account, frozen_time=START, name="shared customers")
    prices = [factories.make_price(account, unit_amount=1000 + n) for n in range(2)]
    customers = [_customer(account, clock, n) for n in range(6)]
    # Batches of two in opposite orders: (c0, c1), (c1, c0), (c2, c3), (c3, c2), …
    order = [
        customers[index] for pair in range(0, 6, 2) for index in (pair, pair + 1, pair + 1, pair)
    ]
    for price in prices:
        for customer in order:
            subs.create_subscription(customer, items=[{"price": price}])
    with caplog.at_level(logging.ERROR, logger="billing.timeline"):
        _advance_beside_helper_threads(clock, monkeypatch, 3, days=31, hours=2)
    assert "running them one by one" not in caplog.text
    renewals = Invoice.objects.filter(test_clock=clock, billing_reason="subscription_cycle")
    assert renewals.count() == 24
    done = DueJob.objects.filter(test_clock=clock, status=JobStatus.DONE)
    assert set(done.values_list("attempts", flat=True)) == {1}
    for customer in customers:
        numbers = sorted(
            int(number.rsplit("-", 1)[1])
            for number in Invoice.objects.filter(customer=customer).values_list("number", flat=True)
        )
        assert numbers == list(range(1, 9))  # the first invoice and the renewal of each


def test_an_advance_out_of_time_goes_on_where_it_stopped(account, other_account):
    # SPEC R-CLOCK-2: advancing in several goes (a worker's task has a time limit) writes what
    # one go writes; each go runs at least one crowd.
    _advance(_population(other_account), days=75)
    alone = _history(other_account)
    clock = _population(account)
    advance_test_clock(clock, to=clock.frozen_time + timedelta(days=75))
    goes = 1
    while not timeline.advance_clock(clock.pk, budget=0):
        clock.refresh_from_db()
        assert clock.status == "advancing"
        goes += 1
    clock.refresh_from_db()
    assert clock.status == "ready" and goes > 10
    _same_histories(_history(account), alone)


def test_the_worker_queues_the_rest_of_an_advance_that_ran_out_of_time(account, monkeypatch):
    from django_q.conf import Conf

    calls, queued = [], []
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "TIMEOUT", 120)
    monkeypatch.setattr(
        timeline,
        "advance_clock",
        lambda clock_id, **options: calls.append(options) or len(calls) > 1,
    )
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda func, *args, **options: queued.append((func, args))
    )
    tasks.advance_test_clock("clock_1")
    assert calls[0]["budget"] == 60
    assert queued == [("billing.tasks.advance_test_clock", ("clock_1",))]
    tasks.advance_test_clock("clock_1")
    assert len(queued) == 1  # done: nothing more to queue


def test_a_queue_out_of_reach_leaves_the_advancing_process_to_run_the_crowd(
    account, monkeypatch, caplog
):
    import django_q.tasks

    monkeypatch.setattr(timeline, "BATCH_SIZE", 3)
    clock = _renewals(account, 10)
    real_async_task = django_q.tasks.async_task

    def unreachable(func, *args, **options):
        if func == "billing.tasks.run_clock_jobs":
            raise ConnectionError("the broker is down")
        return real_async_task(func, *args, **options)

    monkeypatch.setattr(django_q.tasks, "async_task", unreachable)
    _advance_with_helpers(clock, days=31, hours=2)
    renewals = Invoice.objects.filter(test_clock=clock, billing_reason="subscription_cycle")
    assert renewals.count() == 10
    assert "could not hand batches" in caplog.text
