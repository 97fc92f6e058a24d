"""The conditions module and the server-side checks of automations (SPEC R-AUTO-1 … R-AUTO-4)."""

import random
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from automations import actions, conditions, services, triggers
from automations.conditions import Facts, Index
from automations.models import AutomationRun
from billing.choices import Interval
from billing.services import subscriptions as subs
from billing.services.accounts import set_exchange_rate
from tests import factories
from tests.automations.conftest import memo


def _holds(condition, obj, trigger="subscription_payment_failed"):
    cleaned = conditions.clean([condition], trigger)
    return conditions.evaluate(cleaned, Facts(obj))


@pytest.fixture
def annual_invoice(account, customer):
    price = factories.make_price(account, unit_amount=15000, interval=Interval.YEAR)
    sub = factories.make_subscription(customer, price=price)
    invoice = factories.make_invoice(customer, sub, amount=15000, metadata={"segment": "smb"})
    invoice.lines.update(price=price)
    return invoice


def test_customer_metadata_holds_on_an_equal_value(annual_invoice):
    # SPEC R-AUTO-3 (customer metadata key=value)
    customer = annual_invoice.customer
    customer.metadata = {"plan": "annual"}
    customer.save()
    assert _holds({"kind": "customer_metadata", "key": "plan", "value": "annual"}, annual_invoice)
    assert not _holds(
        {"kind": "customer_metadata", "key": "plan", "value": "monthly"}, annual_invoice
    )


def test_invoice_metadata_holds_on_an_equal_value(annual_invoice):
    # SPEC R-AUTO-3 (invoice metadata key=value)
    assert _holds({"kind": "invoice_metadata", "key": "segment", "value": "smb"}, annual_invoice)
    assert not _holds(
        {"kind": "invoice_metadata", "key": "segment", "value": "ent"}, annual_invoice
    )


def test_subscription_interval_tells_annual_from_monthly(annual_invoice, customer):
    # SPEC R-AUTO-3 (subscription interval)
    assert _holds({"kind": "subscription_interval", "interval": "year"}, annual_invoice)
    assert not _holds({"kind": "subscription_interval", "interval": "month"}, annual_invoice)
    monthly = factories.make_subscription(customer)
    assert _holds(
        {"kind": "subscription_interval", "interval": "month"}, monthly, "subscription_canceled"
    )


def test_products_hold_when_the_invoice_bills_at_least_one_of_them(annual_invoice, account):
    # SPEC R-AUTO-3 (products: at least one of those listed)
    billed = annual_invoice.lines.get().price.product_id
    other = factories.make_price(account).product_id
    assert _holds({"kind": "products", "products": [other, billed]}, annual_invoice)
    assert not _holds({"kind": "products", "products": [other]}, annual_invoice)


@pytest.mark.parametrize(
    ("low", "high", "holds"),
    [(10000, None, True), (15000, 15000, True), (15001, None, False), (None, 9999, False)],
)
def test_invoice_amount_bounds_are_inclusive(annual_invoice, low, high, holds):
    # SPEC R-AUTO-3 (invoice amount minimum and/or maximum)
    condition = {"kind": "invoice_amount", "min": low, "max": high, "currency": "usd"}
    assert _holds(condition, annual_invoice) is holds


def test_an_invoice_in_another_currency_is_converted_at_the_account_s_rate(account, customer):
    # SPEC R-AUTO-3 (other currencies converted at the account's rates)
    set_exchange_rate(account, currency="eur", rate=Decimal("1.10"))
    over_100_usd = {"kind": "invoice_amount", "min": 10000, "max": None, "currency": "usd"}
    in_95_eur = factories.make_invoice(customer, amount=9500, currency="eur")  # 104.50 USD
    in_90_eur = factories.make_invoice(customer, amount=9000, currency="eur")  # 99.00 USD
    assert _holds(over_100_usd, in_95_eur, "invoice_finalized")
    assert not _holds(over_100_usd, in_90_eur, "invoice_finalized")


def test_an_amount_without_a_rate_does_not_hold(account, customer):
    # SPEC R-AUTO-3: no rate for the currency, no guess
    invoice = factories.make_invoice(customer, amount=900000, currency="gbp")
    condition = {"kind": "invoice_amount", "min": 100, "max": None, "currency": "usd"}
    assert not _holds(condition, invoice, "invoice_finalized")


