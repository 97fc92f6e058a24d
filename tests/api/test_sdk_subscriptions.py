"""Subscriptions through the official `stripe` SDK against a live server, including every
`curl` example of reference documents 003 (Connect) and 004 (trials) that Relance supports."""

import time
from datetime import timedelta

import pytest
import stripe

from billing.models import Event, Invoice, Subscription
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

DAY = 24 * 3600


@pytest.fixture
def price(account):
    """A 20.00 USD monthly price of `account` (test mode)."""
    return factories.make_price(account, unit_amount=2000)


@pytest.fixture
def paying_customer(sdk):
    """A customer whose default payment method is a card that succeeds (SPEC R-INV-10)."""
    return sdk.v1.customers.create(
        params={
            "email": "jenny@example.com",
            "payment_method": "pm_card_visa",
            "invoice_settings": {"default_payment_method": "pm_card_visa"},
        }
    )


def customer_with_card(sdk, token: str, **options):
    return sdk.v1.customers.create(
        params={"payment_method": token, "invoice_settings": {"default_payment_method": token}},
        **options,
    )


def test_create_charges_the_first_invoice_and_expands_its_payment_intent(
    sdk, paying_customer, price
):
    """SPEC R-SUB-1, R-INV-4: paid at creation, the subscription is active."""
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": paying_customer.id,
            "items": [{"price": price.id, "quantity": 2}],
            "metadata": {"plan": "pro"},
            "expand": ["latest_invoice.payment_intent"],
        }
    )
    assert subscription.id.startswith("sub_")
    assert subscription.object == "subscription"
    assert subscription.status == "active"
    assert subscription.livemode is False
    assert subscription.metadata.to_dict() == {"plan": "pro"}
    assert subscription["items"].data[0].quantity == 2
    assert subscription["items"].data[0].price.id == price.id
    invoice = subscription.latest_invoice
    assert invoice.object == "invoice"
    assert (invoice.status, invoice.billing_reason, invoice.total) == (
        "paid",
        "subscription_create",
        4000,
    )
    assert invoice.payment_intent.status == "succeeded"
    assert invoice.payment_intent.amount_received == 4000
    assert sdk.v1.subscriptions.retrieve(subscription.id).latest_invoice == invoice.id


def test_reference_003_direct_charge_on_a_connected_account_with_the_confirmation_secret(
    sdk, account
):
    """Reference 003, "paiements directs": `Stripe-Account`, `items[0][price]`,
    `expand[0]=latest_invoice.confirmation_secret` (SPEC R-CON-1)."""
    connected = factories.make_connected_account(account)
    price = factories.make_price(connected, unit_amount=1500)
    as_connected = {"stripe_account": connected.id}
    customer = customer_with_card(sdk, "pm_card_visa", options=as_connected)

    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.confirmation_secret"],
        },
        options=as_connected,
    )

    assert subscription.status == "active"
    stored = Subscription.objects.get(pk=subscription.id)
    assert stored.account_id == connected.id
    invoice = Invoice.objects.select_related("payment_intent").get(pk=stored.latest_invoice_id)
    assert subscription.latest_invoice.confirmation_secret.to_dict() == {
        "client_secret": invoice.payment_intent.client_secret,
        "type": "payment_intent",
    }
    # The platform's own scope does not see it.
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.subscriptions.retrieve(subscription.id)


def test_default_incomplete_leaves_the_payment_to_the_confirmation_secret(sdk, price):
    """Reference 003: a customer without a payment method subscribes with
    `payment_behavior=default_incomplete`; the client confirms the PaymentIntent whose secret
    `latest_invoice.confirmation_secret` holds (SPEC R-SUB-2)."""
    customer = sdk.v1.customers.create(params={"email": "new@example.com"})
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "payment_behavior": "default_incomplete",
            "expand": ["latest_invoice.confirmation_secret", "latest_invoice.payment_intent"],
        }
    )
    assert subscription.status == "incomplete"
    invoice = subscription.latest_invoice
    assert invoice.status == "open"
    intent = invoice.payment_intent
    assert intent.status == "requires_payment_method"
    assert invoice.confirmation_secret.client_secret == intent.client_secret
    assert invoice.confirmation_secret.client_secret.startswith(f"{intent.id}_secret_")

    confirmed = sdk.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert confirmed.status == "succeeded"
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert sdk.v1.invoices.retrieve(invoice.id).status == "paid"


