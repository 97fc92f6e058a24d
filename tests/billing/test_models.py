"""The data model: ids, money, metadata, and the constraints the database enforces."""

import os
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from billing import ids, money
from billing.choices import AccountType, CouponDuration, InvoiceStatus, PriceType
from billing.models import (
    Account,
    Coupon,
    Customer,
    DueJob,
    Event,
    Invoice,
    Price,
    Product,
    TestClock,
)
from billing.validators import validate_metadata
from tests import factories

BILLING_MODELS = list(apps.get_app_config("billing").get_models())


# --- ids (SPEC R-CORE-2) ---------------------------------------------------------------------

EXPECTED_PREFIXES = {
    "Account": "acct_",
    "Customer": "cus_",
    "PaymentMethod": "pm_",
    "Product": "prod_",
    "Price": "price_",
    "Subscription": "sub_",
    "SubscriptionItem": "si_",
    "Invoice": "in_",
    "InvoiceLineItem": "il_",
    "PaymentIntent": "pi_",
    "Event": "evt_",
    "TestClock": "clock_",
    "CustomerBalanceTransaction": "cbtxn_",
}


@pytest.mark.parametrize(("model_name", "prefix"), EXPECTED_PREFIXES.items())
def test_new_objects_get_a_stripe_style_id_with_their_prefix(model_name, prefix):
    # SPEC R-CORE-2
    model = apps.get_model("billing", model_name)
    value = model._meta.pk.get_default()
    assert value.startswith(prefix)
    assert len(value) == len(prefix) + ids.TIME_CHARS + ids.RANDOM_CHARS
    assert value[len(prefix) :].isalnum()


