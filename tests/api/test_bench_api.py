"""`manage.py bench_api` end to end, tiny: a real gunicorn on the test database."""

import importlib.util
import io
import os

import pytest
from django.core.management import call_command
from django_q.models import OrmQ

from billing.models import Account, ApiKey, Customer, Event, Subscription

pytestmark = [
    # The server is another process: it only sees committed rows.
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        importlib.util.find_spec("gunicorn") is None or not hasattr(os, "killpg"),
        reason="gunicorn cannot start here",
    ),
]


def test_bench_api_measures_creates_against_the_baseline_and_cleans_up():
    out = io.StringIO()
    call_command("bench_api", requests=4, concurrency=2, workers=1, profile=2, stdout=out)
    text = out.getvalue()
    create_line = next(line for line in text.splitlines() if "POST /v1/subscriptions" in line)
    baseline_line = next(line for line in text.splitlines() if "GET /v1/customers" in line)
    # method, path, requests, req/s, p50, p99, errors, server, database and client CPU
    assert create_line.split()[2] == "4" and create_line.split()[6] == "0", text
    assert baseline_line.split()[2] == "4" and baseline_line.split()[6] == "0", text
    assert len(create_line.split()) == 10, text
    assert float(create_line.split()[9]) > 0, text  # the client's own CPU per request
    assert "baseline / create-subscription throughput" in text
    assert "active subscriptions created: 4" in text
    assert "create_subscription service" in text
    for model in (Account, ApiKey, Customer, Subscription, Event):
        assert not model.objects.exists(), model.__name__
    # The tasks that would have handed the run's events to subscribers went with them.
    assert not OrmQ.objects.exists()


def test_bench_api_numbers_the_invoices_as_asked():
    out = io.StringIO()
    call_command(
        "bench_api", requests=3, concurrency=1, workers=1, invoice_numbering="account", stdout=out
    )
    text = out.getvalue()
    assert "invoices numbered sequentially across the account" in text
    assert "active subscriptions created: 3" in text
    assert not Account.objects.exists()
