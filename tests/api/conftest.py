"""Fixtures for the /v1 API: keys, a raw HTTP client, and the official SDK on a live server."""

import base64

import pytest
import stripe

from tests import factories


@pytest.fixture
def test_key(account):
    """A test-mode secret key of `account`; the raw key is `test_key.raw`."""
    return factories.make_api_key(account, livemode=False)


@pytest.fixture
def live_key(account):
    return factories.make_api_key(account, livemode=True, name="Live key")


class Api:
    """Django's test client speaking the /v1 protocol: form bodies, a key, optional headers."""

    def __init__(self, client, raw_key: str):
        self.client = client
        self.raw_key = raw_key

    def _headers(self, headers):
        base = {"HTTP_AUTHORIZATION": f"Bearer {self.raw_key}"} if self.raw_key else {}
        return {**base, **headers}

    def get(self, path, data=None, **headers):
        return self.client.get(path, data or {}, **self._headers(headers))

    def delete(self, path, query: str = "", **headers):
        return self.client.delete(f"{path}?{query}" if query else path, **self._headers(headers))

    def post(self, path, body="", **headers):
        """`body` is a dict (form-encoded, repeated keys as lists) or a raw string."""
        if isinstance(body, dict):
            from urllib.parse import urlencode

            body = urlencode(body, doseq=True)
        return self.client.generic(
            "POST",
            path,
            body,
            content_type="application/x-www-form-urlencoded",
            **self._headers(headers),
        )


@pytest.fixture
def api(client, test_key):
    """A raw client authenticated with `account`'s test key."""
    return Api(client, test_key.raw)


@pytest.fixture
def live_api(client, live_key):
    return Api(client, live_key.raw)


@pytest.fixture
def anonymous_api(client):
    return Api(client, "")


def basic_auth(raw_key: str) -> str:
    """The Authorization header `curl -u KEY:` sends."""
    return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()


@pytest.fixture
def sdk(live_server, test_key):
    """The official stripe SDK, pointed at this server with `account`'s test key."""
    return stripe.StripeClient(
        test_key.raw,
        base_addresses={"api": live_server.url},
        # Retries would hide a first failure; tests want to see it.
        max_network_retries=0,
    )


@pytest.fixture
def sdk_for(live_server):
    """An SDK client for any raw key."""

    def make(raw_key: str, **options):
        return stripe.StripeClient(
            raw_key, base_addresses={"api": live_server.url}, max_network_retries=0, **options
        )

    return make
