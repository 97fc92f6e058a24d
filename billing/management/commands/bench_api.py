"""Benchmark: create-subscription requests per second through the /v1 API on a real server.

    python manage.py bench_api --requests 2000 --concurrency 8 [--profile 200]

Starts gunicorn (2 sync workers) on a free local port against the configured database,
prepares a throwaway account with a test API key, a monthly price and one customer with a
card for every request (bulk inserts), then sends `POST /v1/subscriptions` with
`items[0][price]` from a pool of client threads (`http.client`, one connection each) at a fixed
concurrency. Each subscription is charged at once (no trial), so a request covers the whole
Stripe flow: subscription, invoice, payment intent, charge, events. The baseline, in the same
run and on the same server, is `GET /v1/customers/{id}` for the same customers: the cost of
the HTTP round trip, authentication and one read. It prints requests/s, p50 and p99 latency
and errors for both, and their ratio. `--profile K` also times K service calls in-process
(no HTTP), profiles K more and times K requests through Django's test client, to tell the
service's share from the HTTP stack's. Everything made is deleted afterwards.

The API's rate limit is lifted for the server it starts (`RELANCE_API_RATE_LIMIT=0`).
"""

import base64
import cProfile
import http.client
import io
import logging
import os
import pstats
import socket
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client, override_settings
from django.utils import timezone
from django_q.models import OrmQ

from billing import services
from billing.choices import (
    Interval,
    InvoiceNumbering,
    PriceType,
    SubscriptionStatus,
    TestCardBehavior,
    UsageType,
)
from billing.management.commands.bench_billing import engine_tables, vacuum
from billing.management.processes import Started, database_cpu_seconds, database_url
from billing.models import (
    Account,
    ApiKey,
    Customer,
    DueJob,
    Event,
    IdempotencyKey,
    Invoice,
    PaymentMethod,
    Price,
    Product,
    Subscription,
)
from billing.models.customers import new_invoice_prefixes

SERVER_START_TIMEOUT = 60  # seconds


