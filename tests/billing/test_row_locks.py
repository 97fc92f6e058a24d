"""Row locks on PostgreSQL: numbering an invoice takes turns with other numberings of the
account, but lets other transactions insert rows that refer to the account."""

import psycopg
import pytest
from django.db import connection, transaction

from billing import batching
from billing.models import Account
from tests import factories

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's row locks"),
    pytest.mark.django_db(transaction=True),
]


def _other_connection():
    other = connection.get_new_connection(connection.get_connection_params())
    other.autocommit = True
    return other


def _can_lock(other, account_id: str, strength: str) -> bool:
    try:
        other.execute(
            f"SELECT 1 FROM billing_account WHERE id = %s FOR {strength} NOWAIT", [account_id]
        )
    except psycopg.errors.LockNotAvailable:
        return False
    return True


def test_the_invoice_counter_is_locked_against_numberings_not_against_references():
    account = factories.make_account()
    other = _other_connection()
    try:
        with transaction.atomic(), batching.deferred():
            assert batching.next_in_sequence(Account, account.pk, "invoice_sequence_test") == 1
            # A foreign key check (an invoice, an event, a customer of the account being
            # inserted elsewhere) takes FOR KEY SHARE on the row: it does not wait.
            assert _can_lock(other, account.pk, "KEY SHARE")
            # Another numbering (or any writer of the row) waits for this one to commit.
            assert not _can_lock(other, account.pk, "NO KEY UPDATE")
            assert not _can_lock(other, account.pk, "UPDATE")
    finally:
        other.close()
    account.refresh_from_db()
    assert account.invoice_sequence_test == 1


def test_a_subscription_create_locks_its_customer_against_writers_only(client):
    from tests.api.conftest import Api

    account = factories.make_account()
    customer = factories.make_customer(account)
    customer.invoice_settings_default_payment_method = factories.make_card(customer)
    customer.save()
    price = factories.make_price(account, unit_amount=1000)
    key = factories.make_api_key(account, livemode=False)
    other = _other_connection()
    seen = {}

    def look(execute, sql, params, many, context):
        # Just before the create's writes: what may another transaction do to the customer?
        if sql.startswith("INSERT") and "billing_subscription" in sql and not seen:
            for strength in ("KEY SHARE", "NO KEY UPDATE"):
                try:
                    other.execute(
                        f"SELECT 1 FROM billing_customer WHERE id = %s FOR {strength} NOWAIT",
                        [customer.pk],
                    )
                    seen[strength] = True
                except psycopg.errors.LockNotAvailable:
                    seen[strength] = False
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(look):
            response = Api(client, key.raw).post(
                "/v1/subscriptions", {"customer": customer.pk, "items[0][price]": price.pk}
            )
    finally:
        other.close()
    assert response.status_code == 200, response.content
    assert seen == {"KEY SHARE": True, "NO KEY UPDATE": False}


def test_a_create_that_waited_for_its_customer_charges_the_card_the_customer_has_now(client):
    """The customer is read locked with its default card joined. Waiting for the lock of a
    transaction that changes that card, PostgreSQL re-checks the new customer row against the
    card it had joined before the wait (no match: no card); the create must charge the new
    card all the same."""
    import threading
    import time

    from django.db import connections

    from tests.api.conftest import Api

    account = factories.make_account()
    customer = factories.make_customer(account)
    old = factories.make_card(customer, card_last4="1111")
    new = factories.make_card(customer, card_last4="4242")
    customer.invoice_settings_default_payment_method = old
    customer.save()
    price = factories.make_price(account, unit_amount=1000)
    key = factories.make_api_key(account, livemode=False)
    other = connection.get_new_connection(connection.get_connection_params())
    other.execute(
        "UPDATE billing_customer SET invoice_settings_default_payment_method_id = %s WHERE id = %s",
        [new.pk, customer.pk],
    )
    result = {}

    def create():
        try:
            response = Api(client, key.raw).post(
                "/v1/subscriptions",
                {
                    "customer": customer.pk,
                    "items[0][price]": price.pk,
                    "expand[0]": "latest_invoice.payment_intent",
                },
            )
            result["status"], result["body"] = response.status_code, response.json()
        finally:
            connections.close_all()

    thread = threading.Thread(target=create)
    thread.start()
    try:
        # The create is waiting for the customer's row.
        deadline = time.monotonic() + 10
        while True:
            waiting = other.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'"
            ).fetchone()[0]
            if waiting or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert waiting, "the create never waited for the customer's lock"
    finally:
        other.commit()
        other.close()
        thread.join()
    assert result["status"] == 200, result
    assert result["body"]["status"] == "active", result
    intent = result["body"]["latest_invoice"]["payment_intent"]
    assert intent["payment_method"] == new.pk


def test_numbered_for_each_customer_a_finalization_locks_no_account_row():
    """SPEC R-INV-3: the number comes from the customer's row, which finalizing locks anyway;
    two finalizations for different customers never wait for each other."""
    from billing.services import invoices as invoicing

    account = factories.make_account(invoice_numbering="customer")
    customer = factories.make_customer(account)
    invoicing.create_invoice_item(customer, amount=500, currency="usd")
    invoice = invoicing.create_manual_invoice(customer)
    other = _other_connection()
    try:
        with transaction.atomic():
            finalized = invoicing.finalize_invoice(invoice, collect=False)
            assert finalized.number == f"{customer.invoice_prefix}-0001"
            assert _can_lock(other, account.pk, "NO KEY UPDATE")
            try:
                other.execute(
                    "SELECT 1 FROM billing_customer WHERE id = %s FOR NO KEY UPDATE NOWAIT",
                    [customer.pk],
                )
                customer_free = True
            except psycopg.errors.LockNotAvailable:
                customer_free = False
            assert not customer_free
    finally:
        other.close()
    customer.refresh_from_db()
    assert customer.next_invoice_sequence == 2
