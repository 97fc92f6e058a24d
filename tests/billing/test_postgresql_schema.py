"""PostgreSQL: the schema the migrations leave (no pattern indexes on keys, LZ4 event
payloads), the backend's batches (within the limit of bound parameters) and its health check
(no round trip)."""

import datetime
import json
import os
import resource
import select
import time
import zoneinfo

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone
from psycopg import pq

from billing import batching, events
from billing.choices import JobStatus
from billing.models import (
    Account,
    Customer,
    DueJob,
    Event,
    PaymentMethod,
    WebhookDelivery,
    WebhookEndpoint,
)
from billing.services.webhooks import delete_webhook_endpoint
from config.postgresql.base import UtcTimestamptzLoader
from tests import factories

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's schema")


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@pytest.mark.django_db
def test_keys_and_foreign_keys_have_no_pattern_index():
    for label in ("billing", "automations", "notifications"):
        for model in apps.get_app_config(label).get_models():
            definitions = _indexes(model._meta.db_table).values()
            for field in model._meta.local_concrete_fields:
                if field.primary_key or field.is_relation:
                    pattern = f"({field.column} varchar_pattern_ops)"
                    assert not [d for d in definitions if pattern in d], (model, field.name)
    invoice = _indexes("billing_invoice")
    assert not [name for name in invoice if name.endswith("_like")]
    # Each foreign key is still indexed (deletes and joins use them): on its own, or first
    # in a wider index (migration 0014).
    assert any(definition.endswith("(test_clock_id)") for definition in invoice.values())
    assert any("(customer_id, created)" in definition for definition in invoice.values())


@pytest.mark.django_db
def test_a_text_column_searched_by_prefix_keeps_its_pattern_index():
    # Reminder emails count the ones sent for an invoice with `dedup_key LIKE 'prefix%'`.
    definitions = _indexes("notifications_emaillog").values()
    assert any("(dedup_key varchar_pattern_ops)" in definition for definition in definitions)


@pytest.mark.django_db
def test_event_payloads_are_stored_with_lz4_where_the_server_has_it(account):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        (available,) = cursor.fetchone()
    if not available:
        pytest.skip("this PostgreSQL was built without LZ4")
    customer = factories.make_customer(account, metadata={f"k{n}": "x" * 40 for n in range(50)})
    event = events.emit("customer.updated", customer, previous_attributes={"name": None})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(data) FROM billing_event WHERE id = %s", [event.pk]
        )
        assert cursor.fetchone() == ("lz4",)


def test_batches_fit_postgresqls_limit_of_bound_parameters():
    assert connection.ops.bulk_batch_size(["id"], range(100_000)) == 65_535
    assert connection.ops.bulk_batch_size(["a", "b", "c"], range(10)) == 10


@pytest.mark.django_db
def test_deleting_an_endpoint_with_more_deliveries_than_a_statement_takes(account):
    # Values are bound apart from the SQL: a cascade over 66,000 rows in one IN list would
    # exceed PostgreSQL's 65,535 parameters.
    endpoint = WebhookEndpoint.objects.create(
        account=account, livemode=False, url="https://example.com/hooks", enabled_events=["*"]
    )
    now = timezone.now()
    batching.bulk_insert(
        WebhookDelivery,
        [
            WebhookDelivery(
                account=account,
                livemode=False,
                event_id=f"evt_{n}",
                endpoint=endpoint,
                status="succeeded",
                next_attempt_at=now,
                created=now,
            )
            for n in range(66_000)
        ],
    )
    delete_webhook_endpoint(endpoint)
    assert not WebhookDelivery.objects.filter(endpoint_id=endpoint.pk).exists()


@pytest.mark.django_db
def test_a_lookup_over_more_values_than_postgresql_binds_has_them_written_into_the_sql():
    ids = [f"cus_{n}" for n in range(70_000)]
    assert Customer.objects.filter(pk__in=ids).count() == 0
    # Values written into the SQL keep their meaning: quotes, percent signs.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT %s || '%%' || %s FROM generate_series(1, 1) WHERE 1 <> ALL(ARRAY["
            + ",".join(["%s"] * 70_000)
            + "]::int[])",
            ["it's", "100%", *range(2, 70_002)],
        )
        assert cursor.fetchone() == ("it's%100%",)


