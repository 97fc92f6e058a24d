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
import operator
from collections import defaultdict

from django.db import DEFAULT_DB_ALIAS, connections, models, router, transaction
from django.db.models import F
from django.db.models.sql import UpdateQuery

from billing.prepared import Prepared

try:  # A declared dependency; the fallback only keeps an environment that lacks it working.
    import orjson
except ImportError:  # pragma: no cover
    orjson = None

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
        # The due jobs this batch runs, marked done by its flush before anything else it
        # writes; (kind, target) of those that were pending, the one pending job of that pair.
        self.finished: list[int] = []
        self.running: set[tuple[str, str]] = set()
        self.counters: dict[tuple, list[int]] = {}
        self.cache: dict = {}
        # id(obj) → its field values as loaded, so a flush writes only the fields that changed.
        self.loaded: dict[int, dict] = {}

    def register(self, *objs, loaded: bool = True) -> None:
        """Make `lock()` answer these instances (the batch loaded and locked their rows)."""
        for obj in objs:
            if obj is not None:
                key = (type(obj), obj.pk)
                if key not in self.objects:
                    self.objects[key] = obj
                    if loaded:
                        self.loaded[id(obj)] = _field_values(obj)


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


@functools.cache
def _locking(model: type, related: tuple) -> Prepared:
    """`lock`'s query for one model and its `related`, compiled once (billing/prepared.py).

    No `related`, no join: `select_related()` without names follows every non-null foreign key,
    and `FOR UPDATE` then locks the rows joined too (a customer's lock took its account's)."""
    if not related:
        return Prepared(lambda pk: model.objects.select_for_update().filter(pk=pk))
    return Prepared(
        lambda pk: model.objects.select_for_update().select_related(*related).filter(pk=pk)
    )


def lock(model: type, pk, *, related: tuple = ()):
    """The row `pk` of `model`, locked for this transaction (the batch's instance in a batch)."""
    batch = _current.get()
    if batch is not None:
        found = batch.objects.get((model, pk))
        if found is not None:
            return found
    obj = _locking(model, tuple(related)).get(pk)
    if batch is not None:
        batch.register(obj)
    return obj


def lock_in_order(model: type, pks) -> dict:
    """The rows `pks` of `model`, locked in key order: {pk: instance}.

    Batches that run side by side (a clock's helpers, wall time's workers) may share rows — a
    customer with several subscriptions renewing at one instant — and two transactions that
    lock the same rows in different orders deadlock. Every loader locks a batch's customers
    first, in key order, then its own rows (which no other batch holds)."""
    return {
        obj.pk: obj
        for obj in model.objects.select_for_update()
        .filter(pk__among=sorted(set(pks)))
        .order_by("pk")
    }


def register_locked(*objs) -> None:
    """Tell the batch these instances were read with `select_for_update` in this transaction:
    `lock()` answers them instead of reading their rows again."""
    batch = _current.get()
    if batch is not None:
        batch.register(*objs)


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
        batch.register(obj, loaded=False)


def loaded_keys(model: type) -> list:
    """The keys of the rows of `model` the batch being collected loaded or made (none outside
    one)."""
    batch = _current.get()
    if batch is None:
        return []
    return [pk for (kind, pk), obj in batch.objects.items() if kind is model and pk is not None]


def cached(key, compute):
    """`compute()`, computed once per batch (settings read by every object of the batch)."""
    batch = _current.get()
    if batch is None:
        return compute()
    if key not in batch.cache:
        batch.cache[key] = compute()
    return batch.cache[key]


def uncache(key) -> None:
    """Forget what `cached` computed for `key` in this batch (what it read has changed)."""
    batch = _current.get()
    if batch is not None:
        batch.cache.pop(key, None)