def test_a_threshold_in_another_currency_is_converted_too(account, customer):
    # SPEC R-AUTO-3
    set_exchange_rate(account, currency="eur", rate=Decimal("1.10"))
    invoice = factories.make_invoice(customer, amount=10500)  # 105 USD ≥ 100 EUR = 110 USD? no
    condition = {"kind": "invoice_amount", "min": 10000, "max": None, "currency": "eur"}
    assert not _holds(condition, invoice, "invoice_finalized")


def test_an_eur_invoice_takes_the_automation_through_the_exchange_rate(world, account):
    # SPEC R-AUTO-3, R-AUTO-5: matched on finalization of a 95 EUR invoice, not a 90 EUR one
    set_exchange_rate(account, currency="eur", rate=Decimal("1.10"))
    world.automation(
        trigger="invoice_finalized",
        filters=[{"kind": "invoice_amount", "min": 10000, "max": None, "currency": "usd"}],
        actions=[memo()],
    )
    invoices = {}
    for amount in (9500, 9000):
        price = factories.make_price(account, unit_amount=amount, currency="eur")
        customer = world.customer(card=None, email=f"c{amount}@acme.test")
        with world.commit():
            sub = subs.create_subscription(
                customer,
                items=[{"price": price}],
                collection_method="send_invoice",
                days_until_due=30,
            )
        invoices[amount] = sub.latest_invoice
    assert AutomationRun.objects.get().object_id == invoices[9500].pk


# --- registries fail loudly ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("get", "message"),
    [
        (conditions.get, "unknown condition 'colour'"),
        (actions.get, "unknown action 'colour'"),
        (triggers.get, "unknown trigger 'colour'"),
    ],
)
def test_an_unknown_kind_raises(get, message):
    with pytest.raises(ValueError, match=message):
        get("colour")


def test_evaluating_an_unknown_condition_raises(customer):
    with pytest.raises(ValueError, match="unknown condition 'colour'"):
        conditions.evaluate([{"kind": "colour"}], Facts(customer))


# --- server-side validation ---------------------------------------------------------------


def _save(account, **fields):
    fields.setdefault("name", "Flow")
    fields.setdefault("filters", [])
    return services.save_automation(account=account, livemode=False, **fields)


def _errors(account, **fields) -> dict:
    with pytest.raises(ValidationError) as caught:
        _save(account, **fields)
    return caught.value.message_dict


def test_an_action_that_does_not_fit_the_trigger_is_refused(account):
    # SPEC R-AUTO-4: the server decides which action fits which trigger
    errors = _errors(
        account,
        trigger="customer_created",
        actions_=[{"kind": "cancel_subscription", "delay_days": 0, "params": {}}],
    )
    assert "does not fit" in errors["actions.0.kind"][0]


@pytest.mark.parametrize(
    ("trigger", "fits"),
    [
        (
            "subscription_payment_failed",
            {
                "set_retry_policy",
                "mark_subscription_unpaid",
                "cancel_subscription",
                "mark_invoice_uncollectible",
                "email_team_member",
            },
        ),
        ("invoice_finalized", {"mark_invoice_uncollectible", "email_team_member"}),
        ("invoice_overdue", {"mark_invoice_uncollectible", "email_team_member"}),
        ("invoice_due_date_approaching", {"send_will_be_due_webhook", "email_team_member"}),
        ("subscription_canceled", {"send_cancellation_confirmation", "email_team_member"}),
        (
            "customer_created",
            {"create_subscription", "credit_customer_balance", "email_team_member"},
        ),
    ],
)
def test_each_trigger_offers_exactly_the_actions_that_fit_it(trigger, fits):
    # SPEC R-AUTO-4
    assert set(actions.fitting(trigger)) == fits


def test_a_filter_that_does_not_apply_to_the_trigger_is_refused(account):
    # SPEC R-AUTO-3: a new customer has no invoice to measure
    errors = _errors(
        account,
        trigger="customer_created",
        filters=[{"kind": "invoice_amount", "min": 100, "currency": "usd"}],
        actions_=[memo()],
    )
    assert "does not apply" in errors["filters.0.kind"][0]


