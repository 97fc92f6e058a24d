"""`manage.py bench_webhooks`, run tiny: a real django-q2 cluster delivers, nothing is lost."""

import io

import pytest
from django.core.management import call_command

from billing.models import Account, WebhookDelivery

# The cluster runs in other processes: they must see committed data.
pytestmark = pytest.mark.django_db(transaction=True)


def test_the_benchmark_delivers_every_event_through_the_cluster_and_cleans_up():
    out = io.StringIO()
    call_command("bench_webhooks", events=30, per_transaction=10, deadline=120, stdout=out)
    report = out.getvalue()
    assert "lost                0" in report
    assert "ratio" in report and "deliveries/s" in report
    assert not Account.objects.filter(name="Webhook benchmark (temporary)").exists()
    assert WebhookDelivery.objects.count() == 0
