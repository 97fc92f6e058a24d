"""The engine from the dashboard: subscription and invoice actions, test clocks, revenue recovery.

Every action goes through a service, confirms first (GET shows the confirmation), redirects back
with a message, and is for owners and finance only.
"""

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client
from django.urls import reverse

from billing.choices import InvoiceStatus, Role, SubscriptionStatus
from billing.choices import TestClockStatus as ClockStatus
from billing.middleware import SESSION_LIVEMODE
from billing.models import (
    Customer,
    DueJob,
    Event,
    Invoice,
    RecoverySettings,
    Subscription,
    TestClock,
)
from billing.services import invoices as invoicing
from billing.services import subscriptions as subs
from billing.services.customers import add_card, create_customer
from billing.services.test_clocks import advance_test_clock, create_test_clock
from tests import factories

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


# -- Fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def clock(account):
    return create_test_clock(account, frozen_time=START, name="Rehearsal")


@pytest.fixture
def price(account):
    return factories.make_price(account, unit_amount=3000)


@pytest.fixture
def advance(django_capture_on_commit_callbacks):
    """Advance a clock as a worker would once the request commits (django-q2 runs inline)."""

    def run(clock, **delta):
        clock.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
        clock.refresh_from_db()
        assert clock.status == ClockStatus.READY
        return clock

    return run


def client_for(account, role, email):
    client = Client()
    client.force_login(factories.make_member(account, email=email, role=role))
    return client


@pytest.fixture
def finance_client(account):
    return client_for(account, Role.FINANCE, "finance@acme.test")


@pytest.fixture
def support_client(account):
    return client_for(account, Role.SUPPORT, "support@acme.test")


def subscribe(account, clock, price, card=GOOD_CARD, email="jenny@example.com", **options):
    """A customer on `clock` with `card` as default, subscribed to `price` through the services."""
    customer = create_customer(account, livemode=False, email=email, test_clock=clock)
    if card:
        add_card(
            customer, card={"number": card, "exp_month": 12, "exp_year": 2030}, set_default=True
        )
    customer.refresh_from_db()
    return subs.create_subscription(customer, items=[{"price": price}], **options)


def decline_from_now_on(subscription):
    card = subscription.customer.invoice_settings_default_payment_method
    card.test_behavior = "generic_decline"
    card.save()


def failing_renewal(account, clock, price, advance):
    """A subscription whose renewal payment was declined: past due, its invoice open."""
    sub = subscribe(account, clock, price)
    decline_from_now_on(sub)
    advance(clock, days=31, hours=2)
    sub.refresh_from_db()
    return sub


def text(response) -> str:
    """The page as a reader sees it: entities decoded, non-breaking spaces as spaces."""
    return html.unescape(response.content.decode()).replace("\xa0", " ")


def sub_action(sub, action):
    return reverse("dashboard:subscription_action", args=[sub.pk, action])


def invoice_action(invoice, action):
    return reverse("dashboard:invoice_action", args=[invoice.pk, action])


def event_types(obj):
    return list(Event.objects.filter(object_id=obj.pk).values_list("type", flat=True))


# -- Subscription page ------------------------------------------------------------------------


def test_subscription_page_lists_next_due_jobs_in_words(member_client, account, clock, price):
    sub = subscribe(account, clock, price)
    body = text(member_client.get(reverse("dashboard:subscription_detail", args=[sub.pk])))
    assert "Next due" in body
    assert "Renewal" in body and "Upcoming renewal notice" in body
    assert "in 1 month" in body  # counted on the clock's time, not the wall clock


def test_trialing_subscription_shows_trial_jobs_and_its_actions(
    member_client, account, clock, price
):
    sub = subscribe(account, clock, price, trial_period_days=14)
    response = member_client.get(reverse("dashboard:subscription_detail", args=[sub.pk]))
    body = text(response)
    assert "Trial ends" in body and "Trial ending notice" in body
    assert [a.slug for a in response.context["actions"]] == [
        "end-trial",
        "pause-collection",
        "cancel-at-period-end",
        "cancel",
    ]
    assert sub_action(sub, "end-trial") in body


