"""`manage.py load_demo`: a believable, deterministic demo account.

Loading takes a few seconds, so the module loads it once (committed, deleted at the end) and
the tests read it; tests that change anything run in their own rolled-back transaction.
Time is frozen at a month's end while loading so month arithmetic meets Feb 28.
"""

import io
import re
import stat
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from billing import demo, events
from billing.choices import (
    CollectionMethod,
    Interval,
    InvoiceStatus,
    PaymentIntentStatus,
    Role,
    SubscriptionStatus,
)
from billing.choices import (
    TestCardBehavior as CardBehavior,
)
from billing.models import (
    Account,
    Coupon,
    Customer,
    Discount,
    Event,
    ExchangeRate,
    Invoice,
    InvoiceLineItem,
    Membership,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    Subscription,
    SubscriptionItem,
)

NOW = datetime(2025, 1, 31, 15, 30, tzinfo=UTC)
TODAY = datetime(2025, 1, 31, tzinfo=UTC)
TOMORROW = TODAY + timedelta(days=1)
LOGIN_LINE = re.compile(r"^Dashboard login: (\S+) / (\S+)$", re.MULTILINE)


@dataclass
class Loaded:
    account: Account
    output: str
    var_dir: Path


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("load_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker, tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("var")
    # The same fast hasher as conftest's autouse fixture, which module fixtures run outside.
    fast_hashing = override_settings(
        VAR_DIR=var_dir, PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
    )
    with django_db_blocker.unblock():
        with fast_hashing, time_machine.travel(NOW, tick=False):
            output = run_command()
        account = demo.find_demo_account()
    yield Loaded(account=account, output=output, var_dir=var_dir)
    with django_db_blocker.unblock(), transaction.atomic():
        demo.delete_demo_account(demo.find_demo_account())
        get_user_model().objects.filter(username=demo.DEFAULT_LOGIN_EMAIL).delete()


@pytest.fixture
def demo_account(loaded, db, settings):
    settings.VAR_DIR = loaded.var_dir
    return loaded.account


def scoped(account, livemode=False):
    """Filter arguments for one mode of `account` (test mode unless asked)."""
    return {"account": account, "livemode": livemode}


def shape(account: Account) -> dict:
    """What must not change between two loads: counts, statuses, emails, amounts."""
    result = {}
    for livemode in (False, True):
        scope = scoped(account, livemode)
        result[livemode] = {
            "emails": sorted(Customer.objects.filter(**scope).values_list("email", flat=True)),
            "subscriptions": Counter(
                Subscription.objects.filter(**scope).values_list("status", flat=True)
            ),
            "invoices": Counter(Invoice.objects.filter(**scope).values_list("status", flat=True)),
            "payment_intents": Counter(
                PaymentIntent.objects.filter(**scope).values_list("status", flat=True)
            ),
            "totals": sorted(Invoice.objects.filter(**scope).values_list("total", flat=True)),
            "events": Counter(Event.objects.filter(**scope).values_list("type", flat=True)),
            "prices": sorted(
                Price.objects.filter(**scope).values_list(
                    "product__name", "currency", "recurring_interval", "unit_amount"
                )
            ),
        }
    return result


# --- the catalog and the account --------------------------------------------------------------


def test_demo_account_is_a_usd_platform_with_a_eur_exchange_rate(demo_account):
    assert demo_account.name == "Northwind Software"
    assert demo_account.default_currency == "usd"
    assert demo_account.metadata == {"demo": "true"}
    rate = ExchangeRate.objects.get(account=demo_account, currency="eur")
    assert rate.rate == Decimal("1.08")


def test_three_products_are_priced_monthly_and_yearly_in_usd_and_eur(demo_account):
    products = Product.objects.filter(**scoped(demo_account))
    assert sorted(products.values_list("name", flat=True)) == ["Enterprise", "Pro", "Starter"]
    prices = Price.objects.filter(**scoped(demo_account))
    assert prices.count() == 12
    for product in products:
        amounts = {
            (p.currency, p.recurring_interval): p.unit_amount
            for p in prices.filter(product=product)
        }
        assert set(amounts) == {
            (currency, interval)
            for currency in ("usd", "eur")
            for interval in (Interval.MONTH, Interval.YEAR)
        }
        for currency in ("usd", "eur"):
            assert amounts[currency, Interval.YEAR] == 10 * amounts[currency, Interval.MONTH]
        assert product.default_price.currency == "usd"


def test_percent_and_amount_coupons_discount_some_subscriptions(demo_account):
    coupons = Coupon.objects.filter(**scoped(demo_account))
    assert {c.percent_off is not None for c in coupons} == {True, False}
    discounts = Discount.objects.filter(**scoped(demo_account))
    assert discounts.exists()
    for coupon in coupons:
        assert coupon.times_redeemed == discounts.filter(coupon=coupon).count()
    discounted = Invoice.objects.filter(**scoped(demo_account), total_discount_amount__gt=0)
    assert discounted.exists()


# --- customers and cards ----------------------------------------------------------------------


def test_about_two_hundred_test_customers_have_metadata_addresses_and_time_zones(demo_account):
    customers = list(Customer.objects.filter(**scoped(demo_account)))
    assert len(customers) == 200
    assert len({c.email for c in customers}) == 200
    assert all(c.email.endswith(".example") for c in customers)
    assert all(c.metadata.get("segment") in {"smb", "enterprise"} for c in customers)
    assert any(c.metadata.get("beta") == "true" for c in customers)
    assert sum("plan_tier" in c.metadata for c in customers) > 150
    assert sum(bool(c.address and c.address["country"]) for c in customers) > 160
    assert sum(bool(c.timezone) for c in customers) > 140


def test_cards_mostly_succeed_some_decline_and_one_or_two_need_authentication(demo_account):
    cards = PaymentMethod.objects.filter(**scoped(demo_account))
    behaviors = Counter(cards.values_list("test_behavior", flat=True))
    assert behaviors[CardBehavior.SUCCEED] > cards.count() * 0.8
    declining = (
        CardBehavior.DECLINE,
        CardBehavior.INSUFFICIENT_FUNDS,
        CardBehavior.ATTACH_THEN_FAIL,
    )
    assert sum(behaviors[b] for b in declining) >= 5
    assert 1 <= behaviors[CardBehavior.AUTHENTICATION_REQUIRED] <= 2
    # Expiring next month (February, seen from January 31st).
    assert cards.filter(card_exp_year=2025, card_exp_month=2).count() >= 3


def test_every_card_is_its_customers_default_for_invoices(demo_account):
    for card in PaymentMethod.objects.filter(account=demo_account).select_related("customer"):
        assert card.customer.invoice_settings_default_payment_method_id == card.id


# --- subscriptions ----------------------------------------------------------------------------


def test_every_subscription_status_is_present_and_most_are_active(demo_account):
    statuses = Counter(
        Subscription.objects.filter(**scoped(demo_account)).values_list("status", flat=True)
    )
    assert set(statuses) == set(SubscriptionStatus.values)
    assert statuses[SubscriptionStatus.ACTIVE] > sum(statuses.values()) / 2


def test_periods_match_the_price_interval(demo_account):
    items = SubscriptionItem.objects.filter(**scoped(demo_account)).select_related(
        "subscription", "price"
    )
    for item in items:
        sub = item.subscription
        if sub.status in {SubscriptionStatus.TRIALING, SubscriptionStatus.PAUSED}:
            continue
        length = sub.current_period_end - sub.current_period_start
        if item.price.recurring_interval == Interval.MONTH:
            assert timedelta(days=28) <= length <= timedelta(days=31)
        else:
            assert timedelta(days=365) <= length <= timedelta(days=366)


def test_dates_still_to_come_are_after_the_day_the_command_ran(demo_account):
    scope = scoped(demo_account)
    billing = Subscription.objects.filter(
        **scope,
        status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE, "unpaid", "trialing"],
    )
    assert all(sub.current_period_end >= TOMORROW for sub in billing)
    assert all(sub.start_date <= TODAY for sub in billing)
    for sub in billing.filter(status=SubscriptionStatus.TRIALING):
        assert sub.trial_start <= TODAY and sub.trial_end >= TOMORROW
    retrying = Invoice.objects.filter(**scope, status=InvoiceStatus.OPEN)
    for invoice in retrying.exclude(next_payment_attempt=None):
        assert invoice.next_payment_attempt >= TOMORROW
    for invoice in retrying.exclude(due_date=None):
        assert not (TODAY <= invoice.due_date < TOMORROW)
    assert not Customer.objects.filter(account=demo_account, created__gt=TODAY).exists()
    assert not Invoice.objects.filter(account=demo_account, created__gt=TODAY).exists()


