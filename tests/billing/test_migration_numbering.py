"""Migration 0012: accounts that exist keep numbering across the account; each customer that
exists gets a prefix of its own."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from billing.models.customers import INVOICE_PREFIX

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0011_event_data_lz4")]
AFTER = [("billing", "0012_invoice_numbering")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_accounts_keep_their_scheme_and_customers_get_distinct_prefixes():
    old = _migrate(BEFORE)
    try:
        Account = old.get_model("billing", "Account")
        Customer = old.get_model("billing", "Customer")
        account = Account.objects.create(id="acct_migration0000000001", name="Old", country="US")
        for n in range(30):
            Customer.objects.create(
                id=f"cus_migration{n:011d}", account=account, livemode=bool(n % 2)
            )
        new = _migrate(AFTER)
        account = new.get_model("billing", "Account").objects.get(pk=account.pk)
        # A US account would default to numbering for each customer; this one numbered
        # across the account until now, and goes on doing so.
        assert account.invoice_numbering == "account"
        prefixes = list(
            new.get_model("billing", "Customer")
            .objects.filter(account_id=account.pk)
            .values_list("invoice_prefix", "next_invoice_sequence")
        )
        assert len({prefix for prefix, _ in prefixes}) == 30
        assert all(INVOICE_PREFIX.fullmatch(prefix) and len(prefix) == 8 for prefix, _ in prefixes)
        assert {sequence for _, sequence in prefixes} == {1}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