def test_read_only_members_see_no_actions(read_only_client, account, clock, price):
    sub = subscribe(account, clock, price)
    response = read_only_client.get(reverse("dashboard:subscription_detail", args=[sub.pk]))
    assert response.context["actions"] == []
    assert sub_action(sub, "cancel") not in text(response)


def test_an_action_asks_for_confirmation_first(member_client, account, clock, price):
    sub = subscribe(account, clock, price)
    response = member_client.get(sub_action(sub, "cancel"))
    assert response.status_code == 200
    body = text(response)
    assert "Cancel this subscription now?" in body and "cannot be undone" in body
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


def test_cancel_now_cancels_through_the_service(finance_client, account, clock, price):
    # SPEC R-SUB-6
    sub = subscribe(account, clock, price)
    response = finance_client.post(sub_action(sub, "cancel"), follow=True)
    assert response.redirect_chain == [
        (reverse("dashboard:subscription_detail", args=[sub.pk]), 302)
    ]
    assert "Subscription canceled." in text(response)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.CANCELED
    assert "customer.subscription.deleted" in event_types(sub)


def test_cancel_at_period_end_then_undo(member_client, account, clock, price):
    # SPEC R-SUB-8
    sub = subscribe(account, clock, price)
    response = member_client.post(sub_action(sub, "cancel-at-period-end"), follow=True)
    assert "will cancel at the end of its period (Feb 15, 2026, 12:00)" in text(response)
    sub.refresh_from_db()
    assert sub.cancel_at_period_end and sub.status == SubscriptionStatus.ACTIVE
    assert [a.slug for a in response.context["actions"]][:2] == ["pause-collection", "keep"]

    response = member_client.post(sub_action(sub, "keep"), follow=True)
    assert "will no longer cancel" in text(response)
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end and sub.cancel_at is None
    assert DueJob.objects.filter(target_id=sub.pk, kind="renewal", status="pending").exists()


def test_end_trial_now_starts_billing(member_client, account, clock, price):
    # SPEC R-TRIAL-2
    sub = subscribe(account, clock, price, trial_period_days=14)
    response = member_client.post(sub_action(sub, "end-trial"), follow=True)
    assert "Trial ended: the subscription is now active." in text(response)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.trial_end == START
    assert sub.latest_invoice.billing_reason == "subscription_cycle"


@pytest.mark.parametrize("anchor", ["now", "unchanged"])
def test_resume_a_paused_subscription_with_a_billing_cycle_choice(
    member_client, account, clock, price, advance, anchor
):
    # SPEC R-TRIAL-8, R-SUB-7
    sub = subscribe(
        account, clock, price, card=None, trial_period_days=3, missing_payment_method="pause"
    )
    advance(clock, days=5)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAUSED
    assert "billing_cycle_anchor" in text(member_client.get(sub_action(sub, "resume")))
    add_card(
        sub.customer,
        card={"number": GOOD_CARD, "exp_month": 12, "exp_year": 2030},
        set_default=True,
    )
    response = member_client.post(
        sub_action(sub, "resume"), {"billing_cycle_anchor": anchor}, follow=True
    )
    assert "Subscription resumed: it is now active." in text(response)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    assert "customer.subscription.resumed" in event_types(sub)


def test_resuming_an_active_subscription_shows_a_named_error_and_changes_nothing(
    member_client, account, clock, price
):
    # SPEC R-TRIAL-8
    sub = subscribe(account, clock, price)
    before = event_types(sub)
    response = member_client.post(
        sub_action(sub, "resume"), {"billing_cycle_anchor": "now"}, follow=True
    )
    assert "Subscription: Only a paused subscription can be resumed." in text(response)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert event_types(sub) == before


def test_an_invalid_choice_is_shown_on_the_confirmation_page(member_client, account, clock, price):
    sub = subscribe(account, clock, price)
    response = member_client.post(sub_action(sub, "resume"), {"billing_cycle_anchor": "later"})
    assert response.status_code == 400
    assert "Billing cycle: Select a valid choice." in text(response)


