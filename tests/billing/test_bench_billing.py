"""`manage.py bench_billing` end to end, tiny: the renewals run in batches, as measured."""

import io
import logging

import pytest
from django.core.management import call_command

from billing.models import Account, Subscription

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("without_subscribers", [False, True])
def test_bench_billing_renews_in_batches_and_cleans_up(without_subscribers, caplog):
    out = io.StringIO()
    with caplog.at_level(logging.ERROR, logger="billing.timeline"):
        call_command(
            "bench_billing",
            subscriptions=12,
            without_subscribers=without_subscribers,
            stdout=out,
        )
    text = out.getvalue()
    assert "renewals/s" in text and "engine / baseline" in text, text
    # A batch that fails is run again job by job and logged: the figures would then measure
    # that fallback, not the engine (as when the benchmark's stand-in dispatcher broke).
    assert not [r for r in caplog.records if "running them one by one" in r.getMessage()]
    assert not Account.objects.filter(metadata__bench="true").exists()
    assert not Subscription.objects.exists()


def test_bench_billing_with_helpers_renews_every_subscription_once(monkeypatch, caplog):
    # A real django-q2 cluster takes batches of each crowd beside the advancing process.
    from billing import timeline

    monkeypatch.setattr(timeline, "BATCH_SIZE", 2)
    out = io.StringIO()
    with caplog.at_level(logging.ERROR, logger="billing.timeline"):
        call_command("bench_billing", subscriptions=12, helpers=1, stdout=out)
    text = out.getvalue()
    # Three monthly subscriptions for one annual: 9 renew, each once.
    assert "advanced one month: 9 renewals" in text, text
    assert "helpers CPU" in text and "1 django-q2 workers" in text, text
    assert not [r for r in caplog.records if "running them one by one" in r.getMessage()]
    assert not Account.objects.filter(metadata__bench="true").exists()


def test_bench_billing_refuses_helpers_it_could_not_measure():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--helpers"):
        call_command("bench_billing", subscriptions=2, helpers=1, without_subscribers=True)


def test_the_cleanup_deletes_a_chunk_of_rows_at_a_time(account, other_account):
    # Django's delete holds every row it deletes as an instance: a run's million events are
    # deleted a chunk at a time, and only the benchmark account's.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import events
    from billing.management.commands.bench_billing import _delete_in_chunks
    from billing.models import Event
    from tests import factories

    for owner in (account, other_account):
        customer = factories.make_customer(owner)
        for _ in range(5):
            events.emit("customer.updated", customer)
    assert Event.objects.filter(account=account).count() == 5
    kept = Event.objects.filter(account=other_account).count()
    with CaptureQueriesContext(connection) as queries:
        _delete_in_chunks(Event.objects.filter(account=account), size=2)
    deletes = [q["sql"] for q in queries if q["sql"].startswith('DELETE FROM "billing_event"')]
    assert len(deletes) == 3  # 2, 2 and 1
    assert not Event.objects.filter(account=account).exists()
    assert Event.objects.filter(account=other_account).count() == kept
