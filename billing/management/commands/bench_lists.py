"""Benchmark: a deep dashboard list page with keyset pagination vs. OFFSET + COUNT(*).

    python manage.py bench_lists [--customers 100000] [--repeat 20]

Loads a throwaway account with N customers into the configured database, fetches the page
that sits halfway down the list both ways, prints the median timings and the baseline ratio,
then times the whole customers page (`/customers/?after=…`, rendered for a signed-in member),
and deletes the account again. The baseline is what Django's Paginator does (a full COUNT(*)
and an OFFSET), which slows down linearly with the table; keyset stays flat.
"""

import statistics
import time
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.core.paginator import Paginator
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.choices import Role
from billing.models import Account, Customer, Membership
from billing.models.base import in_mode
from billing.models.customers import new_invoice_prefixes
from billing.pagination import keyset_page

PAGE = 25


def _median_ms(function, repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


class Command(BaseCommand):
    help = "Time a deep dashboard list page: keyset pagination against OFFSET + COUNT(*)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=100_000)
        parser.add_argument("--repeat", type=int, default=20)

    def handle(self, *args, customers: int, repeat: int, **options):
        account = Account.objects.create(name="Benchmark (temporary)", metadata={"bench": "true"})
        user = get_user_model().objects.create_user(username=f"bench-{account.id}")
        Membership.objects.create(user=user, account=account, role=Role.READ_ONLY)
        try:
            self._load(account, customers)
            self._measure(account, customers, repeat, user)
        finally:
            with transaction.atomic():
                Customer.objects.filter(account=account).delete()
                user.delete()
                account.delete()

    def _load(self, account, count: int) -> None:
        started = time.perf_counter()
        base = timezone.now() - timedelta(days=365)
        batch = []
        prefixes = new_invoice_prefixes(count)
        for number in range(count):
            # Several customers share each second, so the order relies on the id tie-break.
            batch.append(
                Customer(
                    account=account,
                    email=f"customer{number}@bench.example",
                    name=f"Customer {number}",
                    created=base + timedelta(seconds=number // 3),
                    invoice_prefix=prefixes[number],
                )
            )
            if len(batch) == 5000:
                Customer.objects.bulk_create(batch)
                batch = []
        Customer.objects.bulk_create(batch)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE billing_customer")
        self.stdout.write(
            f"loaded {count:,} customers in {time.perf_counter() - started:.1f} s "
            f"({connection.vendor})"
        )

    def _measure(self, account, count: int, repeat: int, user) -> None:
        queryset = Customer.objects.filter(in_mode(False), account=account)
        middle = count // 2
        ordered = queryset.order_by("-created", "-pk")
        cursor = ordered.values_list("pk", flat=True)[middle - 1]

        def keyset():
            page = keyset_page(queryset, after=cursor, limit=PAGE)
            assert len(page.items) == PAGE

        def offset_and_count():
            page = Paginator(ordered, PAGE).page(middle // PAGE + 1)
            assert len(page.object_list) == PAGE

        # Both must show the same rows, or the comparison means nothing.
        keyset_ids = [c.pk for c in keyset_page(queryset, after=cursor, limit=PAGE).items]
        offset_ids = [c.pk for c in ordered[middle : middle + PAGE]]
        assert keyset_ids == offset_ids, "keyset and offset pages differ"

        keyset_ms = _median_ms(keyset, repeat)
        baseline_ms = _median_ms(offset_and_count, repeat)
        self.stdout.write(f"page {middle // PAGE + 1:,} of {count // PAGE:,}, median of {repeat}:")
        self.stdout.write(f"  keyset (this product)      {keyset_ms:8.2f} ms")
        self.stdout.write(f"  OFFSET + COUNT(*) baseline {baseline_ms:8.2f} ms")
        self.stdout.write(f"  baseline / keyset          {baseline_ms / keyset_ms:8.1f}x")

        client = Client()
        client.force_login(user)
        url = reverse("dashboard:customers") + f"?after={cursor}"

        def whole_page():
            response = client.get(url)
            assert response.status_code == 200 and keyset_ids[0].encode() in response.content

        page_ms = _median_ms(whole_page, repeat)
        self.stdout.write(f"  whole customers page       {page_ms:8.2f} ms (rendered, signed in)")
