"""`manage.py load_demo`: a demo account whose history the billing engine made.

Loading drives the engine through six months of a test clock, which takes a while, so the
module loads it once (committed, deleted at the end) and the tests read it; tests that change
anything run in their own rolled-back transaction. Time is frozen at a month's end while loading
so month arithmetic meets Feb 28.
"""

import io
import re
import stat
from collections import Counter, defaultdict
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
    JobStatus,
    MissingPaymentMethodBehavior,
    PaymentIntentStatus,
    Role,
    SubscriptionStatus,
)
from billing.choices import (
    TestCardBehavior as CardBehavior,
)
from billing.choices import (
    TestClockStatus as ClockStatus,
)
from billing.models import (
    Account,
    Coupon,
    Customer,
    Discount,
    DueJob,
    Event,
    ExchangeRate,
    Invoice,
    InvoiceLineItem,
    Membership,
    PaymentIntent,
    PaymentMethod,
    Price,
    Product,
    RecoverySettings,
    Subscription,
    SubscriptionItem,
)
from notifications.models import EmailSettings

NOW = datetime(2025, 1, 31, 15, 30, tzinfo=UTC)
CLOCK_START = datetime(2024, 7, 31, tzinfo=UTC)
TEST_CUSTOMERS = sum(demo.TEST_ROLES.values())
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
    """What must not change between two loads: counts by status, emails, amounts, events."""
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


def subscriptions(account, **filters):
    return Subscription.objects.filter(**scoped(account), **filters).select_related(
        "latest_invoice__payment_intent", "customer"
    )


# --- the catalog and the account --------------------------------------------------------------


def test_demo_account_is_a_usd_platform_with_a_eur_exchange_rate(demo_account):
    assert demo_account.name == "Northwind Software"
    assert demo_account.default_currency == "usd"
    assert demo_account.metadata == {"demo": "true"}
    rate = ExchangeRate.objects.get(account=demo_account, currency="eur")
    assert rate.rate == Decimal("1.08")


def test_revenue_recovery_retries_then_marks_unpaid_in_test_mode(demo_account):
    settings = RecoverySettings.objects.get(account=demo_account, livemode=False)
    assert settings.retry_mode == "custom" and settings.retry_days == [3, 5, 7]
    assert settings.after_retries_subscription == "unpaid"


def test_test_mode_emails_go_to_one_verified_domain_with_renewal_and_invoice_reminders(
    demo_account,
):
    # SPEC R-MAIL-8: the other customers' emails are logged as not sent, with the reason.
    settings = EmailSettings.objects.get(account=demo_account, livemode=False)
    assert settings.verified_domain == "mail.example"
    assert settings.upcoming_renewal and settings.invoice_reminders


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
    assert discounts.exclude(subscription=None).exists()
    for coupon in coupons:
        assert coupon.times_redeemed == discounts.filter(coupon=coupon).count()
    discounted = Invoice.objects.filter(**scoped(demo_account), total_discount_amount__gt=0)
    assert discounted.exists()


# --- the test clock ---------------------------------------------------------------------------


def test_the_clock_started_six_months_ago_and_is_ready_at_the_time_the_command_ran(demo_account):
    clock = demo.demo_clock(demo_account)
    assert clock.name == "Northwind demo" and not clock.livemode
    assert clock.status == ClockStatus.READY and clock.advancing_to is None
    assert clock.frozen_time == NOW
    # Everything that fell due by then has run; nothing failed.
    jobs = DueJob.objects.filter(test_clock=clock)
    assert not jobs.filter(status__in=[JobStatus.PENDING, JobStatus.QUEUED], due_at__lte=NOW)
    assert not DueJob.objects.filter(account=demo_account, status=JobStatus.FAILED).exists()
    assert jobs.filter(status=JobStatus.PENDING, kind="renewal").exists()


def test_test_mode_customers_live_on_the_clock_and_came_over_six_months(demo_account):
    clock = demo.demo_clock(demo_account)
    customers = Customer.objects.filter(**scoped(demo_account))
    assert customers.count() == TEST_CUSTOMERS
    assert not customers.exclude(test_clock=clock).exists()
    assert not Subscription.objects.filter(**scoped(demo_account)).exclude(test_clock=clock)
    assert not Invoice.objects.filter(**scoped(demo_account)).exclude(test_clock=clock)
    created = sorted(customers.values_list("created", flat=True))
    assert CLOCK_START < created[0] < CLOCK_START + timedelta(days=21)
    assert NOW - timedelta(days=1) < created[-1] <= NOW
    months = {(moment.year, moment.month) for moment in created}
    assert {(2024, month) for month in range(8, 13)} | {(2025, 1)} <= months
    # Staggered: customers did not all arrive at once.
    assert len(set(created)) > TEST_CUSTOMERS * 0.9