def test_pause_and_resume_payment_collection(member_client, account, clock, price):
    # SPEC R-SUB-7: pause_collection, not the paused status
    sub = subscribe(account, clock, price)
    response = member_client.post(
        sub_action(sub, "pause-collection"), {"behavior": "keep_as_draft"}, follow=True
    )
    assert "Payment collection paused" in text(response)
    sub.refresh_from_db()
    assert sub.pause_collection_behavior == "keep_as_draft"
    assert sub.status == SubscriptionStatus.ACTIVE
    member_client.post(sub_action(sub, "resume-collection"))
    sub.refresh_from_db()
    assert sub.pause_collection_behavior is None


def test_an_action_that_does_not_apply_is_not_offered(member_client, account, clock, price):
    sub = subscribe(account, clock, price)
    response = member_client.get(sub_action(sub, "end-trial"), follow=True)
    assert "does not apply to this subscription now" in text(response)


def test_an_unknown_action_is_a_404(member_client, account, clock, price):
    sub = subscribe(account, clock, price)
    assert member_client.post(sub_action(sub, "explode")).status_code == 404


# -- Invoice page -------------------------------------------------------------------------------


def test_invoice_page_shows_the_retry_and_its_actions(
    member_client, account, clock, price, advance
):
    # SPEC R-INV-9
    invoice = failing_renewal(account, clock, price, advance).latest_invoice
    response = member_client.get(reverse("dashboard:invoice_detail", args=[invoice.pk]))
    assert "Payment retry" in text(response)
    assert [a.slug for a in response.context["actions"]] == ["pay", "mark-uncollectible", "void"]


def test_retry_payment_now_pays_the_invoice(member_client, account, clock, price, advance):
    # SPEC R-SUB-3: paying the latest invoice makes a past-due subscription active again
    sub = failing_renewal(account, clock, price, advance)
    assert sub.status == SubscriptionStatus.PAST_DUE
    card = sub.customer.invoice_settings_default_payment_method
    card.test_behavior = "succeed"
    card.save()
    response = member_client.post(invoice_action(sub.latest_invoice, "pay"), follow=True)
    assert "Payment succeeded" in text(response)
    sub.refresh_from_db()
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    assert sub.status == SubscriptionStatus.ACTIVE


def test_a_declined_retry_shows_the_decline_message(member_client, account, clock, price, advance):
    # SPEC R-INV-10
    invoice = failing_renewal(account, clock, price, advance).latest_invoice
    response = member_client.post(invoice_action(invoice, "pay"), follow=True)
    assert "Payment failed: Your card was declined." in text(response)
    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN


def test_void_an_open_invoice(member_client, account, clock, price, advance):
    invoice = failing_renewal(account, clock, price, advance).latest_invoice
    response = member_client.post(invoice_action(invoice, "void"), follow=True)
    assert "Invoice voided." in text(response)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    assert not DueJob.objects.filter(target_id=invoice.pk, status="pending").exists()


def test_a_written_off_invoice_can_be_paid_or_voided_from_its_page(
    member_client, account, clock, price, advance
):
    # SPEC R-INV-8; Stripe's transitions: uncollectible → paid or void.
    invoice = failing_renewal(account, clock, price, advance).latest_invoice
    invoicing.mark_uncollectible(invoice)
    page = member_client.get(reverse("dashboard:invoice_detail", args=[invoice.pk]))
    assert [a.slug for a in page.context["actions"]] == ["pay", "void"]
    response = member_client.post(invoice_action(invoice, "void"), follow=True)
    assert "Invoice voided." in text(response)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.VOID
    last = Event.objects.filter(object_id=invoice.pk).order_by("-created", "-id")[:2]
    assert [event.type for event in last] == ["invoice.updated", "invoice.voided"]


