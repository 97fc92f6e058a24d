"""Customers and payment methods through the official `stripe` SDK against a live server."""

import pytest
import stripe

from billing.models import Customer, Event
from tests import factories

# The server runs in another thread: its connection must see committed data.
pytestmark = pytest.mark.django_db(transaction=True)


def test_create_retrieve_update_delete_a_customer(sdk):
    customer = sdk.v1.customers.create(
        params={
            "email": "jenny.rosen@example.com",
            "name": "Jenny Rosen",
            "address": {"city": "Paris", "country": "FR"},
            "preferred_locales": ["fr", "en"],
            "metadata": {"plan": "pro", "source": "api"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.livemode is False
    assert customer.address.city == "Paris"
    assert customer.preferred_locales == ["fr", "en"]

    fetched = sdk.v1.customers.retrieve(customer.id)
    assert fetched.email == "jenny.rosen@example.com"

    updated = sdk.v1.customers.update(
        customer.id, params={"name": "Jenny R.", "metadata": {"source": ""}, "phone": ""}
    )
    assert updated.name == "Jenny R."
    assert updated.metadata.to_dict() == {"plan": "pro"}

    gone = sdk.v1.customers.delete(customer.id)
    assert gone.deleted is True
    assert sdk.v1.customers.retrieve(customer.id).deleted is True


def test_customer_update_emits_previous_attributes(sdk):
    """SPEC R-EVT-1: `customer.updated` carries what changed."""
    customer = sdk.v1.customers.create(params={"name": "Before"})
    sdk.v1.customers.update(customer.id, params={"name": "After"})
    event = Event.objects.get(type="customer.updated", object_id=customer.id)
    assert event.data["previous_attributes"] == {"name": "Before"}
    assert event.request_id.startswith("req_")


def test_create_a_customer_with_a_test_token_as_its_default(sdk):
    """SPEC R-INV-10, R-TRIAL-7: `pm_card_visa` attaches a new card, made the default."""
    customer = sdk.v1.customers.create(
        params={
            "email": "card@example.com",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
            "expand": ["invoice_settings.default_payment_method"],
        }
    )
    card = customer.invoice_settings.default_payment_method
    assert card.id.startswith("pm_")
    assert card.card.last4 == "4242"
    assert card.customer == customer.id


def test_create_a_customer_on_a_test_clock(sdk, account):
    """SPEC R-CLOCK-1: the customer lives on the clock's time."""
    clock = factories.make_test_clock(account)
    customer = sdk.v1.customers.create(params={"test_clock": clock.id})
    assert customer.test_clock == clock.id
    assert customer.created == int(clock.frozen_time.timestamp())


def test_an_unknown_test_clock_names_the_parameter(sdk):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.create(params={"test_clock": "clock_nope"})
    assert raised.value.param == "test_clock"
    assert not Customer.objects.exists()


def test_list_customers_pages_through_everything(sdk, account):
    made = {factories.make_customer(account, email=f"c{i}@example.com").id for i in range(7)}
    listed = sdk.v1.customers.list(params={"limit": 3})
    assert len(listed.data) == 3 and listed.has_more is True
    assert {c.id for c in listed.auto_paging_iter()} == made


def test_list_customers_by_email(sdk, account):
    wanted = factories.make_customer(account, email="wanted@example.com")
    factories.make_customer(account, email="other@example.com")
    listed = sdk.v1.customers.list(params={"email": "wanted@example.com"})
    assert [c.id for c in listed.data] == [wanted.id]


def test_create_a_card_from_its_number_and_attach_it(sdk):
    """SPEC R-INV-10: test card numbers make payment methods."""
    card = sdk.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4000000000009995", "exp_month": 12, "exp_year": 2040, "cvc": "123"},
            "billing_details": {"name": "Jenny Rosen", "email": "jenny@example.com"},
            "metadata": {"wallet": "main"},
        }
    )
    assert card.card.last4 == "9995"
    assert card.billing_details.name == "Jenny Rosen"
    assert card.customer is None

    customer = sdk.v1.customers.create(params={"email": "a@example.com"})
    attached = sdk.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    assert attached.customer == customer.id
    listed = sdk.v1.customers.payment_methods.list(customer.id)
    assert [pm.id for pm in listed.data] == [card.id]
    by_filter = sdk.v1.payment_methods.list(params={"customer": customer.id, "type": "card"})
    assert [pm.id for pm in by_filter.data] == [card.id]

    detached = sdk.v1.payment_methods.detach(card.id)
    assert detached.customer is None
    assert sdk.v1.payment_methods.retrieve(card.id).customer is None
    assert Event.objects.filter(type="payment_method.detached", object_id=card.id).exists()


def test_attach_a_test_token_directly(sdk):
    """SPEC R-INV-10: `pm_card_chargeDeclined` attaches (it fails only when charged)."""
    customer = sdk.v1.customers.create()
    attached = sdk.v1.payment_methods.attach(
        "pm_card_chargeDeclined", params={"customer": customer.id}
    )
    assert attached.id.startswith("pm_") and attached.id != "pm_card_chargeDeclined"
    assert attached.card.last4 == "0002"


def test_set_and_unset_the_default_payment_method(sdk):
    customer = sdk.v1.customers.create(params={"payment_method": "pm_card_visa"})
    card = sdk.v1.customers.payment_methods.list(customer.id).data[0]
    updated = sdk.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    assert updated.invoice_settings.default_payment_method == card.id
    cleared = sdk.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": ""}}
    )
    assert cleared.invoice_settings.default_payment_method is None


