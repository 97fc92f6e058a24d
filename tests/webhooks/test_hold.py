"""The invoice.created hold: renewal invoices wait for webhooks, 1 h or up to 72 h (R-INV-2)."""

from datetime import timedelta

import pytest

from billing.choices import InvoiceStatus, JobStatus
from billing.models import DueJob, Invoice, WebhookDelivery
from billing.services import subscriptions as subs
from billing.services import webhooks as webhook_services
from billing.services.customers import add_card, create_customer
from tests import factories
from tests.webhooks.conftest import advance_to, first_then_ok

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def subscription(account, clock):
    customer = create_customer(account, livemode=False, email="c@example.com", test_clock=clock)
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        set_default=True,
    )
    price = factories.make_price(account, unit_amount=3000)
    return subs.create_subscription(customer, items=[{"price": price}])


def listen(account, url):
    return webhook_services.create_webhook_endpoint(
        account, livemode=False, url=url, enabled_events=["invoice.created"]
    )


def renew(clock, subscription) -> Invoice:
    """Advance to the renewal; return the renewal draft."""
    subscription.refresh_from_db()
    renewal_at = subscription.current_period_end
    advance_to(clock, renewal_at)
    invoice = Invoice.objects.get(subscription=subscription, billing_reason="subscription_cycle")
    assert invoice.status == InvoiceStatus.DRAFT
    assert invoice.created == renewal_at
    return invoice


def finalization_due(invoice) -> object:
    return DueJob.objects.get(
        kind="finalize_invoice", target_id=invoice.pk, status=JobStatus.PENDING
    ).due_at


def test_without_an_endpoint_a_renewal_is_finalized_after_one_hour(clock, subscription):
    # SPEC R-INV-2
    invoice = renew(clock, subscription)
    assert finalization_due(invoice) == invoice.created + timedelta(hours=1)
    advance_to(clock, invoice.created + timedelta(hours=1))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.finalized_at == invoice.created + timedelta(hours=1)


def test_a_renewal_is_finalized_one_hour_after_the_2xx_to_invoice_created(
    account, clock, subscription, receivers
):
    # SPEC R-INV-2: the first attempt fails, the retry (about 30 min later) gets a 2xx.
    receiver = receivers(first_then_ok("fail"))
    listen(account, receiver.url)
    invoice = renew(clock, subscription)
    assert finalization_due(invoice) == invoice.created + timedelta(hours=72)
    delivery = WebhookDelivery.objects.get(
        event__type="invoice.created", event__object_id=invoice.pk
    )
    retry_at = delivery.next_attempt_at
    advance_to(clock, retry_at)
    delivery.refresh_from_db()
    assert delivery.delivered_at == retry_at
    assert finalization_due(invoice) == retry_at + timedelta(hours=1)
    advance_to(clock, retry_at + timedelta(hours=1))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.finalized_at == retry_at + timedelta(hours=1)


def test_a_prompt_2xx_still_leaves_the_usual_hour(account, clock, subscription, receiver):
    # SPEC R-INV-2: never before an hour after creation.
    listen(account, receiver.url)
    invoice = renew(clock, subscription)
    assert finalization_due(invoice) == invoice.created + timedelta(hours=1)


def test_every_listening_endpoint_must_answer_before_the_hold_ends(
    account, clock, subscription, receivers
):
    listen(account, receivers().url)
    listen(account, receivers(lambda n: "fail").url)
    invoice = renew(clock, subscription)
    assert finalization_due(invoice) == invoice.created + timedelta(hours=72)


def test_a_renewal_whose_endpoint_keeps_failing_is_finalized_after_72_hours(
    account, clock, subscription, failing
):
    # SPEC R-INV-2: 72 h from creation, then finalized anyway.
    listen(account, failing.url)
    invoice = renew(clock, subscription)
    advance_to(clock, invoice.created + timedelta(hours=71))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.DRAFT
    advance_to(clock, invoice.created + timedelta(hours=72))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert invoice.finalized_at == invoice.created + timedelta(hours=72)


def test_the_first_invoice_of_a_subscription_is_not_held(account, clock, receivers):
    # SPEC R-INV-2: synchronous payment attempts (the first invoice) are not delayed.
    listen(account, receivers(lambda n: "fail").url)
    customer = create_customer(account, livemode=False, test_clock=clock)
    add_card(
        customer,
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        set_default=True,
    )
    sub = subs.create_subscription(customer, items=[{"price": factories.make_price(account)}])
    assert sub.latest_invoice.status == InvoiceStatus.PAID