def writes_deferred(fn):
    """Run `fn` under `deferred()`: its writes go out in bulk when it returns (nothing at all if
    it raises). Inside a batch already, it just runs. For service verbs that write many rows
    and events in one transaction, and read back none of the rows they write."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _current.get() is not None:
            return fn(*args, **kwargs)
        with deferred():
            return fn(*args, **kwargs)

    return wrapper


@functools.cache
def _counter(model: type, field: str) -> Prepared:
    """`next_in_sequence`'s locking read of one counter, compiled once.

    FOR NO KEY UPDATE, the lock an UPDATE of a non-key column takes: two finalizations still
    take turns on the counter, but other transactions may insert rows that refer to its row.
    With FOR UPDATE, every insert referring to the account (a foreign key check takes FOR KEY
    SHARE on it: each subscription, invoice and event does) waited for the numbering
    transaction to commit, and the numbering waited for them: two API workers creating
    subscriptions for one account spent a third of their database time waiting on each
    other (docs/benchmarks.md)."""
    return Prepared(
        lambda pk: (
            model.objects.select_for_update(no_key=True).values_list(field, flat=True).filter(pk=pk)
        )
    )


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
        value = _counter(model, field).get(pk)
        counter = batch.counters[key] = [value]
    counter[0] += 1
    return counter[0]


# --- flushing ------------------------------------------------------------------------------


def _field_values(obj) -> dict:
    """An object's attribute values (a shallow copy), JSON fields as text so that a dict
    mutated in place shows as a change."""
    values = obj.__dict__.copy()
    for attname in _json_attnames(type(obj)):
        value = values.get(attname)
        if isinstance(value, dict | list):
            values[attname] = _hashable(value)
    return values


@functools.cache
def _json_attnames(model: type) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields if isinstance(f, models.JSONField))


_UNSET = object()


def _changed_fields(batch: Batch, obj) -> set[str] | None:
    """The names of `obj`'s fields that differ from what the batch loaded (None: not loaded)."""
    loaded = batch.loaded.get(id(obj))
    if loaded is None:
        return None
    now = _field_values(obj)
    return {
        field.name
        for field in type(obj)._meta.concrete_fields
        if now.get(field.attname, _UNSET) != loaded.get(field.attname, _UNSET)
    }


def flush(batch: Batch) -> None:
    """Write what the batch collected: counters, inserts, updates, events, then jobs.

    On PostgreSQL the statements go out together in one pipeline (`_Pipeline`), in this order.
    """
    from billing import events, timeline

    # The project's one database: every model of a batch is written there.
    with _pipelined(connections[DEFAULT_DB_ALIAS]):
        for (model, pk, field), (value,) in batch.counters.items():
            update(model, pk, {field: value})
        for model, objs in batch.inserts.items():
            if objs:
                bulk_insert(model, list(objs.values()))
        # Rounds of updates, each with one instance per row: should two instances of one row
        # both be saved (code that saved an instance the batch did not load), each writes its
        # own fields, in the order they were saved, instead of one statement holding both
        # versions of the row, of which the database would keep either.
        rounds: list[tuple[set, dict[type, list]]] = []
        for obj, fields in batch.updates.values():
            if fields is None:
                # "Every field": those that changed since the batch loaded the row (it is
                # locked, so the others still hold what the database holds).
                fields = _changed_fields(batch, obj)
                if fields is not None and not fields:
                    continue
            row = (type(obj), obj.pk)
            place = next((r for r in rounds if row not in r[0]), None)
            if place is None:
                place = (set(), defaultdict(list))
                rounds.append(place)
            place[0].add(row)
            place[1][type(obj)].append((obj, fields))
        for _rows, by_model in rounds:
            for model, entries in by_model.items():
                _bulk_save(model, entries)
        if batch.events:
            events.save_many(batch.events)
        timeline.apply_deferred(
            batch.finished,
            batch.canceled,
            [job for jobs in batch.new_jobs.values() for job in jobs.values()],
        )


# --- one round trip for a flush (PostgreSQL) -----------------------------------------------

_pipeline = contextvars.ContextVar("flush_pipeline", default=None)

# Up to this many values (rows x columns) of one model are inserted by one statement in the
# flush's pipeline; more go out as COPY, which takes thousands of rows faster than any
# statement. (Past ~4 KB of SQL, psycopg would also re-parse the statement at every call.)
PIPELINE_VALUES = 400
# psycopg caches how it parsed a statement's placeholders only up to this many parameters
# (psycopg._queries.MAX_CACHED_STATEMENT_PARAMS); a longer statement is re-parsed with a
# regular expression at every call (~1 ms for a create's ten events in one statement).
STATEMENT_VALUES = 50


