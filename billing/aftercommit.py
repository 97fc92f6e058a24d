"""Hand ids to a django-q2 task once the current transaction commits: one task per chunk of a
transaction's ids, not one per id.

A renewal crowd emits thousands of events in one transaction; a queue row per event (the ORM
broker inserts one per `async_task`) cost more than the renewal itself. Ids added inside a
savepoint that rolls back stay in the list: tasks must skip ids whose rows do not exist.
"""

import threading

from django.db import connection, transaction

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
            async_task(self.task, ids[start : start + self.chunk])


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
