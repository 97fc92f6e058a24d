"""The overview: subscription counts, MRR, open invoices and recent events for account + mode."""

from collections import defaultdict
from decimal import ROUND_HALF_EVEN, Decimal

from django.db.models import Count, F, Sum
from django.shortcuts import render
from django.views import View

from billing.choices import Interval, InvoiceStatus, SubscriptionStatus, UsageType
from billing.models import Event, Invoice, Subscription, SubscriptionItem
from billing.views.base import MemberRequiredMixin

# Subscriptions that count towards MRR, as Stripe counts them: paying or trying to be paid.
# Trials bring in nothing yet.
MRR_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
COUNTED_STATUSES = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.PAST_DUE,
)

# How many of an interval make one month, exactly (a year is 12 months, a week 12/52 of one).
MONTHS_PER_INTERVAL = {
    Interval.DAY: Decimal(12) / Decimal(365),
    Interval.WEEK: Decimal(12) / Decimal(52),
    Interval.MONTH: Decimal(1),
    Interval.YEAR: Decimal(12),
}


def monthly_amount(total: int, interval: str, interval_count: int) -> Decimal:
    """`total` minor units billed every `interval_count` `interval`s, as an amount per month."""
    months = MONTHS_PER_INTERVAL[interval] * interval_count
    return Decimal(total) / months


def mrr_by_currency(items) -> dict[str, int]:
    """MRR in minor units per currency, from licensed recurring items of MRR-counted subscriptions.

    The database sums unit_amount × quantity per (currency, interval, interval_count) in one
    query; only the normalisation to a month happens here, in Decimal, rounded once at the end.
    Discounts and taxes are not taken off.
    """
    rows = (
        items.filter(
            subscription__status__in=MRR_STATUSES,
            price__recurring_interval__isnull=False,
            price__recurring_usage_type=UsageType.LICENSED,
        )
        .values(
            currency=F("price__currency"),
            interval=F("price__recurring_interval"),
            interval_count=F("price__recurring_interval_count"),
        )
        .annotate(total=Sum(F("price__unit_amount") * F("quantity")))
        .order_by()
    )
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        sums[row["currency"]] += monthly_amount(
            row["total"], row["interval"], row["interval_count"]
        )
    return {
        currency: int(value.quantize(Decimal(1), ROUND_HALF_EVEN))
        for currency, value in sorted(sums.items())
    }


class OverviewView(MemberRequiredMixin, View):
    """KPIs of the current account and mode."""

    def get(self, request):
        status_counts = dict(
            self.scope(Subscription)
            .filter(status__in=COUNTED_STATUSES)
            .values_list("status")
            .annotate(n=Count("pk"))
            .order_by()
        )
        open_invoices = (
            self.scope(Invoice)
            .filter(status=InvoiceStatus.OPEN)
            .values("currency")
            .annotate(amount=Sum("amount_remaining"), count=Count("pk"))
            .order_by("currency")
        )
        context = {
            "status_counts": [
                {"status": status, "label": status.label, "count": status_counts.get(status, 0)}
                for status in COUNTED_STATUSES
            ],
            "mrr": mrr_by_currency(self.scope(SubscriptionItem)),
            "open_invoices": list(open_invoices),
            # Test-clock housekeeping (advancing/ready) would crowd out what finance cares about.
            "recent_events": self.scope(Event)
            .exclude(type__startswith="test_helpers.")
            .order_by("-created", "-pk")[:10],
        }
        return render(request, "dashboard/overview.html", context)