def test_trialing_paused_and_canceled_subscriptions_have_their_dates(demo_account):
    subs = Subscription.objects.filter(**scoped(demo_account))
    for sub in subs.filter(status=SubscriptionStatus.PAUSED):
        assert sub.trial_end <= TODAY
        assert sub.customer.invoice_settings_default_payment_method is None
    canceled = subs.filter(status=SubscriptionStatus.CANCELED)
    reasons = set()
    for sub in canceled:
        assert sub.canceled_at <= sub.ended_at <= TODAY
        reasons.add(sub.cancellation_details["reason"])
    assert reasons == {"cancellation_requested", "payment_failed"}
    for sub in subs.filter(status=SubscriptionStatus.INCOMPLETE_EXPIRED):
        assert sub.ended_at == sub.start_date + timedelta(hours=23)
        assert sub.latest_invoice.status == InvoiceStatus.VOID
    for sub in subs.filter(status=SubscriptionStatus.INCOMPLETE):
        assert TODAY - timedelta(hours=23) < sub.start_date <= TODAY
        assert sub.latest_invoice.status == InvoiceStatus.OPEN


def test_past_due_and_unpaid_subscriptions_have_a_failed_open_invoice(demo_account):
    subs = Subscription.objects.filter(
        **scoped(demo_account), status__in=[SubscriptionStatus.PAST_DUE, "unpaid"]
    ).select_related("latest_invoice__payment_intent")
    statuses = Counter()
    for sub in subs:
        invoice = sub.latest_invoice
        assert invoice.status == InvoiceStatus.OPEN
        assert invoice.attempted and invoice.attempt_count >= 1
        intent = invoice.payment_intent
        statuses[intent.status] += 1
        if intent.status == PaymentIntentStatus.REQUIRES_ACTION:
            assert intent.next_action == {"type": "use_stripe_sdk"}
            continue
        assert intent.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD
        assert intent.last_payment_error["code"] == "card_declined"
        if sub.status == SubscriptionStatus.UNPAID:
            assert invoice.attempt_count == 4 and invoice.next_payment_attempt is None
        else:
            assert invoice.next_payment_attempt is not None
    assert statuses[PaymentIntentStatus.REQUIRES_ACTION] == 1


