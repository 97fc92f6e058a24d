"""Retries on the event's clock, receivers that misbehave, workers that die (SPEC R-EVT-3)."""

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from billing import timeline
from billing.choices import JobStatus, WebhookEndpointStatus
from billing.models import DueJob, Event, WebhookDelivery, WebhookDeliveryStatus
from billing.services import webhooks as webhook_services
from billing.services.customers import create_customer
from billing.webhooks import delivery as sending
from billing.webhooks import routing
from tests.webhooks.conftest import START, advance, advance_to, flaky

pytestmark = pytest.mark.django_db(transaction=True)


def endpoint_for(account, url, *, livemode=False, **options):
    return webhook_services.create_webhook_endpoint(
        account, livemode=livemode, url=url, enabled_events=["customer.created"], **options
    )


def _pending_jobs(delivery):
    return DueJob.objects.filter(target_id=delivery.pk, status=JobStatus.PENDING)


def test_retries_follow_the_test_mode_schedule_on_the_test_clock(account, clock, failing):
    # SPEC R-EVT-3: 3 retries over a few hours, then failed; driven by the clock, not sleeps.
    endpoint_for(account, failing.url)
    create_customer(account, livemode=False, test_clock=clock)
    delivery = WebhookDelivery.objects.get()
    for _retry in range(3):
        assert delivery.status == WebhookDeliveryStatus.PENDING
        assert _pending_jobs(delivery).get().due_at == delivery.next_attempt_at
        advance_to(clock, delivery.next_attempt_at)
        delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.FAILED
    assert delivery.next_attempt_at is None
    assert not _pending_jobs(delivery).exists()
    times = list(delivery.attempts.order_by("number").values_list("started_at", flat=True))
    assert times[0] == START
    gaps = [
        (later - earlier).total_seconds() for earlier, later in zip(times, times[1:], strict=False)
    ]
    for gap, base in zip(gaps, sending.DEFAULT_RETRY_DELAYS[False], strict=True):
        assert base * 0.9 <= gap <= base * 1.1
    assert len(failing.received()) == 4


def test_the_live_schedule_retries_for_up_to_three_days():
    # SPEC R-EVT-3: exponential backoff, at most 3 days even with the longest jitter.
    delays = sending.DEFAULT_RETRY_DELAYS[True]
    assert list(delays[:7]) == sorted(delays[:7])
    assert timedelta(days=2.5) <= timedelta(seconds=sum(delays)) <= timedelta(days=3) / 1.1


def test_live_retries_run_on_wall_time_through_the_tick(account, receivers, settings, time_machine):
    settings.RELANCE_WEBHOOKS_ALLOW_PRIVATE = True
    receiver = receivers(lambda n: "fail" if n == 0 else "ok")
    endpoint_for(account, receiver.url, livemode=True)
    time_machine.move_to(timezone.now(), tick=False)
    create_customer(account, livemode=True)
    delivery = WebhookDelivery.objects.get()
    assert 54 <= (delivery.next_attempt_at - delivery.created).total_seconds() <= 66
    time_machine.shift(timedelta(seconds=30))
    assert timeline.tick() == 0  # not due yet
    time_machine.shift(timedelta(seconds=40))
    assert timeline.tick() == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert delivery.attempt_count == 2


def test_a_receiver_failing_half_the_time_still_gets_every_event(account, clock, receivers):
    # At least once: every event reaches it with a 2xx (some twice, which receivers de-duplicate).
    receiver = receivers(flaky(0.5))
    endpoint_for(account, receiver.url, retry_schedule=[600] * 15)
    for n in range(20):
        create_customer(account, livemode=False, test_clock=clock, email=f"c{n}@example.com")
    advance(clock, hours=3)
    expected = set(Event.objects.filter(type="customer.created").values_list("id", flat=True))
    assert set(receiver.event_ids("ok")) == expected
    assert WebhookDelivery.objects.exclude(status=WebhookDeliveryStatus.SUCCEEDED).count() == 0
    assert len(receiver.received("fail")) > 0  # it did fail along the way