class _Pipeline:
    """A flush's statements, sent to PostgreSQL together.

    A small flush (an API request's subscription, invoice, payment and ten events) wrote each
    table with its own COPY, two round trips each, and each round trip costs both processes a
    wake-up: 16 of the create's 40 round trips. Queued here, the statements travel in one
    psycopg pipeline and PostgreSQL answers them in one go. A COPY (a large insert) sends
    what is queued first, so the statements still run in the order they were written.
    """

    def __init__(self, connection):
        self.connection = connection
        self.statements: list[tuple[str, list]] = []

    def add(self, sql: str, params: list) -> None:
        self.statements.append((sql, params))

    def send(self) -> None:
        if not self.statements:
            return
        statements, self.statements = self.statements, []
        if len(statements) == 1:
            with self.connection.cursor() as cursor:
                cursor.execute(*statements[0])
            return
        # Errors surface when the pipeline syncs, past the cursor's own translation into
        # Django's exceptions (IntegrityError, …): the wrapper translates them there.
        with (
            self.connection.cursor() as cursor,
            self.connection.wrap_database_errors,
            self.connection.connection.pipeline(),
        ):
            for sql, params in statements:
                cursor.execute(sql, params)


@contextlib.contextmanager
def _pipelined(connection):
    """Queue the flush's statements (PostgreSQL) and send them when the block ends."""
    if connection.vendor != "postgresql" or _pipeline.get() is not None:
        yield None
        return
    pipeline = _Pipeline(connection)
    token = _pipeline.set(pipeline)
    try:
        yield pipeline
    finally:
        _pipeline.reset(token)
    pipeline.send()


def pipeline():
    """The flush's pipeline being filled, if any (statements queued there run in order)."""
    return _pipeline.get()


def _pipeline_for(connection) -> _Pipeline | None:
    """The flush's pipeline if it writes to `connection`'s database (another database's
    statements run at once, as outside a flush)."""
    pipeline = _pipeline.get()
    if pipeline is None or pipeline.connection.alias != connection.alias:
        return None
    return pipeline


def execute(connection, sql: str, params: list) -> None:
    """Run a statement now, or queue it in the flush's pipeline."""
    pipeline = _pipeline_for(connection)
    if pipeline is not None:
        pipeline.add(sql, params)
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def update_all(queryset, **values) -> None:
    """`queryset.update(**values)` at once, or queued in the flush's pipeline: the statement
    Django would run, sent with the rest of the flush (PostgreSQL)."""
    connection = connections[router.db_for_write(queryset.model)]
    if _pipeline_for(connection) is None:
        queryset.update(**values)
        return
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(values)
    statement, params = query.get_compiler(connection=connection).as_sql()
    execute(connection, statement, list(params))


def update(model: type, pk, values: dict) -> None:
    """`model.objects.filter(pk=pk).update(**values)` for plain values, or queued in the
    flush's pipeline."""
    connection = connections[router.db_for_write(model)]
    if _pipeline_for(connection) is None:
        model.objects.filter(pk=pk).update(**values)
        return
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in values]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    pk_field = model._meta.pk
    execute(
        connection,
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} "
        f"WHERE {quote(pk_field.column)} = %s",
        [*params, pk_field.get_db_prep_save(pk, connection)],
    )


def bulk_insert(model: type, objs: list) -> None:
    """Insert new rows in bulk: in the flush's pipeline or by `COPY` on PostgreSQL,
    `bulk_create` elsewhere.

    `COPY` skips parsing and planning a statement with thousands of placeholders, which made
    bulk inserts of event payloads three times slower than this (measured: 0.72 ms against
    0.23 ms an event). Primary keys are set before (Stripe ids come from the field default).
    """
    if not objs:
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=500)
        return
    token = _encoded_payloads.set({})
    try:
        _insert_rows(model, objs, connection)
    finally:
        _encoded_payloads.reset(token)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias


def _insert_rows(model: type, objs: list, connection) -> None:
    fields = _inserted_fields(model)
    read = _row_reader(model, connection.alias)
    pipeline = _pipeline_for(connection)
    if pipeline is not None and len(objs) * len(fields) <= PIPELINE_VALUES:
        # Statements of at most STATEMENT_VALUES values, whose parsing psycopg caches.
        rows = max(1, STATEMENT_VALUES // len(fields))
        for start in range(0, len(objs), rows):
            chunk = objs[start : start + rows]
            pipeline.add(
                _insert_values(model, connection.alias, len(chunk)),
                [value for obj in chunk for value in read(obj)],
            )
    else:
        if pipeline is not None:
            pipeline.send()  # what was queued before this COPY runs before it
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(
                f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
            ) as copy,
        ):
            for obj in objs:
                copy.write_row(read(obj))