def test_a_customers_invoice_prefix_and_sequence_number_its_invoices(sdk, account):
    """SPEC R-INV-3: numbered for each customer (the default for a US account), an invoice
    takes the customer's prefix and sequence."""
    customer = sdk.v1.customers.create(
        params={
            "email": "jenny@example.com",
            "invoice_prefix": "JENNY",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )
    assert (customer.invoice_prefix, customer.next_invoice_sequence) == ("JENNY", 1)
    updated = sdk.v1.customers.update(customer.id, params={"next_invoice_sequence": 41})
    assert updated.next_invoice_sequence == 41
    price = factories.make_price(account, unit_amount=1000)
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice"],
        }
    )
    assert subscription.latest_invoice.number == "JENNY-0041"
    assert sdk.v1.customers.retrieve(customer.id).next_invoice_sequence == 42
    # A random prefix of its own when none is given.
    other = sdk.v1.customers.create(params={"email": "other@example.com"})
    assert len(other.invoice_prefix) == 8 and other.invoice_prefix != "JENNY"


@pytest.mark.parametrize(
    ("params", "param", "fragment"),
    [
        ({"invoice_prefix": "ab"}, "invoice_prefix", "3 to 12 capital letters"),
        ({"invoice_prefix": "TOOLONGPREFIX1"}, "invoice_prefix", "12"),
        ({"invoice_prefix": "TAKEN"}, "invoice_prefix", "Another customer"),
        ({"next_invoice_sequence": "0"}, "next_invoice_sequence", ""),
        ({"next_invoice_sequence": "many"}, "next_invoice_sequence", ""),
    ],
)
def test_a_bad_invoice_prefix_or_sequence_names_the_parameter(sdk, params, param, fragment):
    sdk.v1.customers.create(params={"invoice_prefix": "TAKEN"})
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.create(params={"email": "new@example.com", **params})
    assert raised.value.http_status == 400
    assert raised.value.param == param
    assert fragment in raised.value.user_message
    assert Customer.objects.filter(email="new@example.com").count() == 0


def test_invalid_card_numbers_name_the_parameter(sdk):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.payment_methods.create(
            params={"type": "card", "card": {"number": "1234", "exp_month": 1, "exp_year": 2040}}
        )
    assert raised.value.param == "card[number]"
    assert raised.value.http_status == 400


def test_sdk_errors_map_to_stripes_exception_classes(sdk, sdk_for, account, other_account):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.customers.retrieve("cus_missing")
    assert raised.value.http_status == 404
    assert raised.value.code == "resource_missing"
    assert raised.value.request_id.startswith("req_")

    with pytest.raises(stripe.AuthenticationError):
        sdk_for("sk_test_wrong").v1.customers.list()

    with pytest.raises(stripe.PermissionError):
        sdk.v1.customers.list(options={"stripe_account": other_account.id})


def test_the_sdk_acts_as_a_connected_account(sdk, account):
    """SPEC R-CON-1: `stripe_account` scopes the request to the connected account."""
    connected = factories.make_connected_account(account)
    customer = sdk.v1.customers.create(
        params={"email": "shop@example.com"}, options={"stripe_account": connected.id}
    )
    assert Customer.objects.get(pk=customer.id).account_id == connected.id
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.customers.retrieve(customer.id)


def test_sdk_retries_are_idempotent(sdk, live_server, test_key):
    """The SDK sends an Idempotency-Key with every POST; a retry replays, not repeats."""
    customer = sdk.v1.customers.create(
        params={"email": "once@example.com"}, options={"idempotency_key": "order-42"}
    )
    again = sdk.v1.customers.create(
        params={"email": "once@example.com"}, options={"idempotency_key": "order-42"}
    )
    assert again.id == customer.id
    with pytest.raises(stripe.IdempotencyError):
        sdk.v1.customers.create(
            params={"email": "twice@example.com"}, options={"idempotency_key": "order-42"}
        )
    assert Customer.objects.count() == 1
