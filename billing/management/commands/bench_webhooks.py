"""Benchmark: webhook deliveries per second through django-q2, against a bare loop.

    python manage.py bench_webhooks --events 2000 --workers 2 --fail-rate 0.01

Starts a keep-alive receiver in its own process (billing/webhooks/bench_receiver.py) that
answers 500 to `--fail-rate` of the requests, and a throwaway account with one test-mode
endpoint pointing at it (retrying 1 s after a failure, so the 1 % are retried within the run).

- Baseline: a bare loop in this process POSTs `--events` rendered, signed events to the
  receiver with the same client and signing as deliveries (`delivery.post`): no database.
- Deliveries: `manage.py qcluster` with `--workers` workers runs against the same database.
  Throughput: this process commits the `--events` events in one transaction, written in bulk
  `--per-transaction` at a time as the batched engine writes a renewal crowd (the outbox adds
  a delivery and a due job each; the commit starts one task per 100 deliveries); the rate
  runs from that commit to the end of the last first attempt. Latency: then a tenth as many
  events (at most 200) are committed one per transaction at 50/s, and p50/p99 run from each
  commit to its first attempt. Retries of the failed 1 % are ticked (1 s apart) until every
  delivery succeeded or `--deadline` seconds passed.

It prints both rates and their ratio (goal ≥ 0.5), p50/p99 from an event's commit to its
first attempt, and events lost (no 2xx at all: must be 0) and duplicated (more than one 2xx).
Everything made is deleted afterwards.
"""

import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django_q.conf import Conf