@pytest.mark.django_db
def test_deleting_more_rows_than_postgresql_binds_clears_their_set_null_references(account):
    # Django cuts the delete into batches that fit, then joins the SET NULL updates of every
    # batch into one statement: `… WHERE pm IN (batch 1) OR pm IN (batch 2)`, 66,000 values.
    customer = factories.make_customer(account)
    batching.bulk_insert(
        PaymentMethod,
        [
            PaymentMethod(
                account=account,
                livemode=False,
                customer=customer,
                card_last4="4242",
                card_exp_month=12,
                card_exp_year=2040,
            )
            for _ in range(66_000)
        ],
    )
    first = PaymentMethod.objects.filter(customer=customer).first()
    Customer.objects.filter(pk=customer.pk).update(invoice_settings_default_payment_method=first)
    PaymentMethod.objects.filter(customer=customer).delete()
    customer.refresh_from_db()
    assert customer.invoice_settings_default_payment_method_id is None
    assert not PaymentMethod.objects.filter(customer=customer).exists()


def _counting_cursors(raw) -> list:
    """Count the statements sent on the driver's connection `raw` (one cursor each)."""
    asked = []
    real_cursor = raw.cursor

    def counting_cursor(*args, **kwargs):
        asked.append(1)
        return real_cursor(*args, **kwargs)

    raw.cursor = counting_cursor
    return asked


@pytest.mark.django_db(transaction=True)
def test_the_health_check_asks_a_busy_quiet_connection_nothing_and_sees_the_server_hang_up():
    connection.ensure_connection()
    raw = connection.connection
    asked = _counting_cursors(raw)
    try:
        # A connection not checked lately (idle since the last request): Django's SELECT 1.
        connection._checked_at = time.monotonic() - 60
        assert connection.is_usable()
        assert len(asked) == 1
        # Checked a moment ago (requests keep coming): the quiet socket is enough.
        assert connection.is_usable()
        assert len(asked) == 1
        # Inside a transaction the socket alone does not tell: Django's SELECT 1 answers.
        with transaction.atomic():
            connection.cursor().execute("SELECT 1")
            asked.clear()
            assert connection.is_usable()
            assert asked
        # The server ends the session (a restart, an idle timeout, an administrator).
        other = connection.get_new_connection(connection.get_connection_params())
        try:
            other.execute("SELECT pg_terminate_backend(%s)", [raw.info.backend_pid])
        finally:
            other.close()
        deadline = time.monotonic() + 10
        while not select.select([raw.fileno()], [], [], 0.05)[0]:
            assert time.monotonic() < deadline, "the terminated session's socket stayed quiet"
        assert not connection.is_usable()
    finally:
        connection.close()
    # Django opens a new connection for the next query.
    assert Account.objects.count() >= 0


@pytest.mark.django_db(transaction=True)
def test_the_health_check_reads_sockets_numbered_past_1023():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        pytest.skip("this process may not open that many files")
    connection.close()
    spare = []
    try:
        # Every lower number taken: the next socket gets a number past them.
        while not spare or spare[-1] < 1100:
            spare.append(os.open(os.devnull, os.O_RDONLY))
        connection.ensure_connection()
        raw = connection.connection
        assert raw.fileno() > 1023
        asked = _counting_cursors(raw)
        connection._checked_at = time.monotonic() - 60
        assert connection.is_usable()
        assert connection.is_usable()
        assert len(asked) == 1  # the first: not checked lately
        assert connection.connection is raw
    finally:
        for fd in spare:
            os.close(fd)
        connection.close()


