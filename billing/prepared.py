"""Fixed-shape queries, compiled once.

Django builds and compiles a queryset's SQL anew at every call: cloning it for each
`filter()`, resolving the lookups, choosing and quoting the columns. For the lookups every API
request makes (its key, the customer, the price, the webhook endpoints, …) that costs several
times what running them costs (measured: 0.7 ms of CPU for a customer's `first()`, of which
0.12 ms runs the statement and reads the row).

`Prepared(build)` compiles the queryset `build(*args)` returns the first time it is asked, and
afterwards only binds the new values into the same SQL and makes the instances as iterating
the queryset would (`ModelIterable`: the same columns, converters, `select_related` objects).

Text arguments are the values that vary: the query compiles with placeholders in their stead,
found again by identity among the compiled parameters. A query that transforms one (`contains`,
…) cannot be bound, and runs as a plain queryset. Any other argument (a mode, None) is part of
the query's shape: each value compiles its own SQL. Arguments of other types (an int, an
instance) run the queryset as it is, uncompiled.

Plans are kept per thread (a database connection's converters belong to it) and assume the
project's single database: a queryset routed elsewhere at another moment would not follow.

`ahead(*reads)` runs several such lookups at once — on PostgreSQL in one round trip — for a
request that knows what it is about to read; each answer is then taken by the first call that
asks the same query the same thing (see `ahead`).
"""

import contextlib
import contextvars
import threading

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models.query import FlatValuesListIterable, ModelIterable, get_related_populators
from django.db.models.sql.constants import GET_ITERATOR_CHUNK_SIZE
from django.db.transaction import TransactionManagementError

# `QuerySet.get()` reads at most this many rows to say how many matched.
MAX_GET_RESULTS = 21


class _Unsupported(Exception):
    """The query's shape cannot be prepared: it runs as a plain queryset."""


class _Placeholder(str):
    """A text argument while the query compiles, recognized by identity in its parameters."""

    __slots__ = ()


class _Plan:
    """One compiled shape: its SQL, where each parameter comes from, and how rows become
    instances."""

    __slots__ = (
        "db",
        "sql",
        "slots",
        "for_update",
        "flat",
        "limit",
        "trim",
        "converters",
        "model",
        "init_list",
        "start",
        "end",
        "populators",
        "annotations",
    )


_PLAIN_VALUES = (bool, type(None))

# (plan, args) → rows read ahead and not yet asked for (`ahead`).
_ahead = contextvars.ContextVar("prepared_ahead", default=None)


