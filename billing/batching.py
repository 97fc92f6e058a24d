"""Deferred writes: run the engine's own code over many objects, then write everything in bulk.

Due jobs come in crowds — every subscription created on the same day renews at the same
instant — and running them one transaction and ~75 statements at a time caps the engine at a
few renewals a second. Inside `deferred()`, the same service code runs unchanged, but:

- `save`, `insert`, `events.emit`, `timeline.schedule` and `timeline.cancel` only record what
  to write; `flush()` writes it with a handful of bulk statements per model;
- `lock(model, pk)` answers from the objects the batch loaded (and locked) up front, so code
  that re-reads "the current row" sees the batch's in-memory state, never a stale database row;
- `atomic` functions run without savepoints: a batch is all or nothing, and a failed batch is
  run again job by job (`timeline.run_many`).

Outside `deferred()` every helper acts at once, exactly as the plain ORM call would: the per-job
path is the reference the scenario tests prove, and the batch path must produce the same rows.

Only code that goes through these helpers may run in a batch. Handlers registered for batching
say which objects they can take (`can_batch`); anything unusual runs alone.
"""

import contextlib
import contextvars
import functools
import json
from collections import defaultdict

from django.db import connections, models, router, transaction
from django.db.models import F

_current = contextvars.ContextVar("deferred_writes", default=None)


class Batch:
    """What a batch will write, and the objects it loaded, by (model, pk)."""

    def __init__(self):
        self.objects: dict[tuple[type, str], models.Model] = {}
        self.inserts: dict[type, dict[int, models.Model]] = defaultdict(dict)
        # id(obj) → (obj, fields): None means every field.
        self.updates: dict[int, tuple[models.Model, set | None]] = {}
        self.events: list = []
        # target id → kind → the job scheduled for it in this batch.
        self.new_jobs: dict[str, dict[str, object]] = defaultdict(dict)
        self.canceled: dict[str | None, set[str]] = defaultdict(set)
        self.counters: dict[tuple, list[int]] = {}
        self.cache: dict = {}

    def register(self, *objs) -> None:
        """Make `lock()` answer these instances (the batch loaded and locked their rows)."""
        for obj in objs:
            if obj is not None:
                self.objects.setdefault((type(obj), obj.pk), obj)


def active() -> Batch | None:
    """The batch being collected, if any."""
    return _current.get()


@contextlib.contextmanager
def deferred():
    """Collect writes until the block ends, then flush them (inside the caller's transaction)."""
    if _current.get() is not None:
        raise RuntimeError("deferred() blocks do not nest")
    batch = Batch()
    token = _current.set(batch)
    try:
        yield batch
    finally:
        _current.reset(token)
    flush(batch)


def atomic(fn):
    """`transaction.atomic` for one call, but no savepoint inside a batch (all or nothing)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _current.get() is not None:
            return fn(*args, **kwargs)
        with transaction.atomic():
            return fn(*args, **kwargs)

    return wrapper


def lock(model: type, pk, *, related: tuple = ()):
    """The row `pk` of `model`, locked for this transaction (the batch's instance in a batch)."""
    batch = _current.get()
    if batch is not None:
        found = batch.objects.get((model, pk))
        if found is not None:
            return found
    obj = model.objects.select_for_update().select_related(*related).get(pk=pk)
    if batch is not None:
        batch.register(obj)
    return obj


def save(obj, update_fields=None) -> None:
    """`obj.save(update_fields=…)`, or remember to write those fields at the flush."""
    batch = _current.get()
    if batch is None:
        obj.save(update_fields=update_fields)
        return
    model = type(obj)
    if id(obj) in batch.inserts[model]:
        return  # inserted at the flush, with whatever it holds then
    known = batch.updates.get(id(obj))
    if known is None:
        fields = None if update_fields is None else set(update_fields)
    elif known[1] is None or update_fields is None:
        fields = None
    else:
        fields = known[1] | set(update_fields)
    batch.updates[id(obj)] = (obj, fields)


def insert(*objs) -> None:
    """Insert new rows now, or at the flush (in bulk, with their values at that moment)."""
    batch = _current.get()
    if batch is None:
        if len(objs) == 1:
            objs[0].save(force_insert=True)
        elif objs:
            type(objs[0]).objects.bulk_create(objs)
        return
    for obj in objs:
        batch.inserts[type(obj)][id(obj)] = obj
        batch.register(obj)


def cached(key, compute):
    """`compute()`, computed once per batch (settings read by every object of the batch)."""
    batch = _current.get()
    if batch is None:
        return compute()
    if key not in batch.cache:
        batch.cache[key] = compute()
    return batch.cache[key]


def next_in_sequence(model: type, pk, field: str) -> int:
    """Add one to the counter `field` of row `pk` and return the new value.

    Alone: an UPDATE (which locks the row until commit) and a read. In a batch: the row is
    locked and read once, counted in memory, and the final value written at the flush.
    """
    batch = _current.get()
    if batch is None:
        model.objects.filter(pk=pk).update(**{field: F(field) + 1})
        return model.objects.values_list(field, flat=True).get(pk=pk)
    key = (model, pk, field)
    counter = batch.counters.get(key)
    if counter is None:
        value = model.objects.select_for_update().values_list(field, flat=True).get(pk=pk)
        counter = batch.counters[key] = [value]
    counter[0] += 1
    return counter[0]


# --- flushing ------------------------------------------------------------------------------


def flush(batch: Batch) -> None:
    """Write what the batch collected: counters, inserts, updates, events, then jobs."""
    from billing import events, timeline

    for (model, pk, field), (value,) in batch.counters.items():
        model.objects.filter(pk=pk).update(**{field: value})
    for model, objs in batch.inserts.items():
        if objs:
            bulk_insert(model, list(objs.values()))
    by_model: dict[type, list] = defaultdict(list)
    for obj, fields in batch.updates.values():
        by_model[type(obj)].append((obj, fields))
    for model, entries in by_model.items():
        _bulk_save(model, entries)
    if batch.events:
        events.save_many(batch.events)
    timeline.apply_deferred(
        batch.canceled, [job for jobs in batch.new_jobs.values() for job in jobs.values()]
    )


def bulk_insert(model: type, objs: list) -> None:
    """Insert new rows in bulk: `COPY` on PostgreSQL, `bulk_create` elsewhere.

    `COPY` skips parsing and planning a statement with thousands of placeholders, which made
    bulk inserts of event payloads three times slower than this (measured: 0.72 ms against
    0.23 ms an event). Primary keys are set before (Stripe ids come from the field default).
    """
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=500)
        return
    # An auto-increment key is left to the database (the rows' ids are not read back).
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField))
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    readers = [_copy_value(field, connection) for field in fields]
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy,
    ):
        for obj in objs:
            obj._state.adding = False
            obj._state.db = connection.alias
            copy.write_row([read(obj) for read in readers])