def test_voiding_a_paid_invoice_shows_a_named_error_and_changes_nothing(
    member_client, account, clock, price
):
    invoice = subscribe(account, clock, price).latest_invoice
    assert invoice.status == InvoiceStatus.PAID
    response = member_client.post(invoice_action(invoice, "void"), follow=True)
    assert "Invoice: Only open or uncollectible invoices can be voided; this one is paid." in text(
        response
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert "invoice.voided" not in event_types(invoice)


def test_mark_uncollectible(member_client, account, clock, price, advance):
    # SPEC R-INV-8, R-SUB-3
    sub = failing_renewal(account, clock, price, advance)
    response = member_client.post(
        invoice_action(sub.latest_invoice, "mark-uncollectible"), follow=True
    )
    assert "Invoice marked uncollectible." in text(response)
    sub.refresh_from_db()
    assert sub.latest_invoice.status == InvoiceStatus.UNCOLLECTIBLE
    assert sub.status == SubscriptionStatus.ACTIVE


def test_a_written_off_invoice_can_still_be_charged(member_client, account, clock, price, advance):
    # SPEC R-INV-8: marking uncollectible stops the attempts; the merchant may still collect.
    sub = failing_renewal(account, clock, price, advance)
    invoice = sub.latest_invoice
    member_client.post(invoice_action(invoice, "mark-uncollectible"))
    card = sub.customer.invoice_settings_default_payment_method
    card.test_behavior = ""  # the customer's bank now accepts it
    card.save()
    page = text(member_client.get(reverse("dashboard:invoice_detail", args=[invoice.pk])))
    # Still payable, or voidable (Stripe's transitions); no longer markable uncollectible.
    assert "Retry payment now" in page and "Void invoice" in page
    assert "Mark uncollectible" not in page

    response = member_client.post(invoice_action(invoice, "pay"), follow=True)

    assert "Payment succeeded" in text(response)
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


def test_finalize_a_draft_now(member_client, account, clock, price, advance):
    # SPEC R-INV-2, R-INV-3
    sub = subscribe(account, clock, price)
    advance(clock, days=31, minutes=30)
    sub.refresh_from_db()
    draft = sub.latest_invoice
    assert draft.status == InvoiceStatus.DRAFT
    page = text(member_client.get(reverse("dashboard:invoice_detail", args=[draft.pk])))
    assert "Invoice finalization" in page
    response = member_client.post(invoice_action(draft, "finalize"), follow=True)
    assert "finalized and paid" in text(response)
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PAID and draft.number


# -- Who may act --------------------------------------------------------------------------------


@pytest.fixture
def targets(account, clock, price, advance):
    sub = failing_renewal(account, clock, price, advance)
    return {"subscription": sub, "invoice": sub.latest_invoice, "clock": clock}


def action_requests(targets):
    sub, invoice, clock = targets["subscription"], targets["invoice"], targets["clock"]
    return [
        (sub_action(sub, "cancel"), {}),
        (invoice_action(invoice, "void"), {}),
        (invoice_action(invoice, "pay"), {}),
        (reverse("dashboard:test_clock_advance", args=[clock.pk]), {"step": "day"}),
        (
            reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
            {"customer-email": "x@example.com"},
        ),
        (reverse("dashboard:test_clock_delete", args=[clock.pk]), {}),
        (reverse("dashboard:test_clocks"), {"frozen_time": "2026-01-01T00:00"}),
        (reverse("dashboard:recovery_settings"), {"retry_mode": "smart"}),
    ]


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.READ_ONLY])
def test_members_who_cannot_manage_billing_get_403_and_change_nothing(account, targets, role):
    client = client_for(account, role, f"{role}@acme.test")
    clocks = TestClock.objects.count()
    for url, data in action_requests(targets):
        assert client.post(url, data).status_code == 403, url
    assert client.get(sub_action(targets["subscription"], "cancel")).status_code == 403
    targets["subscription"].refresh_from_db()
    targets["invoice"].refresh_from_db()
    targets["clock"].refresh_from_db()
    assert targets["subscription"].status == SubscriptionStatus.PAST_DUE
    assert targets["invoice"].status == InvoiceStatus.OPEN
    assert targets["clock"].frozen_time == START + timedelta(days=31, hours=2)
    assert TestClock.objects.count() == clocks
    assert not RecoverySettings.objects.exists()


