"""Benchmark: renewals through the engine on a test clock, against bulk-inserting the same rows.

    python manage.py bench_billing --subscriptions 1000

Creates N subscriptions (monthly and annual prices, 10% of customers with a declining card) on
one test clock in a throwaway account, advances the clock one month and two hours — so every
monthly subscription renews, its invoice is finalized an hour later and charged, and declines
are scheduled for retry — and prints renewals per second and database queries per renewal.
The baseline, measured in the same run, bulk-inserts the same number of invoice and line rows
through the ORM: the floor for "write the renewal invoices". The account is deleted afterwards.
"""

import time
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils import timezone

from billing import timeline
from billing.choices import (
    BillingReason,
    Interval,
    InvoiceStatus,
    PriceType,
    TestCardBehavior,
    UsageType,
)
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
from billing.services.subscriptions import create_subscription
from billing.services.test_clocks import create_test_clock


class QueryCounter:
    """Counts the SQL statements run while it is installed (works with DEBUG off)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


class Command(BaseCommand):
    help = "Renewals per second through a test clock, against a bulk-insert baseline."

    def add_arguments(self, parser):
        parser.add_argument("--subscriptions", type=int, default=1000)

    def handle(self, *args, subscriptions: int, **options):
        account = Account.objects.create(name="Benchmark (temporary)", metadata={"bench": "true"})
        try:
            clock = self._load(account, subscriptions)
            self._measure(account, clock, subscriptions)
        finally:
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
        customers = Customer.objects.bulk_create(
            Customer(
                account=account,
                email=f"bench{n}@bench.example",
                test_clock=clock,
                created=start,
            )
            for n in range(count)
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
        # 10% of the cards start declining after the first payment.
        PaymentMethod.objects.filter(
            pk__in=[card.pk for n, card in enumerate(cards) if n % 10 == 9]
        ).update(test_behavior=TestCardBehavior.DECLINE)
        self.stdout.write(
            f"created {count:,} subscriptions in {time.perf_counter() - started:.1f} s "
            f"({connection.vendor})"
        )
        return clock

    def _measure(self, account, clock: TestClock, count: int) -> None:
        counter = QueryCounter()
        target = clock.frozen_time + timedelta(days=31, hours=2)
        TestClock.objects.filter(pk=clock.pk).update(status="advancing", advancing_to=target)
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            timeline.advance_clock(clock.pk)
        elapsed = time.perf_counter() - started
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
        from billing.models import (
            CustomerBalanceTransaction,
            Discount,
            InvoiceItem,
            PaymentIntent,
            Subscription,
            SubscriptionItem,
        )

        with transaction.atomic():
            DueJob.objects.filter(account=account).delete()
            Event.objects.filter(account=account).delete()
            Subscription.objects.filter(account=account).update(latest_invoice=None)
            Invoice.objects.filter(account=account).update(payment_intent=None)
            for model in (
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
                TestClock,
                Price,
                Product,
            ):
                model.objects.filter(account=account).delete()
            account.delete()