def test_nothing_in_test_mode_happened_after_the_clocks_time(demo_account):
    scope = scoped(demo_account)
    for model in (Customer, PaymentMethod, Subscription, Invoice, PaymentIntent, Event):
        assert not model.objects.filter(**scope, created__gt=NOW).exists()


# --- customers and cards ----------------------------------------------------------------------


def test_customers_have_unique_example_emails_metadata_addresses_and_time_zones(demo_account):
    customers = list(Customer.objects.filter(**scoped(demo_account)))
    assert len({c.email for c in customers}) == TEST_CUSTOMERS
    assert all(c.email.endswith(".example") for c in customers)
    assert all(c.metadata.get("segment") in {"smb", "enterprise"} for c in customers)
    assert any(c.metadata.get("beta") == "true" for c in customers)
    assert sum("plan_tier" in c.metadata for c in customers) > TEST_CUSTOMERS * 0.8
    assert sum(bool(c.address and c.address["country"]) for c in customers) > TEST_CUSTOMERS * 0.8
    assert sum(bool(c.timezone) for c in customers) > TEST_CUSTOMERS * 0.7


def test_cards_mostly_succeed_some_decline_and_some_need_authentication(demo_account):
    cards = PaymentMethod.objects.filter(**scoped(demo_account))
    behaviors = Counter(cards.values_list("test_behavior", flat=True))
    assert behaviors[CardBehavior.SUCCEED] > cards.count() * 0.75
    for behavior in (
        CardBehavior.DECLINE,
        CardBehavior.INSUFFICIENT_FUNDS,
        CardBehavior.ATTACH_THEN_FAIL,
        CardBehavior.AUTHENTICATION_REQUIRED,
    ):
        assert behaviors[behavior] >= 1
    # Expiring next month (February, seen from January 31st).
    assert cards.filter(card_exp_year=2025, card_exp_month=2).count() >= 3
    without_card = Customer.objects.filter(**scoped(demo_account), payment_methods=None)
    assert without_card.exists()


def test_every_customer_with_a_card_has_a_default_one_for_invoices(demo_account):
    customers = Customer.objects.filter(account=demo_account).prefetch_related("payment_methods")
    for customer in customers:
        cards = {card.id for card in customer.payment_methods.all()}
        if cards:
            assert customer.invoice_settings_default_payment_method_id in cards


# --- subscriptions ----------------------------------------------------------------------------


def test_every_subscription_status_appears_and_most_are_active(demo_account):
    statuses = Counter(subscriptions(demo_account).values_list("status", flat=True))
    assert set(statuses) == set(SubscriptionStatus.values)
    assert statuses[SubscriptionStatus.ACTIVE] > sum(statuses.values()) / 2


def test_statuses_are_current_today(demo_account):
    for sub in subscriptions(demo_account, status=SubscriptionStatus.TRIALING):
        assert sub.trial_start <= NOW < sub.trial_end
    for sub in subscriptions(demo_account, status=SubscriptionStatus.INCOMPLETE):
        assert NOW - timedelta(hours=23) < sub.start_date <= NOW
        assert sub.latest_invoice.status == InvoiceStatus.OPEN
    for sub in subscriptions(demo_account, status=SubscriptionStatus.INCOMPLETE_EXPIRED):
        assert sub.ended_at == sub.start_date + timedelta(hours=23)
        assert sub.latest_invoice.status == InvoiceStatus.VOID
    for sub in subscriptions(demo_account, status=SubscriptionStatus.PAST_DUE):
        invoice = sub.latest_invoice
        assert invoice.status == InvoiceStatus.OPEN and invoice.attempted
        if invoice.payment_intent.status == PaymentIntentStatus.REQUIRES_PAYMENT_METHOD:
            assert invoice.next_payment_attempt > NOW  # still being retried
    for sub in subscriptions(demo_account, status=SubscriptionStatus.UNPAID):
        assert sub.invoices.filter(status=InvoiceStatus.OPEN, attempt_count=4).exists()
    for sub in subscriptions(demo_account, status=SubscriptionStatus.PAUSED):
        assert sub.trial_end <= NOW
        assert sub.customer.invoice_settings_default_payment_method is None
    for sub in subscriptions(demo_account, status=SubscriptionStatus.CANCELED):
        assert sub.canceled_at <= sub.ended_at <= NOW
    billing = subscriptions(demo_account, status__in=["active", "past_due", "unpaid"])
    assert all(sub.current_period_start <= NOW < sub.current_period_end for sub in billing)


