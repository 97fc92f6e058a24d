"""Event payloads stored as `text` instead of `json` on PostgreSQL (`BulkJSONField`).

The serializer writes every payload and nothing searches one in SQL; `json` ran PostgreSQL's
JSON parser over each one to check it, 6 µs an event (measured: 60,000 real events copied in
1.32 s as `text`, 1.69 s as `json`), about 8% of the database's work for a renewal. The column
is rewritten (this takes a while on a large event table) and loses its compression setting on
the way: LZ4 is set again as in 0011.
"""

import importlib

from django.db import migrations

_retype = importlib.import_module("billing.migrations.0013_event_data_json")._retype


def to_text(apps, schema_editor):
    _retype(schema_editor, "text")


def to_json(apps, schema_editor):
    _retype(schema_editor, "json")


class Migration(migrations.Migration):
    dependencies = [("billing", "0016_due_job_pending_by_target")]

    operations = [migrations.RunPython(to_text, to_json)]
