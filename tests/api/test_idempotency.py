"""Idempotency-Key on POST: replay, conflicts, and what is (not) saved."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from billing.api import idempotency
from billing.models import Customer, Event, IdempotencyKey

pytestmark = pytest.mark.django_db


def test_a_repeated_key_replays_the_first_response(api):
    first = api.post("/v1/customers", {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/v1/customers", {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert again["Original-Request"] == first["Request-Id"]
    assert Customer.objects.count() == 1
    assert Event.objects.filter(type="customer.created").count() == 1


def test_the_same_key_with_other_parameters_is_an_idempotency_error(api):
    api.post("/v1/customers", {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    response = api.post("/v1/customers", {"email": "b@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "idempotency_error"
    assert "same parameters" in error["message"]
    assert Customer.objects.count() == 1


def test_the_same_key_on_another_endpoint_is_an_idempotency_error(api):
    api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1")
    response = api.post("/v1/products", {"name": "Pro"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "idempotency_error"


def test_an_error_from_the_work_is_replayed_too(api):
    """A service error (the endpoint started executing) is the key's result, as in Stripe."""
    body = {"email": "a@example.com", "payment_method": "pm_nope"}
    first = api.post("/v1/customers", body, HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/v1/customers", body, HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"


def test_a_request_refused_by_validation_saves_nothing(api):
    """As in Stripe: a request that failed parameter validation can be retried with its key."""
    refused = api.post("/v1/customers", {"emial": "typo"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert refused.status_code == 400
    assert not IdempotencyKey.objects.exists()
    fixed = api.post("/v1/customers", {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    assert fixed.status_code == 200


def test_a_duplicate_of_a_request_still_running_is_409(api, account):
    IdempotencyKey.objects.create(
        account=account,
        livemode=False,
        key="k1",
        method="POST",
        path="/v1/customers",
        fingerprint=idempotency.fingerprint("POST", "/v1/customers", [{}, []]),
        request_id="req_running",
    )
    response = api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("idempotency_error", "idempotency_key_in_use")
    assert not Customer.objects.exists()


def test_a_request_that_died_frees_its_key_after_a_while(api, account):
    IdempotencyKey.objects.create(
        account=account,
        livemode=False,
        key="k1",
        method="POST",
        path="/v1/customers",
        fingerprint="x",
        request_id="req_dead",
        created=timezone.now() - timedelta(minutes=5),
    )
    assert api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1").status_code == 200


def test_keys_expire_after_24_hours(api):
    first = api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1")
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        again = api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1")
    assert again.json()["id"] != first.json()["id"]
    assert Customer.objects.count() == 2


def test_keys_are_scoped_to_the_mode(api, live_api):
    """SPEC R-CORE-3: the same key in test and live mode names two different requests."""
    test = api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1").json()
    live = live_api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1").json()
    assert (test["livemode"], live["livemode"]) == (False, True)


def test_overlong_keys_are_refused(api):
    response = api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert not Customer.objects.exists()


def test_prune_deletes_keys_older_than_a_day(api):
    api.post("/v1/customers", {}, HTTP_IDEMPOTENCY_KEY="k1")
    assert idempotency.prune(now=timezone.now()) == 0
    assert idempotency.prune(now=timezone.now() + timedelta(hours=25)) == 1
