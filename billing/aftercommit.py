"""Hand ids to a django-q2 task once the current transaction commits: one task per chunk of a
transaction's ids, not one per id.

A renewal crowd emits thousands of events in one transaction; a queue row per event (the ORM
broker inserts one per `async_task`) cost more than the renewal itself. Ids added inside a
savepoint that rolls back stay in the list: tasks must skip ids whose rows do not exist.

`enqueue_with_transaction` writes the task with the transaction instead, where the queue is a
table of the same database (django-q2's ORM broker, the default).

The tasks go to the site's main queue (`Q_CLUSTER["name"]`), whichever cluster's worker wrote
the rows: a cluster started on a queue of its own (`Q_CLUSTER_NAME`, the renewal benchmark's
helpers) takes only the work handed to it.
"""

import threading

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

_local = threading.local()


class _Collected:
    """The ids of one task collected in one transaction, queued in chunks after it commits."""

    def __init__(self, task: str, chunk: int):
        self.task = task
        self.chunk = chunk
        self.ids: list = []
        self.sent = False

    def __call__(self):
        from django_q.tasks import async_task

        self.sent = True
        ids, self.ids = self.ids, []
        for start in range(0, len(ids), self.chunk):
            async_task(self.task, ids[start : start + self.chunk], cluster=main_queue())


def main_queue() -> str:
    """The site's main django-q2 queue: where every worker's event tasks go."""
    from django_q.conf import Conf

    return Conf.PREFIX


def enqueue(task: str, ids: list, *, chunk: int = 100) -> None:
    """Queue `task(ids_chunk)` for these ids once the transaction commits (at once outside one).

    Every call of one transaction shares its callback. A callback dropped by a rollback is
    noticed (it is no longer among the connection's) and a new one registered.
    """
    if not ids:
        return
    if not connection.in_atomic_block:
        collected = _Collected(task, chunk)
        collected.ids.extend(ids)
        collected()
        return
    pending = getattr(_local, "pending", None)
    if pending is None:
        pending = _local.pending = {}
    collected = pending.get(task)
    registered = (
        collected is not None
        and not collected.sent
        and any(callback is collected for _sids, callback, _robust in connection.run_on_commit)
    )
    if not registered:
        collected = pending[task] = _Collected(task, chunk)
        transaction.on_commit(collected)
    collected.ids.extend(ids)


class _QueueRows:
    """django-q2's ORM broker for `async_task`, writing its queue row with the rest of the
    current flush (`batching.bulk_insert`: now, or in PostgreSQL's pipeline)."""

    def __init__(self, list_key: str):
        self.list_key = list_key

    def enqueue(self, package: str) -> str:
        from django_q.models import OrmQ

        from billing import batching

        # The row the ORM broker's own `enqueue` would create, written by the flush.
        batching.bulk_insert(OrmQ, [OrmQ(key=self.list_key, payload=package, lock=timezone.now())])
        # What django-q2 logs as the queue row's id (not known before the flush is sent).
        return "with the transaction"


def _queue_is_this_database() -> bool:
    """True when django-q2's queue is a table of the database this transaction writes to, and
    tasks are queued, not run inline (tests)."""
    from django_q.conf import Conf

    return (
        bool(Conf.ORM)
        and Conf.ORM == DEFAULT_DB_ALIAS
        and not Conf.SYNC
        and not Conf.BROKER_CLASS
        and connection.in_atomic_block
    )


def enqueue_with_transaction(task: str, ids: list, *, chunk: int = 100) -> None:
    """Queue `task(ids_chunk)` in the current transaction when the queue is a table of the
    same database: the queue rows commit with the rows they name, or not at all. A worker
    cannot see them before the commit, so the task still runs after it, and unlike a row
    written after commit, none is lost if the process dies between the two. It also saves
    the second transaction (and its commit) that queueing after commit costs. Otherwise
    (Redis, tasks run inline), as `enqueue`.
    """
    if not ids:
        return
    if not _queue_is_this_database():
        enqueue(task, ids, chunk=chunk)
        return
    from django_q.tasks import async_task

    broker = _QueueRows(main_queue())
    for start in range(0, len(ids), chunk):
        async_task(task, ids[start : start + chunk], broker=broker)