def test_ids_are_unique_and_sort_in_creation_order():
    made = [ids.generate("evt") for _ in range(2000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_the_random_part_of_ids_is_uniform_over_the_alphabet(monkeypatch):
    # Bytes 248-255 would make the first 8 characters likelier: they are dropped, and the
    # draw goes on with the next bytes.
    draws = iter([bytes(range(240, 256)) + bytes(range(7)), bytes(range(23))])
    monkeypatch.setattr(ids.os, "urandom", lambda n: next(draws))
    assert ids._random_chars(15) == ids.ALPHABET[240 % 62 :] + ids.ALPHABET[:7]
    monkeypatch.undo()

    counts = Counter("".join(ids._random_chars(15) for _ in range(14_000)))
    assert set(counts) == set(ids.ALPHABET)
    expected = 15 * 14_000 / 62  # ~3,387, standard deviation ~58
    assert all(abs(count - expected) < 400 for count in counts.values()), counts


def test_ids_encode_their_creation_time_in_base62():
    assert ids._encode(0, 9) == "0" * 9
    assert ids._encode(61, 3) == "00z"
    assert ids._encode(62**9 - 1, 9) == "z" * 9
    assert ids._encode(62 * 62 + 1, 3) == "101"


def test_unknown_object_name_has_no_prefix():
    with pytest.raises(ValueError, match="unknown object name 'widget'"):
        ids.prefix_for("widget")


def test_coupon_ids_are_free_text_unique_per_account_and_mode(account, other_account):
    # SPEC R-CORE-2: coupon ids are chosen by the merchant.
    Coupon.objects.create(account=account, code="SUMMER25", percent_off=25, duration="once")
    Coupon.objects.create(account=other_account, code="SUMMER25", percent_off=25, duration="once")
    Coupon.objects.create(
        account=account, livemode=True, code="SUMMER25", percent_off=25, duration="once"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.create(account=account, code="SUMMER25", percent_off=10, duration="once")


# --- livemode (SPEC R-CORE-3) ------------------------------------------------------------------


@pytest.mark.parametrize("model", BILLING_MODELS, ids=lambda m: m.__name__)
def test_every_public_object_carries_livemode(model):
    # SPEC R-CORE-3: everything but the account itself (which spans both modes), its
    # internal settings rows and sub-rows of a moded object is in exactly one mode.
    # A webhook attempt is a line of its delivery's history, which carries the mode.
    if model.__name__ in {"Account", "ExchangeRate", "Membership", "WebhookAttempt"}:
        return
    field = model._meta.get_field("livemode")
    assert isinstance(field, models.BooleanField)


def test_a_test_clock_cannot_be_live(account):
    # SPEC R-CLOCK-1: test clocks are test mode only.
    with pytest.raises(IntegrityError), transaction.atomic():
        TestClock.objects.create(account=account, livemode=True, frozen_time=timezone.now())


def test_a_live_customer_cannot_be_on_a_test_clock(account):
    clock = TestClock.objects.create(account=account, frozen_time=timezone.now())
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.create(account=account, livemode=True, test_clock=clock)


# --- money (SPEC R-CORE-1) ---------------------------------------------------------------------

MONEY_WORDS = ("amount", "balance", "subtotal", "total", "tax")
NOT_MONEY = ("percent", "automatic_tax")


def _money_fields():
    found = []
    for model in BILLING_MODELS:
        for field in model._meta.concrete_fields:
            name = field.attname
            if field.is_relation or any(word in name for word in NOT_MONEY):
                continue
            if any(word in name for word in MONEY_WORDS):
                found.append(pytest.param(field, id=f"{model.__name__}.{name}"))
    return found


@pytest.mark.parametrize("field", _money_fields())
def test_money_is_stored_as_integers(field):
    # SPEC R-CORE-1
    assert isinstance(field, models.BigIntegerField), field


def test_money_helpers_refuse_floats():
    # SPEC R-CORE-1
    with pytest.raises(TypeError):
        money.format_amount(19.99, "usd")
    with pytest.raises(TypeError):
        money.from_decimal(19.99, "usd")
    with pytest.raises(TypeError):
        money.convert(1000, "eur", "usd", 1.08)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (123456, "usd", "$1,234.56"),
        (-500, "eur", "-€5.00"),
        (1500, "jpy", "¥1,500"),
        (1234, "krw", "1,234 KRW"),
        (12345, "kwd", "12.345 KWD"),
        (99, "sek", "0.99 SEK"),
    ],
)
def test_amounts_are_shown_in_the_currency_s_major_unit(amount, currency, shown):
    # SPEC R-CORE-1: zero-decimal currencies have no minor unit.
    assert money.format_amount(amount, currency) == shown


def test_conversion_rounds_half_to_even_in_minor_units():
    assert money.convert(1000, "eur", "usd", Decimal("1.0825")) == 1082
    assert money.convert(1000, "eur", "usd", Decimal("1.0835")) == 1084
    assert money.convert(1000, "usd", "jpy", Decimal("151.5")) == 1515
    assert money.convert(1000, "usd", "usd", Decimal("2")) == 1000


# --- metadata (SPEC R-CORE-5) ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 41: "v"},
        {"plan": "v" * 501},
        {"plan": 3},
        ["plan"],
        {"": "v"},
    ],
    ids=["51-keys", "long-key", "long-value", "non-string-value", "not-a-map", "empty-key"],
)
def test_metadata_outside_stripe_limits_is_rejected(value):
    # SPEC R-CORE-5
    with pytest.raises(ValidationError):
        validate_metadata(value)


def test_metadata_within_limits_is_accepted(account):
    # SPEC R-CORE-5
    metadata = {f"key{i}": "v" * 500 for i in range(49)} | {"k" * 40: "x"}
    customer = factories.make_customer(account, metadata=metadata)
    customer.full_clean()


def test_model_validation_rejects_bad_metadata(account):
    customer = factories.make_customer(account)
    customer.metadata = {"plan": 12}
    with pytest.raises(ValidationError) as error:
        customer.full_clean()
    assert "metadata" in error.value.message_dict


# --- constraints ---------------------------------------------------------------------------------


def test_a_connected_account_needs_a_platform(account):
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.create(name="Seller", type=AccountType.CONNECTED)
    seller = Account.objects.create(name="Seller", type=AccountType.CONNECTED, platform=account)
    assert list(account.connected_accounts.all()) == [seller]


