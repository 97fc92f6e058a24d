"""Compress stored event payloads with LZ4 instead of pglz (PostgreSQL 14+ built with lz4).

An event carries its whole object (an invoice with its lines is ~4 KB of JSON), which
PostgreSQL compresses as it stores it: pglz was the largest single cost of the database's
share of a created subscription (ten events). LZ4 compresses several times faster, and
decompresses faster on reads. Where the server lacks LZ4 the column stays as it was.
"""

from django.db import migrations

LZ4 = """
DO $$
BEGIN
    -- Dynamic, so that a server that cannot parse it (before 14) fails here, where it is caught.
    EXECUTE 'ALTER TABLE billing_event ALTER COLUMN data SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value OR syntax_error THEN
    RAISE NOTICE 'LZ4 compression is not available: event payloads keep pglz';
END $$;
"""


def use_lz4(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(LZ4)


class Migration(migrations.Migration):
    dependencies = [("billing", "0010_no_pattern_indexes_on_keys")]

    operations = [migrations.RunPython(use_lz4, migrations.RunPython.noop)]