def _copy_value(field, connection):
    """How to read `field`'s value of an object for COPY: psycopg adapts plain Python values
    itself, so only JSON (encoded here) and fields that compute their value on save (auto_now)
    need Django's preparation. Per-field preparation for every value cost a third of the
    flush (measured)."""
    attname = field.attname
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def read_json(obj):
            value = getattr(obj, attname)
            return None if value is None else json.dumps(value, cls=encoder)

        return read_json
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), connection)
    return lambda obj: getattr(obj, attname)


def _bulk_save(model: type, entries: list) -> None:
    """Save changed objects of one model with as few statements as the values allow.

    A field holding the same value in every object becomes one `UPDATE … WHERE pk IN (…)` (the
    common case: every invoice of the batch was paid at the same instant); the others go
    through one `bulk_update`.
    """
    concrete = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = set()
    for _obj, fields in entries:
        names |= {f.name for f in concrete} if fields is None else fields
    objs = [obj for obj, _fields in entries]
    pks = [obj.pk for obj in objs]
    uniform, varying = {}, []
    for field in concrete:
        if field.name not in names:
            continue
        values = {_hashable(getattr(obj, field.attname)) for obj in objs}
        if len(values) == 1:
            uniform[field.attname] = getattr(objs[0], field.attname)
        else:
            varying.append(field.name)
    for start in range(0, len(pks), 1000):
        if uniform:
            model.objects.filter(pk__in=pks[start : start + 1000]).update(**uniform)
    if varying:
        for start in range(0, len(objs), 500):
            _update_from_values(model, objs[start : start + 500], varying)


def _update_from_values(model: type, objs: list, names: list[str]) -> None:
    """`UPDATE … FROM (VALUES …)`: one row of new values per object, joined on the key.

    Django's `bulk_update` writes `CASE WHEN pk=… THEN …` per field, which the database
    evaluates row by row against every branch: 2.5 s for a few hundred invoices (measured).
    """
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    pk = model._meta.pk
    columns = [pk.column, *(field.column for field in fields)]
    if connection.vendor == "postgresql":
        casts = [f"%s::{f.db_type(connection)}" for f in (pk, *fields)]
    else:
        casts = ["%s"] * len(columns)
    row = "(" + ", ".join(casts) + ")"
    params = []
    for obj in objs:
        params.append(pk.get_db_prep_save(obj.pk, connection))
        params.extend(
            field.get_db_prep_save(getattr(obj, field.attname), connection) for field in fields
        )
    table = quote(model._meta.db_table)
    names_sql = ", ".join(quote(column) for column in columns)
    assignments = ", ".join(f"{quote(f.column)} = v.{quote(f.column)}" for f in fields)
    sql = (
        f"WITH v ({names_sql}) AS (VALUES {', '.join([row] * len(objs))}) "
        f"UPDATE {table} SET {assignments} FROM v "
        f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _hashable(value):
    """A key to compare field values by (JSON fields hold dicts and lists)."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def register(*objs) -> None:
    """Tell the batch being collected (if any) about objects loaded and locked for it."""
    batch = _current.get()
    if batch is not None:
        batch.register(*objs)