class Prepared:
    """A query of fixed shape: `build(*args)` returns the queryset (of models, or of one column
    with `values_list(…, flat=True)`; no prefetching); `all`, `first` and `get` run it as the
    QuerySet methods of those names."""

    def __init__(self, build):
        self._build = build
        self._local = threading.local()

    def all(self, *args) -> list:
        """`list(build(*args))`."""
        plan = self._plan("all", args)
        return list(self._build(*args)) if plan is None else self._run(plan, args)

    def first(self, *args):
        """`build(*args).first()`."""
        plan = self._plan("first", args)
        if plan is None:
            return self._build(*args).first()
        found = self._run(plan, args)
        return found[0] if found else None

    def get(self, *args):
        """`build(*args).get()`: the one object, or DoesNotExist / MultipleObjectsReturned."""
        plan = self._plan("get", args)
        if plan is None:
            return self._build(*args).get()
        found = self._run(plan, args)
        if len(found) == 1:
            return found[0]
        model = plan.model
        if not found:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        limit = plan.limit
        count = len(found) if not limit or len(found) < limit else f"more than {limit - 1}"
        raise model.MultipleObjectsReturned(
            f"get() returned more than one {model._meta.object_name} -- it returned {count}!"
        )

    # --- compiling ---------------------------------------------------------------------------

    def _plan(self, method: str, args: tuple) -> _Plan | None:
        shape = [method]
        for arg in args:
            if isinstance(arg, str):
                shape.append(str)
            elif isinstance(arg, _PLAIN_VALUES):
                shape.append(arg)
            else:
                return None
        shape = tuple(shape)
        plans = getattr(self._local, "plans", None)
        if plans is None:
            plans = self._local.plans = {}
        if shape in plans:
            return plans[shape]
        try:
            plan = self._compile(method, args)
        except _Unsupported:
            plan = None
        except Exception:
            # Compiling with placeholders failed (e.g. `select_for_update` outside a
            # transaction): the plain queryset answers, or raises, as it would have.
            return None
        plans[shape] = plan
        return plan

    def _compile(self, method: str, args: tuple) -> _Plan:
        placeholders = [
            _Placeholder(f"\x00prepared-{index}\x00") if isinstance(arg, str) else arg
            for index, arg in enumerate(args)
        ]
        queryset = self._build(*placeholders)
        if (
            queryset._iterable_class not in (ModelIterable, FlatValuesListIterable)
            or queryset._prefetch_related_lookups
            or queryset._known_related_objects
            or queryset.query.combinator
        ):
            raise _Unsupported("Prepared queries return model instances of a plain queryset.")
        limit = None
        if method == "first":
            if not queryset.ordered:
                queryset = queryset.order_by("pk")
            queryset = queryset[:1]
        elif method == "get":
            if queryset.query.can_filter() and not queryset.query.distinct_fields:
                queryset = queryset.order_by()
            db = queryset.db
            if (
                not queryset.query.select_for_update
                or connections[db].features.supports_select_for_update_with_limit
            ):
                limit = MAX_GET_RESULTS
                queryset.query.set_limits(high=limit)

        plan = _Plan()
        plan.db = queryset.db
        plan.model = queryset.model
        plan.flat = queryset._iterable_class is FlatValuesListIterable
        plan.limit = limit
        # As `as_sql` checks it: only where the database locks rows at all.
        plan.for_update = (
            queryset.query.select_for_update and connections[plan.db].features.has_select_for_update
        )
        compiler = queryset.query.get_compiler(using=plan.db)
        # As `execute_sql` does: a shape that matches nothing runs no statement.
        try:
            sql, params = compiler.as_sql()
            if not sql:
                raise EmptyResultSet
        except EmptyResultSet:
            plan.sql = None
            return plan
        # The placeholders by identity (a constant argument equal to a parameter is no slot).
        positions = {
            id(held): index
            for index, held in enumerate(placeholders)
            if isinstance(held, _Placeholder)
        }
        slots = []
        used = set()
        for param in params:
            index = positions.get(id(param)) if isinstance(param, _Placeholder) else None
            if index is not None:
                slots.append((True, index))
                used.add(index)
            elif isinstance(param, str) and "\x00prepared-" in param:
                raise _Unsupported("A prepared query cannot transform its text arguments.")
            else:
                slots.append((False, param))
        if used != {i for i, arg in enumerate(args) if isinstance(arg, str)}:
            raise _Unsupported("Every text argument of a prepared query must be a parameter.")
        plan.sql = sql
        plan.slots = tuple(slots)

        select, klass_info = compiler.select, compiler.klass_info
        fields = [column[0] for column in select[0 : compiler.col_count]]
        if compiler.has_composite_fields(fields):
            raise _Unsupported("Prepared queries do not read composite fields.")
        plan.trim = compiler.col_count if compiler.has_extra_select else None
        plan.converters = tuple(compiler.get_converters(fields).items())
        if plan.flat:
            return plan
        select_fields = klass_info["select_fields"]
        plan.start, plan.end = select_fields[0], select_fields[-1] + 1
        plan.init_list = [column[0].target.attname for column in select[plan.start : plan.end]]
        plan.populators = get_related_populators(klass_info, select, plan.db)
        plan.annotations = tuple(compiler.annotation_col_map.items())
        plan.model = klass_info["model"]
        return plan

    # --- running -----------------------------------------------------------------------------

    @staticmethod
    def _run(plan: _Plan, args: tuple) -> list:
        if plan.sql is None:
            return []
        waiting = _ahead.get()
        if waiting:
            rows = waiting.pop((plan, args), None)
            if rows is not None:
                return _instances(plan, rows)
        connection = _connection_for(plan)
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, _params(plan, args))
            rows = []
            while chunk := cursor.fetchmany(GET_ITERATOR_CHUNK_SIZE):
                rows.extend(chunk)
        return _instances(plan, rows)


def run(read: tuple):
    """Run a read `(prepared, method, args)`: `prepared.<method>(*args)`. Code that offers its
    query for `ahead` runs it through the same read, so that the two ask the same thing."""
    prepared, method, args = read
    return getattr(prepared, method)(*args)