def test_actions_on_another_accounts_objects_are_404(member_client, other_account, price):
    foreign_clock = create_test_clock(other_account, frozen_time=START)
    foreign_price = factories.make_price(other_account)
    sub = subscribe(other_account, foreign_clock, foreign_price)
    for url, data in [
        (sub_action(sub, "cancel"), {}),
        (invoice_action(sub.latest_invoice, "void"), {}),
        (reverse("dashboard:test_clock_advance", args=[foreign_clock.pk]), {"step": "day"}),
        (
            reverse("dashboard:test_clock_add_customer", args=[foreign_clock.pk]),
            {"customer-email": "x@example.com"},
        ),
        (reverse("dashboard:test_clock_delete", args=[foreign_clock.pk]), {}),
    ]:
        assert member_client.post(url, data).status_code == 404, url
    assert member_client.get(sub_action(sub, "cancel")).status_code == 404
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


# -- Test clocks --------------------------------------------------------------------------------


def test_a_test_clock_flow_renews_the_subscription_after_one_month(
    member_client, account, price, django_capture_on_commit_callbacks
):
    # SPEC R-CLOCK-1, R-CLOCK-2
    response = member_client.post(
        reverse("dashboard:test_clocks"), {"name": "Flow", "frozen_time": "2026-01-15T12:00"}
    )
    clock = TestClock.objects.get(name="Flow")
    assert response["Location"] == reverse("dashboard:test_clock_detail", args=[clock.pk])
    assert clock.frozen_time == START and not clock.livemode

    response = member_client.post(
        reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
        {
            "customer-email": "flow@example.com",
            "customer-name": "Flo",
            "customer-card": GOOD_CARD,
            "customer-price": price.pk,
        },
        follow=True,
    )
    assert "Customer flow@example.com added; its subscription is active." in text(response)
    sub = Subscription.objects.get(customer__email="flow@example.com")
    assert sub.customer.test_clock == clock
    assert sub.latest_invoice.status == InvoiceStatus.PAID

    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("dashboard:test_clock_advance", args=[clock.pk]), {"step": "month"}
        )
    assert response.status_code == 302
    clock.refresh_from_db()
    assert clock.status == ClockStatus.READY
    assert clock.frozen_time == datetime(2026, 2, 15, 12, 0, tzinfo=UTC)
    sub.refresh_from_db()
    renewal = sub.latest_invoice
    assert renewal.billing_reason == "subscription_cycle"
    assert renewal.created == datetime(2026, 2, 15, 12, 0, tzinfo=UTC)

    page = text(member_client.get(reverse("dashboard:test_clock_detail", args=[clock.pk])))
    assert renewal.pk in page and "invoice.created" in page
    assert "Subscription cycle" in page


def test_a_declined_card_leaves_the_subscription_incomplete_then_expired(
    member_client, account, clock, price, django_capture_on_commit_callbacks
):
    # SPEC R-SUB-2, R-INV-10
    response = member_client.post(
        reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
        {
            "customer-email": "dec@example.com",
            "customer-card": DECLINED_CARD,
            "customer-price": price.pk,
        },
        follow=True,
    )
    assert "its subscription is incomplete" in text(response)
    sub = Subscription.objects.get(customer__email="dec@example.com")
    assert sub.status == SubscriptionStatus.INCOMPLETE
    with django_capture_on_commit_callbacks(execute=True):
        member_client.post(
            reverse("dashboard:test_clock_advance", args=[clock.pk]), {"step": "day"}
        )
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.INCOMPLETE_EXPIRED
    assert sub.latest_invoice.status == InvoiceStatus.VOID


def test_a_customer_with_a_trial_and_no_card(member_client, account, clock, price):
    # SPEC R-TRIAL-1
    member_client.post(
        reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
        {
            "customer-email": "trial@example.com",
            "customer-card": "",
            "customer-price": price.pk,
            "customer-trial_days": "7",
        },
    )
    sub = Subscription.objects.get(customer__email="trial@example.com")
    assert sub.status == SubscriptionStatus.TRIALING
    assert sub.trial_end == START + timedelta(days=7)
    assert sub.customer.invoice_settings_default_payment_method is None