@pytest.mark.django_db
def test_times_are_read_by_psycopgs_loader_in_djangos_zone(account):
    written = [
        datetime.datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=datetime.UTC),
        datetime.datetime(1, 1, 1, tzinfo=datetime.UTC),
        datetime.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=datetime.UTC),
        datetime.datetime(2026, 7, 14, 14, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    ]
    customers = [
        Customer.objects.create(account=account, email=f"t{n}@example.com", created=value)
        for n, value in enumerate(written)
    ]
    read = [Customer.objects.get(pk=customer.pk).created for customer in customers]
    assert read == written
    assert all(value.tzinfo is datetime.UTC for value in read)
    # Django's cursors keep the connection's loader (they would register theirs if its zone
    # were not Django's).
    with connection.cursor() as cursor:
        loader = cursor.cursor.adapters.get_loader(1184, pq.Format.TEXT)  # timestamptz
    assert loader is UtcTimestamptzLoader


@pytest.mark.django_db
def test_event_payloads_are_text_kept_in_the_order_written(account):
    # Migration 0017: text, which PostgreSQL stores without parsing it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'billing_event' AND column_name = 'data'"
        )
        assert cursor.fetchone() == ("text",)
    customer = factories.make_customer(account, metadata={"b": "2", "a": "1"})
    single = events.emit("customer.updated", customer, previous_attributes={"name": None})
    with transaction.atomic(), batching.deferred():
        built = [events.emit("customer.updated", customer) for _ in range(3)]
    for event in (single, *built):
        stored = Event.objects.get(pk=event.pk)
        assert stored.data == event.data
        with connection.cursor() as cursor:
            cursor.execute("SELECT data FROM billing_event WHERE id = %s", [event.pk])
            (text,) = cursor.fetchone()
        # In the serializer's order (jsonb would have sorted the keys by length).
        assert list(json.loads(text)["object"]) == list(event.data["object"])
        assert list(stored.data["object"]["metadata"]) == ["b", "a"]


@pytest.mark.django_db
def test_renewals_write_no_index_that_another_index_already_covers():
    # Migrations 0014/0015: every index a renewal's inserts and updates write is one a read uses.
    for table in (
        "billing_event",
        "billing_invoice",
        "billing_subscription",
        "billing_paymentintent",
        "billing_balancetransaction",
    ):
        definitions = [d.split(" USING btree ")[1] for d in _indexes(table).values()]
        assert "(account_id)" not in definitions, table
        assert any(d.startswith("(account_id, livemode, created, id)") for d in definitions)
    invoice = [d.split(" USING btree ")[1] for d in _indexes("billing_invoice").values()]
    assert "(customer_id)" not in invoice and "(customer_id, created)" in invoice
    assert "(subscription_id)" not in invoice and "(subscription_id, created)" in invoice
    assert "(on_behalf_of_id) WHERE (on_behalf_of_id IS NOT NULL)" in invoice
    events = _indexes("billing_event")
    assert not [name for name in events if name.endswith("_like")]
    assert events["event_object_id"].endswith("(object_id)")
    jobs = _indexes("billing_duejob")
    assert "test_clock_id IS NULL" in jobs["due_job_wall_waiting"]
    # Migration 0016: a cancel of a target's pending jobs of every kind looks the target up.
    assert "(target_id, kind) WHERE" in jobs["due_job_one_pending_per_kind_and_target"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'billing_customer'")
        assert "fillfactor=90" in cursor.fetchone()[0]


@pytest.mark.django_db
def test_the_wall_clock_tick_reads_its_partial_index():
    query = (
        DueJob.objects.filter(
            status=JobStatus.PENDING, test_clock__isnull=True, due_at__lte=timezone.now()
        )
        .order_by("due_at", "id")
        .values_list("id", flat=True)[:100]
    )
    stale = DueJob.objects.filter(
        status=JobStatus.QUEUED, test_clock__isnull=True, queued_at__lt=timezone.now()
    ).values_list("id", flat=True)[:100]
    with transaction.atomic(), connection.cursor() as cursor:
        # An empty table is read whole by choice; the plan must be able to use the index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        assert "due_job_wall_waiting" in query.explain()
        assert "due_job_wall_waiting" in stale.explain()
