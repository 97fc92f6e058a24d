"""Customer emails sent by the engine's events and due jobs, driven through test clocks."""

from datetime import UTC, datetime, timedelta

from django.core import mail

from billing.choices import CollectionMethod, InvoiceStatus, SubscriptionStatus
from billing.models import DueJob
from billing.services import subscriptions as subs
from notifications.choices import EmailKind, EmailStatus
from notifications.services.settings import update_email_settings
from tests import factories
from tests.notifications.conftest import START, emails


def _subscribe(commit, customer, price, **options):
    with commit():
        sub = subs.create_subscription(customer, items=[{"price": price}], **options)
    return sub


def test_trial_reminder_goes_seven_days_before_the_trial_ends(
    verified, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-2
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price, trial_period_days=14)
    assert emails(EmailKind.TRIAL_ENDING) == []
    advance(clock, days=6, hours=23)
    assert emails(EmailKind.TRIAL_ENDING) == []
    advance(clock, hours=2)
    [email] = emails(EmailKind.TRIAL_ENDING)
    assert email.status == EmailStatus.SENT
    assert email.object_id == sub.pk
    assert "January 29, 2026" in email.subject
    [message] = [m for m in mail.outbox if m.subject == email.subject]
    assert message.to == ["jenny@example.com"]
    assert "https://billing.acme.test/pay/" in message.body


def test_trial_reminder_goes_at_trial_start_when_the_trial_is_shorter_than_seven_days(
    verified, clock, price, make_clock_customer, commit
):
    # SPEC R-MAIL-2
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price, trial_period_days=3)
    [email] = emails(EmailKind.TRIAL_ENDING)
    assert email.event.type == "customer.subscription.created"
    assert email.object_id == sub.pk
    assert "January 18, 2026" in email.subject


def test_trial_reminder_goes_again_when_the_trial_is_extended(
    verified, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-2: "again when a trial is renewed"
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price, trial_period_days=5)
    assert len(emails(EmailKind.TRIAL_ENDING)) == 1
    with commit():
        subs.update_subscription(sub, trial_end=START + timedelta(days=30))
    assert len(emails(EmailKind.TRIAL_ENDING)) == 1
    advance(clock, days=23, hours=1)
    first, second = emails(EmailKind.TRIAL_ENDING)
    assert "February 14, 2026" in second.subject


def _emit_upcoming(commit, sub):
    """`invoice.upcoming` for a trialing subscription, as Stripe sends it before a trial ends.
    (The engine schedules it for renewal periods only; this drives the email rule directly.)"""
    from billing import events

    sub.refresh_from_db()
    with commit():
        events.emit("invoice.upcoming", sub, payload=subs.preview_next_invoice(sub))


def test_only_the_trial_reminder_goes_when_trial_and_renewal_reminders_apply(
    verified, account, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-2: during a trial, only the trial reminder
    update_email_settings(account, livemode=False, upcoming_renewal=True)
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price, trial_period_days=14)
    advance(clock, days=8)
    _emit_upcoming(commit, sub)
    assert len(emails(EmailKind.TRIAL_ENDING)) == 1
    assert emails(EmailKind.UPCOMING_RENEWAL) == []


def test_renewal_reminder_is_sent_during_a_trial_when_trial_reminders_are_off(
    verified, account, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-2 (the precedence applies only when both are on)
    update_email_settings(account, livemode=False, upcoming_renewal=True, trial_ending=False)
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price, trial_period_days=14)
    advance(clock, days=8)
    _emit_upcoming(commit, sub)
    assert emails(EmailKind.TRIAL_ENDING) == []
    [email] = emails(EmailKind.UPCOMING_RENEWAL)
    assert "January 29, 2026" in email.subject


