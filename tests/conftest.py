"""Shared fixtures: two accounts, a signed-in member of the first, and builders."""

import pytest

from billing.choices import Role
from tests import factories


@pytest.fixture
def account(db):
    return factories.make_account("Acme Inc.")


@pytest.fixture
def other_account(db):
    return factories.make_account("Globex")


@pytest.fixture
def owner(account):
    return factories.make_member(account, email="owner@acme.test", role=Role.OWNER)


@pytest.fixture
def member_client(client, owner):
    """A test client signed in as an owner of `account`, in test mode."""
    client.force_login(owner)
    return client


@pytest.fixture
def customer(account):
    return factories.make_customer(account)
