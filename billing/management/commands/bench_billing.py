"""Benchmark: renewals through the engine on a test clock, against bulk-inserting the same rows.

    python manage.py bench_billing --subscriptions 1000

Creates N subscriptions (monthly and annual prices, 10% of customers with a declining card) on
one test clock in a throwaway account, advances the clock one month and two hours — so every
monthly subscription renews, its invoice is finalized an hour later and charged, and declines
are scheduled for retry — and prints renewals per second and database queries per renewal.
The baseline, measured in the same run, bulk-inserts the same number of invoice and line rows
through the ORM: the floor for "write the renewal invoices". The account is deleted afterwards.

It also prints this process's CPU time per renewal, which other load on the machine inflates
far less than the wall time. `--without-subscribers` leaves out handing each event to the
subscribers (a django-q2 task per event, after commit), to measure the engine alone;
`--profile` (and `--profile-out FILE`) profiles the advance.
"""

import contextlib
import copy
import cProfile
import io
import os
import pstats
import sys
import time
from datetime import timedelta
from unittest import mock

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models.base import ModelState
from django.test.utils import override_settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from billing import events, timeline
from billing.choices import (
    BillingReason,
    Interval,
    InvoiceStatus,
    PriceType,
    TestCardBehavior,
    UsageType,
)
from billing.management.processes import Started, database_cpu_seconds, database_url
from billing.models import (
    Account,
    Customer,
    DueJob,
    Event,
    Invoice,
    InvoiceLineItem,
    PaymentMethod,
    Price,
    Product,
    TestClock,
)
from billing.models.customers import new_invoice_prefixes
from billing.services.subscriptions import create_subscription
from billing.services.test_clocks import create_test_clock

# Subscriptions created through the engine; the others are copies of their rows.
TEMPLATES = 200


def _copy(obj, **fields):
    """An unsaved copy of `obj` with a new primary key (from the field's default) and `fields`."""
    clone = copy.copy(obj)
    clone._state = ModelState()
    clone._state.adding = True
    pk = obj._meta.pk
    setattr(clone, pk.attname, pk.get_default() if pk.has_default() else None)
    clone.__dict__.pop("_prefetched_objects_cache", None)
    for name, value in fields.items():
        setattr(clone, name, value)
    return clone


def engine_tables() -> tuple:
    """The engine's models a benchmark account's run fills (besides due jobs and events), in an
    order the PROTECT foreign keys allow emptying them."""
    from billing.models import (
        CustomerBalanceTransaction,
        Discount,
        InvoiceItem,
        PaymentIntent,
        Subscription,
        SubscriptionItem,
    )

    return (
        CustomerBalanceTransaction,
        InvoiceItem,
        InvoiceLineItem,
        PaymentIntent,
        Invoice,
        Discount,
        SubscriptionItem,
        Subscription,
        PaymentMethod,
        Customer,
    )