def test_send_invoice_subscriptions_have_due_dates_and_some_are_overdue(demo_account):
    subs = Subscription.objects.filter(
        **scoped(demo_account), collection_method=CollectionMethod.SEND_INVOICE
    )
    assert subs.count() >= 5
    overdue = 0
    for sub in subs:
        assert sub.days_until_due in {14, 30}
        invoice = sub.latest_invoice
        assert invoice.status == InvoiceStatus.OPEN
        assert invoice.due_date == invoice.finalized_at + timedelta(days=sub.days_until_due)
        assert invoice.payment_intent is None and invoice.attempt_count == 0
        overdue += invoice.due_date < TODAY
    assert 0 < overdue < subs.count()


# --- invoices and payments --------------------------------------------------------------------


def test_invoices_exist_in_every_status(demo_account):
    statuses = Invoice.objects.filter(**scoped(demo_account)).values_list("status", flat=True)
    assert set(statuses) == set(InvoiceStatus.values)


def test_invoice_amounts_lines_numbers_and_payments_agree(demo_account):
    invoices = (
        Invoice.objects.filter(account=demo_account)
        .select_related("payment_intent")
        .prefetch_related("lines")
    )
    numbers = set()
    for invoice in invoices:
        lines = list(invoice.lines.all())
        assert len(lines) == 1
        assert invoice.subtotal == sum(line.amount for line in lines)
        assert invoice.total == invoice.subtotal - invoice.total_discount_amount
        assert invoice.amount_due == invoice.total
        assert invoice.amount_remaining == invoice.amount_due - invoice.amount_paid
        if invoice.status == InvoiceStatus.DRAFT:
            assert invoice.number is None and invoice.finalized_at is None
            continue
        assert re.fullmatch(r"NW-\d{4}", invoice.number)
        numbers.add((invoice.livemode, invoice.number))
        assert invoice.finalized_at >= invoice.created
        if invoice.status == InvoiceStatus.PAID:
            assert invoice.amount_remaining == 0 and invoice.paid_at >= invoice.finalized_at
        else:
            assert invoice.amount_paid == 0
        intent = invoice.payment_intent
        charged = invoice.collection_method == CollectionMethod.CHARGE_AUTOMATICALLY
        if charged and invoice.amount_due > 0:
            assert intent.amount == invoice.amount_due
            assert intent.invoice_id == invoice.id and intent.customer_id == invoice.customer_id
            succeeded = intent.status == PaymentIntentStatus.SUCCEEDED
            assert succeeded == (invoice.status == InvoiceStatus.PAID)
            assert intent.amount_received == (intent.amount if succeeded else 0)
            assert intent.client_secret.startswith(f"{intent.id}_secret_")
        else:
            assert intent is None
    assert len(numbers) == invoices.exclude(status=InvoiceStatus.DRAFT).count()


