"""Customer and payment-method services (billing.services.customers)."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from billing import services
from billing.choices import SubscriptionStatus
from billing.choices import TestCardBehavior as CardBehavior
from billing.choices import TestClockStatus as ClockStatus
from billing.models import Customer, Event, PaymentMethod, Subscription
from billing.serializers import serialize
from tests import factories

T0 = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)

VISA = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2040, "cvc": "123"}


def event_types() -> list[str]:
    """Every event type written so far, in the order the changes happened."""
    return list(Event.objects.order_by("id").values_list("type", flat=True))


def last_event(event_type: str) -> Event:
    return Event.objects.filter(type=event_type).latest("id")


def row_counts() -> dict[str, int]:
    """How many customers, payment methods and events exist: errors must leave these alone."""
    return {
        "customers": Customer.objects.count(),
        "payment_methods": PaymentMethod.objects.count(),
        "events": Event.objects.count(),
    }


def params_of(excinfo) -> set[str]:
    """The Stripe parameters a ValidationError names."""
    return set(excinfo.value.message_dict)


@pytest.fixture
def clock(account):
    return factories.make_test_clock(account, frozen_time=T0)


@pytest.fixture
def card(customer):
    """A Visa attached to `customer` through the services."""
    return services.add_card(customer, token="pm_card_visa")


# Creating customers ----------------------------------------------------------------------------


def test_create_customer_saves_the_given_fields(account):
    customer = services.create_customer(
        account,
        livemode=False,
        email="jenny.rosen@example.com",
        name="Jenny Rosen",
        phone="+33 6 12 34 56 78",
        description="VIP",
        timezone="Europe/Paris",
        metadata={"plan": "gold"},
        preferred_locales=["fr-FR"],
    )

    customer.refresh_from_db()
    assert (customer.email, customer.name, customer.timezone) == (
        "jenny.rosen@example.com",
        "Jenny Rosen",
        "Europe/Paris",
    )
    assert customer.metadata == {"plan": "gold"}
    assert customer.preferred_locales == ["fr-FR"]


def test_create_customer_emits_customer_created(account):
    customer = services.create_customer(account, livemode=False, email="a@example.com")

    event = last_event("customer.created")
    assert event.data == {"object": serialize(customer)}
    assert event.object_id == customer.id


def test_create_customer_passes_the_request_id_to_its_event(account):
    services.create_customer(account, livemode=False, request_id="req_123")

    assert last_event("customer.created").request_id == "req_123"


def test_create_customer_on_a_test_clock_is_created_at_the_clock_time(account, clock):
    # SPEC R-CORE-4: time comes from the customer's clock
    customer = services.create_customer(account, livemode=False, test_clock=clock)

    assert customer.created == T0
    assert last_event("customer.created").created == T0
    assert last_event("customer.created").data["object"]["test_clock"] == clock.id


def test_create_customer_stores_the_address_with_all_of_stripes_keys(account):
    customer = services.create_customer(
        account, livemode=False, address={"city": "Paris", "country": "FR"}
    )

    assert customer.address == {
        "line1": None,
        "line2": None,
        "city": "Paris",
        "state": None,
        "postal_code": None,
        "country": "FR",
    }


def test_create_customer_with_invalid_email_names_email_and_writes_nothing(account):
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, email="not-an-email")

    assert params_of(excinfo) == {"email"}
    assert excinfo.value.message_dict["email"] == ["Invalid email address: not-an-email"]
    assert row_counts() == before


def test_create_customer_with_unknown_address_key_names_that_key(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, address={"town": "Paris"})

    assert params_of(excinfo) == {"address[town]"}


def test_create_customer_with_unknown_timezone_names_timezone(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, timezone="Mars/Olympus")

    assert params_of(excinfo) == {"timezone"}


def test_create_customer_with_too_many_metadata_keys_names_metadata(account):
    # SPEC R-CORE-5: at most 50 keys
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(
            account, livemode=False, metadata={f"k{i}": "v" for i in range(51)}
        )

    assert params_of(excinfo) == {"metadata"}
    assert row_counts() == before


def test_create_customer_with_a_too_long_name_names_name(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, name="x" * 257)

    assert params_of(excinfo) == {"name"}


def test_create_customer_reports_every_invalid_field_at_once(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(
            account, livemode=False, email="nope", timezone="Nowhere", metadata={"k": 1}
        )

    assert params_of(excinfo) == {"email", "timezone", "metadata"}


def test_create_customer_on_another_accounts_clock_is_refused(account, other_account):
    foreign_clock = factories.make_test_clock(other_account, frozen_time=T0)
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, test_clock=foreign_clock)

    assert params_of(excinfo) == {"test_clock"}
    assert row_counts() == before


def test_create_live_customer_on_a_test_clock_is_refused(account, clock):
    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=True, test_clock=clock)

    assert params_of(excinfo) == {"test_clock"}


def test_create_customer_on_a_failed_clock_is_refused(account):
    failed = factories.make_test_clock(account, frozen_time=T0, status=ClockStatus.INTERNAL_FAILURE)

    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, test_clock=failed)

    assert params_of(excinfo) == {"test_clock"}


def test_create_customer_on_an_advancing_clock_is_refused(account):
    advancing = factories.make_test_clock(account, frozen_time=T0, status=ClockStatus.ADVANCING)

    with pytest.raises(ValidationError) as excinfo:
        services.create_customer(account, livemode=False, test_clock=advancing)

    assert params_of(excinfo) == {"test_clock"}


# Updating customers ----------------------------------------------------------------------------


def test_update_customer_emits_previous_attributes_of_what_changed_only(customer):
    # SPEC R-EVT-1: data.previous_attributes holds the old values of the changed fields
    services.update_customer(customer, name="Jenny R.", email=customer.email)

    event = last_event("customer.updated")
    assert event.data["previous_attributes"] == {"name": "Jenny Rosen"}
    assert event.data["object"]["name"] == "Jenny R."


def test_update_customer_without_any_change_emits_nothing(customer):
    services.update_customer(customer, name=customer.name)

    assert not Event.objects.filter(type="customer.updated").exists()


def test_update_customer_refreshes_the_callers_instance(customer):
    returned = services.update_customer(customer, description="Prefers email")

    assert returned is customer
    assert customer.description == "Prefers email"


def test_update_customer_metadata_merges_with_the_existing_keys(account):
    # SPEC R-CORE-5
    customer = factories.make_customer(account, metadata={"plan": "gold"})

    services.update_customer(customer, metadata={"region": "eu"})

    customer.refresh_from_db()
    assert customer.metadata == {"plan": "gold", "region": "eu"}


def test_update_customer_metadata_key_set_to_empty_is_removed(account):
    # SPEC R-CORE-5: Stripe unsets a key given an empty value
    customer = factories.make_customer(account, metadata={"plan": "gold", "region": "eu"})

    services.update_customer(customer, metadata={"plan": ""})

    customer.refresh_from_db()
    assert customer.metadata == {"region": "eu"}
    assert last_event("customer.updated").data["previous_attributes"] == {
        "metadata": {"plan": "gold"}
    }


def test_update_customer_metadata_set_to_empty_clears_every_key(account):
    customer = factories.make_customer(account, metadata={"plan": "gold", "region": "eu"})

    services.update_customer(customer, metadata="")

    customer.refresh_from_db()
    assert customer.metadata == {}


def test_update_customer_new_metadata_key_is_null_in_previous_attributes(account):
    # SPEC R-CORE-5, R-EVT-1: a key that did not exist had no value before
    customer = factories.make_customer(account, metadata={"plan": "gold"})

    services.update_customer(customer, metadata={"region": "eu"})

    assert last_event("customer.updated").data["previous_attributes"] == {
        "metadata": {"region": None}
    }


def test_update_customer_metadata_over_the_key_limit_is_refused(account):
    # SPEC R-CORE-5: the limit holds for the merged result
    customer = factories.make_customer(account, metadata={f"k{i}": "v" for i in range(50)})

    with pytest.raises(ValidationError) as excinfo:
        services.update_customer(customer, metadata={"one_more": "v"})

    assert params_of(excinfo) == {"metadata"}


def test_update_customer_with_invalid_email_changes_nothing(customer):
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.update_customer(customer, name="New name", email="broken@")

    assert params_of(excinfo) == {"email"}
    assert customer.name == "Jenny Rosen"
    customer.refresh_from_db()
    assert customer.name == "Jenny Rosen"
    assert row_counts() == before


def test_update_customer_with_an_unknown_field_raises_value_error(customer):
    # `balance` is a field now (a change records an adjustment); `livemode` never is.
    with pytest.raises(ValueError, match="livemode"):
        services.update_customer(customer, livemode=True)


def test_update_deleted_customer_is_refused_naming_customer(account):
    customer = factories.make_customer(account, deleted_at=T0)

    with pytest.raises(ValidationError) as excinfo:
        services.update_customer(customer, name="Someone")

    assert params_of(excinfo) == {"customer"}


def test_update_customer_default_to_another_customers_card_is_refused(account, customer):
    other = factories.make_customer(account, email="other@example.com")
    others_card = services.add_card(other, token="pm_card_visa")
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.update_customer(customer, invoice_settings_default_payment_method=others_card)

    assert params_of(excinfo) == {"invoice_settings[default_payment_method]"}
    assert row_counts() == before


def test_update_customer_address_reports_the_old_address(account):
    customer = services.create_customer(account, livemode=False, address={"city": "Paris"})

    services.update_customer(customer, address={"city": "Lyon"})

    previous = last_event("customer.updated").data["previous_attributes"]
    assert previous == {"address": {"city": "Paris"}}


# Payment methods -------------------------------------------------------------------------------


def test_create_payment_method_from_card_details_is_unattached(account):
    payment_method = services.create_payment_method(account, livemode=False, card=VISA)

    payment_method.refresh_from_db()
    assert payment_method.customer_id is None
    assert (payment_method.card_brand, payment_method.card_last4) == ("visa", "4242")
    assert (payment_method.card_exp_month, payment_method.card_exp_year) == (12, 2040)


def test_create_payment_method_emits_no_event(account):
    services.create_payment_method(account, livemode=False, card=VISA)

    assert event_types() == []


def test_create_payment_method_from_a_test_token_takes_its_behavior(account):
    # SPEC R-INV-10: pm_card_chargeDeclined works as in Stripe
    payment_method = services.create_payment_method(
        account, livemode=False, token="pm_card_chargeDeclined"
    )

    assert payment_method.test_behavior == CardBehavior.DECLINE
    assert payment_method.card_last4 == "0002"


def test_create_payment_method_keeps_billing_details(account):
    payment_method = services.create_payment_method(
        account,
        livemode=False,
        token="pm_card_visa",
        billing_details={"name": "Jenny Rosen", "address": {"postal_code": "75001"}},
    )

    rendered = serialize(payment_method)["billing_details"]
    assert rendered["name"] == "Jenny Rosen"
    assert rendered["address"]["postal_code"] == "75001"


def test_create_payment_method_without_card_or_token_names_card(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_payment_method(account, livemode=False)

    assert params_of(excinfo) == {"card"}


def test_create_payment_method_with_both_card_and_token_names_card(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_payment_method(account, livemode=False, card=VISA, token="pm_card_visa")

    assert params_of(excinfo) == {"card"}


def test_create_payment_method_with_unknown_token_names_payment_method(account):
    with pytest.raises(ValidationError) as excinfo:
        services.create_payment_method(account, livemode=False, token="pm_card_unknown")

    assert params_of(excinfo) == {"payment_method"}


def test_create_payment_method_with_incorrect_number_names_it_and_writes_nothing(account):
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.create_payment_method(
            account, livemode=False, card={**VISA, "number": "4242424242424241"}
        )

    assert params_of(excinfo) == {"card[number]"}
    assert row_counts() == before


def test_create_payment_method_without_expiry_month_names_it(account):
    card = {key: value for key, value in VISA.items() if key != "exp_month"}

    with pytest.raises(ValidationError) as excinfo:
        services.create_payment_method(account, livemode=False, card=card)

    assert params_of(excinfo) == {"card[exp_month]"}


def test_attach_payment_method_emits_payment_method_attached(account, customer):
    payment_method = services.create_payment_method(account, livemode=False, card=VISA)

    services.attach_payment_method(payment_method, customer=customer)

    assert payment_method.customer_id == customer.id
    event = last_event("payment_method.attached")
    assert event.data["object"]["customer"] == customer.id
    assert event.customer_id == customer.id
    assert event_types() == ["payment_method.attached"]


def test_attach_payment_method_twice_to_the_same_customer_is_a_no_op(card, customer):
    services.attach_payment_method(card, customer=customer)

    assert event_types() == ["payment_method.attached"]


def test_attach_with_set_default_makes_it_the_invoice_default(account, customer):
    # SPEC R-TRIAL-7: the customer's invoice_settings.default_payment_method counts
    payment_method = services.create_payment_method(account, livemode=False, card=VISA)

    services.attach_payment_method(payment_method, customer=customer, set_default=True)

    customer.refresh_from_db()
    assert customer.invoice_settings_default_payment_method_id == payment_method.id
    assert customer.has_default_payment_method
    assert event_types() == ["payment_method.attached", "customer.updated"]
    assert last_event("customer.updated").data["previous_attributes"] == {
        "invoice_settings": {"default_payment_method": None}
    }


def test_attach_payment_method_of_another_account_is_refused_and_writes_nothing(
    other_account, customer
):
    # SPEC R-CORE-3: one account's objects never reach another's
    foreign = services.create_payment_method(other_account, livemode=False, card=VISA)
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.attach_payment_method(foreign, customer=customer, set_default=True)

    assert params_of(excinfo) == {"payment_method"}
    assert row_counts() == before
    foreign.refresh_from_db()
    assert foreign.customer_id is None


def test_attach_live_payment_method_to_a_test_customer_is_refused(account, customer):
    # SPEC R-CORE-3: test and live data never mix
    live = services.create_payment_method(account, livemode=True, card=VISA)

    with pytest.raises(ValidationError) as excinfo:
        services.attach_payment_method(live, customer=customer)

    assert params_of(excinfo) == {"payment_method"}


def test_attach_payment_method_of_another_customer_is_refused(account, card):
    other = factories.make_customer(account, email="other@example.com")

    with pytest.raises(ValidationError) as excinfo:
        services.attach_payment_method(card, customer=other)

    assert params_of(excinfo) == {"payment_method"}
    card.refresh_from_db()
    assert card.customer_id != other.id


def test_attach_payment_method_to_a_deleted_customer_is_refused(account):
    deleted = factories.make_customer(account, deleted_at=T0)
    payment_method = services.create_payment_method(account, livemode=False, card=VISA)

    with pytest.raises(ValidationError) as excinfo:
        services.attach_payment_method(payment_method, customer=deleted)

    assert params_of(excinfo) == {"customer"}


def test_attach_then_fail_card_attaches(account, customer):
    # SPEC R-INV-10: 4000000000000341 attaches; its charges fail later
    payment_method = services.create_payment_method(
        account, livemode=False, token="pm_card_chargeCustomerFail"
    )

    services.attach_payment_method(payment_method, customer=customer)

    assert payment_method.customer_id == customer.id
    assert payment_method.test_behavior == CardBehavior.ATTACH_THEN_FAIL


def test_add_card_creates_and_attaches_the_card(customer):
    payment_method = services.add_card(customer, card=VISA)

    assert PaymentMethod.objects.get(customer=customer) == payment_method
    assert event_types() == ["payment_method.attached"]


def test_add_card_with_an_invalid_card_writes_nothing(customer):
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.add_card(customer, card={**VISA, "cvc": "1"}, set_default=True)

    assert params_of(excinfo) == {"card[cvc]"}
    assert row_counts() == before


def test_add_card_to_a_deleted_customer_writes_nothing(account):
    deleted = factories.make_customer(account, deleted_at=T0)
    before = row_counts()

    with pytest.raises(ValidationError) as excinfo:
        services.add_card(deleted, token="pm_card_visa")

    assert params_of(excinfo) == {"customer"}
    assert row_counts() == before


def test_add_card_for_a_clock_customer_lives_on_the_clock_time(account, clock):
    # SPEC R-CORE-4, R-CLOCK-1: everything a clock customer owns lives on its clock's time
    customer = factories.make_customer(account, test_clock=clock)

    payment_method = services.add_card(customer, token="pm_card_visa")

    assert payment_method.created == T0
    assert payment_method.card_exp_year == T0.year + 1
    assert last_event("payment_method.attached").created == T0


def test_set_default_payment_method_emits_customer_updated(customer, card):
    services.set_default_payment_method(customer, payment_method=card)

    assert customer.invoice_settings_default_payment_method_id == card.id
    event = last_event("customer.updated")
    assert event.data["object"]["invoice_settings"]["default_payment_method"] == card.id


def test_detach_payment_method_emits_payment_method_detached(customer, card):
    services.detach_payment_method(card)

    assert card.customer_id is None
    event = last_event("payment_method.detached")
    assert event.data["object"]["customer"] is None
    assert event.data["previous_attributes"] == {"customer": customer.id}
    assert event.customer_id == customer.id


def test_detach_default_card_clears_the_customers_default(customer):
    card = services.add_card(customer, token="pm_card_visa", set_default=True)

    services.detach_payment_method(card)

    customer.refresh_from_db()
    assert customer.invoice_settings_default_payment_method_id is None
    assert event_types()[-2:] == ["payment_method.detached", "customer.updated"]
    assert last_event("customer.updated").data["previous_attributes"] == {
        "invoice_settings": {"default_payment_method": card.id}
    }


def test_detach_card_that_is_not_the_default_leaves_the_customer_alone(customer, card):
    services.detach_payment_method(card)

    assert "customer.updated" not in event_types()


def test_detach_card_clears_it_from_subscriptions_that_used_it(customer, card):
    # SPEC R-TRIAL-7: a detached card no longer counts as the subscription's payment method
    subscription = factories.make_subscription(customer, default_payment_method=card)

    services.detach_payment_method(card)

    subscription.refresh_from_db()
    assert subscription.default_payment_method_id is None


def test_detach_unattached_card_is_refused(account):
    payment_method = services.create_payment_method(account, livemode=False, card=VISA)

    with pytest.raises(ValidationError) as excinfo:
        services.detach_payment_method(payment_method)

    assert params_of(excinfo) == {"payment_method"}


# Deleting customers ----------------------------------------------------------------------------


def test_delete_customer_emits_customer_deleted_with_the_full_customer(customer):
    snapshot = serialize(customer)

    services.delete_customer(customer)

    event = last_event("customer.deleted")
    assert event.data["object"] == snapshot
    assert serialize(customer) == {"id": customer.id, "object": "customer", "deleted": True}


def test_delete_customer_records_the_deletion_time_of_its_clock(account, clock):
    # SPEC R-CORE-4
    customer = factories.make_customer(account, test_clock=clock)

    services.delete_customer(customer)

    customer.refresh_from_db()
    assert customer.deleted_at == T0
    assert last_event("customer.deleted").created == T0


def test_delete_customer_detaches_its_cards(customer, card):
    services.delete_customer(customer)

    card.refresh_from_db()
    assert card.customer_id is None
    assert event_types()[-2:] == ["payment_method.detached", "customer.deleted"]


def test_delete_customer_cancels_its_running_subscriptions(customer):
    # SPEC R-SUB-6: canceled now, customer.subscription.deleted sent
    running = factories.make_subscription(customer)
    ended = factories.make_subscription(customer, status=SubscriptionStatus.CANCELED)

    services.delete_customer(customer)

    assert Subscription.objects.get(pk=running.pk).status == SubscriptionStatus.CANCELED
    deleted = Event.objects.filter(type="customer.subscription.deleted")
    assert list(deleted.values_list("object_id", flat=True)) == [running.id]
    assert Subscription.objects.get(pk=ended.pk).status == SubscriptionStatus.CANCELED


def test_delete_deleted_customer_is_refused_naming_customer(customer):
    services.delete_customer(customer)

    with pytest.raises(ValidationError) as excinfo:
        services.delete_customer(customer)

    assert params_of(excinfo) == {"customer"}