@contextlib.contextmanager
def ahead(*reads: tuple[Prepared, str, tuple]):
    """Run the reads `(prepared, "all" | "first" | "get", args)` now, together, and keep their
    rows for the block: the first `prepared.<method>(*args)` inside it takes its rows instead of
    asking the database (a second call asks again, as usual). On PostgreSQL the statements go
    out in one pipeline: one round trip instead of one each.

    For a request that knows what its code will read (the API's subscription create: its
    customer, prices, webhook endpoints, settings). Rows not asked for are dropped at the end.
    A read is as of this moment, inside the caller's transaction; a read that locks
    (`select_for_update`) takes its lock now. Blocks do not nest."""
    if _ahead.get() is not None:
        raise RuntimeError("prepared.ahead() blocks do not nest")
    planned = []
    for prepared, method, args in reads:
        plan = prepared._plan(method, args)
        if plan is not None and plan.sql is not None:
            planned.append((plan, args))
    token = _ahead.set(dict(zip(planned, _read_together(planned), strict=True)))
    try:
        yield
    finally:
        _ahead.reset(token)


def _read_together(planned: list[tuple[_Plan, tuple]]) -> list[list]:
    """The rows of each (plan, args), in one pipeline on PostgreSQL."""
    if not planned:
        return []
    connections_used = {_connection_for(plan) for plan, _ in planned}
    connection = connections_used.pop()
    if connections_used or connection.vendor != "postgresql" or len(planned) == 1:
        results = []
        for plan, args in planned:
            with _connection_for(plan).cursor() as cursor:
                cursor.execute(plan.sql, _params(plan, args))
                results.append(cursor.fetchall())
        return results
    # Opened (and health-checked, CONN_HEALTH_CHECKS) as a first cursor would, before the
    # pipeline starts on the driver's connection.
    cursors = [connection.cursor()]
    try:
        # Errors surface when the pipeline syncs, past the cursors' own translation into
        # Django's exceptions: the wrapper translates them there.
        with connection.wrap_database_errors, connection.connection.pipeline():
            for index, (plan, args) in enumerate(planned):
                if index:
                    cursors.append(connection.cursor())
                cursors[index].execute(plan.sql, _params(plan, args))
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def _connection_for(plan: _Plan):
    connection = connections[plan.db]
    if plan.for_update and connection.get_autocommit():
        raise TransactionManagementError(
            "select_for_update cannot be used outside of a transaction."
        )
    return connection


def _params(plan: _Plan, args: tuple) -> list:
    return [args[value] if is_arg else value for is_arg, value in plan.slots]


def _instances(plan: _Plan, rows: list) -> list:
    """Rows as `ModelIterable` (or `values_list(flat=True)`) would return them."""
    connection = connections[plan.db]
    if plan.trim is not None:
        rows = [row[: plan.trim] for row in rows]
    if plan.converters:
        rows = [_converted(row, plan.converters, connection) for row in rows]
    if plan.flat:
        return [row[0] for row in rows]
    db, model, init_list, start, end = plan.db, plan.model, plan.init_list, plan.start, plan.end
    objs = []
    for row in rows:
        obj = model.from_db(db, init_list, row[start:end])
        for populator in plan.populators:
            populator.populate(row, obj)
        for name, position in plan.annotations:
            setattr(obj, name, row[position])
        if plan.for_update and plan.populators:
            _drop_stale_related(obj)
        objs.append(obj)
    return objs


def _drop_stale_related(obj) -> None:
    """Forget the joined objects a locking read returned that no longer match their keys.

    A read that waited for a row's lock (`select_for_update(of=("self",))`) sees the row as
    the other transaction committed it, but PostgreSQL re-checks that new version against the
    joined rows it had read before the wait: a customer whose default card changed meanwhile
    comes back with the new card's id and no card (an outer join's NULLs). Forgotten, the
    object loads from its key when asked."""
    for field in obj._meta.concrete_fields:
        if field.many_to_one and field.is_cached(obj):
            related = field.get_cached_value(obj)
            key = getattr(related, field.target_field.attname) if related is not None else None
            if key != getattr(obj, field.attname):
                field.delete_cached_value(obj)


def _converted(row, converters, connection) -> list:
    """The row with the backend's and the fields' converters applied (`apply_converters`)."""
    row = list(row)
    for position, (functions, expression) in converters:
        value = row[position]
        for function in functions:
            value = function(value, expression, connection)
        row[position] = value
    return row