def test_renewal_reminder_follows_the_upcoming_renewal_days(
    verified, account, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-INV-6, R-MAIL-1: N days before the renewal (N = upcoming renewal events, 7)
    update_email_settings(account, livemode=False, upcoming_renewal=True)
    customer = make_clock_customer()
    _subscribe(commit, customer, price)
    advance(clock, days=23, hours=23)
    assert emails(EmailKind.UPCOMING_RENEWAL) == []
    advance(clock, hours=2)
    [email] = emails(EmailKind.UPCOMING_RENEWAL)
    assert email.event.type == "invoice.upcoming"
    assert "February 15, 2026" in email.subject


def test_renewal_reminder_states_the_date_in_the_customers_time_zone(
    verified, account, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-3, R-INV-6: renews 2026-02-15 02:00 UTC, which is February 14 in Los Angeles.
    from billing.services.test_clocks import create_test_clock

    update_email_settings(account, livemode=False, upcoming_renewal=True)
    clock = create_test_clock(account, frozen_time=datetime(2026, 1, 15, 2, 0, tzinfo=UTC))
    from billing.services.customers import add_card, create_customer

    with commit():
        customer = create_customer(
            account,
            livemode=False,
            email="jenny@example.com",
            test_clock=clock,
            timezone="America/Los_Angeles",
        )
        add_card(
            customer,
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    _subscribe(commit, customer, price)
    advance(clock, days=24)
    [email] = emails(EmailKind.UPCOMING_RENEWAL)
    assert "February 14, 2026" in email.subject
    assert "$30.00" in email.text_body


def test_renewal_reminder_falls_back_to_the_accounts_time_zone_then_utc(
    verified, account, price, commit, advance
):
    # SPEC R-MAIL-3
    from billing.services.customers import add_card, create_customer
    from billing.services.test_clocks import create_test_clock

    account.timezone = "Asia/Tokyo"
    account.save()
    update_email_settings(account, livemode=False, upcoming_renewal=True)
    clock = create_test_clock(account, frozen_time=datetime(2026, 1, 15, 20, 0, tzinfo=UTC))
    with commit():
        customer = create_customer(
            account, livemode=False, email="jenny@example.com", test_clock=clock
        )
        add_card(
            customer,
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    _subscribe(commit, customer, price)
    advance(clock, days=24)
    [email] = emails(EmailKind.UPCOMING_RENEWAL)
    # 2026-02-15 20:00 UTC is February 16 in Tokyo.
    assert "February 16, 2026" in email.subject


def test_payment_failed_email_links_to_the_payment_update_page(
    verified, clock, price, make_clock_customer, commit
):
    # SPEC R-MAIL-1, R-MAIL-4
    customer = make_clock_customer(card="4000000000000341")
    sub = _subscribe(commit, customer, price)
    [email] = emails(EmailKind.PAYMENT_FAILED)
    assert email.event.type == "invoice.payment_failed"
    assert email.object_id == sub.latest_invoice_id
    assert "$30.00" in email.text_body
    assert "https://billing.acme.test/pay/" in email.text_body
    assert "https://billing.acme.test/manage/" in email.text_body


def test_each_failed_retry_sends_its_own_payment_failed_email(
    verified, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1: after each failed payment
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price)
    from billing.services.customers import add_card

    with commit():
        add_card(
            customer,
            card={"number": "4000000000000341", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    advance(clock, days=31, hours=2)
    assert len(emails(EmailKind.PAYMENT_FAILED)) == 1
    advance(clock, days=1, hours=1)
    assert len(emails(EmailKind.PAYMENT_FAILED)) == 2
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE


def test_no_payment_failed_email_when_turned_off(
    verified, account, clock, price, make_clock_customer, commit
):
    # SPEC R-MAIL-1
    update_email_settings(account, livemode=False, payment_failed=False)
    customer = make_clock_customer(card="4000000000000341")
    _subscribe(commit, customer, price)
    assert emails(EmailKind.PAYMENT_FAILED) == []


def test_receipt_goes_when_an_invoice_is_paid_but_not_for_a_zero_invoice(
    verified, clock, price, make_clock_customer, commit
):
    # SPEC R-MAIL-9 (paid-invoice receipts)
    customer = make_clock_customer()
    paid = _subscribe(commit, customer, price)
    [email] = emails(EmailKind.RECEIPT)
    assert email.object_id == paid.latest_invoice_id
    assert "$30.00" in email.subject or "$30.00" in email.text_body
    _subscribe(commit, customer, price, trial_period_days=30)
    assert len(emails(EmailKind.RECEIPT)) == 1


def test_3ds_email_then_reminders_until_the_payment_is_confirmed(
    verified, account, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1, R-INV-5: confirmation needed, then reminders every N days
    update_email_settings(account, livemode=False, payment_action_reminder_days=1)
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price)
    from billing.services.customers import add_card

    with commit():
        add_card(
            customer,
            card={"number": "4000002500003155", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    advance(clock, days=31, hours=2)
    sub.refresh_from_db()
    invoice = sub.latest_invoice
    first = emails(EmailKind.PAYMENT_ACTION_REQUIRED)
    assert len(first) == 1
    assert first[0].object_id == invoice.pk
    assert "https://billing.acme.test/pay/" in first[0].text_body
    advance(clock, hours=12)
    assert len(emails(EmailKind.PAYMENT_ACTION_REQUIRED)) == 1
    advance(clock, hours=13)
    reminders = emails(EmailKind.PAYMENT_ACTION_REQUIRED)
    assert len(reminders) >= 2
    assert reminders[-1].subject.startswith("Reminder:")
    # Paid: no more reminders.
    from billing.services import invoices as invoicing

    invoice.refresh_from_db()
    if invoice.status == InvoiceStatus.OPEN:
        with commit():
            invoicing.confirm_payment_intent(invoice.payment_intent)
    count = len(emails(EmailKind.PAYMENT_ACTION_REQUIRED))
    advance(clock, days=3)
    assert len(emails(EmailKind.PAYMENT_ACTION_REQUIRED)) == count


def test_send_invoice_invoices_are_emailed_when_finalized_without_a_payment_link(
    verified, clock, price, make_clock_customer, commit
):
    # SPEC R-MAIL-4: no hosted link for send_invoice; R-MAIL-9: finalized invoices
    customer = make_clock_customer(card=None)
    sub = _subscribe(
        commit, customer, price, collection_method=CollectionMethod.SEND_INVOICE, days_until_due=14
    )
    [email] = emails(EmailKind.INVOICE_FINALIZED)
    assert email.object_id == sub.latest_invoice_id
    assert "/pay/" not in email.text_body
    assert "January 29, 2026" in email.text_body


def test_unpaid_send_invoice_reminders_at_the_configured_frequency(
    verified, account, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1: unpaid recurring invoice reminders (send_invoice)
    update_email_settings(
        account,
        livemode=False,
        invoice_reminders=True,
        invoice_reminder_days=3,
        invoice_reminder_count=2,
    )
    customer = make_clock_customer(card=None)
    sub = _subscribe(
        commit, customer, price, collection_method=CollectionMethod.SEND_INVOICE, days_until_due=7
    )
    advance(clock, days=9)
    assert emails(EmailKind.INVOICE_REMINDER) == []
    advance(clock, days=2)
    [first] = emails(EmailKind.INVOICE_REMINDER)
    assert first.object_id == sub.latest_invoice_id
    assert "/pay/" not in first.text_body
    advance(clock, days=3)
    assert len(emails(EmailKind.INVOICE_REMINDER)) == 2
    advance(clock, days=10)
    assert len(emails(EmailKind.INVOICE_REMINDER)) == 2


def test_no_invoice_reminder_once_the_invoice_is_paid(
    verified, account, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1: the due job re-checks the invoice is still open
    from billing.services import invoices as invoicing

    update_email_settings(account, livemode=False, invoice_reminders=True)
    customer = make_clock_customer(card=None)
    sub = _subscribe(
        commit, customer, price, collection_method=CollectionMethod.SEND_INVOICE, days_until_due=7
    )
    with commit():
        invoicing.mark_uncollectible(sub.latest_invoice)
    advance(clock, days=20)
    assert emails(EmailKind.INVOICE_REMINDER) == []


def test_canceled_subscription_email(verified, clock, price, make_clock_customer, commit):
    # SPEC R-MAIL-9: subscriptions canceled
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price)
    with commit():
        subs.cancel_subscription(sub)
    [email] = emails(EmailKind.SUBSCRIPTION_CANCELED)
    assert email.object_id == sub.pk
    assert email.event.type == "customer.subscription.deleted"


def test_an_on_behalf_of_subscription_s_emails_wear_the_connected_account_s_brand(
    verified, account, clock, price, make_clock_customer, commit
):
    # SPEC R-CON-6, R-MAIL-10: the connected account is the merchant the customer deals with.
    shop = factories.make_connected_account(account, name="Corner Shop")
    shop.branding_display_name = "Corner Shop"
    shop.branding_primary_color = "#123456"
    shop.save()
    customer = make_clock_customer()
    sub = _subscribe(commit, customer, price, on_behalf_of=shop.pk)
    with commit():
        subs.cancel_subscription(sub)
    [email] = emails(EmailKind.SUBSCRIPTION_CANCELED)
    assert "Corner Shop" in email.html_body and "#123456" in email.html_body
    assert email.account_id == account.pk


def test_expiring_card_reminder_one_month_before_expiry(
    verified, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1: expiring card, one month before (card good through the end of April 2026)
    customer = make_clock_customer(exp=(4, 2026))
    _subscribe(commit, customer, price)
    job = DueJob.objects.get(kind="email_expiring_card", status="pending")
    assert job.due_at == datetime(2026, 4, 1, tzinfo=UTC)
    advance(clock, days=45)  # March 1
    assert emails(EmailKind.EXPIRING_CARD) == []
    advance(clock, days=32)  # April 2
    [email] = emails(EmailKind.EXPIRING_CARD)
    assert "4242" in email.subject
    assert "https://billing.acme.test/pay/" in email.text_body


def test_no_expiring_card_reminder_for_a_card_replaced_before(
    verified, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1: the due job re-checks the card is still the one charged
    from billing.services.customers import add_card

    customer = make_clock_customer(exp=(4, 2026))
    _subscribe(commit, customer, price)
    with commit():
        add_card(
            customer,
            card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            set_default=True,
        )
    advance(clock, days=80)
    assert emails(EmailKind.EXPIRING_CARD) == []


def test_making_an_attached_card_the_default_plans_its_expiry_reminder(
    verified, clock, price, make_clock_customer, commit, advance
):
    # SPEC R-MAIL-1: scheduled when a card is set default (`customer.updated`)
    from billing.services.customers import set_default_payment_method
    from tests import factories

    customer = make_clock_customer()
    _subscribe(commit, customer, price)
    # A card already attached (no event), then made the default.
    card = factories.make_card(customer, card_exp_month=3, card_exp_year=2026)
    with commit():
        set_default_payment_method(customer, payment_method=card)
    job = DueJob.objects.get(kind="email_expiring_card", target_id=card.pk, status="pending")
    assert job.due_at == datetime(2026, 3, 1, tzinfo=UTC)
    advance(clock, days=46)  # March 2
    [email] = emails(EmailKind.EXPIRING_CARD)
    assert email.object_id == card.pk
