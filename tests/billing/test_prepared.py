"""Prepared queries (billing/prepared.py) answer what the querysets they stand for answer."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from billing import prepared
from billing.api.base import scoped_lookup
from billing.models import Account, Customer, Discount, Price
from billing.models.base import in_mode
from billing.prepared import Prepared
from tests import factories

pytestmark = pytest.mark.django_db


def _same(a, b):
    assert type(a) is type(b)
    assert a.__dict__.keys() - {"_state"} == b.__dict__.keys() - {"_state"}
    for name, value in a.__dict__.items():
        if name != "_state":
            assert value == b.__dict__[name], name
    assert (a._state.db, a._state.adding) == (b._state.db, b._state.adding)


def test_first_matches_the_queryset_with_select_related_objects():
    account = factories.make_account()
    price = factories.make_price(account, unit_amount=1500)
    lookup = scoped_lookup(Price, ("product",))
    expected = (
        Price.objects.filter(account=account)
        .filter(in_mode(False))
        .select_related("product")
        .filter(pk=price.pk)
        .first()
    )
    for _ in range(2):  # compiled, then bound
        found = lookup.first(account.pk, False, price.pk)
        _same(found, expected)
        _same(found.product, expected.product)
    assert lookup.first(account.pk, True, price.pk) is None  # the other mode
    assert lookup.first(account.pk, False, "price_missing") is None


def test_a_nullable_related_object_may_be_missing():
    account = factories.make_account()
    customer = factories.make_customer(account)
    lookup = scoped_lookup(Customer, ("invoice_settings_default_payment_method",))
    found = lookup.first(account.pk, False, customer.pk)
    assert found == customer
    with CaptureQueriesContext(connection) as queries:
        assert found.invoice_settings_default_payment_method is None
    assert not queries.captured_queries


def test_all_get_and_flat_values():
    account = factories.make_account()
    customer = factories.make_customer(account)
    factories.make_discount(customer)
    factories.make_discount(customer, coupon=factories.make_coupon(account, code="OTHER"))
    discounts = Prepared(lambda customer_id: Discount.objects.filter(customer=customer_id))
    assert {d.pk for d in discounts.all(customer.pk)} == set(
        Discount.objects.filter(customer=customer).values_list("pk", flat=True)
    )
    with pytest.raises(Discount.MultipleObjectsReturned, match="it returned 2!"):
        discounts.get(customer.pk)
    with pytest.raises(Discount.DoesNotExist):
        discounts.get("cus_missing")
    names = Prepared(lambda pk: Account.objects.values_list("name", flat=True).filter(pk=pk))
    assert names.get(account.pk) == account.name


def test_text_arguments_it_cannot_bind_run_the_plain_queryset():
    account = factories.make_account()
    factories.make_customer(account, email="Jenny@Example.com")
    by_email = Prepared(lambda email: Customer.objects.filter(email__iexact=email))
    assert [c.email for c in by_email.all("jenny@example.com")] == ["Jenny@Example.com"]
    assert [c.email for c in by_email.all("JENNY@EXAMPLE.COM")] == ["Jenny@Example.com"]
    # Not a text value: the queryset as it is.
    assert by_email.first(None) is None


def test_a_constant_equal_to_a_parameter_is_not_taken_for_an_argument():
    account = factories.make_account()
    customer = factories.make_customer(account)
    lookup = scoped_lookup(Customer)
    assert lookup.first(account.pk, False, customer.pk) == customer
    assert lookup.first(account.pk, True, customer.pk) is None


@pytest.mark.django_db(transaction=True)
def test_locking_outside_a_transaction_is_refused_as_django_refuses_it():
    if not connection.features.has_select_for_update:
        pytest.skip("the database does not lock rows")
    account = factories.make_account()
    locking = Prepared(lambda pk: Account.objects.select_for_update().filter(pk=pk))
    with transaction.atomic():
        assert locking.get(account.pk) == account
    with pytest.raises(TransactionManagementError):
        locking.get(account.pk)


# --- reading ahead ---------------------------------------------------------------------------


def test_reads_ahead_are_taken_by_the_first_call_that_asks_them_without_a_query():
    account = factories.make_account()
    customer = factories.make_customer(account)
    price = factories.make_price(account, unit_amount=1500)
    factories.make_discount(customer)
    customers = scoped_lookup(Customer, ("invoice_settings_default_payment_method",))
    prices = scoped_lookup(Price, ("product",))
    discounts = Prepared(
        lambda customer_id: Discount.objects.filter(customer=customer_id).select_related("coupon")
    )
    expected_price = prices.first(account.pk, False, price.pk)
    expected_discounts = discounts.all(customer.pk)
    with (
        CaptureQueriesContext(connection) as reading,
        prepared.ahead(
            (customers, "first", (account.pk, False, customer.pk)),
            (prices, "first", (account.pk, False, price.pk)),
            (prices, "first", (account.pk, False, "price_missing")),
            (discounts, "all", (customer.pk,)),
        ),
    ):
        read = len(reading.captured_queries)
        assert customers.first(account.pk, False, customer.pk) == customer
        found = prices.first(account.pk, False, price.pk)
        _same(found, expected_price)
        _same(found.product, expected_price.product)
        assert prices.first(account.pk, False, "price_missing") is None
        taken = discounts.all(customer.pk)
        assert len(taken) == len(expected_discounts) == 1
        _same(taken[0], expected_discounts[0])
        assert len(reading.captured_queries) == read  # all four were read ahead
        # Taken once: asking again asks the database, as without `ahead`.
        assert customers.first(account.pk, False, customer.pk) == customer
        assert len(reading.captured_queries) == read + 1
        # Another argument was not read ahead.
        assert prices.first(account.pk, True, price.pk) is None
        assert len(reading.captured_queries) == read + 2
    assert read == 4
    # Outside the block nothing is kept.
    with CaptureQueriesContext(connection) as after:
        prices.first(account.pk, False, price.pk)
    assert len(after.captured_queries) == 1


def test_rows_read_ahead_are_as_of_the_read_and_unasked_ones_are_dropped():
    account = factories.make_account()
    customer = factories.make_customer(account, name="Before")
    lookup = scoped_lookup(Customer)
    with prepared.ahead((lookup, "first", (account.pk, False, customer.pk))):
        Customer.objects.filter(pk=customer.pk).update(name="After")
        assert lookup.first(account.pk, False, customer.pk).name == "Before"
    with prepared.ahead((lookup, "first", (account.pk, False, customer.pk))):
        pass
    assert lookup.first(account.pk, False, customer.pk).name == "After"


def test_reads_ahead_go_out_in_one_pipeline_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the pipeline is PostgreSQL's")
    account = factories.make_account()
    customer = factories.make_customer(account)
    lookup = scoped_lookup(Customer)
    seen = []

    def in_pipeline(execute, sql, params, many, context):
        seen.append(connection.connection._pipeline is not None)
        return execute(sql, params, many, context)

    with (
        connection.execute_wrapper(in_pipeline),
        prepared.ahead(
            (lookup, "first", (account.pk, False, customer.pk)),
            (lookup, "first", (account.pk, True, customer.pk)),
            (scoped_lookup(Price), "first", (account.pk, False, "price_missing")),
        ),
    ):
        assert lookup.first(account.pk, False, customer.pk) == customer
    assert seen == [True, True, True]


def test_a_read_ahead_that_fails_raises_djangos_error():
    account = factories.make_account()
    broken = Prepared(lambda pk: Customer.objects.filter(pk=pk).extra(where=["no_such_column"]))
    with (
        pytest.raises(DatabaseError),
        transaction.atomic(),
        prepared.ahead(
            (scoped_lookup(Customer), "first", (account.pk, False, "cus_x")),
            (broken, "first", ("cus_x",)),
        ),
    ):
        pass


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_ahead_outside_a_transaction_is_refused():
    if not connection.features.has_select_for_update:
        pytest.skip("the database does not lock rows")
    account = factories.make_account()
    customer = factories.make_customer(account)
    locking = scoped_lookup(Customer, for_update=True)
    with transaction.atomic(), prepared.ahead((locking, "first", (account.pk, False, customer.pk))):
        assert locking.first(account.pk, False, customer.pk) == customer
    with (
        pytest.raises(TransactionManagementError),
        prepared.ahead((locking, "first", (account.pk, False, customer.pk))),
    ):
        pass


def test_read_ahead_blocks_do_not_nest():
    account = factories.make_account()
    read = (scoped_lookup(Customer), "first", (account.pk, False, "cus_x"))
    with prepared.ahead(read), pytest.raises(RuntimeError), prepared.ahead(read):
        pass


@pytest.mark.django_db(transaction=True)
def test_reads_ahead_may_be_a_connections_first_statements():
    account = factories.make_account()
    customer = factories.make_customer(account)
    lookup = scoped_lookup(Customer)
    connection.close()
    with prepared.ahead(
        (lookup, "first", (account.pk, False, customer.pk)),
        (lookup, "first", (account.pk, True, customer.pk)),
    ):
        assert lookup.first(account.pk, False, customer.pk) == customer
        assert lookup.first(account.pk, True, customer.pk) is None