def test_past_due_comes_from_declines_and_from_3d_secure(demo_account):
    intents = Counter(
        sub.latest_invoice.payment_intent.status
        for sub in subscriptions(demo_account, status=SubscriptionStatus.PAST_DUE)
    )
    assert intents[PaymentIntentStatus.REQUIRES_PAYMENT_METHOD] >= 1
    assert intents[PaymentIntentStatus.REQUIRES_ACTION] >= 1


def test_trials_with_and_without_a_card_and_every_missing_payment_method_behavior(demo_account):
    trials = subscriptions(demo_account).exclude(trial_start=None)
    behaviors = set(trials.values_list("trial_settings_missing_payment_method", flat=True))
    assert behaviors == set(MissingPaymentMethodBehavior.values)
    trialing = trials.filter(status=SubscriptionStatus.TRIALING)
    with_card = {
        sub.customer.invoice_settings_default_payment_method_id is not None for sub in trialing
    }
    assert with_card == {True, False}
    # Trials that ended without a card, as their settings said.
    assert trials.filter(status=SubscriptionStatus.PAUSED).exists()
    assert trials.filter(
        status=SubscriptionStatus.CANCELED, trial_settings_missing_payment_method="cancel"
    ).exists()


def test_send_invoice_subscriptions_have_due_dates_and_some_invoices_are_overdue(demo_account):
    subs = subscriptions(demo_account, collection_method=CollectionMethod.SEND_INVOICE)
    assert subs.count() == demo.TEST_ROLES["send_invoice"]
    invoices = Invoice.objects.filter(subscription__in=subs).select_related("subscription")
    for invoice in invoices:
        assert invoice.due_date == invoice.finalized_at + timedelta(
            days=invoice.subscription.days_until_due
        )
        assert invoice.attempt_count == 0 or invoice.status == InvoiceStatus.PAID
    assert invoices.filter(status=InvoiceStatus.PAID).exists()
    assert invoices.filter(status=InvoiceStatus.OPEN, due_date__lt=NOW).exists()
    assert Event.objects.filter(**scoped(demo_account), type="invoice.overdue").exists()


def test_cancellations_at_period_end_and_by_the_merchant(demo_account):
    subs = subscriptions(demo_account)
    # Asked to cancel at the period's end: still active, or ended when that period did.
    assert subs.filter(status=SubscriptionStatus.ACTIVE, cancel_at_period_end=True).exists()
    ended = subs.filter(status=SubscriptionStatus.CANCELED)
    assert any(sub.canceled_at < sub.ended_at for sub in ended)
    reasons = {sub.cancellation_details["reason"] for sub in ended}
    assert reasons == {"cancellation_requested", "payment_failed"}


# --- invoices and events ----------------------------------------------------------------------


def test_invoices_appear_in_every_status_some_of_them_manual(demo_account):
    invoices = Invoice.objects.filter(**scoped(demo_account))
    assert set(invoices.values_list("status", flat=True)) == set(InvoiceStatus.values)
    manual = invoices.filter(billing_reason="manual")
    assert set(manual.values_list("status", flat=True)) == set(InvoiceStatus.values)
    assert invoices.filter(billing_reason="subscription_cycle").count() > invoices.count() / 3


def test_invoices_add_up_and_payments_match(demo_account):
    invoices = Invoice.objects.filter(account=demo_account).select_related("payment_intent")
    lines = defaultdict(int)
    for invoice_id, amount in InvoiceLineItem.objects.filter(account=demo_account).values_list(
        "invoice_id", "amount"
    ):
        lines[invoice_id] += amount
    numbers = set()
    for invoice in invoices:
        assert invoice.subtotal == lines[invoice.id]
        assert invoice.total == invoice.subtotal - invoice.total_discount_amount
        assert invoice.amount_remaining == invoice.amount_due - invoice.amount_paid
        if invoice.status == InvoiceStatus.DRAFT:
            assert invoice.number is None
            continue
        numbers.add((invoice.livemode, invoice.number))
        intent = invoice.payment_intent
        if invoice.status == InvoiceStatus.PAID and invoice.amount_due > 0:
            assert intent.status == PaymentIntentStatus.SUCCEEDED
            assert intent.amount_received == invoice.amount_due
        elif intent is not None:
            assert intent.status != PaymentIntentStatus.SUCCEEDED
    assert len(numbers) == invoices.exclude(status=InvoiceStatus.DRAFT).count()


