"""Django's PostgreSQL backend, without pattern indexes on keys, within PostgreSQL's limit of
bound parameters, a health check that costs no round trip on a busy connection, and times read
by psycopg's own (C) loader.

For every indexed text column Django adds a second index with `varchar_pattern_ops`, so that
`LIKE 'prefix%'` can use an index under any collation. Our keys and foreign keys are
Stripe-style ids, always matched whole: those second indexes were 40% of the indexes every
insert maintains (an invoice had 27), and served no query. Other text columns keep theirs
(`notifications.EmailLog.dedup_key` is searched by prefix). Migration
`billing.0010_no_pattern_indexes_on_keys` drops the ones made before.
"""

import datetime
import functools
import select
import time

from django.conf import settings
from django.db.backends.postgresql import base
from django.db.backends.postgresql.operations import DatabaseOperations as _Operations
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as _SchemaEditor
from psycopg import ClientCursor, adapt, adapters, pq

# PostgreSQL takes at most this many bound parameters in one statement.
MAX_PARAMETERS = 65_535


def is_key(field) -> bool:
    """A primary key or a foreign key: ids, never searched by prefix."""
    return bool(field.primary_key or field.is_relation)


class DatabaseSchemaEditor(_SchemaEditor):
    def _create_like_index_sql(self, model, field):
        if is_key(field):
            return None
        return super()._create_like_index_sql(model, field)


class DatabaseOperations(_Operations):
    def bulk_batch_size(self, fields, objs):
        """With values bound apart from the SQL (settings: DATABASE_PREPARED_STATEMENTS), a
        statement takes at most 65,535 of them: Django's bulk inserts and the deletes that
        cascade (a test clock's objects, an endpoint's deliveries) go in batches that fit.
        Django's backend sets no limit, as values written into the SQL have none."""
        return max(1, min(len(objs), MAX_PARAMETERS // max(len(fields), 1)))


class ServerBindingCursor(base.ServerBindingCursor):
    """Values bound apart from the SQL, but for a statement with more values than PostgreSQL
    binds: those are written into the SQL, as client-side binding does. Batches are cut to fit
    (`bulk_batch_size`), but Django joins some back together — a delete's `SET NULL` updates
    are one `UPDATE … WHERE fk IN (batch) OR fk IN (batch) …` — and an `__in` lookup over a
    long list is never cut."""

    def execute(self, query, params=None, **kwargs):
        if params is not None and len(params) > MAX_PARAMETERS:
            query = ClientCursor(self.connection).mogrify(query, params)
            params = None
        return super().execute(query, params, **kwargs)


# psycopg's own loader of `timestamptz` (in C with psycopg's binary build).
_PSYCOPG_TIMESTAMPTZ = adapters.get_loader(base.TIMESTAMPTZ_OID, pq.Format.TEXT)


class UtcTimestamptzLoader(adapt.Loader):
    """`timestamptz` values read by psycopg's own loader, for connections in UTC (Django's
    zone there).

    Django registers a loader of its own that parses every time in Python (a regular
    expression) to set Django's zone on it: 5% of a batch of renewals' time went to reading
    times. In UTC the two agree: the connection's zone is Django's (Django sets it on
    connecting) and psycopg reads "UTC" as `datetime.timezone.utc`, Django's own. psycopg's C
    loader cannot be subclassed, so this one hands each value straight to it; `timezone` is
    what Django's cursors compare to decide whether to register their own."""

    timezone = datetime.UTC

    def __init__(self, oid, context=None):
        super().__init__(oid, context)
        # An instance attribute: psycopg calls the C method itself, no Python frame between.
        self.load = _PSYCOPG_TIMESTAMPTZ(oid, context).load

    def load(self, data):  # replaced on each instance (above)
        raise NotImplementedError


@functools.cache
def _adapters(template: adapt.AdaptersMap, utc: bool) -> adapt.AdaptersMap:
    """Django's adapters for a connection (`get_adapters_template`), with, in UTC, times read
    by `UtcTimestamptzLoader`."""
    context = adapt.AdaptersMap(template)
    if utc:
        context.register_loader("timestamptz", UtcTimestamptzLoader)
    return context


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
    ops_class = DatabaseOperations

    def get_connection_params(self):
        params = super().get_connection_params()
        if params.get("cursor_factory") is base.ServerBindingCursor:
            params["cursor_factory"] = ServerBindingCursor
        if "context" in params:
            utc = settings.USE_TZ and self.timezone_name == "UTC"
            params["context"] = _adapters(params["context"], utc)
        return params

    # A connection checked (used by a request) this recently is trusted on its socket's word.
    RECENTLY_CHECKED = 1.0  # seconds
    _checked_at = float("-inf")

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        self._checked_at = time.monotonic()  # just opened: as good as checked
        return connection

    def is_usable(self):
        """The connection's health check (CONN_HEALTH_CHECKS, once per request), without the
        `SELECT 1` round trip Django's makes while the connection is busy — a seventh of a
        subscription create's round trips.

        Between requests PostgreSQL has nothing to say: a server that goes away (restart,
        `pg_terminate_backend`, `idle_session_timeout`) sends its FATAL message and closes the
        socket, which then reads as ready. So a connection checked less than a second ago,
        psycopg-fine, outside a transaction and with nothing to read, is usable. Anything
        else gets Django's `SELECT 1`: a connection that sat idle, where a database host that
        vanished without closing the socket (a failover moving an address) would only show
        when written to. Under load the one-second window is what remains of that case: the
        first query of a request then fails, and Django drops the connection."""
        connection = self.connection
        if connection is None or connection.closed:
            return False
        now = time.monotonic()
        recently = now - self._checked_at < self.RECENTLY_CHECKED
        self._checked_at = now
        if (
            recently
            and connection.pgconn.status == pq.ConnStatus.OK
            and connection.info.transaction_status == pq.TransactionStatus.IDLE
            and not _readable(connection.fileno())
        ):
            return True
        return super().is_usable()


def _readable(fd: int) -> bool:
    """Whether the socket has something to read (or was closed), without waiting. `poll`, not
    `select`, which refuses descriptors past 1023; where there is no `poll`, say yes (and the
    caller asks the server)."""
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return True