from billing import batching, events, timeline
from billing.management.processes import database_url
from billing.models import (
    Account,
    Customer,
    DueJob,
    Event,
    WebhookAttempt,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from billing.services import webhooks as webhook_services
from billing.webhooks import delivery as sending


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


class Receiver:
    """The receiver process, and its statistics."""

    def __init__(self, fail_rate: float):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "billing.webhooks.bench_receiver",
                "--fail-rate",
                str(fail_rate),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}/hooks"

    def stats(self) -> dict:
        return json.loads(sending.client().get(self.url).content)

    def reset(self) -> None:
        sending.client().delete(self.url)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Command(BaseCommand):
    help = "Measure webhook deliveries/s through django-q2 against a bare HTTP loop."

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=2000)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--fail-rate", type=float, default=0.01)
        parser.add_argument("--per-transaction", type=int, default=20)
        parser.add_argument("--deadline", type=float, default=300.0, help="seconds")

    def handle(self, *args, events, workers, fail_rate, per_transaction, deadline, **options):
        if events < 1 or workers < 1 or per_transaction < 1:
            raise CommandError("--events, --workers and --per-transaction must be positive.")
        logging.getLogger("httpx").setLevel(logging.WARNING)
        receiver = Receiver(fail_rate)
        account = Account.objects.create(name="Webhook benchmark (temporary)")
        cluster = None
        try:
            endpoint = webhook_services.create_webhook_endpoint(
                account,
                livemode=False,
                url=receiver.url,
                enabled_events=["customer.created"],
                retry_schedule=[1] * 10,
            )
            customer = Customer.objects.create(account=account, livemode=False, email="b@x.test")
            baseline = self._baseline(endpoint, customer, events, receiver)
            receiver.reset()
            cluster = self._start_cluster(workers)
            result = self._deliveries(
                endpoint, customer, events, per_transaction, deadline, receiver
            )
        finally:
            if cluster is not None:
                cluster.terminate()
                cluster.wait(timeout=30)
            receiver.stop()
            self._clean(account)
        ratio = result["rate"] / baseline if baseline else 0.0
        out = self.stdout.write
        out(f"database            {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        out(f"events              {events} (receiver fails {fail_rate:.0%} of requests)")
        out(f"baseline (bare loop) {baseline:8.0f} deliveries/s")
        out(f"django-q2, {workers} workers {result['rate']:8.0f} deliveries/s (first attempts)")
        out(f"ratio               {ratio:.2f} (goal >= 0.50)")
        out(
            f"commit -> 1st attempt  p50 {result['p50'] * 1000:.0f} ms, "
            f"p99 {result['p99'] * 1000:.0f} ms (events committed one at a time, 50/s)"
        )
        out(f"retried             {result['retried']}")
        out(f"lost                {result['lost']}")
        out(f"duplicated          {result['duplicated']}")
        out(f"all delivered in    {result['elapsed']:.1f} s")
        return None

    def _baseline(self, endpoint, customer, count, receiver) -> float:
        """Bare loop: render, sign, POST with the deliveries' client; no database."""
        with transaction.atomic():
            event = events.build("customer.created", customer)
            event.save()
        event = Event.objects.select_related("account").get(pk=event.pk)
        body = sending.render(event)
        sending.post(endpoint, body, event.id)  # warm the connection
        started = time.perf_counter()
        for _ in range(count):
            sending.post(endpoint, sending.render(event), event.id)
        elapsed = time.perf_counter() - started
        event.delete()
        return count / elapsed

    def _start_cluster(self, workers: int) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "Q_CLUSTER_WORKERS": str(workers),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
        )

    def _warm_up(self, endpoint, customer, receiver, deadline) -> None:
        """Wait until the cluster delivers one event (it takes a second or two to start)."""
        with transaction.atomic():
            event = events.emit("customer.created", customer)
        limit = time.time() + deadline
        # Recorded, not only received: deleting a delivery whose attempt the worker is still
        # writing would break that write.
        recorded = WebhookDelivery.objects.filter(
            event=event, status=WebhookDeliveryStatus.SUCCEEDED
        )
        while time.time() < limit and not recorded.exists():
            time.sleep(0.1)
        if not recorded.exists():
            raise CommandError("the django-q2 cluster delivered nothing: is it running?")
        receiver.reset()
        WebhookDelivery.objects.filter(event=event).delete()

    def _deliveries(self, endpoint, customer, count, per_transaction, deadline, receiver) -> dict:
        # Tests run django-q2 tasks inline; here they must go to the cluster.
        sync, Conf.SYNC = Conf.SYNC, False
        try:
            self._warm_up(endpoint, customer, receiver, deadline)
            # Throughput: the crowd is committed at once (written in bulk, `per_transaction`
            # events per flush, as the batched engine writes a renewal crowd's events), so
            # the workers' rate is measured, not this process's.
            with transaction.atomic():
                ids = []
                while len(ids) < count:
                    with batching.deferred():
                        for _ in range(min(per_transaction, count - len(ids))):
                            ids.append(events.emit("customer.created", customer).id)
            committed_at = time.time()
            self._wait(endpoint, deadline)
            elapsed = time.time() - committed_at
            crowd = set(ids)
            ends = WebhookAttempt.objects.filter(
                delivery__endpoint=endpoint, delivery__event_id__in=ids, number=1
            ).values_list("started_at", "duration_ms")
            last_end = max(
                (at + timedelta(milliseconds=ms or 0) for at, ms in ends), default=timezone.now()
            )
            # Latency: events committed one at a time at a steady pace the workers keep up
            # with (a tenth of the crowd, at most 200), each in its own transaction.
            committed: dict[str, float] = {}
            for _ in range(min(200, max(count // 10, 1))):
                with transaction.atomic():
                    event_id = events.emit("customer.created", customer).id
                committed[event_id] = time.time()
                time.sleep(0.02)
            self._wait(endpoint, deadline)
        finally:
            Conf.SYNC = sync
        first = dict(
            WebhookAttempt.objects.filter(
                delivery__endpoint=endpoint, delivery__event_id__in=list(committed)
            )
            .values_list("delivery__event_id")
            .annotate(first=Min("started_at"))
        )
        latencies = [first[e].timestamp() - t for e, t in committed.items() if e in first]
        received = receiver.stats()["ok"]
        every = crowd | set(committed)
        return {
            "rate": count / max(last_end.timestamp() - committed_at, 1e-9),
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "lost": sum(1 for e in every if not received.get(e)),
            "duplicated": sum(1 for e in every if received.get(e, 0) > 1),
            "retried": WebhookDelivery.objects.filter(
                endpoint=endpoint, attempt_count__gt=1
            ).count(),
            "elapsed": elapsed,
        }

    def _wait(self, endpoint, deadline) -> None:
        """Until every delivery succeeded, ticking the timeline for the retries of failures."""
        limit = time.time() + deadline
        waiting = WebhookDelivery.objects.filter(endpoint=endpoint).exclude(
            status=WebhookDeliveryStatus.SUCCEEDED
        )
        while time.time() < limit and waiting.exists():
            timeline.tick()
            time.sleep(0.1)

    def _clean(self, account) -> None:
        delivery_ids = WebhookDelivery.objects.filter(account=account).values_list("pk", flat=True)
        DueJob.objects.filter(target_id__in=list(delivery_ids)).delete()
        Event.objects.filter(account=account).delete()
        account.delete()