def test_invoices_and_events_tell_the_same_story(demo_account):
    scope = scoped(demo_account)
    by_type = defaultdict(set)
    for event_type, object_id in Event.objects.filter(account=demo_account).values_list(
        "type", "object_id"
    ):
        by_type[event_type].add(object_id)
    invoices = Invoice.objects.filter(account=demo_account)
    for invoice_id, status, finalized_at in invoices.values_list("id", "status", "finalized_at"):
        assert invoice_id in by_type["invoice.created"]
        if finalized_at is not None:
            assert invoice_id in by_type["invoice.finalized"]
        if status == InvoiceStatus.PAID:
            assert invoice_id in by_type["invoice.paid"]
        if status == InvoiceStatus.VOID:
            assert invoice_id in by_type["invoice.voided"]
        if status == InvoiceStatus.UNCOLLECTIBLE:
            assert invoice_id in by_type["invoice.marked_uncollectible"]
    for sub_id in Subscription.objects.filter(account=demo_account).values_list("id", flat=True):
        assert sub_id in by_type["customer.subscription.created"]
    types = Counter(Event.objects.filter(**scope).values_list("type", flat=True))
    assert set(types) <= events.EVENT_TYPES
    assert types["customer.created"] == TEST_CUSTOMERS
    for event_type in (
        "invoice.payment_failed",
        "invoice.payment_action_required",
        "invoice.upcoming",
        "customer.subscription.trial_will_end",
        "customer.subscription.paused",
        "customer.subscription.deleted",
        "test_helpers.test_clock.ready",
    ):
        assert types[event_type] > 0, event_type


def test_each_customers_events_are_in_the_order_they_happened(demo_account):
    history = defaultdict(list)
    rows = (
        Event.objects.filter(account=demo_account)
        .exclude(customer_id="")
        .order_by("id")
        .values_list("customer_id", "created")
    )
    for customer_id, created in rows:
        history[customer_id].append(created)
    assert len(history) == TEST_CUSTOMERS + 5
    for created in history.values():
        assert created == sorted(created)


# --- live mode --------------------------------------------------------------------------------


def test_live_mode_has_a_handful_of_wall_clock_customers_of_its_own(demo_account):
    live = scoped(demo_account, livemode=True)
    customers = Customer.objects.filter(**live)
    assert customers.count() == 5
    assert not customers.exclude(test_clock=None).exists()
    assert Subscription.objects.filter(**live).count() == 5
    assert Price.objects.filter(**live).count() == 12
    assert Invoice.objects.filter(**live, status=InvoiceStatus.PAID).count() == 5
    assert Event.objects.filter(**live, type="customer.created").count() == 5
    # Their renewals run on wall time, through the worker.
    renewals = DueJob.objects.filter(account=demo_account, livemode=True, kind="renewal")
    assert renewals.filter(status=JobStatus.PENDING, test_clock=None, due_at__gt=NOW).exists()
    for model in (Subscription, Invoice, PaymentIntent, PaymentMethod):
        for obj in model.objects.filter(account=demo_account).select_related("customer"):
            assert obj.customer.livemode == obj.livemode
    for item in SubscriptionItem.objects.filter(account=demo_account).select_related("price"):
        assert item.price.livemode == item.livemode


