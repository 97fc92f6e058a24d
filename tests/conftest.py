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


@pytest.fixture(autouse=True)
def django_q_sync(monkeypatch):
    """Run django-q2 tasks inline, in the test's process and database, instead of queueing them.

    `async_task` reads `Conf.SYNC` on every call, so patching the class attribute is enough.
    """
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def read_only_client(client, account):
    """A test client signed in as a read-only member of `account`, in test mode."""
    user = factories.make_member(account, email="viewer@acme.test", role=Role.READ_ONLY)
    client.force_login(user)
    return client


@pytest.fixture
def dashboard_objects(customer):
    """One of each object the dashboard has a page for, in `account`'s test mode."""
    return factories.make_dashboard_objects(customer)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Sign-in tests need a password check, not a million PBKDF2 rounds per user made."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