def test_a_recurring_price_needs_an_interval(account):
    product = Product.objects.create(account=account, name="Pro")
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(
            account=account,
            product=product,
            currency="usd",
            unit_amount=1000,
            type=PriceType.RECURRING,
        )


def test_a_one_off_price_has_no_interval(account):
    product = Product.objects.create(account=account, name="Setup")
    with pytest.raises(IntegrityError), transaction.atomic():
        Price.objects.create(
            account=account,
            product=product,
            currency="usd",
            unit_amount=1000,
            type=PriceType.ONE_TIME,
            recurring_interval="month",
            recurring_interval_count=1,
        )


def test_a_price_amount_cannot_be_negative(account):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_price(account, unit_amount=-1)


@pytest.mark.parametrize(
    "fields",
    [
        {"percent_off": 10, "amount_off": 500, "currency": "usd", "duration": "once"},
        {"duration": "once"},
        {"percent_off": 101, "duration": "once"},
        {"amount_off": 500, "duration": "once"},
        {"percent_off": 10, "duration": CouponDuration.REPEATING},
        {"percent_off": 10, "duration": "forever", "duration_in_months": 3},
    ],
    ids=[
        "both",
        "neither",
        "over-100",
        "amount-without-currency",
        "repeating-no-months",
        "months-not-repeating",
    ],
)
def test_coupon_shape_is_enforced(account, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.create(account=account, code="BAD", **fields)


def test_a_paid_invoice_has_nothing_remaining(customer):
    invoice = factories.make_invoice(customer, status=InvoiceStatus.PAID, amount=1000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(amount_paid=0, amount_remaining=1000)


def test_amount_remaining_is_due_minus_paid(customer):
    invoice = factories.make_invoice(customer, amount=1000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(amount_paid=400, amount_remaining=700)


def test_an_application_fee_cannot_exceed_the_invoice_total(customer):
    # SPEC R-CON-4
    invoice = factories.make_invoice(customer, amount=1000)
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(application_fee_amount=1001)


def test_a_subscription_period_cannot_end_before_it_starts(customer):
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_subscription(customer, current_period_end=timezone.now() - timedelta(days=1))


def test_send_invoice_subscriptions_need_days_until_due(customer):
    # SPEC R-SUB-9
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_subscription(customer, collection_method="send_invoice")


def test_application_fee_percent_is_between_0_and_100(customer):
    # SPEC R-CON-3
    with pytest.raises(IntegrityError), transaction.atomic():
        factories.make_subscription(customer, application_fee_percent=Decimal("100.01"))


def test_ids_made_across_draws_of_random_characters_stay_unique_and_well_formed():
    # More ids than one draw of random characters serves, twice over.
    made = [ids.generate("evt") for _ in range(3 * ids._POOL_CHARS // ids.RANDOM_CHARS)]
    assert len(set(made)) == len(made)
    assert len({value[-ids.RANDOM_CHARS :] for value in made}) == len(made)
    assert made == sorted(made)
    assert {len(value) for value in made} == {4 + ids.TIME_CHARS + ids.RANDOM_CHARS}
    # The time part encodes the microseconds the last id was made at (its head reused).
    assert _decode(made[-1][4 : 4 + ids.TIME_CHARS]) == ids._last_micros


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + ids.ALPHABET.index(char)
    return value


def test_a_forked_child_does_not_hand_out_its_parents_random_characters():
    ids.generate("evt")  # the pool holds characters
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.write(write, ids.generate("evt").encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    parent = ids.generate("evt")
    assert child[-ids.RANDOM_CHARS :] != parent[-ids.RANDOM_CHARS :]


# --- loading rows (billing.models.base.FastLoaded) ---------------------------------------------


def _attributes(obj) -> dict:
    values = {k: v for k, v in obj.__dict__.items() if k != "_state"}
    return {**values, "_state": (obj._state.adding, obj._state.db)}


def test_rows_load_as_djangos_own_loading_makes_them(account):
    from django.db.models import Model

    customer = factories.make_customer(account, email="row@example.com", metadata={"a": "1"})
    price = factories.make_price(account)
    subscription = factories.make_subscription(customer, price=price)
    for obj in (customer, subscription, *subscription.items.all(), price):
        model = type(obj)
        loaded = model.objects.get(pk=obj.pk)
        with pytest.MonkeyPatch.context() as patch:
            # Django's path, for comparison.
            patch.setattr(model, "from_db", classmethod(Model.from_db.__func__))
            reference = model.objects.get(pk=obj.pk)
        assert _attributes(loaded) == _attributes(reference)
        assert loaded._state.adding is False
        loaded.save()
        assert model.objects.get(pk=obj.pk).pk == obj.pk
    # A loaded instance's foreign keys behave: assigning one drops the object read before.
    other = factories.make_customer(account, email="other@example.com")
    loaded = type(subscription).objects.get(pk=subscription.pk)
    assert loaded.customer == customer
    loaded.customer_id = other.pk
    assert loaded.customer == other


def _new_attributes(obj) -> dict:
    # Ids, creation times and invoice prefixes are made per instance; the rest must match.
    values = _attributes(obj)
    return {k: v for k, v in values.items() if k not in {"id", "created", "invoice_prefix"}}


def test_new_instances_are_made_as_djangos_own_init_makes_them(account):
    from django.db.models import Model

    customer = factories.make_customer(account, email="new@example.com")
    price = factories.make_price(account)
    subscription = factories.make_subscription(customer, price=price)
    invoice_kwargs = {
        "account_id": account.pk,
        "customer": customer,
        "subscription": subscription,
        "currency": "eur",
        "billing_reason": "subscription_cycle",
        "period_start": subscription.current_period_start,
        "period_end": subscription.current_period_end,
        "test_clock_id": None,
    }
    cases = [
        (Invoice, invoice_kwargs),
        (Event, {"account_id": account.pk, "type": "invoice.created", "data": {"object": {}}}),
        (
            DueJob,
            {"account": account, "kind": "renewal", "target_id": "sub_1", "due_at": timezone.now()},
        ),
        (Customer, {"account": account, "email": "x@example.com", "metadata": {"k": "v"}}),
    ]
    for model, kwargs in cases:
        made = model(**kwargs)
        reference = model.__new__(model)
        Model.__init__(reference, **kwargs)
        assert _new_attributes(made) == _new_attributes(reference), model
        assert made._state.adding is True
        # Defaults made per instance are new objects (a dict each), not shared.
        if hasattr(made, "metadata") and "metadata" not in kwargs:
            assert made.metadata == {} and made.metadata is not model(**kwargs).metadata
        # Related objects given by name are cached, and their keys set, as Django does.
        for name in kwargs:
            field = model._meta.get_field(name)
            if field.is_relation and field.name == name:
                assert getattr(made, field.attname) == kwargs[name].pk
                assert field.is_cached(made)
    invoice = Invoice(**invoice_kwargs)
    invoice.save()
    assert Invoice.objects.get(pk=invoice.pk).customer_id == customer.pk


def test_new_instances_django_must_make_still_behave(account):
    # Positional values, `pk`, a key given both ways, unknown names: Django's own path.
    assert DueJob(pk=7).pk == 7
    with pytest.raises(TypeError, match="unexpected keyword"):
        Event(account_id=account.pk, colour="blue")
    with pytest.raises(ValueError):
        Event(account="acct_not_an_object")
    customer = factories.make_customer(account, email="both@example.com")
    invoice = Invoice(customer=customer, customer_id=customer.pk, account=account)
    assert invoice.customer == customer


def test_partial_rows_and_listened_models_load_through_django(account):
    from django.db.models.signals import post_init

    customer = factories.make_customer(account, email="partial@example.com")
    partial = Customer.objects.only("email").get(pk=customer.pk)
    assert partial.email == "partial@example.com"
    assert partial.get_deferred_fields()  # the other fields load on access, as in Django
    assert partial.name == customer.name

    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(listener, sender=Customer)
    try:
        loaded = Customer.objects.get(pk=customer.pk)
    finally:
        post_init.disconnect(listener, sender=Customer)
    assert seen == [loaded]
