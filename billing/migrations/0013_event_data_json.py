"""Event payloads stored as `json` instead of `jsonb` on PostgreSQL (`BulkJSONField`).

An event's payload is written once, read whole and never searched in SQL: `jsonb` made the
database parse each one into its binary form, sorting every object's keys, a tenth of its work
for a renewal. `json` keeps the text, checked. The column is rewritten (this takes a while on a
large event table), and loses its compression setting on the way: LZ4 is set again as in 0011.
"""

import importlib

from django.db import migrations

LZ4 = importlib.import_module("billing.migrations.0011_event_data_lz4").LZ4


def _retype(schema_editor, type_: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # elsewhere JSON is text already
    schema_editor.execute(
        f"ALTER TABLE billing_event ALTER COLUMN data TYPE {type_} USING data::{type_}"
    )
    schema_editor.execute(LZ4)


def to_json(apps, schema_editor):
    _retype(schema_editor, "json")


def to_jsonb(apps, schema_editor):
    _retype(schema_editor, "jsonb")


class Migration(migrations.Migration):
    dependencies = [("billing", "0012_invoice_numbering")]

    operations = [migrations.RunPython(to_json, to_jsonb)]