def test_advancing_to_the_past_shows_a_named_error_and_changes_nothing(member_client, clock):
    response = member_client.post(
        reverse("dashboard:test_clock_advance", args=[clock.pk]), {"to": "2026-01-10T12:00"}
    )
    assert response.status_code == 400
    assert "Advance to: The new time must be later than the clock's time." in text(response)
    clock.refresh_from_db()
    assert clock.status == ClockStatus.READY and clock.frozen_time == START
    assert not Event.objects.filter(type="test_helpers.test_clock.advancing").exists()


def test_advancing_to_a_chosen_time(member_client, clock, django_capture_on_commit_callbacks):
    # SPEC R-CLOCK-2
    with django_capture_on_commit_callbacks(execute=True):
        response = member_client.post(
            reverse("dashboard:test_clock_advance", args=[clock.pk]), {"to": "2026-03-01T09:30"}
        )
    assert response.status_code == 302
    clock.refresh_from_db()
    assert clock.frozen_time == datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_bad_customer_input_is_shown_inline_and_creates_nothing(member_client, clock):
    response = member_client.post(
        reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
        {"customer-email": "not an email", "customer-trial_days": "5"},
    )
    assert response.status_code == 400
    body = text(response)
    assert "Email: Enter a valid email address." in body
    assert "Trial days: A trial needs a price to subscribe to." in body
    assert not Customer.objects.exists()


def test_no_customer_joins_a_clock_while_it_advances(member_client, clock, price):
    TestClock.objects.filter(pk=clock.pk).update(status=ClockStatus.ADVANCING)
    response = member_client.post(
        reverse("dashboard:test_clock_add_customer", args=[clock.pk]),
        {
            "customer-email": "late@example.com",
            "customer-card": GOOD_CARD,
            "customer-price": price.pk,
        },
    )
    assert response.status_code == 400
    assert "Test clock: The test clock is advancing" in text(response)
    assert not Customer.objects.exists() and not Subscription.objects.exists()


def test_an_advancing_clock_polls_then_reloads_when_ready(member_client, clock):
    TestClock.objects.filter(pk=clock.pk).update(
        status=ClockStatus.ADVANCING, advancing_to=START + timedelta(days=1)
    )
    url = reverse("dashboard:test_clock_detail", args=[clock.pk])
    page = text(member_client.get(url))
    assert 'hx-trigger="every 1s"' in page
    assert f'href="{url}">Refresh</a>' in page  # without JS
    poll = member_client.get(url, {"poll": "1"}, HTTP_HX_REQUEST="true")
    assert poll.status_code == 200 and "every 1s" in poll.content.decode()
    TestClock.objects.filter(pk=clock.pk).update(status=ClockStatus.READY, advancing_to=None)
    poll = member_client.get(url, {"poll": "1"}, HTTP_HX_REQUEST="true")
    assert poll["HX-Refresh"] == "true"


def test_the_new_clock_form_needs_a_time(member_client):
    response = member_client.post(reverse("dashboard:test_clocks"), {"name": "No time"})
    assert response.status_code == 400
    assert "Frozen time: This field is required." in text(response)
    assert not TestClock.objects.exists()


def test_test_clocks_are_test_mode_only(member_client):
    # SPEC R-CLOCK-1
    session = member_client.session
    session[SESSION_LIVEMODE] = True
    session.save()
    page = text(member_client.get(reverse("dashboard:test_clocks")))
    assert "Test clocks are a test-mode tool" in page and "New test clock" not in page
    response = member_client.post(
        reverse("dashboard:test_clocks"), {"frozen_time": "2026-01-15T12:00"}, follow=True
    )
    assert "Test clocks exist only in test mode." in text(response)
    assert not TestClock.objects.exists()


def test_delete_a_clock_after_confirming(member_client, account, clock, price):
    subscribe(account, clock, price)
    url = reverse("dashboard:test_clock_delete", args=[clock.pk])
    assert "Delete the test clock" in text(member_client.get(url))
    response = member_client.post(url, follow=True)
    assert "Test clock “Rehearsal” deleted." in text(response)
    assert not TestClock.objects.exists() and not Customer.objects.exists()


# -- Revenue recovery settings ----------------------------------------------------------------


