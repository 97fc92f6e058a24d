"""Fixtures for automations: a test clock, a price, customers with cards, and a `world` whose
`commit()` and `advance()` run what a commit would run (event subscribers, steps due now)."""

import contextlib
from datetime import UTC, datetime, timedelta

import pytest

from automations import services
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


class World:
    """Drives one scenario: commits (subscribers run) and clock advances."""

    def __init__(self, account, capture):
        self.account = account
        self._capture = capture
        self.clock = create_test_clock(account, frozen_time=START, name="automations")

    @contextlib.contextmanager
    def commit(self):
        """Run the block, then what its commit would run (dispatch, steps due now)."""
        with self._capture(execute=True):
            yield

    def advance(self, **delta):
        self.clock.refresh_from_db()
        with self.commit():
            advance_test_clock(self.clock, to=self.clock.frozen_time + timedelta(**delta))
        self.clock.refresh_from_db()
        assert self.clock.status == "ready"
        return self.clock.frozen_time

    def customer(self, card="4242424242424242", **kwargs):
        kwargs.setdefault("email", "jenny@acme.test")
        with self.commit():
            customer = create_customer(
                self.account, livemode=False, test_clock=self.clock, **kwargs
            )
            if card:
                add_card(
                    customer,
                    card={"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
                    set_default=True,
                )
        customer.refresh_from_db()
        return customer

    def automation(self, name="Flow", trigger="customer_created", filters=(), actions=(), **kw):
        return services.save_automation(
            account=self.account,
            livemode=False,
            name=name,
            trigger=trigger,
            filters=list(filters),
            actions_=list(actions),
            **kw,
        )


@pytest.fixture
def world(account, django_capture_on_commit_callbacks):
    return World(account, django_capture_on_commit_callbacks)


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


def memo(delay=0, to="owner@acme.test", text="Please look"):
    """An "email a team member" action."""
    return {"kind": "email_team_member", "delay_days": delay, "params": {"to": to, "memo": text}}