@dataclass
class Run:
    """The outcome of one phase: each request's latency and status, and the wall time."""

    name: str
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    # CPU seconds the server's processes used during the phase (None where /proc is missing).
    server_cpu: float | None = None
    # CPU seconds this process (the client threads) used during the phase.
    client_cpu: float | None = None
    # CPU seconds PostgreSQL's processes on this machine used during the phase (None: SQLite,
    # which runs inside the server's processes, or no /proc).
    database_cpu: float | None = None

    @property
    def cpu_per_request(self) -> str:
        """Server CPU milliseconds per request: unlike req/s, not lowered by other load."""
        if self.server_cpu is None or not self.count:
            return "n/a"
        return f"{self.server_cpu / self.count * 1000:.1f}"

    @property
    def client_cpu_per_request(self) -> str:
        if self.client_cpu is None or not self.count:
            return "n/a"
        return f"{self.client_cpu / self.count * 1000:.1f}"

    @property
    def database_cpu_per_request(self) -> str:
        if self.database_cpu is None or not self.count:
            return "n/a"
        return f"{self.database_cpu / self.count * 1000:.1f}"

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        """The p-th percentile latency in milliseconds (nearest rank)."""
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[rank] * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server(Started):
    """gunicorn serving this project on 127.0.0.1, started and stopped by the benchmark."""

    def __init__(self, *, workers: int, env: dict):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--log-level",
                "warning",
                "--timeout",
                "120",
            ],
            env,
        )

    def wait_until_ready(self) -> None:
        """Return once the server answers (401 without a key); raise if it dies or hangs."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError(f"gunicorn exited ({self.process.returncode}):\n{self.output()}")
            try:
                httpx.get(f"{self.url}/v1/customers", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise CommandError(f"gunicorn did not answer within {SERVER_START_TIMEOUT} s")


class LeanClient:
    """The load generator: HTTP/1.1 through `http.client`, one connection per client thread.

    It shares the machine's 2 cores with the server it measures, so what it spends is taken
    from the server: httpx cost ~1.5 ms of CPU a request, a tenth of a create's whole budget;
    this costs a fraction of that (the `client CPU` column).
    """

    def __init__(self, url: str, api_key: str):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        token = base64.b64encode(f"{api_key}:".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.local = threading.local()

    def request(self, method: str, path: str, data: dict | None = None) -> tuple[int, str]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.connection = connection
        headers = dict(self.headers)
        body = None
        if data is not None:
            body = urlencode(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            # Reopened by http.client when the server closed it (gunicorn's sync workers do).
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            connection.close()
            self.local.connection = None
            raise


def fire(client: LeanClient, name: str, requests: list, concurrency: int, server=None) -> Run:
    """Send every `(method, path, data)` of `requests` from `concurrency` threads sharing
    `client`; each thread takes the next request as soon as its previous one is answered."""
    run = Run(name)
    lock = threading.Lock()
    position = iter(range(len(requests)))

    def worker():
        while True:
            with lock:
                index = next(position, None)
            if index is None:
                return
            method, path, data = requests[index]
            started = time.perf_counter()
            try:
                status, text = client.request(method, path, data)
            except (OSError, http.client.HTTPException) as error:
                status, text = None, repr(error)
            latency = time.perf_counter() - started
            with lock:
                run.latencies.append(latency)
                if status != 200:
                    run.errors.append(f"{status}: {text[:300]}")

    cpu_before = server.cpu_seconds() if server else None
    database_before = database_cpu_seconds() if server else None
    client_before = time.process_time()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    run.elapsed = time.perf_counter() - started
    run.client_cpu = time.process_time() - client_before
    cpu_after = server.cpu_seconds() if server else None
    if cpu_before is not None and cpu_after is not None:
        run.server_cpu = cpu_after - cpu_before
    database_after = database_cpu_seconds() if server else None
    if database_before is not None and database_after is not None:
        run.database_cpu = database_after - database_before
    return run


class Command(BaseCommand):
    help = "Create-subscription requests per second through gunicorn, against a read baseline."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=2000, help="create-subscription calls")
        parser.add_argument("--concurrency", type=int, default=8)
        parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
        parser.add_argument(
            "--profile",
            type=int,
            default=0,
            metavar="K",
            help="also time and profile create_subscription in this process (3 x K calls)",
        )
        parser.add_argument(
            "--invoice-numbering",
            choices=InvoiceNumbering.values,
            help="the account's invoice numbering (default: its country's, US: for each "
            "customer); across the account, every create takes the account's counter in turn",
        )

    def handle(self, *args, requests, concurrency, workers, profile, invoice_numbering, **options):
        if requests < 1 or concurrency < 1 or workers < 1 or profile < 0:
            raise CommandError("--requests, --concurrency and --workers must be positive.")
        # httpx logs every request at INFO: thousands of lines that are not the result.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings"),
            "RELANCE_API_RATE_LIMIT": "0",
            "DEBUG": "false",
            # This process's: the tasks the server queues are signed with it, so that this
            # process (and a worker of this deployment) can read them.
            "SECRET_KEY": settings.SECRET_KEY,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        account = Account.objects.create(
            name="API benchmark (temporary)",
            metadata={"bench": "1"},
            invoice_numbering=invoice_numbering or "",
        )
        queued_before = OrmQ.objects.aggregate(last=Max("id"))["last"] or 0
        server = None
        try:
            raw_key, price, customers = self._prepare(account, requests + 3 * profile)
            server = Server(workers=workers, env=env)
            server.wait_until_ready()
            self._measure(server, raw_key, price, customers[:requests], concurrency, workers)
            if profile:
                self._profile(raw_key, price, customers[requests:])
        finally:
            if server is not None:
                server.stop()
            self._clean(account, queued_before)

    def _prepare(self, account, count: int) -> tuple[str, Price, list[str]]:
        """A test key, a monthly price, and `count` customers each with a default card."""
        started = time.perf_counter()
        _, raw_key = services.issue_api_key(account, livemode=False, name="bench_api")
        product = Product.objects.create(account=account, name="Bench plan")
        price = Price.objects.create(
            account=account,
            product=product,
            currency="usd",
            unit_amount=2900,
            type=PriceType.RECURRING,
            recurring_interval=Interval.MONTH,
            recurring_interval_count=1,
            recurring_usage_type=UsageType.LICENSED,
        )
        created = timezone.now() - timedelta(days=1)
        with transaction.atomic():
            customers = Customer.objects.bulk_create(
                (
                    Customer(
                        account=account,
                        email=f"bench{n}@bench.example",
                        created=created,
                        invoice_prefix=prefix,
                    )
                    for n, prefix in enumerate(new_invoice_prefixes(count))
                ),
                batch_size=1000,
            )
            cards = PaymentMethod.objects.bulk_create(
                (
                    PaymentMethod(
                        account=account,
                        customer=customer,
                        card_last4="4242",
                        card_exp_month=12,
                        card_exp_year=created.year + 5,
                        test_behavior=TestCardBehavior.SUCCEED,
                        created=created,
                    )
                    for customer in customers
                ),
                batch_size=1000,
            )
            for customer, card in zip(customers, cards, strict=True):
                customer.invoice_settings_default_payment_method = card
            Customer.objects.bulk_update(
                customers, ["invoice_settings_default_payment_method"], batch_size=1000
            )
        # What autovacuum does after a bulk load (this machine runs without it): without
        # statistics the planner finds a customer by id through the account's index, reading
        # the account's customers up to it.
        vacuum((Customer, PaymentMethod, Price, Product, Account))
        self.stdout.write(
            f"prepared {count:,} customers with cards in {time.perf_counter() - started:.1f} s "
            f"({connection.vendor})"
        )
        return raw_key, price, [customer.pk for customer in customers]

    def _measure(self, server, raw_key, price, customers, concurrency, workers) -> None:
        client = LeanClient(server.url, raw_key)
        # Every worker loads its code and opens its database connection before timing.
        warm = [("GET", f"/v1/customers/{customers[0]}", None)] * (workers * 10)
        fire(client, "warm-up", warm, concurrency)
        baseline = fire(
            client,
            "GET /v1/customers/{id}",
            [("GET", f"/v1/customers/{customer}", None) for customer in customers],
            concurrency,
            server,
        )
        creates = fire(
            client,
            "POST /v1/subscriptions",
            [
                ("POST", "/v1/subscriptions", {"customer": c, "items[0][price]": price.pk})
                for c in customers
            ],
            concurrency,
            server,
        )
        made = Subscription.objects.filter(
            account=price.account, status=SubscriptionStatus.ACTIVE
        ).count()
        numbering = InvoiceNumbering(price.account.invoice_numbering_in_force).label.lower()
        self.stdout.write(
            f"server: gunicorn, {workers} workers, {connection.vendor}; "
            f"client: {concurrency} threads, one HTTP/1.1 connection each (http.client); "
            f"invoices numbered {numbering}"
        )
        self.stdout.write(
            f"  {'':26} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
            f"{'errors':>7} {'server CPU ms/req':>18} {'database CPU ms/req':>20} "
            f"{'client CPU ms/req':>18}"
        )
        for run in (creates, baseline):
            self.stdout.write(
                f"  {run.name:26} {run.count:9,} {run.rate:8.1f} {run.percentile(50):8.1f} "
                f"{run.percentile(99):8.1f} {len(run.errors):7,} {run.cpu_per_request:>18} "
                f"{run.database_cpu_per_request:>20} {run.client_cpu_per_request:>18}"
            )
        ratio = baseline.rate / creates.rate if creates.rate else float("inf")
        self.stdout.write(f"  baseline / create-subscription throughput: {ratio:.1f}x")
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        self.stdout.write(
            f"  load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} CPUs"
        )
        self.stdout.write(f"  active subscriptions created: {made:,}")
        for run in (creates, baseline):
            for error in run.errors[:3]:
                self.stdout.write(f"  {run.name} error: {error}")

    def _profile(self, raw_key, price, customers) -> None:
        """In this process, without HTTP: time `create_subscription` alone, then profile it,
        then time the whole view through Django's test client, a third of `customers` each."""
        # Imported here: the counter lives with the engine benchmark, which profiles the same way.
        from billing.management.commands.bench_billing import QueryCounter

        k = len(customers) // 3
        timed, profiled, viewed = customers[:k], customers[k : 2 * k], customers[2 * k :]
        objects = Customer.objects.in_bulk(timed + profiled)

        def create(customer_ids):
            for customer_id in customer_ids:
                with transaction.atomic():
                    services.create_subscription(objects[customer_id], items=[{"price": price}])

        counter = QueryCounter()
        profiler = cProfile.Profile()
        # As the server runs: no query log (DEBUG) and no rate limit.
        with override_settings(DEBUG=False, RELANCE_API_RATE_LIMIT=0), warnings.catch_warnings():
            # WhiteNoise warns that collectstatic never ran; nothing static is served here.
            warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
            started = time.perf_counter()
            with connection.execute_wrapper(counter):
                create(timed)
            service = (time.perf_counter() - started) / k
            profiler.runcall(create, profiled)

            client = Client(HTTP_AUTHORIZATION=f"Bearer {raw_key}", HTTP_HOST="127.0.0.1")
            started = time.perf_counter()
            for customer_id in viewed:
                response = client.post(
                    "/v1/subscriptions",
                    urlencode({"customer": customer_id, "items[0][price]": price.pk}),
                    content_type="application/x-www-form-urlencoded",
                )
                if response.status_code != 200:
                    raise CommandError(f"in-process request failed: {response.content[:300]!r}")
            view = (time.perf_counter() - started) / len(viewed)

        self.stdout.write(
            f"in-process, {k:,} calls each: create_subscription service {service * 1000:.1f} ms "
            f"and {counter.count / k:.0f} queries per call; the whole view through Django's "
            f"test client {view * 1000:.1f} ms per request"
        )
        report = io.StringIO()
        stats = pstats.Stats(profiler, stream=report)
        stats.sort_stats("cumulative").print_stats(25)
        stats.sort_stats("tottime").print_stats(15)
        self.stdout.write(report.getvalue())
        self.stdout.write("slowest statements (count, seconds in all):")
        for shape, calls, seconds in counter.slowest(8):
            self.stdout.write(f"  {calls:6d} {seconds:8.2f} s  {shape}")

    def _clean(self, account, queued_before: int = 0) -> None:
        """Remove everything the run made (ordered for the PROTECT foreign keys), the queued
        tasks that would hand its events to subscribers included, then vacuum."""
        events = set(Event.objects.filter(account=account).values_list("id", flat=True))
        emptied = (*engine_tables(), Price, Product, IdempotencyKey, ApiKey)
        with transaction.atomic():
            # Written with each create (no worker runs during the benchmark): tasks naming
            # only this run's events, which go now.
            OrmQ.objects.filter(
                pk__in=[
                    row.pk
                    for row in OrmQ.objects.filter(pk__gt=queued_before)
                    if _only_dispatches(row.task, events)
                ]
            ).delete()
            DueJob.objects.filter(account=account).delete()
            Event.objects.filter(account=account).delete()
            Subscription.objects.filter(account=account).update(latest_invoice=None)
            Invoice.objects.filter(account=account).update(payment_intent=None)
            Customer.objects.filter(account=account).update(
                invoice_settings_default_payment_method=None
            )
            for model in emptied:
                model.objects.filter(account=account).delete()
            account.delete()
        vacuum((OrmQ, DueJob, Event, *emptied, Account))


def _only_dispatches(task: dict, events: set) -> bool:
    """Whether a queued task only hands some of `events` to their subscribers."""
    args = task.get("args") or ()
    return (
        task.get("func") == "billing.tasks.dispatch_events"
        and len(args) == 1
        and set(args[0]) <= events
    )