def test_bad_fields_are_named_and_nothing_is_saved(account):
    # SPEC R-AUTO-1
    errors = _errors(
        account,
        name="",
        trigger="subscription_payment_failed",
        filters=[{"kind": "customer_metadata", "key": "", "value": "x"}],
        actions_=[
            {"kind": "set_retry_policy", "delay_days": 0, "params": {"retry_days": [0]}},
            {"kind": "email_team_member", "delay_days": 0, "params": {"to": "nope", "memo": "x"}},
        ],
    )
    assert set(errors) == {"name", "filters.0.key", "actions.0.retry_days", "actions.1.to"}
    from automations.models import Automation

    assert not Automation.objects.exists()


def test_actions_run_in_order_so_delays_cannot_go_back(account):
    # SPEC R-AUTO-1 (an ordered sequence of actions, each with a delay)
    errors = _errors(account, trigger="invoice_overdue", actions_=[memo(delay=3), memo(delay=1)])
    assert "delay_days" in next(iter(errors)) and "actions.1.delay_days" in errors


def test_only_the_due_date_trigger_takes_days_before(account):
    # SPEC R-AUTO-2 (action times relative to the due date)
    errors = _errors(account, trigger="invoice_overdue", actions_=[memo(delay=-2)])
    assert "actions.0.delay_days" in errors
    automation = _save(account, trigger="invoice_due_date_approaching", actions_=[memo(delay=-2)])
    assert automation.actions[0]["delay_days"] == -2


def test_cancel_subscription_must_be_the_last_action(account):
    # SPEC R-AUTO-4 (cancel subscription ends the run at once)
    errors = _errors(
        account,
        trigger="subscription_payment_failed",
        actions_=[{"kind": "cancel_subscription", "delay_days": 0, "params": {}}, memo(delay=1)],
    )
    assert "last action" in errors["actions.0.kind"][0]


def test_create_subscription_needs_a_recurring_price_of_the_account(account, other_account):
    # SPEC R-AUTO-4 (create subscription with one product and price)
    foreign = factories.make_price(other_account)
    one_off = factories.make_price(account, interval=None)
    for price, message in ((foreign, "this account"), (one_off, "recurring")):
        errors = _errors(
            account,
            trigger="customer_created",
            actions_=[
                {"kind": "create_subscription", "delay_days": 0, "params": {"price": price.pk}}
            ],
        )
        assert message in errors["actions.0.price"][0]


# --- the index ------------------------------------------------------------------------------


class _FakeFacts:
    def __init__(self, customer_metadata, invoice_metadata, products, intervals, amount):
        self.customer_metadata = customer_metadata
        self.invoice_metadata = invoice_metadata
        self.products = frozenset(products)
        self.intervals = frozenset(intervals)
        self.amount = amount

    def in_default_currency(self, amount, currency):
        return amount


def _random_conditions(rng):
    pool = [
        lambda: {"kind": "customer_metadata", "key": "tier", "value": rng.choice("abc")},
        lambda: {"kind": "invoice_metadata", "key": "seg", "value": rng.choice("xyz")},
        lambda: {
            "kind": "invoice_amount",
            "min": rng.randrange(0, 5000),
            "max": None,
            "currency": "usd",
        },
        lambda: {"kind": "subscription_interval", "interval": rng.choice(["month", "year"])},
        lambda: {"kind": "products", "products": rng.sample(["prod_1", "prod_2", "prod_3"], 2)},
    ]
    return [rng.choice(pool)() for _ in range(rng.randrange(0, 3))]


def test_the_index_finds_the_same_first_match_as_checking_every_automation():
    # SPEC R-AUTO-5: the index only skips automations that cannot hold
    rng = random.Random(7)
    automations = [(f"auto_{i}", _random_conditions(rng)) for i in range(300)]
    index = Index(automations)
    for _ in range(500):
        facts = _FakeFacts(
            {"tier": rng.choice("abcd")},
            {"seg": rng.choice("xyzw")},
            rng.sample(["prod_1", "prod_2", "prod_3", "prod_4"], 1),
            [rng.choice(["month", "year"])],
            rng.randrange(0, 6000),
        )
        linear = next(
            (aid for aid, conds in automations if conditions.evaluate(conds, facts)), None
        )
        assert index.first_match(facts)[0] == linear
