"""Drop the `varchar_pattern_ops` indexes Django made on keys and foreign keys (PostgreSQL).

The project's backend (config/postgresql/base.py) no longer makes them: ids are matched whole,
and every insert paid for a second index per key. Other text columns keep theirs. Nothing to
do on SQLite, which never had them.
"""

from django.db import migrations

from config.postgresql.base import is_key

APPS = ("billing", "automations", "notifications")


def drop_pattern_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for model in apps.get_models():
        if model._meta.app_label not in APPS:
            continue
        # Django named each index after its table and column alone.
        for field in model._meta.local_concrete_fields:
            if not is_key(field):
                continue
            name = schema_editor._create_index_name(
                model._meta.db_table, [field.column], suffix="_like"
            )
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0009_connect_transfer_amount"),
        ("automations", "0001_initial"),
        ("notifications", "0002_schedules"),
    ]

    operations = [migrations.RunPython(drop_pattern_indexes, migrations.RunPython.noop)]
