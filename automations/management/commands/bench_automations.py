"""Benchmark: events matched per second against 20, 200 and 2,000 automations on one trigger.

    python manage.py bench_automations --sizes 20,200,2000 --events 20000

For each size, a throwaway account gets that many automations on "subscription payment
fails", with mixed filters (customer metadata, invoice metadata + amount, amount ranges alone,
annual + products, products alone), saved through `services.save_automation`. Then:

- engine: `engine.index_for` loads and compiles them (once), and each event is matched with
  `Index.first_match` on a `Facts` whose values are set (no query per event);
- baseline: the same conditions written as plain Python predicates over a dict, in a dict by
  trigger, checked one by one in priority order until the first holds;
- freshness: `engine.index_for` as `claim` calls it for every event outside a batch (one
  aggregate query to see whether the automations changed, then the cached index).

Events are random (some match nothing); both sides see the same events and must agree on the
first match of each (checked). Everything made is rolled back.
"""

import random
import time
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from automations import engine, services
from automations.conditions import Facts
from billing.models import Account

TRIGGER = "subscription_payment_failed"
ACTION = [{"kind": "mark_invoice_uncollectible", "delay_days": 0, "params": {}}]


class _Rollback(Exception):
    pass


def mixed_conditions(i: int, rng: random.Random) -> list[dict]:
    """The filters of automation `i`: five families, as an account's automations vary."""
    family = i % 5
    if family == 0:
        return [
            {"kind": "customer_metadata", "key": "segment", "value": f"seg_{rng.randrange(60)}"}
        ]
    if family == 1:
        return [
            {"kind": "invoice_metadata", "key": "region", "value": f"r_{rng.randrange(25)}"},
            {
                "kind": "invoice_amount",
                "min": rng.randrange(0, 50000),
                "max": None,
                "currency": "usd",
            },
        ]
    if family == 2:
        low = rng.randrange(0, 95000)
        return [{"kind": "invoice_amount", "min": low, "max": low + 2000, "currency": "usd"}]
    if family == 3:
        return [
            {"kind": "subscription_interval", "interval": "year"},
            {
                "kind": "products",
                "products": [f"prod_{rng.randrange(80)}", f"prod_{rng.randrange(80)}"],
            },
        ]
    return [{"kind": "products", "products": [f"prod_{rng.randrange(80)}"]}]


def baseline_predicate(conditions: list[dict]):
    """The same conditions as a hand-written predicate over an event dict."""
    checks = []
    for c in conditions:
        kind = c["kind"]
        if kind == "customer_metadata":
            checks.append(lambda e, k=c["key"], v=c["value"]: e["customer_metadata"].get(k) == v)
        elif kind == "invoice_metadata":
            checks.append(lambda e, k=c["key"], v=c["value"]: e["invoice_metadata"].get(k) == v)
        elif kind == "invoice_amount":
            low = c["min"] if c["min"] is not None else -1
            high = c["max"] if c["max"] is not None else float("inf")
            checks.append(lambda e, lo=low, hi=high: lo <= e["amount"] <= hi)
        elif kind == "subscription_interval":
            checks.append(lambda e, i=c["interval"]: i in e["intervals"])
        elif kind == "products":
            checks.append(lambda e, p=frozenset(c["products"]): not p.isdisjoint(e["products"]))
    return lambda e: all(check(e) for check in checks)


def random_event(rng: random.Random) -> dict:
    return {
        "customer_metadata": {"segment": f"seg_{rng.randrange(120)}", "plan": "pro"},
        "invoice_metadata": {"region": f"r_{rng.randrange(50)}"},
        "amount": rng.randrange(0, 100000),
        "intervals": frozenset({rng.choice(["month", "year"])}),
        "products": frozenset(f"prod_{rng.randrange(160)}" for _ in range(rng.randrange(1, 3))),
    }


def facts_for(event: dict) -> Facts:
    """A `Facts` with its values already known (the engine reads them as it would any)."""
    facts = Facts(None, account=SimpleNamespace(default_currency="usd"), rates={})
    facts.__dict__.update(
        customer_metadata=event["customer_metadata"],
        invoice_metadata=event["invoice_metadata"],
        amount=event["amount"],
        intervals=event["intervals"],
        products=event["products"],
    )
    return facts


class Command(BaseCommand):
    help = "Events matched per second against 20, 200 and 2,000 automations, against a baseline."

    def add_arguments(self, parser):
        parser.add_argument("--sizes", default="20,200,2000")
        parser.add_argument("--events", type=int, default=20000)
        parser.add_argument("--freshness-calls", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, sizes, events, freshness_calls, seed, **options):
        try:
            sizes = [int(size) for size in sizes.split(",")]
        except ValueError:
            raise CommandError("--sizes is a comma-separated list of numbers") from None
        rows = []
        for size in sizes:
            try:
                with transaction.atomic():
                    rows.append(self.measure(size, events, freshness_calls, seed))
                    raise _Rollback
            except _Rollback:
                pass
        self.stdout.write(
            "| automations | engine events/s | baseline events/s | engine / baseline "
            "| candidates checked per event | freshness check µs/event |"
        )
        self.stdout.write("|---|---|---|---|---|---|")
        for row in rows:
            self.stdout.write(
                f"| {row['size']:,} | {row['engine']:,.0f} | {row['baseline']:,.0f} "
                f"| {row['engine'] / row['baseline']:.2f} | {row['checked']:.1f} "
                f"| {row['freshness_us']:.0f} |"
            )
        if len(rows) > 1:
            by_size = {row["size"]: row["engine"] for row in rows}
            if 200 in by_size and 2000 in by_size:
                self.stdout.write(
                    f"engine at 2,000 is {by_size[200] / by_size[2000]:.2f}× slower than at 200"
                )

    def measure(self, size, events, freshness_calls, seed) -> dict:
        rng = random.Random(seed)
        account = Account.objects.create(name=f"bench automations {size}")
        all_conditions = [mixed_conditions(i, rng) for i in range(size)]
        for i, conditions in enumerate(all_conditions):
            services.save_automation(
                account=account,
                livemode=False,
                name=f"Automation {i}",
                trigger=TRIGGER,
                filters=conditions,
                actions_=ACTION,
            )
        index = engine.index_for(account.pk, False, TRIGGER)
        ids = [automation_id for automation_id, _ in index.entries]
        baseline = {
            TRIGGER: [(ids[i], baseline_predicate(c)) for i, c in enumerate(all_conditions)]
        }

        sample = [random_event(rng) for _ in range(events)]
        facts = [facts_for(event) for event in sample]

        started = time.perf_counter()
        found, checked = [], 0
        for one in facts:
            automation_id, count = index.first_match(one)
            found.append(automation_id)
            checked += count
        engine_rate = events / (time.perf_counter() - started)

        started = time.perf_counter()
        expected = []
        for event in sample:
            expected.append(next((aid for aid, holds in baseline[TRIGGER] if holds(event)), None))
        baseline_rate = events / (time.perf_counter() - started)
        if found != expected:
            raise CommandError(f"the engine and the baseline disagree at {size} automations")

        started = time.perf_counter()
        for _ in range(freshness_calls):
            engine.index_for(account.pk, False, TRIGGER)
        freshness_us = (time.perf_counter() - started) / freshness_calls * 1e6
        return {
            "size": size,
            "engine": engine_rate,
            "baseline": baseline_rate,
            "checked": checked / events,
            "freshness_us": freshness_us,
            "matched": sum(1 for f in found if f) / events,
        }