@functools.cache
def _inserted_fields(model: type) -> list:
    """The columns an insert writes: all, but an auto-increment key (left to the database;
    the rows' ids are not read back)."""
    return [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField))
    ]


@functools.cache
def _row_reader(model: type, alias: str):
    """How to read an object's row for an insert: its inserted columns' values, in order.

    The plain attributes are read by one `attrgetter` (in C), then the few columns that need
    preparing (`_copy_value`) are replaced: a Python call per column per row was a third of
    building the rows."""
    fields = _inserted_fields(model)
    getter = operator.attrgetter(*(field.attname for field in fields))

    def one(obj) -> tuple:  # attrgetter of one name returns the value, not a tuple
        return (getter(obj),)

    plain = getter if len(fields) > 1 else one
    special = [
        (index, reader)
        for index, field in enumerate(fields)
        if (reader := _copy_value(field, alias)) is not None
    ]
    if not special:
        return plain

    def read(obj) -> list:
        row = list(plain(obj))
        for index, reader in special:
            row[index] = reader(obj)
        return row

    return read


@functools.cache
def _insert_values(model: type, alias: str, rows: int) -> str:
    """`INSERT … VALUES (…), (…)` for `rows` rows, JSON given as text and cast to its column's
    type (jsonb, json) as for COPY. Each row count is its own statement, prepared once per
    connection: a flush of one kind of work writes the same counts every time.

    (Not one array parameter per column: psycopg escapes every quote of a JSON text inside an
    array literal with a regular expression, ~10 ms for a create's ten event payloads.)
    """
    connection = connections[alias]
    fields = _inserted_fields(model)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = ", ".join(
        f"%s::{field.db_type(connection)}" if isinstance(field, models.JSONField) else "%s"
        for field in fields
    )
    values = ", ".join([f"({row})"] * rows)
    return f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {values}"


def _copy_value(field, alias: str):
    """How to read `field`'s value of an object for COPY, or None to take the attribute as it
    is: psycopg adapts plain Python values itself, so only JSON (encoded here) and fields that
    compute their value on save (auto_now) need Django's preparation. Per-field preparation for
    every value cost a third of the flush (measured)."""
    attname = field.attname
    if getattr(field, "carries_objects", False):
        encoder = field.encoder

        def read_payload(obj):
            value = getattr(obj, attname)
            return None if value is None else payload_text(value, encoder)

        return read_payload
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def read_json(obj):
            value = getattr(obj, attname)
            return None if value is None else json_text(value, encoder)

        return read_json
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda obj: field.get_db_prep_save(field.pre_save(obj, True), connections[alias])
    return None


# orjson options that keep its output the same JSON as `json.dumps`: datetimes and dataclasses
# go to the field's encoder (orjson would format them its own way), and int keys become strings.
_ORJSON_OPTIONS = (
    (orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS)
    if orjson is not None
    else 0
)


_HASHABLE_OPTIONS = (orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS) if orjson is not None else 0


def json_text(value, encoder=None) -> str:
    """`value` as JSON text for a PostgreSQL jsonb column, as `json.dumps(value, cls=encoder)`
    would write it (up to spacing, which jsonb does not keep).

    orjson encodes an event payload about six times faster than the standard library (measured:
    0.11 s against 0.65 s for 15,000 renewal events); whatever it refuses (a type only the
    encoder knows, an integer past 64 bits) goes through `json.dumps` as before. (NaN, which
    jsonb refuses, is the one value it writes differently: null.)
    """
    if orjson is not None:
        try:
            return orjson.dumps(
                value,
                default=encoder().default if encoder is not None else None,
                option=_ORJSON_OPTIONS,
            ).decode()
        except (TypeError, orjson.JSONEncodeError):
            pass
    return json.dumps(value, cls=encoder)


# While `bulk_insert` reads rows: id(object rendering) → (the rendering, its JSON text).
_encoded_payloads = contextvars.ContextVar("encoded_payloads", default=None)