def test_latest_invoice_is_each_subscriptions_newest(demo_account):
    for sub in Subscription.objects.filter(account=demo_account):
        newest = sub.invoices.order_by("-created", "-id").first()
        assert sub.latest_invoice_id == newest.id


def test_sample_objects_pass_full_clean_and_foreign_keys_hold(demo_account):
    for model in (
        Customer,
        PaymentMethod,
        Product,
        Price,
        Coupon,
        Discount,
        Subscription,
        SubscriptionItem,
        Invoice,
        InvoiceLineItem,
        PaymentIntent,
    ):
        objects = list(model.objects.filter(account=demo_account).order_by("id"))
        for obj in objects[:: max(1, len(objects) // 15)]:
            obj.full_clean()
    connection.check_constraints()


# --- events -----------------------------------------------------------------------------------


def test_events_record_the_history_at_the_time_it_happened(demo_account):
    scope = scoped(demo_account)
    by_id = list(Event.objects.filter(**scope).order_by("id").values_list("created", "type"))
    assert [created for created, _ in by_id] == sorted(created for created, _ in by_id)
    assert by_id[-1][0] <= TODAY
    types = Counter(event_type for _, event_type in by_id)
    assert set(types) <= events.EVENT_TYPES
    assert types["customer.created"] == 200
    assert types["customer.subscription.created"] == Subscription.objects.filter(**scope).count()
    paid = Invoice.objects.filter(**scope, status=InvoiceStatus.PAID).count()
    assert types["invoice.paid"] == paid
    for event_type in ("invoice.payment_failed", "customer.subscription.deleted"):
        assert types[event_type] > 0


def test_events_show_objects_as_they_were_then(demo_account):
    invoice = Invoice.objects.filter(**scoped(demo_account), status=InvoiceStatus.PAID).first()
    created = Event.objects.get(object_id=invoice.id, type="invoice.created")
    paid = Event.objects.get(object_id=invoice.id, type="invoice.paid")
    assert created.data["object"]["status"] == "draft"
    assert created.data["object"]["number"] is None
    assert created.created == invoice.created
    assert paid.data["object"]["status"] == "paid"
    assert paid.created == invoice.paid_at
    assert paid.customer_id == invoice.customer_id


# --- live mode --------------------------------------------------------------------------------


def test_live_mode_has_a_handful_of_its_own_customers(demo_account):
    live = scoped(demo_account, livemode=True)
    assert Customer.objects.filter(**live).count() == 5
    assert Subscription.objects.filter(**live).count() == 5
    assert Price.objects.filter(**live).count() == 12
    assert Invoice.objects.filter(**live).exists()
    assert Event.objects.filter(**live, type="customer.created").count() == 5
    for model in (Subscription, Invoice, PaymentIntent, PaymentMethod):
        for obj in model.objects.filter(account=demo_account).select_related("customer"):
            assert obj.customer.livemode == obj.livemode
    for item in SubscriptionItem.objects.filter(account=demo_account).select_related("price"):
        assert item.price.livemode == item.livemode


# --- the command ------------------------------------------------------------------------------


def test_command_prints_what_it_loaded(loaded):
    assert "Loaded demo account Northwind Software" in loaded.output
    assert "200 customers" in loaded.output
    assert "5 customers" in loaded.output
    assert LOGIN_LINE.search(loaded.output)


def test_second_run_changes_nothing_and_says_so(demo_account, loaded):
    before = shape(demo_account)
    output = run_command()
    assert "Demo data already loaded" in output
    assert shape(demo_account) == before
    assert Account.objects.filter(metadata__demo="true").count() == 1
    assert LOGIN_LINE.search(output).groups() == LOGIN_LINE.search(loaded.output).groups()


def test_reset_reloads_the_same_shape(demo_account):
    before = shape(demo_account)
    with time_machine.travel(NOW, tick=False):
        output = run_command("--reset")
    assert "Reloaded demo account" in output
    reloaded = demo.find_demo_account()
    assert reloaded.id != demo_account.id
    assert not Account.objects.filter(pk=demo_account.pk).exists()
    assert shape(reloaded) == before


def test_plans_are_the_same_on_any_day():
    def plan_on(day):
        plans = demo.plan_mode(livemode=False, base=day, seed=demo.SEED)
        return [
            (
                p.email,
                p.metadata,
                p.subscription and p.subscription.status,
                p.subscription and [i.status for i in p.subscription.invoices],
            )
            for p in plans
        ]

    assert plan_on(TODAY) == plan_on(datetime(2026, 7, 4, tzinfo=UTC))


def test_login_is_printed_and_opens_the_dashboard_and_admin(demo_account, loaded, client):
    email, password = LOGIN_LINE.search(loaded.output).groups()
    assert email == "demo@relance.local"
    assert client.login(username=email, password=password)
    user = get_user_model().objects.get(username=email)
    assert user.is_staff and user.is_superuser
    assert Membership.objects.get(user=user, account=demo_account).role == Role.OWNER
    login_file = loaded.var_dir / "demo-login.txt"
    assert login_file.read_text() == f"{email}\n{password}\n"
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600


def test_missing_login_file_gets_a_new_password(demo_account, loaded, settings, tmp_path, client):
    settings.VAR_DIR = tmp_path / "var"
    old_password = LOGIN_LINE.search(loaded.output).group(2)
    output = run_command()
    email, password = LOGIN_LINE.search(output).groups()
    assert password != old_password
    assert (tmp_path / "var" / "demo-login.txt").read_text() == f"{email}\n{password}\n"
    assert client.login(username=email, password=password)
    assert not client.login(username=email, password=old_password)


def test_another_email_gets_its_own_owner_login(demo_account, settings, tmp_path, client):
    settings.VAR_DIR = tmp_path
    output = run_command("--email", "sales@relance.local")
    email, password = LOGIN_LINE.search(output).groups()
    assert email == "sales@relance.local"
    assert client.login(username=email, password=password)
    assert Membership.objects.filter(user__username=email, account=demo_account).exists()