def test_sample_objects_pass_full_clean_and_foreign_keys_hold(demo_account):
    for model in (Customer, PaymentMethod, Subscription, Invoice, PaymentIntent):
        objects = list(model.objects.filter(account=demo_account).order_by("id"))
        for obj in objects[:: max(1, len(objects) // 10)]:
            obj.full_clean()
    connection.check_constraints()


# --- the command ------------------------------------------------------------------------------


def test_command_prints_what_it_loaded(loaded):
    assert "Loaded demo account Northwind Software" in loaded.output
    assert f"{TEST_CUSTOMERS} customers" in loaded.output
    assert "5 customers" in loaded.output
    assert re.search(r"subscriptions: \d+ \(\d+ active, ", loaded.output)
    assert re.search(r"invoices: \d+ \(\d+ paid, ", loaded.output)
    assert "test clock 'Northwind demo': ready at 2025-01-31 15:30 UTC" in loaded.output
    assert LOGIN_LINE.search(loaded.output)


def test_second_run_changes_nothing_and_says_so(demo_account, loaded):
    before = shape(demo_account)
    output = run_command()
    assert "Demo data already loaded" in output
    assert shape(demo_account) == before
    assert Account.objects.filter(metadata__demo="true").count() == 1
    assert LOGIN_LINE.search(output).groups() == LOGIN_LINE.search(loaded.output).groups()


def test_reset_reloads_the_same_shape(demo_account):
    # Two loads at the same moment make the same history: same statuses, amounts and events.
    before = shape(demo_account)
    with time_machine.travel(NOW, tick=False):
        output = run_command("--reset")
    assert "Reloaded demo account" in output
    reloaded = demo.find_demo_account()
    assert reloaded.id != demo_account.id
    assert not Account.objects.filter(pk=demo_account.pk).exists()
    assert shape(reloaded) == before


def test_plans_are_the_same_on_any_day():
    def plan_on(moment):
        return [
            (plan.role, plan.email, plan.metadata, [action.kind for action in plan.actions])
            for plan in demo.plan_mode(livemode=False, now=moment)
        ]

    later = datetime(2026, 7, 4, 9, 15, tzinfo=UTC)
    assert [row[:3] for row in plan_on(NOW)] == [row[:3] for row in plan_on(later)]


def test_login_is_printed_and_opens_the_dashboard_and_admin(demo_account, loaded, client):
    email, password = LOGIN_LINE.search(loaded.output).groups()
    assert email == "demo@relance.local"
    assert client.login(username=email, password=password)
    user = get_user_model().objects.get(username=email)
    assert user.is_staff and user.is_superuser
    assert Membership.objects.get(user=user, account=demo_account).role == Role.OWNER
    login_file = loaded.var_dir / "demo-login.txt"
    lines = login_file.read_text().splitlines()
    assert lines[:2] == [email, password]
    assert lines[2].startswith("sk_test_")  # the demo's API key
    assert stat.S_IMODE(login_file.stat().st_mode) == 0o600


def test_missing_login_file_gets_a_new_password(demo_account, loaded, settings, tmp_path, client):
    settings.VAR_DIR = tmp_path / "var"
    old_password = LOGIN_LINE.search(loaded.output).group(2)
    output = run_command()
    email, password = LOGIN_LINE.search(output).groups()
    assert password != old_password
    lines = (tmp_path / "var" / "demo-login.txt").read_text().splitlines()
    assert lines[:2] == [email, password]
    assert lines[2].startswith("sk_test_")
    assert client.login(username=email, password=password)
    assert not client.login(username=email, password=old_password)


def test_another_email_gets_its_own_owner_login(demo_account, settings, tmp_path, client):
    settings.VAR_DIR = tmp_path
    output = run_command("--email", "sales@relance.local")
    email, password = LOGIN_LINE.search(output).groups()
    assert email == "sales@relance.local"
    assert client.login(username=email, password=password)
    assert Membership.objects.filter(user__username=email, account=demo_account).exists()


# --- Connect (SPEC R-CON-1, R-CON-2, R-CON-3) ---------------------------------------------------


def test_the_demo_platform_has_a_reseller_paid_by_destination_charges(demo_account):
    """SPEC R-CON-2: the partner's customers' paid invoices transferred 80% to the reseller."""
    from billing.models import Transfer
    from billing.services import connect

    partner = Account.objects.get(platform=demo_account, name=demo.PARTNER_NAME)
    referred = subscriptions(demo_account, transfer_data_destination=partner)
    assert referred.count() >= 5
    transfers = Transfer.objects.filter(destination=partner, livemode=False)
    assert transfers.count() > referred.count()
    for transfer in transfers.select_related("payment_intent"):
        received = transfer.payment_intent.amount_received
        assert transfer.amount == received - connect.money.percent_of(received, Decimal("20"))
    balance = connect.balance(partner, livemode=False)
    assert balance["usd"] == sum(t.amount for t in transfers if t.currency == "usd")


def test_the_demo_studio_bills_its_members_with_the_platform_fee(demo_account):
    """SPEC R-CON-1, R-CON-3: the studio's own members pay it; Northwind takes 10% of each."""
    from billing.models import ApplicationFee

    studio = Account.objects.get(platform=demo_account, name=demo.STUDIO_NAME)
    members = Customer.objects.filter(**scoped(studio))
    assert members.count() == len(demo.STUDIO_MEMBERS)
    paid = Invoice.objects.filter(**scoped(studio), status=InvoiceStatus.PAID, amount_paid__gt=0)
    fees = ApplicationFee.objects.filter(account=demo_account, connected_account=studio)
    assert paid.count() >= 10
    assert sorted(fees.values_list("amount", flat=True)) == sorted(
        invoice.amount_paid // 10 for invoice in paid
    )
    # The member whose card declines never started (SPEC R-SUB-2).
    assert Subscription.objects.filter(**scoped(studio), status="incomplete_expired").exists()
