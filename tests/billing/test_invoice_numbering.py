"""Invoice numbers (SPEC R-INV-3): Stripe's two schemes, across the account or for each
customer, the default of the account's country, and a customer's prefix and sequence."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from billing.choices import InvoiceNumbering
from billing.models import Account, Customer, Event
from billing.models import customers as customer_models
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer, update_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _commit_hooks(django_capture_on_commit_callbacks):
    global _capture
    _capture = django_capture_on_commit_callbacks


def _numbering(account, scheme):
    Account.objects.filter(pk=account.pk).update(invoice_numbering=scheme)
    account.refresh_from_db()


def _customer(account, clock=None, email="c@example.com", **options):
    customer = create_customer(account, livemode=False, email=email, test_clock=clock, **options)
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        set_default=True,
    )
    customer.refresh_from_db()
    return customer


def _numbers(customer):
    return list(
        customer.invoices.exclude(number=None)
        .order_by("created", "id")
        .values_list("number", flat=True)
    )


def _advance(clock, **delta):
    clock.refresh_from_db()
    with _capture(execute=True):
        advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))


@pytest.mark.parametrize(
    ("country", "scheme"),
    [
        ("US", InvoiceNumbering.CUSTOMER),
        ("CA", InvoiceNumbering.CUSTOMER),
        ("FR", InvoiceNumbering.ACCOUNT),
        ("DE", InvoiceNumbering.ACCOUNT),
        ("GB", InvoiceNumbering.ACCOUNT),
    ],
)
def test_the_default_scheme_is_the_one_stripe_gives_the_accounts_country(db, country, scheme):
    account = factories.make_account(country=country)
    assert account.invoice_numbering == ""
    assert account.invoice_numbering_in_force == scheme
    account.invoice_numbering = (
        InvoiceNumbering.ACCOUNT
        if scheme == InvoiceNumbering.CUSTOMER
        else InvoiceNumbering.CUSTOMER
    )
    assert account.invoice_numbering_in_force != scheme


def test_a_new_customer_has_a_prefix_of_its_own_and_starts_at_one(account):
    first = create_customer(account, livemode=False, email="a@example.com")
    second = create_customer(account, livemode=False, email="b@example.com")
    for customer in (first, second):
        assert customer_models.INVOICE_PREFIX.fullmatch(customer.invoice_prefix)
        assert len(customer.invoice_prefix) == 8
        assert customer.next_invoice_sequence == 1
    assert first.invoice_prefix != second.invoice_prefix


def test_a_random_prefix_another_customer_has_is_drawn_again(account, monkeypatch):
    taken = create_customer(account, livemode=False, invoice_prefix="TAKEN1").invoice_prefix
    draws = iter([taken, account.invoice_prefix, "FREE0001"])
    monkeypatch.setattr("billing.services.customers.new_invoice_prefix", lambda: next(draws))
    assert create_customer(account, livemode=False).invoice_prefix == "FREE0001"


def test_numbered_for_each_customer_each_has_its_own_unbroken_sequence(account):
    # SPEC R-INV-3, numbered as Stripe does by default outside the EU and the UK.
    _numbering(account, InvoiceNumbering.CUSTOMER)
    clock = create_test_clock(account, frozen_time=START, name="numbers")
    price = factories.make_price(account, unit_amount=2500)
    alice = _customer(account, clock, "alice@example.com")
    bob = _customer(
        account, clock, "bob@example.com", invoice_prefix="BOB", next_invoice_sequence=7
    )
    for customer in (alice, bob):
        subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=32)
    _advance(clock, days=31)

    prefix = alice.invoice_prefix
    assert _numbers(alice) == [f"{prefix}-0001", f"{prefix}-0002", f"{prefix}-0003"]
    assert _numbers(bob) == ["BOB-0007", "BOB-0008", "BOB-0009"]
    alice.refresh_from_db()
    bob.refresh_from_db()
    assert (alice.next_invoice_sequence, bob.next_invoice_sequence) == (4, 10)
    # The account's own counter was never touched.
    account.refresh_from_db()
    assert account.invoice_sequence_test == 0


def test_numbered_across_the_account_every_customer_shares_one_sequence(account):
    # SPEC R-INV-3: the EU's and the UK's default.
    _numbering(account, InvoiceNumbering.ACCOUNT)
    clock = create_test_clock(account, frozen_time=START, name="numbers")
    price = factories.make_price(account, unit_amount=2500)
    alice = _customer(account, clock, "alice@example.com")
    bob = _customer(account, clock, "bob@example.com")
    for customer in (alice, bob):
        subs.create_subscription(customer, items=[{"price": price}])
    _advance(clock, days=32)

    numbers = sorted(_numbers(alice) + _numbers(bob))
    assert numbers == [f"{account.invoice_prefix}-{n:04d}" for n in range(1, 5)]
    alice.refresh_from_db()
    assert alice.next_invoice_sequence == 1


def test_changing_the_scheme_numbers_the_next_invoices_the_new_way(account):
    _numbering(account, InvoiceNumbering.CUSTOMER)
    price = factories.make_price(account, unit_amount=2500)
    customer = _customer(account)
    subs.create_subscription(customer, items=[{"price": price}])
    _numbering(account, InvoiceNumbering.ACCOUNT)
    invoicing.create_invoice_item(customer, amount=500, currency="usd")
    manual = invoicing.create_manual_invoice(customer)
    invoicing.finalize_invoice(manual)
    _numbering(account, InvoiceNumbering.CUSTOMER)
    invoicing.create_invoice_item(customer, amount=700, currency="usd")
    later = invoicing.create_manual_invoice(customer)
    invoicing.finalize_invoice(later)

    prefix = customer.invoice_prefix
    assert _numbers(customer) == [
        f"{prefix}-0001",
        f"{account.invoice_prefix}-0001",
        f"{prefix}-0002",
    ]


@pytest.mark.parametrize("prefix", ["AB", "ABCDEFGHIJKLM", "abc123", "AB-12", "ÉTÉ", 42, ""])
def test_a_prefix_is_3_to_12_capital_letters_or_digits(account, prefix):
    with pytest.raises(ValidationError) as raised:
        create_customer(account, livemode=False, invoice_prefix=prefix)
    assert set(raised.value.error_dict) == {"invoice_prefix"}
    assert not Customer.objects.filter(account=account).exists()


@pytest.mark.parametrize("sequence", [0, -1, 1_000_000_001, "3", 2.5, True])
def test_a_sequence_is_a_whole_number_from_one(account, sequence):
    with pytest.raises(ValidationError) as raised:
        create_customer(account, livemode=False, next_invoice_sequence=sequence)
    assert set(raised.value.error_dict) == {"next_invoice_sequence"}


def test_a_prefix_can_belong_to_one_customer_only(account, other_account):
    create_customer(account, livemode=False, invoice_prefix="ACME")
    with pytest.raises(ValidationError) as raised:
        create_customer(account, livemode=False, invoice_prefix="ACME")
    assert raised.value.error_dict["invoice_prefix"][0].messages == [
        "Another customer has this prefix."
    ]
    with pytest.raises(ValidationError) as raised:
        create_customer(account, livemode=True, invoice_prefix=account.invoice_prefix)
    assert "account's own" in raised.value.error_dict["invoice_prefix"][0].messages[0]
    # Another account's customers are another matter.
    assert create_customer(other_account, livemode=False, invoice_prefix="ACME")


def test_no_change_of_prefix_or_sequence_can_give_a_number_again(account):
    _numbering(account, InvoiceNumbering.CUSTOMER)
    price = factories.make_price(account, unit_amount=2500)
    first = _customer(account, email="first@example.com", invoice_prefix="FIRST")
    subs.create_subscription(first, items=[{"price": price}])
    invoicing.create_invoice_item(first, amount=500, currency="usd")
    invoicing.finalize_invoice(invoicing.create_manual_invoice(first))
    assert _numbers(first) == ["FIRST-0001", "FIRST-0002"]

    with pytest.raises(ValidationError) as raised:
        update_customer(first, next_invoice_sequence=2)
    assert raised.value.error_dict["next_invoice_sequence"][0].messages == [
        "Must be greater than 2: invoice FIRST-0002 has that number."
    ]
    # A new prefix may start again at 1; the old one may come back only past the numbers it
    # gave.
    update_customer(first, invoice_prefix="RENAMED", next_invoice_sequence=1)
    with pytest.raises(ValidationError) as raised:
        update_customer(first, invoice_prefix="FIRST")
    assert set(raised.value.error_dict) == {"next_invoice_sequence"}
    update_customer(first, invoice_prefix="FIRST", next_invoice_sequence=3)
    # Nor can another customer take a prefix that numbered someone's invoices.
    update_customer(first, invoice_prefix="RENAMED")
    with pytest.raises(ValidationError) as raised:
        create_customer(account, livemode=False, invoice_prefix="FIRST")
    assert "FIRST-000" in raised.value.error_dict["invoice_prefix"][0].messages[0]
    first.refresh_from_db()
    assert (first.invoice_prefix, first.next_invoice_sequence) == ("RENAMED", 3)

    invoicing.create_invoice_item(first, amount=700, currency="usd")
    invoicing.finalize_invoice(invoicing.create_manual_invoice(first))
    assert _numbers(first) == ["FIRST-0001", "FIRST-0002", "RENAMED-0003"]


def test_a_customers_numbering_fields_are_in_its_object_and_its_updates(account):
    customer = create_customer(account, livemode=False, invoice_prefix="JENNY")
    update_customer(customer, next_invoice_sequence=12)
    event = Event.objects.filter(type="customer.updated", object_id=customer.pk).get()
    assert event.data["object"]["invoice_prefix"] == "JENNY"
    assert event.data["object"]["next_invoice_sequence"] == 12
    assert event.data["previous_attributes"] == {"next_invoice_sequence": 1}


def test_a_prefix_taken_by_a_concurrent_request_is_the_same_error(account, monkeypatch):
    # Two requests may both find the prefix free before either writes: the unique constraint
    # decides, and the loser gets the error a taken prefix gets, not a server error.
    create_customer(account, livemode=False, invoice_prefix="RACE")
    other = create_customer(account, livemode=False)
    monkeypatch.setattr("billing.services.customers._check_numbering", lambda *args, **kwargs: None)
    for attempt in (
        lambda: create_customer(
            account, livemode=False, email="late@example.com", invoice_prefix="RACE"
        ),
        lambda: update_customer(other, invoice_prefix="RACE"),
    ):
        with pytest.raises(ValidationError) as raised:
            attempt()
        assert raised.value.error_dict["invoice_prefix"][0].messages == [
            "Another customer has this prefix."
        ]
    assert not Customer.objects.filter(email="late@example.com").exists()
    other.refresh_from_db()
    assert other.invoice_prefix != "RACE"
