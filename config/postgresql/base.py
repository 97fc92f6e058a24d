"""Django's PostgreSQL backend, without pattern indexes on keys.

For every indexed text column Django adds a second index with `varchar_pattern_ops`, so that
`LIKE 'prefix%'` can use an index under any collation. Our keys and foreign keys are
Stripe-style ids, always matched whole: those second indexes were 40% of the indexes every
insert maintains (an invoice had 27), and served no query. Other text columns keep theirs
(`notifications.EmailLog.dedup_key` is searched by prefix). Migration
`billing.0010_no_pattern_indexes_on_keys` drops the ones made before.
"""

from django.db.backends.postgresql import base
from django.db.backends.postgresql.schema import DatabaseSchemaEditor as _SchemaEditor


def is_key(field) -> bool:
    """A primary key or a foreign key: ids, never searched by prefix."""
    return bool(field.primary_key or field.is_relation)


class DatabaseSchemaEditor(_SchemaEditor):
    def _create_like_index_sql(self, model, field):
        if is_key(field):
            return None
        return super()._create_like_index_sql(model, field)


class DatabaseWrapper(base.DatabaseWrapper):
    SchemaEditorClass = DatabaseSchemaEditor