def test_a_worker_killed_mid_delivery_is_retried_not_lost(account, clock, receivers):
    # The worker claimed the delivery (committed) and died before sending or recording.
    receiver = receivers()
    endpoint_for(account, receiver.url)
    real = routing.send_after_commit
    routing.send_after_commit = lambda ids: None  # no fast path: the claim below is the worker
    try:
        create_customer(account, livemode=False, test_clock=clock)
    finally:
        routing.send_after_commit = real
    delivery = WebhookDelivery.objects.get()
    with transaction.atomic():
        [claimed] = sending.claim([delivery.pk], first_only=True)
    # ... crash. Its lease runs out (it is ~30 s of wall time; here, at once).
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        leased_until=timezone.now() - timedelta(seconds=1)
    )
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.PENDING
    assert receiver.received() == []
    advance_to(clock, _pending_jobs(delivery).get().due_at)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDeliveryStatus.SUCCEEDED
    assert len(receiver.received()) == 1
    assert delivery.attempt_count == 2  # the lost attempt counts


def test_a_lost_on_commit_task_is_made_up_for_by_the_outbox_job(account, clock, receiver):
    endpoint_for(account, receiver.url)
    real = routing.send_after_commit
    routing.send_after_commit = lambda ids: None
    try:
        create_customer(account, livemode=False, test_clock=clock)
    finally:
        routing.send_after_commit = real
    assert receiver.received() == []
    advance(clock, minutes=1)
    assert len(receiver.received()) == 1
    assert WebhookDelivery.objects.get().status == WebhookDeliveryStatus.SUCCEEDED


def test_a_job_running_while_another_worker_sends_waits_for_it(account, clock, failing):
    endpoint_for(account, failing.url)
    create_customer(account, livemode=False, test_clock=clock)
    delivery = WebhookDelivery.objects.get()
    with transaction.atomic():
        sending.claim([delivery.pk])  # another worker is sending it now
    job = _pending_jobs(delivery).get()
    timeline.run(job.pk)
    assert len(failing.received()) == 1  # only the first attempt
    # It looks again once the other worker's lease could have ended.
    assert _pending_jobs(delivery).get().due_at >= START + timedelta(minutes=1)


def test_an_endpoint_failing_for_three_days_is_disabled_and_its_owners_emailed(
    account, owner, clock, failing
):
    endpoint = endpoint_for(account, failing.url, retry_schedule=[4 * 3600] * 20)
    create_customer(account, livemode=False, test_clock=clock)
    advance(clock, hours=90)
    endpoint.refresh_from_db()
    assert endpoint.status == WebhookEndpointStatus.DISABLED
    assert "failed" in endpoint.disabled_reason
    [message] = mail.outbox
    assert message.to == ["owner@acme.test"]
    assert endpoint.url in message.body
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDeliveryStatus.FAILED
    assert not _pending_jobs(delivery).exists()
    # Nothing more is sent to it.
    sent = len(failing.received())
    create_customer(account, livemode=False, test_clock=clock)
    assert len(failing.received()) == sent


def test_a_success_ends_the_run_of_failures(account, clock, receivers):
    receiver = receivers(lambda n: "fail" if n == 0 else "ok")
    endpoint = endpoint_for(account, receiver.url)
    create_customer(account, livemode=False, test_clock=clock)
    endpoint.refresh_from_db()
    assert endpoint.failing_since == START
    advance_to(clock, WebhookDelivery.objects.get().next_attempt_at)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None


def test_enabling_an_endpoint_again_clears_why_it_was_disabled(account, failing):
    endpoint = endpoint_for(account, failing.url)
    type(endpoint).objects.filter(pk=endpoint.pk).update(
        status=WebhookEndpointStatus.DISABLED, disabled_reason="failing", failing_since=START
    )
    endpoint = webhook_services.update_webhook_endpoint(endpoint, disabled=False)
    assert (endpoint.status, endpoint.disabled_reason, endpoint.failing_since) == (
        WebhookEndpointStatus.ENABLED,
        "",
        None,
    )