def test_reference_003_and_004_trial_end_on_a_connected_account(sdk, account):
    """Reference 003 "Utiliser des périodes d'essai" / 004: `trial_end` at creation, no payment
    method needed, a $0 invoice at once (SPEC R-TRIAL-1, R-CON-8)."""
    connected = factories.make_connected_account(account)
    price = factories.make_price(connected, unit_amount=1500)
    as_connected = {"stripe_account": connected.id}
    customer = sdk.v1.customers.create(options=as_connected)
    trial_end = int(time.time()) + 14 * DAY

    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_end": trial_end,
            "expand": ["latest_invoice"],
        },
        options=as_connected,
    )

    assert subscription.status == "trialing"
    assert subscription.trial_end == trial_end
    assert subscription.current_period_end == trial_end
    assert (subscription.latest_invoice.total, subscription.latest_invoice.status) == (0, "paid")


def test_reference_004_trial_end_now_ends_the_trial_at_once(sdk, paying_customer, price):
    """Reference 004: `trial_end=now` on update ends the trial and bills (SPEC R-TRIAL-2)."""
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": paying_customer.id,
            "items": [{"price": price.id}],
            "trial_period_days": 30,
        }
    )
    assert subscription.status == "trialing"

    ended = sdk.v1.subscriptions.update(
        subscription.id, params={"trial_end": "now", "expand": ["latest_invoice"]}
    )

    assert ended.status == "active"
    assert ended.trial_end <= int(time.time()) + 1
    assert ended.latest_invoice.id != subscription.latest_invoice
    assert ended.latest_invoice.billing_reason == "subscription_cycle"
    assert ended.latest_invoice.total == 2000


def test_update_trial_end_moves_the_trial(sdk, price):
    """SPEC R-TRIAL-2: a new timestamp moves the trial's end."""
    customer = sdk.v1.customers.create()
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "trial_period_days": 7}
    )
    later = subscription.trial_end + 7 * DAY
    moved = sdk.v1.subscriptions.update(subscription.id, params={"trial_end": later})
    assert (moved.status, moved.trial_end, moved.current_period_end) == ("trialing", later, later)


def test_reference_004_trial_end_with_a_later_billing_cycle_anchor(sdk, price):
    """Reference 004: `trial_end` then `billing_cycle_anchor` (SPEC R-TRIAL-5)."""
    customer = sdk.v1.customers.create()
    trial_end = int(time.time()) + 7 * DAY
    anchor = trial_end + 9 * DAY
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_end": trial_end,
            "billing_cycle_anchor": anchor,
        }
    )
    assert subscription.status == "trialing"
    assert subscription.trial_end == trial_end
    assert subscription.billing_cycle_anchor == anchor
    assert subscription.current_period_end == trial_end


def test_an_anchor_before_the_trial_end_names_the_parameter(sdk, price):
    customer = sdk.v1.customers.create()
    trial_end = int(time.time()) + 7 * DAY
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "trial_end": trial_end,
                "billing_cycle_anchor": trial_end - DAY,
            }
        )
    assert raised.value.param == "billing_cycle_anchor"
    assert not Subscription.objects.exists()


