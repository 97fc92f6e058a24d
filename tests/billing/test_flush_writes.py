"""How a flush reaches the database: one pipeline of statements on PostgreSQL, COPY for large
inserts in their place in the order, and the events' dispatch task queued with the rows it
names when django-q2's queue is a table of the same database."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from billing import aftercommit, batching, events, timeline
from billing.choices import JobStatus
from billing.models import (
    Customer,
    DueJob,
    Event,
    Subscription,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.services import subscriptions as subs
from billing.services.customers import add_card
from billing.subscribers import handlers_for
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the pipeline is PostgreSQL's"
)


@pytest.fixture
def queued(monkeypatch):
    """Tasks go to django-q2's queue table instead of running inline (the tests' default)."""
    monkeypatch.setattr(Conf, "SYNC", False)
    # Tests that commit (live server, transactional ones) may have left queue rows behind.
    OrmQ.objects.all().delete()


def _subscribe(account):
    customer = factories.make_customer(account)
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        set_default=True,
    )
    customer.refresh_from_db()
    price = factories.make_price(account)
    return subs.create_subscription(customer, items=[{"price": price}])


def _dispatch_tasks() -> list[dict]:
    """The queued `dispatch_events` tasks, decoded as a worker decodes them."""
    tasks = [SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("id")]
    return [task for task in tasks if task["func"] == "billing.tasks.dispatch_events"]


@postgresql_only
def test_a_small_flush_reaches_postgresql_in_one_pipeline_without_copy(account, monkeypatch):
    sent = []
    original = batching._Pipeline.send

    def send(pipeline):
        sent.append(len(pipeline.statements))
        original(pipeline)

    def no_copy(*args, **kwargs):
        raise AssertionError("a small flush should not COPY")

    monkeypatch.setattr(batching._Pipeline, "send", send)
    monkeypatch.setattr(type(connection.cursor().cursor), "copy", no_copy)
    subscription = _subscribe(account)
    # The subscription, its item, invoice, line, payment, ledger row, events, jobs and the
    # counter: each table one statement, all sent together.
    assert len(sent) == 1 and sent[0] >= 8
    subscription = Subscription.objects.get(pk=subscription.pk)
    assert subscription.status == "active"
    assert subscription.latest_invoice.status == "paid"
    payloads = Event.objects.filter(customer_id=subscription.customer_id).values_list(
        "type", "data"
    )
    created = dict(payloads)["customer.subscription.created"]
    assert created["object"]["id"] == subscription.pk  # stored as JSON, not as text
    assert created["object"]["items"]["data"][0]["quantity"] == 1


@postgresql_only
def test_a_large_insert_runs_after_the_statements_queued_before_it(account):
    subscription = factories.make_subscription(factories.make_customer(account))
    timeline.schedule("renewal", subscription, at=START)
    many = [
        DueJob(account=account, kind="renewal", target_id=f"sub_other{n}", due_at=START)
        for n in range(batching.PIPELINE_VALUES)  # more values than a statement takes
    ]
    # The new pending renewal of the same subscription is only allowed once the old one is
    # canceled (one pending job per kind and target): the COPY must come after the UPDATE.
    many.append(DueJob(account=account, kind="renewal", target_id=subscription.pk, due_at=START))
    with batching._pipelined(connections["default"]) as pipeline:
        timeline.apply_deferred([], {"renewal": {subscription.pk}}, [])
        assert len(pipeline.statements) == 1
        batching.bulk_insert(DueJob, many)
        assert pipeline.statements == []
    jobs = DueJob.objects.filter(target_id=subscription.pk).order_by("id")
    assert [job.status for job in jobs] == [JobStatus.CANCELED, JobStatus.PENDING]
    assert DueJob.objects.filter(target_id__startswith="sub_other").count() == len(many) - 1


@postgresql_only
def test_an_error_in_the_pipeline_is_djangos_integrity_error(account):
    first = factories.make_customer(account)
    copy = Customer(
        account=account, livemode=False, id=first.pk, email="twin@example.com", created=START
    )
    with pytest.raises(IntegrityError), transaction.atomic(), batching._pipelined(connection):
        batching.update(Customer, first.pk, {"name": "Renamed"})
        batching.bulk_insert(Customer, [copy])
    # Nothing of the pipeline stayed, and the connection is usable.
    assert Customer.objects.get(pk=first.pk).name != "Renamed"


def test_a_flush_queues_its_events_dispatch_with_its_rows(account, queued):
    with transaction.atomic():
        subscription = _subscribe(account)
        # Queued inside the transaction: nothing waits for the commit to queue it.
        waiting = {
            event_id
            for _sids, callback, _robust in connection.run_on_commit
            if isinstance(callback, aftercommit._Collected)
            for event_id in callback.ids
        }
        created = Event.objects.filter(object_id=subscription.pk).values_list("id", flat=True)
        assert created and not waiting & set(created)
        tasks = _dispatch_tasks()
    assert len(tasks) == 1
    (ids,) = tasks[0]["args"]
    # Every event of the flush that has subscribers (the card's, written before, wait for
    # the commit as events outside a flush do).
    listened = [
        event.id
        for event in Event.objects.filter(customer_id=subscription.customer_id)
        if handlers_for(event.type) and event.id not in waiting
    ]
    assert listened and sorted(ids) == sorted(listened)


def test_a_worker_on_a_queue_of_its_own_queues_events_on_the_main_one(
    account, queued, monkeypatch, django_capture_on_commit_callbacks
):
    # A cluster started with Q_CLUSTER_NAME (the renewal benchmark's helpers) takes only what it
    # is handed: the events its batches write are the main cluster's to dispatch.
    monkeypatch.setattr(Conf, "CLUSTER_NAME", "helpers-only")
    customer = factories.make_customer(account)
    with django_capture_on_commit_callbacks(execute=True):
        events.emit("customer.updated", customer, previous_attributes={"name": None})
    assert OrmQ.objects.count() == 1  # queued after the commit, outside a flush
    with transaction.atomic():
        _subscribe(account)
        assert _dispatch_tasks()
    assert OrmQ.objects.count() > 1
    assert set(OrmQ.objects.values_list("key", flat=True)) == {Conf.PREFIX}
    assert Conf.PREFIX == "relance"


def test_a_rolled_back_flush_leaves_no_task(account, queued):
    with pytest.raises(RuntimeError), transaction.atomic():
        _subscribe(account)
        assert _dispatch_tasks()
        raise RuntimeError("rolled back")
    assert _dispatch_tasks() == []
    assert not Subscription.objects.filter(account=account).exists()


def test_events_outside_a_flush_still_queue_after_commit(account, queued):
    customer = factories.make_customer(account)
    with transaction.atomic():
        events.emit("customer.updated", customer, previous_attributes={"name": None})
        assert _dispatch_tasks() == []  # not before the commit
    # (the test's own transaction never commits: the callback is still waiting)
    callbacks = [callback for _sids, callback, _robust in connection.run_on_commit]
    assert any(isinstance(callback, aftercommit._Collected) for callback in callbacks)


def test_inline_tasks_still_wait_for_the_commit(account, django_capture_on_commit_callbacks):
    # Conf.SYNC (the tests' default) runs a task in the caller: never inside the transaction.
    with django_capture_on_commit_callbacks() as callbacks:
        _subscribe(account)
    assert any(isinstance(callback, aftercommit._Collected) for callback in callbacks)


@pytest.mark.django_db(transaction=True)
def test_a_worker_takes_the_queued_task_once_the_transaction_commits(queued):
    from django_q.brokers import get_broker

    from billing.tasks import dispatch_events

    account = factories.make_account("Committed")
    broker = get_broker()
    with transaction.atomic():
        subscription = _subscribe(account)
        # Another connection (a worker) sees nothing before the commit.
        assert not _other_connection_sees_queue_rows()
    taken = broker.dequeue()
    tasks = [SignedPackage.loads(payload) for _id, payload in taken]
    created = Event.objects.get(type="customer.subscription.created", object_id=subscription.pk)
    # The flush's task (the card's events, written before it, have their own after commit).
    (ids,) = next(
        task["args"]
        for task in tasks
        if task["func"] == "billing.tasks.dispatch_events" and created.pk in task["args"][0]
    )
    stored = Event.objects.filter(customer_id=subscription.customer_id).values_list("id", flat=True)
    assert set(ids) <= set(stored)
    # What the worker then runs: every event handed to its subscribers.
    assert dispatch_events(ids) == len(ids)
    for package_id, _payload in taken:
        broker.acknowledge(package_id)


def _other_connection_sees_queue_rows() -> bool:
    """Whether a second database connection (as a worker's) sees any queue row now."""
    import threading

    from django.db import connections as thread_connections

    seen = []

    def look():
        try:
            seen.append(OrmQ.objects.exists())
        finally:
            thread_connections.close_all()

    worker = threading.Thread(target=look)
    worker.start()
    worker.join()
    return seen[0]


@postgresql_only
def test_an_event_routed_at_the_flush_counts_its_endpoints_after_its_insert(account):
    # An event built without `emit` is routed when saved: its count of pending webhooks is
    # written after its own INSERT, still queued in the pipeline.
    WebhookEndpoint.objects.create(
        account=account, livemode=False, url="https://example.com/hooks", enabled_events=["*"]
    )
    event = events.build("customer.updated", factories.make_customer(account))
    with batching._pipelined(connections["default"]):
        events.save_many([event])
    assert Event.objects.get(pk=event.pk).pending_webhooks == 1
    assert WebhookDelivery.objects.filter(event_id=event.pk).count() == 1
