"""Due jobs run in batches: the same rows and events as running them one by one, in bulk.

The per-job path is what the scenario tests in test_engine.py prove rule by rule; these tests
prove the batch path (`timeline.run_many`, `billing.batching`) writes exactly what it writes.
"""

import copy
import gc
import pickle
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing import batching, timeline
from billing.choices import JobStatus
from billing.choices import TestCardBehavior as Behavior
from billing.models import (
    Account,
    Customer,
    DueJob,
    Event,
    Invoice,
    PaymentMethod,
    Subscription,
)
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
GOOD = "4242424242424242"

# Every Stripe-style id, wherever it appears in a string (urls and client secrets included).
ID = re.compile(r"\b(?:acct|cus|pm|sub|si|in|il|ii|pi|evt|price|prod|di|cbtxn|clock)_[A-Za-z0-9]+")
NUMBER = re.compile(r"\b[A-Z0-9]{8}-\d{4}\b")


def _customer(account, clock, n, card=GOOD):
    customer = create_customer(
        account, livemode=False, email=f"c{n:02d}@example.com", test_clock=clock
    )
    if card:
        add_card(
            customer,
            card={"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    customer.refresh_from_db()
    return customer


def _cards_start_to(customer, behavior):
    PaymentMethod.objects.filter(customer=customer).update(test_behavior=behavior)


def _population(account):
    """One clock carrying every kind of subscription a renewal run meets, all started at once:
    most of them fit a batch, some must run alone (cancel at period end, a trial ending
    without a card, a paused collection that voids)."""
    clock = create_test_clock(account, frozen_time=START, name="batch")
    monthly = factories.make_price(account, unit_amount=3000)
    annual = factories.make_price(account, unit_amount=30000, interval="year")
    coupon = factories.make_coupon(account, code="HALF", percent_off=50)
    made = []

    def subscribe(n, card=GOOD, price=monthly, **options):
        customer = _customer(account, clock, n, card)
        sub = subs.create_subscription(customer, items=[{"price": price}], **options)
        made.append(sub)
        return customer, sub

    for n in range(3):
        subscribe(n)  # plain monthly renewals: the common case
    subscribe(3, price=annual)
    declining, _ = subscribe(4)
    _cards_start_to(declining, Behavior.DECLINE)
    insufficient, _ = subscribe(5)
    _cards_start_to(insufficient, Behavior.INSUFFICIENT_FUNDS)
    authenticating, _ = subscribe(6)
    _cards_start_to(authenticating, Behavior.AUTHENTICATION_REQUIRED)
    subscribe(7, coupon=coupon)
    customer, sub = subscribe(8)
    invoicing.create_invoice_item(
        customer, amount=1234, currency="usd", description="Setup", subscription=sub
    )
    credited, _ = subscribe(9)
    Customer.objects.filter(pk=credited.pk).update(balance=-1000)
    subscribe(10, collection_method="send_invoice", days_until_due=7)
    subscribe(11, cancel_at_period_end=True)
    _, paused = subscribe(12)
    subs.update_subscription(paused, pause_collection={"behavior": "void"})
    _, kept = subscribe(13)
    subs.update_subscription(kept, pause_collection={"behavior": "keep_as_draft"})
    subscribe(14, trial_period_days=10)
    subscribe(15, card=None, trial_period_days=10, missing_payment_method="cancel")
    subscribe(16, card=None, trial_period_days=10, missing_payment_method="pause")
    _, unpaid = subscribe(17)
    subs.mark_unpaid(unpaid)
    return clock


def _normalize(value, ids: dict):
    """`value` with ids replaced by their order of appearance and invoice prefixes masked."""
    if isinstance(value, dict):
        catalog = value.get("object") in ("price", "plan", "product", "coupon")
        # The catalog is made by test factories on wall time, not on the clock.
        return {
            key: _normalize(item, ids)
            # Each customer's invoice prefix is random.
            for key, item in value.items()
            if not (catalog and key == "created") and key != "invoice_prefix"
        }
    if isinstance(value, list):
        return [_normalize(item, ids) for item in value]
    if isinstance(value, str):
        # Each customer's prefix is random; its sequence must be the same either way.
        value = NUMBER.sub(lambda m: "<prefix>-" + m.group(0).rsplit("-", 1)[1], value)
        value = re.sub(r"_secret_[\w-]+$", "_secret_<random>", value)
        return ID.sub(lambda m: ids.setdefault(m.group(0), f"<id{len(ids)}>"), value)
    return value


def _first_difference(a, b, path="") -> str:
    """Where two nested values first differ (a readable failure message)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        for n, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                return _first_difference(x, y, f"{path}[{n}]")
        if len(a) != len(b):
            return f"{path}: {len(a)} items against {len(b)}"
    return f"{path}: {a!r} against {b!r}"


def _history(account) -> dict:
    """Per customer (by email): its events, invoices, subscriptions and pending jobs."""
    result = {}
    for customer in Customer.objects.filter(account=account).order_by("email"):
        ids: dict = {}
        events = [
            (event.type, event.created, _normalize(event.data, ids))
            for event in Event.objects.filter(customer_id=customer.pk).order_by("created", "id")
        ]
        invoices = list(
            Invoice.objects.filter(customer=customer)
            .order_by("created", "id")
            .values_list(
                "status",
                "billing_reason",
                "amount_due",
                "amount_paid",
                "attempt_count",
                "next_payment_attempt",
                "starting_balance",
                "ending_balance",
                "due_date",
                "auto_advance",
            )
        )
        subscriptions = list(
            Subscription.objects.filter(customer=customer).values_list(
                "status", "current_period_start", "current_period_end"
            )
        )
        targets = [
            customer.pk,
            *Subscription.objects.filter(customer=customer).values_list("pk", flat=True),
        ]
        targets += list(Invoice.objects.filter(customer=customer).values_list("pk", flat=True))
        jobs = sorted(
            DueJob.objects.filter(target_id__in=targets, status=JobStatus.PENDING).values_list(
                "kind", "due_at"
            )
        )
        balance = Customer.objects.get(pk=customer.pk).balance
        result[customer.email] = (events, invoices, subscriptions, jobs, balance)
    return result


def _advance(clock, **delta):
    clock.refresh_from_db()
    return advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta), synchronously=True)


def _run_population(account, days: int):
    clock = _population(account)
    _advance(clock, days=days)
    return _history(account)


def test_a_batched_advance_writes_what_running_each_job_alone_writes(
    account, other_account, monkeypatch
):
    # SPEC R-CLOCK-2, R-EVT-1: the same events, in the same order, and the same rows.
    monkeypatch.setattr(timeline, "BATCH_SIZE", 1)
    alone = _run_population(other_account, days=75)
    monkeypatch.setattr(timeline, "BATCH_SIZE", 500)
    batched = _run_population(account, days=75)

    assert list(batched) == list(alone)
    for email in alone:
        assert batched[email] == alone[email], (
            email,
            _first_difference(batched[email], alone[email]),
        )
    # The population really met every path: renewals paid, declined, waiting for 3-D Secure.
    types = {event[0] for history in batched.values() for event in history[0]}
    assert {
        "invoice.paid",
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.upcoming",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "invoice.voided",
    } <= types


def test_invoice_numbers_stay_one_unbroken_sequence_in_batches(account):
    # SPEC R-INV-3, numbered across the account.
    Account.objects.filter(pk=account.pk).update(invoice_numbering="account")
    clock = _population(account)
    _advance(clock, days=75)
    numbers = sorted(
        int(number.rsplit("-", 1)[1])
        for number in Invoice.objects.filter(account=account)
        .exclude(number="")
        .exclude(number=None)
        .values_list("number", flat=True)
    )
    assert numbers == list(range(1, len(numbers) + 1))


def test_each_customers_invoice_numbers_stay_one_unbroken_sequence_in_batches(account):
    # SPEC R-INV-3, numbered for each customer.
    Account.objects.filter(pk=account.pk).update(invoice_numbering="customer")
    clock = _population(account)
    _advance(clock, days=75)
    by_prefix = {}
    for number in (
        Invoice.objects.filter(account=account)
        .exclude(number=None)
        .values_list("number", flat=True)
    ):
        prefix, sequence = number.rsplit("-", 1)
        by_prefix.setdefault(prefix, []).append(int(sequence))
    customers = Customer.objects.filter(account=account)
    assert set(by_prefix) <= {customer.invoice_prefix for customer in customers}
    assert len(by_prefix) > 10
    for customer in customers:
        numbers = sorted(by_prefix.get(customer.invoice_prefix, []))
        assert numbers == list(range(1, len(numbers) + 1))
        assert customer.next_invoice_sequence == len(numbers) + 1


def _renewals(account, count: int):
    clock = create_test_clock(account, frozen_time=START, name=f"renewals {count}")
    price = factories.make_price(account, unit_amount=1500)
    for n in range(count):
        customer = _customer(account, clock, n)
        subs.create_subscription(customer, items=[{"price": price}])
    return clock


def _queries_to_renew(account, count: int) -> int:
    clock = _renewals(account, count)
    with CaptureQueriesContext(connection) as queries:
        _advance(clock, days=31, hours=2)
    assert (
        Invoice.objects.filter(
            test_clock=clock, billing_reason="subscription_cycle", status="paid"
        ).count()
        == count
    )
    return len(queries)


def test_renewing_more_subscriptions_at_once_costs_no_more_queries(account, other_account):
    few = _queries_to_renew(other_account, 4)
    many = _queries_to_renew(account, 24)
    # Bulk statements split into chunks as rows grow, but nothing is fetched per subscription.
    assert many - few < (24 - 4) / 2


def test_a_batch_that_fails_runs_its_jobs_one_by_one(account, monkeypatch):
    clock = _renewals(account, 3)
    broken = Subscription.objects.filter(customer__test_clock=clock).order_by("id")[1]
    real = timeline._handlers["renewal"]

    def renew_or_fail(subscription, job):
        if subscription.pk == broken.pk:
            raise RuntimeError("this subscription cannot renew")
        return real(subscription, job)

    monkeypatch.setitem(timeline._handlers, "renewal", renew_or_fail)
    _advance(clock, days=31, hours=2)

    renewed = Invoice.objects.filter(test_clock=clock, billing_reason="subscription_cycle")
    assert sorted(renewed.values_list("subscription_id", flat=True)) == sorted(
        Subscription.objects.filter(customer__test_clock=clock)
        .exclude(pk=broken.pk)
        .values_list("pk", flat=True)
    )
    failed = DueJob.objects.get(kind="renewal", target_id=broken.pk, status=JobStatus.FAILED)
    assert "this subscription cannot renew" in failed.last_error


def test_the_cycle_collector_rests_while_a_batch_runs_and_resumes_after(account, monkeypatch):
    clock = _renewals(account, 3)
    real = timeline._handlers["renewal"]
    seen = []

    def renew_and_look(subscription, job):
        seen.append(gc.isenabled())
        if len(seen) == 2:
            raise RuntimeError("the batch fails part of the way")
        return real(subscription, job)

    monkeypatch.setitem(timeline._handlers, "renewal", renew_and_look)
    assert gc.isenabled()
    _advance(clock, days=31, hours=2)
    # Off in the batch (which failed), on again for the jobs run one by one after it.
    assert seen[:2] == [False, False]
    assert seen[2:] == [True, True, True]
    assert gc.isenabled()


def test_a_collector_turned_off_by_the_process_stays_off():
    gc.disable()
    try:
        with timeline._collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_tick_hands_jobs_that_batch_to_workers_in_groups(account, monkeypatch):
    sent = []
    monkeypatch.setattr(
        "django_q.tasks.async_task", lambda name, *args, **kwargs: sent.append((name, args))
    )
    customer = factories.make_customer(account)
    now = datetime.now(UTC)
    for n in range(3):
        DueJob.objects.create(
            account=account, kind="renewal", target_id=f"sub_{n}", due_at=now - timedelta(1)
        )
    DueJob.objects.create(
        account=account, kind="invoice_overdue", target_id="in_1", due_at=now - timedelta(1)
    )
    assert customer  # an account with a customer, as in real use
    assert timeline.tick() == 4
    names = sorted(name for name, _args in sent)
    assert names == ["billing.tasks.run_due_job", "billing.tasks.run_due_jobs"]
    (ids,) = next(args for name, args in sent if name == "billing.tasks.run_due_jobs")
    assert len(ids) == 3


# --- the deferred-writes helpers ------------------------------------------------------------


def test_outside_a_batch_every_helper_writes_at_once(account):
    customer = factories.make_customer(account)
    customer.name = "Now"
    batching.save(customer, update_fields=["name"])
    assert Customer.objects.get(pk=customer.pk).name == "Now"
    assert batching.lock(Customer, customer.pk).name == "Now"


def test_inside_a_batch_writes_wait_for_the_flush(account):
    customer = factories.make_customer(account)
    with batching.deferred():
        locked = batching.lock(Customer, customer.pk)
        assert batching.lock(Customer, customer.pk) is locked
        locked.name = "Later"
        batching.save(locked, update_fields=["name"])
        assert Customer.objects.get(pk=customer.pk).name != "Later"
        timeline.schedule("renewal", factories.make_subscription(customer), at=START)
        assert not DueJob.objects.filter(kind="renewal").exists()
    assert Customer.objects.get(pk=customer.pk).name == "Later"
    assert DueJob.objects.filter(kind="renewal", status=JobStatus.PENDING).count() == 1


def test_a_job_scheduled_then_canceled_in_a_batch_is_never_written(account):
    subscription = factories.make_subscription(factories.make_customer(account))
    timeline.schedule("renewal", subscription, at=START)
    with batching.deferred():
        timeline.schedule("renewal", subscription, at=START + timedelta(days=1))
        timeline.cancel(None, subscription)
    assert not DueJob.objects.filter(target_id=subscription.pk, status=JobStatus.PENDING).exists()
    assert DueJob.objects.filter(target_id=subscription.pk, status=JobStatus.CANCELED).count() == 1


def test_a_flush_writes_values_that_differ_per_object_and_values_they_share(account):
    customers = [factories.make_customer(account) for _ in range(3)]
    with batching.deferred():
        for n, customer in enumerate(customers):
            customer.name = f"Name {n}"  # differs
            customer.balance = -500  # shared
            customer.metadata = {"n": str(n)}  # differs, JSON
            batching.save(customer, update_fields=["name", "balance", "metadata"])
    rows = list(
        Customer.objects.filter(pk__in=[c.pk for c in customers])
        .order_by("name")
        .values_list("name", "balance", "metadata")
    )
    assert rows == [(f"Name {n}", -500, {"n": str(n)}) for n in range(3)]


def test_a_failed_batch_writes_nothing(account):
    customer = factories.make_customer(account)
    with pytest.raises(RuntimeError), batching.deferred():
        customer.name = "Never"
        batching.save(customer, update_fields=["name"])
        raise RuntimeError("boom")
    assert Customer.objects.get(pk=customer.pk).name != "Never"
    assert batching.active() is None


def test_an_object_saved_whole_in_a_batch_keeps_every_change_of_its_fields(account):
    # A flush writes the fields that changed since the batch loaded the row: a JSON field
    # changed in place, a decimal, a time and a foreign key cleared all count as changes.
    customer = factories.make_customer(account)
    card = factories.make_card(customer)
    subscription = factories.make_subscription(
        customer, metadata={"plan": "old"}, default_payment_method=card
    )
    cancel_at = START + timedelta(days=3)
    with batching.deferred():
        locked = batching.lock(Subscription, subscription.pk)
        locked.metadata["plan"] = "new"
        locked.application_fee_percent = Decimal("12.5")
        locked.cancel_at = cancel_at
        locked.default_payment_method = None
        batching.save(locked)
    saved = Subscription.objects.get(pk=subscription.pk)
    assert saved.metadata == {"plan": "new"}
    assert saved.application_fee_percent == Decimal("12.50")
    assert saved.cancel_at == cancel_at
    assert saved.default_payment_method_id is None
    assert saved.status == subscription.status


def test_rows_loaded_with_prefetch_answer_as_a_prefetched_queryset(account):
    customer = factories.make_customer(account)
    subscriptions = [factories.make_subscription(customer) for _ in range(2)]
    extra = factories.make_price(account, unit_amount=999)
    subscriptions[0].items.create(account=account, price=extra, quantity=2)
    loaded = list(Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]))
    rows = batching.prefetch(loaded, "items")
    assert len(rows) == 3
    first = next(s for s in loaded if s.pk == subscriptions[0].pk)
    with CaptureQueriesContext(connection) as queries:
        items = list(first.items.all())
        assert [item.subscription for item in items] == [first, first]
        assert first.items.count() == 2 and first.items.exists()
    assert len(queries) == 0
    # Anything else runs on the real queryset, limited to this subscription's items.
    assert list(first.items.filter(quantity=2).values_list("price_id", flat=True)) == [extra.pk]
    assert first.items.order_by("-quantity").first().price_id == extra.pk
    # Copied or pickled, it is the plain list of rows.
    assert pickle.loads(pickle.dumps(first.items.all())) == items
    assert type(copy.copy(first.items.all())) is list


def test_a_verb_with_deferred_writes_writes_all_or_nothing(account):
    customer = factories.make_customer(account)

    @batching.writes_deferred
    def rename(name, fail=False):
        locked = batching.lock(Customer, customer.pk)
        locked.name = name
        batching.save(locked, update_fields=["name"])
        assert Customer.objects.get(pk=customer.pk).name != name  # not yet
        if fail:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        rename("Never", fail=True)
    assert Customer.objects.get(pk=customer.pk).name != "Never"
    rename("Written")
    assert Customer.objects.get(pk=customer.pk).name == "Written"
    assert batching.active() is None


def test_two_instances_of_one_row_saved_in_a_batch_both_keep_their_fields(account):
    # An instance the batch did not load, saved beside the batch's own instance of the same row:
    # each writes its fields, in order, instead of one statement holding two versions of the row.
    customer = factories.make_customer(account, currency="")
    stray = Customer.objects.get(pk=customer.pk)
    with batching.deferred():
        stray.currency = "usd"
        batching.save(stray, update_fields=["currency"])
        locked = batching.lock(Customer, customer.pk)
        locked.balance = -700
        batching.save(locked)
    saved = Customer.objects.get(pk=customer.pk)
    assert (saved.currency, saved.balance) == ("usd", -700)


def test_events_sharing_an_objects_rendering_encode_it_once(monkeypatch):
    rendering = {"id": "in_1", "object": "invoice", "lines": {"data": [{"amount": 5}]}}
    values = [
        {"object": rendering},
        {"object": rendering, "previous_attributes": {"status": "open"}},
        {"object": {"id": "in_2"}},
        # Not an event's shape (keys in another order): encoded whole, as before.
        {"previous_attributes": {}, "object": rendering},
    ]
    real = batching.json_text
    encoded = []

    def counting(value, encoder=None):
        encoded.append(value)
        return real(value, encoder)

    monkeypatch.setattr(batching, "json_text", counting)
    token = batching._encoded_payloads.set({})
    try:
        texts = [batching.payload_text(value) for value in values]
    finally:
        batching._encoded_payloads.reset(token)
    # The same text as encoding each payload whole, key order included.
    assert texts == [real(value) for value in values]
    assert sum(1 for value in encoded if value is rendering) == 1
    # Outside an insert, nothing is remembered.
    assert batching.payload_text(values[0]) == real(values[0])


def _job_rows_updated() -> int:
    """Rows of billing_duejob this transaction has updated so far (PostgreSQL counts them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'billing_duejob'"
        )
        row = cursor.fetchone()
    return row[0] if row else 0


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL counts row updates")
def test_a_batch_writes_each_job_it_runs_once(account):
    # The job a batch runs is marked done first, so the job that replaces it (the next
    # renewal, the next upcoming-renewal notice) cancels nothing: one update per job run.
    clock = _renewals(account, 4)
    before = _job_rows_updated()
    _advance(clock, days=31, hours=2)
    done = DueJob.objects.filter(test_clock=clock, status=JobStatus.DONE)
    assert {"renewal", "finalize_invoice", "upcoming_renewal"} <= set(
        done.values_list("kind", flat=True)
    )
    assert not DueJob.objects.filter(test_clock=clock, status=JobStatus.CANCELED).exists()
    assert _job_rows_updated() - before == done.count()
    # Each subscription waits for its next renewal and notice, one job of each kind.
    pending = DueJob.objects.filter(test_clock=clock, status=JobStatus.PENDING)
    assert (
        sorted(pending.values_list("kind", flat=True)) == ["renewal"] * 4 + ["upcoming_renewal"] * 4
    )


def test_a_batch_asks_the_database_to_cancel_no_job_of_the_pairs_it_runs(account):
    # A pending job is the only pending one of its kind and target: once the batch runs it,
    # the renewal (or notice) it schedules in its place has nothing to cancel, and asks nothing.
    clock = _renewals(account, 4)
    cancels = []

    def watch(execute, sql, params, many, context):
        if sql.startswith('UPDATE "billing_duejob"') and JobStatus.CANCELED in (params or ()):
            cancels.append(params)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(watch):
        _advance(clock, days=31, hours=2)
    assert Invoice.objects.filter(test_clock=clock, billing_reason="subscription_cycle").count()
    kinds = {kind for params in cancels for kind in params if kind in timeline.kinds()}
    # (The renewal does cancel the pending notice of the period it starts: another kind.)
    assert "upcoming_renewal" in kinds
    assert "renewal" not in kinds


def test_a_job_queued_by_wall_time_still_cancels_the_pending_job_that_replaced_it(account):
    # A wall-clock renewal waits in the queue (QUEUED) while an update schedules the renewal
    # anew (PENDING): when the queued job runs, the renewal it schedules replaces that one.
    price = factories.make_price(account, unit_amount=1500)
    made = []
    for n in range(2):
        customer = _customer(account, None, n)
        made.append(subs.create_subscription(customer, items=[{"price": price}]))
    renewals = DueJob.objects.filter(kind="renewal", target_id__in=[s.pk for s in made])
    queued = list(renewals.values_list("pk", flat=True))
    renewals.update(status=JobStatus.QUEUED, queued_at=timezone.now())
    ends = {sub.pk: sub.current_period_end for sub in made}
    period_end = max(ends.values())
    replacement = timeline.schedule("renewal", made[0], at=ends[made[0].pk] + timedelta(days=3))
    with time_machine.travel(period_end + timedelta(minutes=1), tick=False):
        assert timeline.run_many(queued) == 2
    replacement.refresh_from_db()
    assert replacement.status == JobStatus.CANCELED
    for sub in made:
        sub.refresh_from_db()
        assert sub.current_period_start == ends[sub.pk]
        (job,) = DueJob.objects.filter(kind="renewal", target_id=sub.pk, status=JobStatus.PENDING)
        assert job.due_at == sub.current_period_end