def test_trial_without_payment_method_cancels_at_trial_end_on_a_test_clock(sdk):
    """SPEC R-TRIAL-6, R-CLOCK-2: `trial_settings[end_behavior][missing_payment_method]=cancel`;
    advancing the clock past the trial cancels it."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(params={"frozen_time": start, "name": "Trial"})
    customer = sdk.v1.customers.create(params={"test_clock": clock.id})
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 900,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Basic"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_period_days": 3,
            "trial_settings": {"end_behavior": {"missing_payment_method": "cancel"}},
        }
    )
    assert subscription.trial_settings.end_behavior.missing_payment_method == "cancel"
    assert subscription.test_clock == clock.id
    assert subscription.trial_end == start + 3 * DAY

    advancing = sdk.v1.test_helpers.test_clocks.advance(
        clock.id, params={"frozen_time": start + 4 * DAY}
    )
    assert advancing.status == "advancing"

    # The worker (inline in tests) has run the clock's due jobs.
    assert sdk.v1.test_helpers.test_clocks.retrieve(clock.id).status == "ready"
    canceled = sdk.v1.subscriptions.retrieve(subscription.id)
    assert canceled.status == "canceled"
    assert canceled.ended_at == start + 3 * DAY
    assert Event.objects.filter(
        type="customer.subscription.deleted", object_id=subscription.id
    ).exists()


def test_error_if_incomplete_with_a_declined_card_is_a_402_and_writes_nothing(sdk, price):
    """SPEC R-SUB-2, R-INV-10: `payment_behavior=error_if_incomplete` fails the request."""
    customer = customer_with_card(sdk, "pm_card_chargeDeclined")
    with pytest.raises(stripe.CardError) as raised:
        sdk.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert raised.value.http_status == 402
    assert raised.value.code == "card_declined"
    assert raised.value.error.decline_code == "generic_decline"
    assert not Subscription.objects.exists()
    assert not Invoice.objects.exists()


def test_a_declined_first_payment_leaves_the_subscription_incomplete(sdk, price):
    """SPEC R-SUB-2, R-INV-4: `allow_incomplete` (the default) keeps it, incomplete."""
    customer = customer_with_card(sdk, "pm_card_chargeDeclined")
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.payment_intent"],
        }
    )
    assert subscription.status == "incomplete"
    intent = subscription.latest_invoice.payment_intent
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.decline_code == "generic_decline"


def test_3d_secure_then_confirm_activates_the_subscription(sdk, price):
    """SPEC R-INV-5: authentication puts the PaymentIntent in `requires_action`; confirming
    it (the customer passed 3-D Secure) pays the invoice."""
    customer = customer_with_card(sdk, "pm_card_authenticationRequired")
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "expand": ["latest_invoice.payment_intent"],
        }
    )
    assert subscription.status == "incomplete"
    intent = subscription.latest_invoice.payment_intent
    assert intent.status == "requires_action"
    assert intent.next_action is not None

    confirmed = sdk.v1.payment_intents.confirm(intent.id)
    assert confirmed.status == "succeeded"
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "active"
    assert Event.objects.filter(
        type="invoice.payment_action_required", object_id=subscription.latest_invoice.id
    ).exists()


def test_send_invoice_subscriptions_are_due_days_until_due_after_finalization(sdk, price):
    """SPEC R-SUB-9: `collection_method=send_invoice` with `days_until_due`."""
    customer = sdk.v1.customers.create(params={"email": "ap@example.com"})
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "collection_method": "send_invoice",
            "days_until_due": 15,
            "expand": ["latest_invoice"],
        }
    )
    assert subscription.status == "active"
    assert (subscription.collection_method, subscription.days_until_due) == ("send_invoice", 15)
    invoice = subscription.latest_invoice
    assert invoice.status == "open"
    assert invoice.due_date - invoice.status_transitions.finalized_at == 15 * DAY


def test_send_invoice_without_days_until_due_names_the_parameter(sdk, price):
    customer = sdk.v1.customers.create()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "collection_method": "send_invoice",
            }
        )
    assert raised.value.param == "days_until_due"


def test_one_off_items_added_at_trial_start_are_on_the_trial_invoice(sdk, account, price):
    """SPEC R-TRIAL-10: `add_invoice_items` at trial start are billed on the first invoice."""
    setup_fee = factories.make_price(account, unit_amount=5000, interval=None)
    customer = customer_with_card(sdk, "pm_card_visa")
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_period_days": 14,
            "add_invoice_items": [{"price": setup_fee.id, "quantity": 1}],
            "expand": ["latest_invoice"],
        }
    )
    assert subscription.status == "trialing"
    invoice = subscription.latest_invoice
    assert (invoice.total, invoice.status) == (5000, "paid")
    assert sorted(line.amount for line in invoice.lines.data) == [0, 5000]


def test_a_coupon_given_as_discounts_discounts_the_first_invoice(sdk, paying_customer, price):
    sdk.v1.coupons.create(params={"id": "HALF", "percent_off": 50, "duration": "forever"})
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": paying_customer.id,
            "items": [{"price": price.id}],
            "discounts": [{"coupon": "HALF"}],
            "expand": ["latest_invoice"],
        }
    )
    assert subscription.discount.coupon.id == "HALF"
    assert (subscription.latest_invoice.subtotal, subscription.latest_invoice.total) == (
        2000,
        1000,
    )


def test_the_coupon_parameter_works_too_and_an_unknown_one_is_named(sdk, paying_customer, price):
    sdk.v1.coupons.create(params={"id": "FIVE", "amount_off": 500, "currency": "usd"})
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}], "coupon": "FIVE"}
    )
    assert subscription.discount.coupon.id == "FIVE"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.create(
            params={
                "customer": paying_customer.id,
                "items": [{"price": price.id}],
                "discounts": [{"coupon": "NOPE"}],
            }
        )
    assert (raised.value.param, raised.value.code) == ("discounts[0][coupon]", "resource_missing")


def test_cancel_at_period_end_at_creation_and_undone_by_update(sdk, paying_customer, price):
    """SPEC R-SUB-8."""
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": paying_customer.id,
            "items": [{"price": price.id}],
            "cancel_at_period_end": True,
        }
    )
    assert subscription.cancel_at_period_end is True
    kept = sdk.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": False})
    assert (kept.cancel_at_period_end, kept.cancel_at, kept.status) == (False, None, "active")
    again = sdk.v1.subscriptions.update(subscription.id, params={"cancel_at_period_end": True})
    assert again.cancel_at == again.current_period_end


def test_changing_items_with_always_invoice_bills_the_proration_at_once(
    sdk, account, paying_customer, price
):
    bigger = factories.make_price(account, unit_amount=5000)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    item = subscription["items"].data[0]

    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": item.id, "price": bigger.id}],
            "proration_behavior": "always_invoice",
            "expand": ["latest_invoice"],
        },
    )

    assert [i.price.id for i in updated["items"].data] == [bigger.id]
    invoice = updated.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    assert invoice.status == "paid"
    assert 0 < invoice.total <= 3000
    assert all(line.proration for line in invoice.lines.data)


def test_items_can_be_added_and_removed_without_prorations(sdk, account, paying_customer, price):
    extra = factories.make_price(account, unit_amount=700)
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    first = subscription["items"].data[0]
    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={
            "items": [{"id": first.id, "deleted": True}, {"price": extra.id, "quantity": 3}],
            "proration_behavior": "none",
        },
    )
    assert [(i.price.id, i.quantity) for i in updated["items"].data] == [(extra.id, 3)]
    assert updated.latest_invoice == subscription.latest_invoice


def test_an_unknown_item_id_names_the_parameter(sdk, paying_customer, price):
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(
            subscription.id, params={"items": [{"id": "si_nope", "quantity": 2}]}
        )
    assert raised.value.param == "items[0][id]"


def test_pause_collection_is_set_and_unset_with_an_empty_string(sdk, paying_customer, price):
    """SPEC R-SUB-7: pause_collection is not the paused status."""
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    resumes_at = int(time.time()) + 40 * DAY
    paused = sdk.v1.subscriptions.update(
        subscription.id,
        params={"pause_collection": {"behavior": "keep_as_draft", "resumes_at": resumes_at}},
    )
    assert paused.status == "active"
    assert paused.pause_collection.to_dict() == {
        "behavior": "keep_as_draft",
        "resumes_at": resumes_at,
    }
    resumed = sdk.v1.subscriptions.update(subscription.id, params={"pause_collection": ""})
    assert resumed.pause_collection is None
    assert not Event.objects.filter(type="customer.subscription.paused").exists()


def test_update_default_payment_method_and_metadata(sdk, paying_customer, price):
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": paying_customer.id,
            "items": [{"price": price.id}],
            "metadata": {"a": "1", "b": "2"},
        }
    )
    card = sdk.v1.payment_methods.attach("pm_card_visa", params={"customer": paying_customer.id})
    updated = sdk.v1.subscriptions.update(
        subscription.id,
        params={"default_payment_method": card.id, "metadata": {"a": "", "c": "3"}},
    )
    assert updated.default_payment_method == card.id
    assert updated.metadata.to_dict() == {"b": "2", "c": "3"}
    cleared = sdk.v1.subscriptions.update(
        subscription.id, params={"default_payment_method": "", "metadata": ""}
    )
    assert cleared.default_payment_method is None
    assert cleared.metadata.to_dict() == {}


def test_cancel_now_ends_the_subscription_and_says_so(sdk, paying_customer, price):
    """SPEC R-SUB-6: `DELETE` cancels now, final, with `customer.subscription.deleted`."""
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    canceled = sdk.v1.subscriptions.cancel(
        subscription.id,
        params={
            "cancellation_details": {"comment": "Too pricey", "feedback": "too_expensive"},
            "prorate": False,
        },
    )
    assert canceled.status == "canceled"
    assert canceled.ended_at is not None
    assert canceled.cancellation_details.feedback == "too_expensive"
    assert canceled.cancellation_details.comment == "Too pricey"
    event = Event.objects.get(type="customer.subscription.deleted", object_id=subscription.id)
    assert event.request_id.startswith("req_")
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.cancel(subscription.id)
    assert raised.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.update(subscription.id, params={"metadata": {"x": "y"}})


def test_a_paused_trial_resumes_with_a_new_cycle_once_paid(sdk):
    """SPEC R-TRIAL-6 (`pause`), R-TRIAL-8: `POST /v1/subscriptions/{id}/resume` with
    `billing_cycle_anchor=now` invoices a new cycle; paid, the subscription is active again."""
    start = int(time.time())
    clock = sdk.v1.test_helpers.test_clocks.create(params={"frozen_time": start})
    customer = sdk.v1.customers.create(params={"test_clock": clock.id})
    price = sdk.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": 1200,
            "recurring": {"interval": "month"},
            "product_data": {"name": "Team"},
        }
    )
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "trial_period_days": 1,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    sdk.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": start + 2 * DAY})
    assert sdk.v1.subscriptions.retrieve(subscription.id).status == "paused"

    card = sdk.v1.payment_methods.attach("pm_card_visa", params={"customer": customer.id})
    sdk.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": card.id}}
    )
    resumed = sdk.v1.subscriptions.resume(
        subscription.id, params={"billing_cycle_anchor": "now", "expand": ["latest_invoice"]}
    )

    assert resumed.status == "active"
    assert resumed.billing_cycle_anchor == start + 2 * DAY
    assert (resumed.latest_invoice.total, resumed.latest_invoice.status) == (1200, "paid")
    assert Event.objects.filter(
        type="customer.subscription.resumed", object_id=subscription.id
    ).exists()


def test_only_a_paused_subscription_can_be_resumed(sdk, paying_customer, price):
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    with pytest.raises(stripe.InvalidRequestError) as raised:
        sdk.v1.subscriptions.resume(subscription.id)
    assert raised.value.http_status == 400
    assert "paused" in raised.value.user_message


def test_list_filters_by_customer_status_price_and_created(sdk, account, paying_customer, price):
    other_price = factories.make_price(account, unit_amount=999)
    other_customer = customer_with_card(sdk, "pm_card_visa")
    kept = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]}
    )
    gone = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": other_price.id}]}
    )
    sdk.v1.subscriptions.cancel(gone.id)
    theirs = sdk.v1.subscriptions.create(
        params={"customer": other_customer.id, "items": [{"price": price.id}]}
    )

    def listed(**params):
        return [s.id for s in sdk.v1.subscriptions.list(params=params).auto_paging_iter()]

    # Canceled subscriptions are left out unless asked for (status=all or canceled).
    assert listed(customer=paying_customer.id) == [kept.id]
    assert listed(customer=paying_customer.id, status="all") == [gone.id, kept.id]
    assert listed(status="canceled") == [gone.id]
    assert listed(status="ended") == [gone.id]
    assert listed(price=price.id) == [theirs.id, kept.id]
    assert listed(created={"gte": kept.created}, status="all") == [theirs.id, gone.id, kept.id]
    assert listed(created={"lt": kept.created}) == []
    page = sdk.v1.subscriptions.list(params={"limit": 1})
    assert page.has_more is True and page.url == "/v1/subscriptions"


def test_events_record_the_request_and_its_idempotency_key(sdk, paying_customer, price):
    """SPEC R-EVT-1: `request.id` and `request.idempotency_key` on every event it caused,
    including those the services emit without naming the request (`invoice.created`)."""
    subscription = sdk.v1.subscriptions.create(
        params={"customer": paying_customer.id, "items": [{"price": price.id}]},
        options={"idempotency_key": "signup-1"},
    )
    caused = Event.objects.filter(
        type__in=["customer.subscription.created", "invoice.created", "invoice.paid"],
        created__gte=Subscription.objects.get(pk=subscription.id).created - timedelta(seconds=1),
    )
    assert caused.count() == 3
    assert {(e.request_id is not None, e.request_idempotency_key) for e in caused} == {
        (True, "signup-1")
    }
    event = sdk.v1.events.list(params={"type": "customer.subscription.created"}).data[0]
    assert event.request.idempotency_key == "signup-1"
    assert event.request.id == caused.first().request_id


def test_the_module_level_configuration_of_the_readme_works(
    live_server, test_key, price, monkeypatch
):
    """README "Use the API": `stripe.api_key` and `stripe.api_base`."""
    monkeypatch.setattr(stripe, "api_key", test_key.raw)
    monkeypatch.setattr(stripe, "api_base", live_server.url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    # The module's own HTTP client, closed after: its kept-alive connection would hold a live
    # server thread, and that thread's database session, to the end of the test run (where
    # PostgreSQL then refused to drop the test database).
    client = stripe.new_default_http_client()
    monkeypatch.setattr(stripe, "default_http_client", client)
    try:
        customer = stripe.Customer.create(email="module@example.com")
        subscription = stripe.Subscription.create(
            customer=customer.id, items=[{"price": price.id}], trial_period_days=14
        )
        assert subscription.status == "trialing"
        assert stripe.Subscription.retrieve(subscription.id).customer == customer.id
    finally:
        client.close()
