"""The overview's KPIs and the detail pages' contents."""

from django.urls import reverse
from django.utils import timezone

from billing.choices import Interval, InvoiceStatus, PaymentIntentStatus, SubscriptionStatus
from billing.views.overview import mrr_by_currency
from tests import factories


def overview(client):
    return client.get(reverse("dashboard:overview")).context


def test_subscription_counts_by_status(member_client, customer):
    for status in ["active", "active", "trialing", "past_due", "canceled"]:
        factories.make_subscription(customer, status=status)
    counts = {row["status"]: row["count"] for row in overview(member_client)["status_counts"]}
    assert counts == {"active": 2, "trialing": 1, "past_due": 1}


def test_mrr_normalises_prices_to_a_month(member_client, account, customer):
    monthly = factories.make_price(account, unit_amount=2000)
    yearly = factories.make_price(account, unit_amount=120000, interval=Interval.YEAR)
    quarterly = factories.make_price(account, unit_amount=9000, interval_count=3)
    factories.make_subscription(customer, price=monthly, quantity=3)  # 60.00
    factories.make_subscription(customer, price=yearly)  # 100.00
    factories.make_subscription(customer, price=quarterly, status=SubscriptionStatus.PAST_DUE)
    # Trials and canceled subscriptions bring in nothing.
    factories.make_subscription(customer, price=monthly, status=SubscriptionStatus.TRIALING)
    factories.make_subscription(customer, price=monthly, status=SubscriptionStatus.CANCELED)
    assert overview(member_client)["mrr"] == {"usd": 6000 + 10000 + 3000}


def test_mrr_is_kept_per_currency_and_weekly_prices_scale(member_client, account, customer):
    eur = factories.make_price(account, unit_amount=1000, currency="eur", interval=Interval.WEEK)
    jpy = factories.make_price(account, unit_amount=5000, currency="jpy")
    factories.make_subscription(customer, price=eur)
    factories.make_subscription(customer, price=jpy, quantity=2)
    # 10.00 EUR a week is 10 × 52 / 12 = 43.333… EUR a month, rounded once to cents.
    assert overview(member_client)["mrr"] == {"eur": 4333, "jpy": 10000}


def test_mrr_is_one_query(account, customer, django_assert_num_queries):
    from billing.models import SubscriptionItem

    for _ in range(5):
        factories.make_subscription(customer)
    with django_assert_num_queries(1):
        mrr_by_currency(SubscriptionItem.objects.filter(account=account, livemode=False))


def test_open_invoice_amount_due_per_currency(member_client, customer):
    factories.make_invoice(customer, amount=2000)
    factories.make_invoice(customer, amount=500)
    factories.make_invoice(customer, amount=700, currency="eur")
    factories.make_invoice(customer, amount=9999, status=InvoiceStatus.PAID)
    factories.make_invoice(customer, amount=9999, status=InvoiceStatus.DRAFT)
    rows = overview(member_client)["open_invoices"]
    assert [(r["currency"], r["amount"], r["count"]) for r in rows] == [
        ("eur", 700, 1),
        ("usd", 2500, 2),
    ]


def test_overview_shows_the_ten_most_recent_events(member_client, account):
    made = [factories.make_event(account) for _ in range(12)]
    shown = [e.pk for e in overview(member_client)["recent_events"]]
    assert shown == [e.pk for e in reversed(made)][:10]


def test_overview_renders_money_and_counts(member_client, customer):
    factories.make_subscription(customer)
    factories.make_invoice(customer, amount=123456)
    body = member_client.get(reverse("dashboard:overview")).content.decode()
    assert "$1,234.56" in body
    assert "$20.00" in body  # MRR of the default 20.00 price


# -- Detail pages ----------------------------------------------------------------------------


def test_customer_detail_shows_everything_about_the_customer(member_client, account):
    customer = factories.make_customer(
        account, balance=-500, currency="usd", metadata={"plan": "gold"}
    )
    objects = factories.make_dashboard_objects(customer)
    body = member_client.get(reverse("dashboard:customer_detail", args=[customer.pk])).content
    for key in ("subscription", "invoice", "event", "card"):
        assert objects[key].pk.encode() in body, key
    assert b"-$5.00" in body and b"credit" in body
    assert b"gold" in body
    assert b"\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2 4242" in body


def test_subscription_detail_shows_items_invoices_and_events(member_client, account, customer):
    subscription = factories.make_subscription(customer, quantity=2)
    invoice = factories.make_invoice(customer, subscription=subscription)
    event = factories.make_event(account, type="customer.subscription.created", obj=subscription)
    body = member_client.get(
        reverse("dashboard:subscription_detail", args=[subscription.pk])
    ).content.decode()
    assert "Pro plan" in body and "$40.00" in body
    assert invoice.pk in body and event.pk in body


def test_invoice_detail_shows_lines_payments_amounts_and_transitions(member_client, customer):
    finalized = timezone.now()
    invoice = factories.make_invoice(
        customer,
        amount=4200,
        status=InvoiceStatus.PAID,
        number="ACME-7",
        finalized_at=finalized,
        paid_at=finalized,
    )
    factories.make_payment_intent(
        invoice,
        status=PaymentIntentStatus.REQUIRES_PAYMENT_METHOD,
        last_payment_error={"code": "card_declined", "message": "Your card was declined."},
    )
    factories.make_payment_intent(invoice, status=PaymentIntentStatus.SUCCEEDED)
    response = member_client.get(reverse("dashboard:invoice_detail", args=[invoice.pk]))
    body = response.content.decode()
    assert "$42.00" in body and "ACME-7" in body
    assert "Your card was declined." in body
    assert [step["label"] for step in response.context["transitions"]] == [
        "Created",
        "Finalized",
        "Paid",
    ]


def test_test_clock_detail_lists_its_customers(member_client, account):
    clock = factories.make_test_clock(account, name="Year one")
    on_clock = factories.make_customer(account, email="clocked@x.test", test_clock=clock)
    off_clock = factories.make_customer(account, email="free@x.test")
    body = member_client.get(reverse("dashboard:test_clock_detail", args=[clock.pk])).content
    assert on_clock.pk.encode() in body
    assert off_clock.pk.encode() not in body


def test_event_detail_links_to_the_object(member_client, account, customer):
    event = factories.make_event(account, obj=customer)
    body = member_client.get(reverse("dashboard:event_detail", args=[event.pk])).content.decode()
    assert f'href="{reverse("dashboard:customer_detail", args=[customer.pk])}"' in body
