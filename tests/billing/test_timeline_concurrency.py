"""Two workers draining the same due jobs: each job runs exactly once."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from billing import timeline
from billing.choices import JobStatus
from billing.models import DueJob, Event
from tests import factories

DUE = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_two_workers_draining_the_same_jobs_run_each_exactly_once():
    # DESIGN "Time and due work": claims are conditional updates and a job runs in one
    # transaction with its work, so a job handed to two workers (or twice to one) runs once.
    account = factories.make_account()
    customer = factories.make_customer(account)
    price = factories.make_price(account)
    subscriptions = [factories.make_subscription(customer, price=price) for _ in range(20)]
    jobs = [
        DueJob.objects.create(
            account=account, kind="upcoming_renewal", target_id=sub.pk, due_at=DUE
        )
        for sub in subscriptions
    ]
    errors = []

    def worker():
        try:
            # Each worker claims what it can, then also runs every job it was (re)delivered.
            for job_id in timeline.claim_due(now=DUE + timedelta(minutes=1)):
                timeline.run(job_id)
            for job in jobs:
                timeline.run(job.pk)
        except Exception as error:  # surfaced below; a thread's exception is otherwise lost
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert set(DueJob.objects.values_list("status", flat=True)) == {JobStatus.DONE}
    assert list(DueJob.objects.values_list("attempts", flat=True).distinct()) == [1]
    per_subscription = [
        Event.objects.filter(type="invoice.upcoming", object_id=sub.pk).count()
        for sub in subscriptions
    ]
    assert per_subscription == [1] * len(subscriptions)
