"""`__among`: the rows `__in` finds, with a batch's keys sent as one text on PostgreSQL."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Customer, DueJob, PaymentMethod
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def customers(account):
    return [factories.make_customer(account, email=f"c{n}@example.com") for n in range(4)]


def _ids(queryset) -> set:
    return set(queryset.values_list("pk", flat=True))


def _sql(queryset) -> str:
    with CaptureQueriesContext(connection) as captured:
        list(queryset)
    return captured.captured_queries[-1]["sql"]


def test_among_finds_the_rows_in_finds(customers):
    keys = [customers[0].pk, customers[2].pk, "cus_missing", customers[0].pk]
    assert _ids(Customer.objects.filter(pk__among=keys)) == {customers[0].pk, customers[2].pk}
    assert _ids(Customer.objects.filter(pk__among=keys)) == _ids(
        Customer.objects.filter(pk__in=keys)
    )
    assert _ids(Customer.objects.filter(pk__among=set(keys))) == _ids(
        Customer.objects.filter(pk__in=keys)
    )
    assert _ids(Customer.objects.exclude(pk__among=keys)) == {customers[1].pk, customers[3].pk}


def test_among_follows_foreign_keys(customers):
    cards = [factories.make_card(customer) for customer in customers]
    keys = [customers[1].pk, customers[3].pk]
    expected = {cards[1].pk, cards[3].pk}
    assert _ids(PaymentMethod.objects.filter(customer__among=keys)) == expected
    assert _ids(PaymentMethod.objects.filter(customer_id__among=keys)) == expected
    # Instances, as `__in` takes them.
    assert _ids(PaymentMethod.objects.filter(customer__among=[customers[1]])) == {cards[1].pk}


def test_among_takes_integer_keys(customers):
    jobs = [factories.make_due_job(customer, kind="renewal") for customer in customers[:3]]
    keys = [jobs[0].pk, jobs[2].pk, 10**12]
    assert _ids(DueJob.objects.filter(pk__among=keys)) == {jobs[0].pk, jobs[2].pk}


def test_keys_that_cannot_travel_as_one_text_go_as_in(customers):
    # A space would split a key; an empty one would vanish; None matches nothing.
    assert not _ids(Customer.objects.filter(pk__among=[f"{customers[0].pk} {customers[1].pk}"]))
    assert _ids(Customer.objects.filter(pk__among=["", customers[1].pk])) == {customers[1].pk}
    assert _ids(Customer.objects.filter(pk__among=[None, customers[2].pk])) == {customers[2].pk}
    assert _ids(Customer.objects.filter(pk__among=[])) == set()
    # Text for an integer key: as `__in`, Django converts it.
    job = factories.make_due_job(customers[0])
    assert _ids(DueJob.objects.filter(pk__among=[str(job.pk)])) == {job.pk}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's form")
def test_on_postgresql_the_keys_travel_as_one_parameter(customers):
    keys = [customer.pk for customer in customers]
    sql = _sql(Customer.objects.filter(pk__among=keys))
    assert "string_to_array" in sql and " IN " not in sql
    assert "::bigint[]" in _sql(DueJob.objects.filter(pk__among=[1, 2, 3]))
    assert " IN " in _sql(Customer.objects.filter(pk__among=["a b", "c"]))