def payload_text(value, encoder=None) -> str:
    """An event's `data` ({"object": …, "previous_attributes": …}) as `json_text` writes it,
    encoding each rendering of an object once per insert: the events of one change carry the
    same rendering (`invoice.paid`, `invoice.payment_succeeded` and the paid `invoice.updated`
    share one), ~30% of a renewal's events."""
    memo = _encoded_payloads.get()
    if memo is None or type(value) is not dict or not 1 <= len(value) <= 2:
        return json_text(value, encoder)
    keys = iter(value)
    if next(keys) != "object" or next(keys, "previous_attributes") != "previous_attributes":
        return json_text(value, encoder)
    rendering = value["object"]
    known = memo.get(id(rendering))
    if known is None:
        # The rendering is kept with its text, so that its id names it until the insert ends.
        known = memo[id(rendering)] = (rendering, json_text(rendering, encoder))
    if len(value) == 1:
        return '{"object":' + known[1] + "}"
    previous = json_text(value["previous_attributes"], encoder)
    return '{"object":' + known[1] + ',"previous_attributes":' + previous + "}"


def _bulk_save(model: type, entries: list) -> None:
    """Save changed objects of one model with as few statements as the values allow.

    On PostgreSQL: one `UPDATE … FROM unnest(…)` for every object (`_update_from_arrays`).
    Elsewhere, a field holding the same value in every object becomes one
    `UPDATE … WHERE pk IN (…)` (the common case: every invoice of the batch was paid at the same
    instant); the others go through one `UPDATE … FROM (VALUES …)` per 500 objects.
    """
    concrete = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = set()
    for _obj, fields in entries:
        names |= {f.name for f in concrete} if fields is None else fields
    objs = [obj for obj, _fields in entries]
    connection = connections[router.db_for_write(model)]
    if connection.vendor == "postgresql":
        _update_from_arrays(model, objs, [f for f in concrete if f.name in names], connection)
        return
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


def _update_from_arrays(model: type, objs: list, fields: list, connection) -> None:
    """PostgreSQL: `UPDATE … FROM unnest(%s::type[], …)`, one array of new values per column.

    The statement is the same short text whatever the number of rows, so psycopg does not
    re-parse thousands of placeholders (it splits a query over 4 KiB with a Python regular
    expression at every call: ~7 ms for 500 invoices, measured), and nothing is chunked.
    """
    pk = model._meta.pk
    quote = connection.ops.quote_name
    arrays = [[pk.get_db_prep_save(obj.pk, connection) for obj in objs]]
    casts = [f"%s::{pk.db_type(connection)}[]"]
    for field in fields:
        attname = field.attname
        if isinstance(field, models.JSONField):
            encoder = field.encoder
            values = [getattr(obj, attname) for obj in objs]
            arrays.append([None if v is None else json_text(v, encoder) for v in values])
            casts.append("%s::text[]")
        elif getattr(field, "auto_now", False) or not _plain(field):
            arrays.append(
                [field.get_db_prep_save(getattr(obj, attname), connection) for obj in objs]
            )
            casts.append(f"%s::{field.db_type(connection)}[]")
        else:
            # psycopg adapts these values itself, as for COPY; the cast names the type.
            arrays.append([getattr(obj, attname) for obj in objs])
            casts.append(f"%s::{field.db_type(connection)}[]")
    table = quote(model._meta.db_table)
    columns = [f"c{n}" for n in range(len(arrays))]
    assignments = ", ".join(
        f"{quote(field.column)} = v.{column}"
        + (f"::{field.db_type(connection)}" if isinstance(field, models.JSONField) else "")
        for field, column in zip(fields, columns[1:], strict=True)
    )
    sql = (
        f"UPDATE {table} SET {assignments} FROM unnest({', '.join(casts)}) "
        f"AS v ({', '.join(columns)}) WHERE {table}.{quote(pk.column)} = v.c0"
    )
    execute(connection, sql, arrays)


# Fields whose Python values psycopg adapts as Django would prepare them (the others, and
# auto_now ones, go through `get_db_prep_save`).
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BooleanField,
    models.DateTimeField,
    models.DecimalField,
    models.ForeignKey,
)


def _plain(field) -> bool:
    return isinstance(field, _PLAIN_FIELDS)


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
    """A key to compare field values by (JSON fields hold dicts and lists): their JSON text,
    keys sorted. Both sides of a comparison are made here, so only consistency matters."""
    if isinstance(value, dict | list):
        if orjson is not None:
            try:
                return orjson.dumps(value, default=str, option=_HASHABLE_OPTIONS)
            except (TypeError, orjson.JSONEncodeError):
                pass
        return json.dumps(value, sort_keys=True, default=str)
    return value