def recovery_data(**overrides):
    data = {
        "retry_mode": "smart",
        "retry_days": "",
        "after_retries_subscription": "cancel",
        "after_retries_invoice": "open",
        "upcoming_renewal_days": "7",
    }
    data.update(overrides)
    return data


def test_settings_page_links_to_revenue_recovery(member_client):
    page = text(member_client.get(reverse("dashboard:settings")))
    assert reverse("dashboard:recovery_settings") in page


def test_recovery_page_shows_the_smart_schedule_in_words(member_client):
    # SPEC R-INV-9
    page = text(member_client.get(reverse("dashboard:recovery_settings")))
    assert "Up to 8 attempts within 2 weeks" in page
    assert "then retries 1, 3, 5, 7, 9, 11 and 13 days after it" in page


def test_saved_custom_retries_schedule_the_next_failed_payment(
    finance_client, account, clock, price, advance
):
    # SPEC R-INV-9, R-SUB-4
    response = finance_client.post(
        reverse("dashboard:recovery_settings"),
        recovery_data(retry_mode="custom", retry_days="4, 6", after_retries_subscription="unpaid"),
        follow=True,
    )
    assert "Revenue recovery settings saved." in text(response)
    saved = RecoverySettings.objects.get(account=account, livemode=False)
    assert saved.retry_days == [4, 6] and saved.retry_schedule == (4, 6)
    assert "3 attempts within 10 days" in text(response)

    sub = failing_renewal(account, clock, price, advance)
    invoice = sub.latest_invoice
    assert invoice.attempt_count == 1
    assert invoice.next_payment_attempt == invoice.finalized_at + timedelta(days=4)
    advance(clock, days=4)
    invoice.refresh_from_db()
    assert invoice.attempt_count == 2
    assert invoice.next_payment_attempt == invoice.finalized_at + timedelta(days=10)
    advance(clock, days=6)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.UNPAID


def test_settings_are_per_mode(member_client, account):
    # SPEC R-CORE-3
    member_client.post(
        reverse("dashboard:recovery_settings"), recovery_data(retry_mode="custom", retry_days="2")
    )
    assert RecoverySettings.objects.get().livemode is False


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (
            {"retry_mode": "custom", "retry_days": "0"},
            "Retry days: Each retry must come 1 to 30 days after the previous attempt.",
        ),
        (
            {"retry_mode": "custom", "retry_days": "31"},
            "Retry days: Each retry must come 1 to 30 days after the previous attempt.",
        ),
        (
            {"retry_mode": "custom", "retry_days": "1, 1, 1, 1, 1, 1, 1, 1"},
            "Retry days: At most 7 retries (8 attempts in all).",
        ),
        (
            {"retry_mode": "custom", "retry_days": "two"},
            "Retry days: Enter whole numbers of days, separated by commas.",
        ),
        (
            {"retry_mode": "custom", "retry_days": ""},
            "Retry days: Enter at least one retry, or choose smart retries instead.",
        ),
        (
            {"upcoming_renewal_days": "61"},
            "Upcoming renewal events: Ensure this value is less than or equal to 60.",
        ),
        ({"after_retries_subscription": "explode"}, "Then the subscription: Select a valid"),
    ],
)
def test_bad_recovery_settings_show_a_named_error_and_save_nothing(member_client, overrides, error):
    response = member_client.post(
        reverse("dashboard:recovery_settings"), recovery_data(**overrides)
    )
    assert response.status_code == 400
    assert error in text(response)
    assert not RecoverySettings.objects.exists()


def test_read_only_members_see_the_recovery_settings_but_cannot_edit(read_only_client):
    response = read_only_client.get(reverse("dashboard:recovery_settings"))
    assert response.status_code == 200
    body = text(response)
    assert "Only owners and finance members can change these settings." in body
    assert response.context["form"] is None


def test_invoice_counts_on_the_clock_page(member_client, account, clock, price):
    subscribe(account, clock, price)
    response = member_client.get(reverse("dashboard:test_clock_detail", args=[clock.pk]))
    assert response.context["invoice_count"] == Invoice.objects.count() == 1