def vacuum(models) -> None:
    """On PostgreSQL, VACUUM (ANALYZE) the tables a run wrote to and emptied: without it the
    next run wades through this one's dead rows in every index it touches, and a server with
    autovacuum off (this machine's) never clears them. Measured: a create's database CPU
    went from 3.5 to 14 ms over three runs on one database."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return  # (VACUUM cannot run inside a transaction)
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {tables}")


class QueryCounter:
    """Counts the SQL statements run while it is installed (works with DEBUG off)."""

    def __init__(self):
        self.count = 0
        # statement shape (its first words) → [count, seconds]
        self.timings: dict[str, list] = {}

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = " ".join(sql.split()[:6])[:90]
            entry = self.timings.setdefault(shape, [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def slowest(self, n: int = 10) -> list[tuple[str, int, float]]:
        """The statement shapes that took the most time in all."""
        ranked = sorted(self.timings.items(), key=lambda item: item[1][1], reverse=True)
        return [(shape, count, seconds) for shape, (count, seconds) in ranked[:n]]


class HelperCluster(Started):
    """`manage.py qcluster` with `workers` workers on a queue of its own (`Q_CLUSTER_NAME`), so
    that they take only the batches the advance hands them, not the events' tasks (which the
    benchmark leaves queued, as without helpers). Started and stopped by the benchmark."""

    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"relance-bench-{os.getpid()}"
        super().__init__(
            [sys.executable, "manage.py", "qcluster"],
            {
                **os.environ,
                "DATABASE_URL": database_url(),
                "SECRET_KEY": settings.SECRET_KEY,
                "DEBUG": "false",
                "Q_CLUSTER_NAME": self.name,
                "Q_CLUSTER_WORKERS": str(workers),
                # Not the site's schedules (the tick would claim wall-clock jobs).
                "Q_CLUSTER_SCHEDULER": "false",
                "PYTHONUNBUFFERED": "1",
            },
        )

    def wait_until_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise CommandError(f"qcluster exited:\n{self.output()}")
            if "running." in self.output():
                return
            time.sleep(0.1)
        raise CommandError(f"qcluster did not start within {timeout:.0f} s:\n{self.output()}")

    def stop(self, timeout: float = 3) -> None:
        """Its work is done when this is called (the advance waited for every batch), so a
        cluster slow to stop (django-q2's sentinel waited 30 s after a run) is killed after a
        few seconds; the tasks left in its queue, batches already run, go."""
        super().stop(timeout)
        OrmQ.objects.filter(key=self.name).delete()


class Command(BaseCommand):
    help = "Renewals per second through a test clock, against a bulk-insert baseline."

    def add_arguments(self, parser):
        parser.add_argument("--subscriptions", type=int, default=1000)
        parser.add_argument(
            "--profile",
            action="store_true",
            help="profile the advance and print the functions it spends most time in",
        )
        parser.add_argument(
            "--without-subscribers",
            action="store_true",
            help="do not hand the events to subscribers (no django-q2 task per event): "
            "the engine alone",
        )
        parser.add_argument(
            "--helpers",
            type=int,
            default=0,
            metavar="K",
            help="start a django-q2 cluster of K workers that run batches of each crowd side by "
            "side with this process (timeline._run_crowd), as a clock advanced by a worker is",
        )
        parser.add_argument(
            "--profile-out",
            metavar="FILE",
            help="with --profile, also save the profile's statistics to FILE (pstats format)",
        )

    def handle(
        self,
        *args,
        subscriptions: int,
        profile: bool,
        profile_out=None,
        without_subscribers=False,
        helpers=0,
        **options,
    ):
        if helpers < 0:
            raise CommandError("--helpers must be 0 or more.")
        if helpers and (without_subscribers or profile):
            # The helpers are other processes: neither muted nor profiled from here.
            raise CommandError(
                "--helpers measures the real path: no --without-subscribers, no --profile."
            )
        account = Account.objects.create(name="Benchmark (temporary)", metadata={"bench": "true"})
        cluster = None
        try:
            clock = self._load(account, subscriptions)
            if helpers:
                cluster = HelperCluster(helpers)
                cluster.wait_until_ready()
            muted = (
                mock.patch.object(events, "_dispatch_after_commit", lambda saved, **options: None)
                if without_subscribers
                else contextlib.nullcontext()
            )
            with muted:
                self._measure(
                    account,
                    clock,
                    subscriptions,
                    profile=profile,
                    profile_out=profile_out,
                    cluster=cluster,
                )
        finally:
            if cluster is not None:
                cluster.stop()
            self._clean(account)

    def _load(self, account, count: int) -> TestClock:
        started = time.perf_counter()
        start = timezone.now().replace(microsecond=0) - timedelta(days=400)
        clock = create_test_clock(account, frozen_time=start, name="bench")
        product = Product.objects.create(account=account, name="Bench plan", created=start)
        prices = [
            Price.objects.create(
                account=account,
                product=product,
                currency="usd",
                unit_amount=amount,
                type=PriceType.RECURRING,
                recurring_interval=interval,
                recurring_interval_count=1,
                recurring_usage_type=UsageType.LICENSED,
                created=start,
            )
            for amount, interval in ((2900, Interval.MONTH), (29000, Interval.YEAR))
        ]
        templates = min(count, TEMPLATES)
        customers = Customer.objects.bulk_create(
            Customer(
                account=account,
                email=f"bench{n}@bench.example",
                test_clock=clock,
                created=start,
                invoice_prefix=prefix,
            )
            for n, prefix in enumerate(new_invoice_prefixes(templates))
        )
        cards = PaymentMethod.objects.bulk_create(
            PaymentMethod(
                account=account,
                customer=customer,
                card_last4="4242",
                card_exp_month=12,
                card_exp_year=start.year + 5,
                test_behavior=TestCardBehavior.SUCCEED,
                created=start,
            )
            for customer in customers
        )
        for customer, card in zip(customers, cards, strict=True):
            customer.invoice_settings_default_payment_method = card
        Customer.objects.bulk_update(customers, ["invoice_settings_default_payment_method"])
        for n, customer in enumerate(customers):
            # Three monthly subscriptions for one annual, as in most catalogs.
            with transaction.atomic():
                create_subscription(customer, items=[{"price": prices[1 if n % 4 == 3 else 0]}])
        self._copy_templates(account, count - templates)
        cards = list(PaymentMethod.objects.filter(account=account).order_by("customer__email"))
        # 10% of the cards start declining after the first payment.
        PaymentMethod.objects.filter(
            pk__in=[card.pk for n, card in enumerate(cards) if n % 10 == 9]
        ).update(test_behavior=TestCardBehavior.DECLINE)
        self.stdout.write(
            f"created {count:,} subscriptions in {time.perf_counter() - started:.1f} s "
            f"({connection.vendor})"
        )
        return clock

    def _copy_templates(self, account, copies: int) -> None:
        """Make `copies` more subscriptions by copying the rows the engine wrote for the first
        ones (customer, card, subscription, item, pending due jobs), in bulk.

        Creating a subscription through the engine takes tens of milliseconds (validation,
        the first invoice, its payment and events): 100,000 would take hours before the
        measurement even starts. The copies are the same rows with new ids; their first
        invoice and its events are not copied, as renewals never read them.
        """
        from billing.models import Subscription, SubscriptionItem

        subscriptions = list(
            Subscription.objects.filter(account=account)
            .select_related("customer__invoice_settings_default_payment_method")
            .prefetch_related("items")
            .order_by("customer__email")
        )
        jobs = {}
        for job in DueJob.objects.filter(account=account, status="pending"):
            jobs.setdefault(job.target_id, []).append(job)
        # A prefix of its own for each copy (two customers of an account never share one).
        taken = set(
            Customer.objects.filter(account=account).values_list("invoice_prefix", flat=True)
        )
        prefixes = iter(set(new_invoice_prefixes(copies + len(taken))) - taken)
        for start in range(0, copies, 2000):
            rows = {model: [] for model in (Customer, PaymentMethod, Subscription)}
            items, new_jobs = [], []
            for n in range(start, min(copies, start + 2000)):
                template = subscriptions[n % len(subscriptions)]
                customer = _copy(
                    template.customer, email=f"copy{n}@bench.example", invoice_prefix=next(prefixes)
                )
                card = _copy(
                    template.customer.invoice_settings_default_payment_method,
                    customer_id=customer.pk,
                )
                customer.invoice_settings_default_payment_method_id = card.pk
                subscription = _copy(template, customer_id=customer.pk, latest_invoice_id=None)
                rows[Customer].append(customer)
                rows[PaymentMethod].append(card)
                rows[Subscription].append(subscription)
                items += [
                    _copy(item, subscription_id=subscription.pk) for item in template.items.all()
                ]
                new_jobs += [
                    _copy(job, target_id=subscription.pk) for job in jobs.get(template.pk, ())
                ]
            with transaction.atomic():
                for model, objs in rows.items():
                    model.objects.bulk_create(objs, batch_size=1000)
                SubscriptionItem.objects.bulk_create(items, batch_size=1000)
                DueJob.objects.bulk_create(new_jobs, batch_size=1000)

    def _measure(
        self,
        account,
        clock: TestClock,
        count: int,
        *,
        profile: bool,
        profile_out=None,
        cluster=None,
    ) -> None:
        counter = QueryCounter()
        target = clock.frozen_time + timedelta(days=31, hours=2)
        TestClock.objects.filter(pk=clock.pk).update(status="advancing", advancing_to=target)
        profiler = cProfile.Profile() if profile else None
        helpers_before = cluster.cpu_seconds() if cluster else None
        database_before = database_cpu_seconds()
        started = time.perf_counter()
        cpu_started = time.process_time()
        # Under tests django-q2 runs tasks inline; the helpers' batches must go to the cluster.
        sync = Conf.SYNC
        Conf.SYNC = sync and cluster is None
        try:
            # As a deployment runs (the helpers' cluster too): with DEBUG on, Django would keep
            # every statement's text, rendering its parameters into it first.
            with override_settings(DEBUG=False), connection.execute_wrapper(counter):
                if profiler:
                    profiler.enable()
                timeline.advance_clock(clock.pk, helpers=cluster.name if cluster else None)
                if profiler:
                    profiler.disable()
        finally:
            Conf.SYNC = sync
        elapsed = time.perf_counter() - started
        # This process's CPU time (not the database's): other load on the machine inflates the
        # wall time, not this.
        cpu = time.process_time() - cpu_started
        database_after = database_cpu_seconds()
        database = (
            database_after - database_before
            if database_before is not None and database_after is not None
            else None
        )
        helpers_after = cluster.cpu_seconds() if cluster else None
        helpers_cpu = (
            helpers_after - helpers_before
            if helpers_before is not None and helpers_after is not None
            else None
        )
        if profiler:
            if profile_out:
                profiler.dump_stats(profile_out)
            report = io.StringIO()
            pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(25)
            self.stdout.write(report.getvalue())
            self.stdout.write("slowest statements (count, seconds in all):")
            for shape, calls, seconds in counter.slowest():
                self.stdout.write(f"  {calls:6d} {seconds:8.2f} s  {shape}")
        renewals = Invoice.objects.filter(
            account=account, billing_reason=BillingReason.SUBSCRIPTION_CYCLE
        ).count()
        paid = Invoice.objects.filter(
            account=account,
            billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
            status=InvoiceStatus.PAID,
        ).count()

        baseline = self._baseline(account, renewals)
        self.stdout.write(f"advanced one month: {renewals:,} renewals ({paid:,} paid)")
        self.stdout.write(
            f"  engine       {elapsed:8.2f} s   {renewals / elapsed:10,.0f} renewals/s"
        )
        self.stdout.write(f"  queries      {counter.count / max(renewals, 1):8.1f} per renewal")
        self.stdout.write(
            f"  python CPU   {cpu:8.2f} s   {cpu / max(renewals, 1) * 1000:10.2f} ms per renewal "
            "(this process: SQLite's work included, PostgreSQL's not)"
        )
        if cluster is not None:
            self.stdout.write(
                f"  helpers CPU  {helpers_cpu or 0:8.2f} s   "
                f"{(helpers_cpu or 0) / max(renewals, 1) * 1000:10.2f} ms per renewal "
                f"({cluster.workers} django-q2 workers and their cluster)"
            )
        if database is not None:
            self.stdout.write(
                f"  database CPU {database:8.2f} s   "
                f"{database / max(renewals, 1) * 1000:10.2f} ms per renewal "
                "(PostgreSQL's processes on this machine)"
            )
        self.stdout.write(
            f"  baseline     {baseline:8.2f} s   {renewals / baseline:10,.0f} rows/s "
            "(bulk insert of the same invoices and lines)"
        )
        self.stdout.write(f"  engine / baseline {elapsed / baseline:8.1f}x")

    def _baseline(self, account, count: int) -> float:
        """Bulk-insert `count` invoices and their lines through the ORM, then remove them."""
        customer = Customer.objects.filter(account=account).first()
        now = timezone.now()
        started = time.perf_counter()
        with transaction.atomic():
            invoices = Invoice.objects.bulk_create(
                Invoice(
                    account=account,
                    customer=customer,
                    billing_reason=BillingReason.SUBSCRIPTION_CYCLE,
                    currency="usd",
                    subtotal=2900,
                    total=2900,
                    amount_due=2900,
                    amount_remaining=2900,
                    period_start=now,
                    period_end=now,
                    metadata={"baseline": "true"},
                )
                for _ in range(count)
            )
            InvoiceLineItem.objects.bulk_create(
                InvoiceLineItem(
                    account=account,
                    invoice=invoice,
                    amount=2900,
                    currency="usd",
                    period_start=now,
                    period_end=now,
                )
                for invoice in invoices
            )
        elapsed = time.perf_counter() - started
        Invoice.objects.filter(account=account, metadata__baseline="true").delete()
        return elapsed

    def _clean(self, account) -> None:
        """Remove everything the run made (ordered for the PROTECT foreign keys)."""
        from billing.models import BalanceTransaction, Subscription

        emptied = (*engine_tables(), TestClock, Price, Product)
        with transaction.atomic():
            _delete_in_chunks(DueJob.objects.filter(account=account))
            _delete_in_chunks(Event.objects.filter(account=account))
            Subscription.objects.filter(account=account).update(latest_invoice=None)
            Invoice.objects.filter(account=account).update(payment_intent=None)
            for model in (*emptied, BalanceTransaction):
                _delete_in_chunks(model.objects.filter(account=account))
            account.delete()
        vacuum((DueJob, Event, *emptied, BalanceTransaction, Account))


def _delete_in_chunks(queryset, size: int = 5000) -> None:
    """`queryset.delete()`, a chunk of rows at a time: Django collects every row it deletes
    (and those that point to it) as instances first, and a run at N = 100,000 left over a
    million rows (7.6 GB for the collector at once, measured)."""
    model = queryset.model
    while pks := list(queryset.values_list("pk", flat=True)[:size]):
        model.objects.filter(pk__in=pks).delete()