# --- loading many objects at once --------------------------------------------------------------


class Prefetched(list):
    """The rows of a reverse relation that `prefetch` loaded, standing in for Django's
    prefetched queryset in the instance's cache: `.all()`, iterating, `len`, `count()` and
    `exists()` cost nothing; anything else (`filter`, `first`, …) runs on the real queryset,
    built on first use with these rows as its cache, as Django's prefetching would.

    Django builds that queryset for every instance up front (a `filter()` each): for the
    thousands of rows a batch loads it cost a third of loading them (measured).
    """

    # Slots: a batch makes thousands, and each one's dict (and, before, a closure with its
    # cells) was more for the cycle collector to walk when the batch was done.
    __slots__ = ("_owner", "_name", "_queryset")

    def __init__(self, rows, owner, name: str):
        super().__init__(rows)
        self._owner = owner
        self._name = name
        self._queryset = None

    def all(self):
        return self

    def count(self, *args):
        return super().count(*args) if args else len(self)

    def exists(self) -> bool:
        return bool(self)

    def reverse(self):
        return self._real().reverse()

    def _real(self):
        if self._queryset is None:
            manager = getattr(self._owner, self._name)
            related = manager.model
            queryset = manager._apply_rel_filters(related._default_manager.get_queryset())
            queryset._result_cache = list(self)
            queryset._prefetch_done = True
            self._queryset = queryset
        return self._queryset

    def __getattr__(self, name):
        if name.startswith("__") or name in self.__slots__:
            raise AttributeError(name)
        return getattr(self._real(), name)

    def __reduce__(self):
        # Copied or pickled, it is the plain list of rows.
        return (list, (list(self),))


def prefetch(instances: list, name: str, queryset=None) -> list:
    """Load the reverse relation `name` (`subscription.items`, …) of every instance with one
    query, as `prefetch_related(name)` would, and return the rows loaded. Each row's foreign
    key to its instance is set too (no query to go back)."""
    if not instances:
        return []
    manager = getattr(instances[0], name)
    fk = manager.field
    related = fk.model
    cache_name = fk.remote_field.cache_name
    by_key: dict = defaultdict(list)
    for obj in instances:
        by_key[getattr(obj, fk.target_field.attname)].append(obj)
    base = queryset if queryset is not None else related._default_manager.all()
    rows = list(base.filter(**{f"{fk.name}__among": list(by_key)}))
    grouped: dict = defaultdict(list)
    for row in rows:
        key = getattr(row, fk.attname)
        fk.set_cached_value(row, by_key[key][0])
        grouped[key].append(row)
    for key, owners in by_key.items():
        for obj in owners:
            cache_rows(obj, name, grouped.get(key, ()), cache_name=cache_name)
    return rows


def cache_rows(obj, name: str, rows, *, cache_name: str | None = None) -> None:
    """Make `obj.<name>.all()` (a reverse relation) answer `rows` without a query, as if
    prefetched: for rows the database does not hold yet (a batch's inserts), or loaded in bulk.
    """
    if cache_name is None:
        cache_name = getattr(type(obj), name).field.remote_field.cache_name
    cache = obj.__dict__.setdefault("_prefetched_objects_cache", {})
    cache[cache_name] = Prefetched(rows, obj, name)


def attach(rows: list, name: str, queryset) -> None:
    """Set the foreign key `name` of every row to the object `queryset` holds for it (one query
    for them all; rows sharing a target share one instance, as prefetching does)."""
    if not rows:
        return
    field = type(rows[0])._meta.get_field(name)
    ids = {getattr(row, field.attname) for row in rows} - {None}
    found = in_bulk(queryset, ids)
    for row in rows:
        target = found.get(getattr(row, field.attname))
        if target is not None:
            field.set_cached_value(row, target)


def in_bulk(queryset, pks) -> dict:
    """`queryset.in_bulk(pks)` for a batch's keys (`__among`, billing/lookups.py)."""
    if not pks:
        return {}
    return {obj.pk: obj for obj in queryset.filter(pk__among=list(pks))}


def register(*objs) -> None:
    """Tell the batch being collected (if any) about objects loaded and locked for it."""
    batch = _current.get()
    if batch is not None:
        batch.register(*objs)
