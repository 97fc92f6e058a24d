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
