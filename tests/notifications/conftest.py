"""Fixtures for customer-email tests: a test clock, a verified domain, committed transactions."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail

from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from notifications.models import EmailLog
from notifications.services.settings import update_email_settings
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
GOOD_CARD = "4242424242424242"


@pytest.fixture(autouse=True)
def locmem_email(settings):
    """Emails land in `mail.outbox`."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RELANCE_PUBLIC_URL = "https://billing.acme.test"
    mail.outbox = []


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """`with commit(): …` runs the after-commit hooks (event dispatch, deliveries) as a commit
    would, including the hooks those hooks add."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def verified(account):
    """Test mode sends to example.com addresses (SPEC R-MAIL-8)."""
    return update_email_settings(account, livemode=False, verified_domain="example.com")


@pytest.fixture
def clock(account):
    return create_test_clock(account, frozen_time=START, name="emails")


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


@pytest.fixture
def advance(commit):
    """Advance a clock by a timedelta's worth of keyword arguments, committing as we go."""

    def run(clock, **delta):
        clock.refresh_from_db()
        with commit():
            advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
        clock.refresh_from_db()
        assert clock.status == "ready"
        return clock

    return run


@pytest.fixture
def make_clock_customer(account, clock, commit):
    """A customer on the clock (email at the verified domain), with a card unless told not to."""

    def make(card=GOOD_CARD, email="jenny@example.com", exp=(12, 2030), **fields):
        with commit():
            customer = create_customer(
                account, livemode=False, email=email, name="Jenny Rosen", test_clock=clock, **fields
            )
            if card:
                add_card(
                    customer,
                    card={"number": card, "exp_month": exp[0], "exp_year": exp[1], "cvc": "123"},
                    set_default=True,
                )
        customer.refresh_from_db()
        return customer

    return make


def emails(kind=None, **filters):
    """Logged emails (of `kind`), oldest first."""
    queryset = EmailLog.objects.order_by("created", "id")
    if kind:
        queryset = queryset.filter(kind=kind)
    return list(queryset.filter(**filters))
