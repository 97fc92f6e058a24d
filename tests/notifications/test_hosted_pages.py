"""The hosted pages: /pay/<token>/ (update the card, pay what is due, 3-D Secure) and
/manage/<token>/ (cancel at period end, undo, resume), their security, and the dashboard's
"Deactivate links" (SPEC R-MAIL-5, R-MAIL-6, R-MAIL-7, R-MAIL-10, R-TRIAL-8, R-CON-6)."""

import logging
import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from billing.choices import (
    InvoiceStatus,
    MissingPaymentMethodBehavior,
    PaymentIntentStatus,
    Role,
    SubscriptionStatus,
)
from billing.models import Invoice, PaymentMethod
from billing.services import subscriptions as subs
from billing.services.customers import add_card
from notifications.choices import EmailKind, LinkPurpose
from notifications.models import HostedLink
from notifications.services.links import deactivate_links, issue_link, resolve_link
from tests import factories
from tests.notifications.conftest import emails

GOOD = "4242 4242 4242 4242"
DECLINED = "4000000000000002"
THREE_D_SECURE = "4000002500003155"
FAILING = "4000000000000341"
HOSTED_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store, max-age=0",
    "X-Frame-Options": "DENY",
}


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Rate-limit counters live in the cache: every test starts from zero."""
    cache.clear()
    yield
    cache.clear()


def _path(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


def _card(number=GOOD, exp_month="12", exp_year="2030", cvc="123"):
    return {"number": number, "exp_month": exp_month, "exp_year": exp_year, "cvc": cvc}


@pytest.fixture
def past_due(verified, clock, price, make_clock_customer, commit, advance):
    """A subscription whose renewal failed on a card that attaches but never pays."""
    customer = make_clock_customer()
    with commit():
        sub = subs.create_subscription(customer, items=[{"price": price}])
    with commit():
        add_card(customer, card=_card(FAILING), set_default=True)
    advance(clock, days=31, hours=2)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAST_DUE
    return sub


@pytest.fixture
def pay_path(past_due):
    """The payment-update link of the payment-failed email."""
    email = emails(EmailKind.PAYMENT_FAILED)[-1]
    return _path(re.search(r"https://billing\.acme\.test/pay/[\w-]+/", email.text_body).group())


def _open(sub):
    return list(Invoice.objects.filter(subscription=sub, status=InvoiceStatus.OPEN))


def _link_path(sub, purpose=LinkPurpose.PAYMENT_UPDATE, **options):
    _, url = issue_link(sub, purpose, **options)
    return _path(url)


# ---- /pay/: the page ------------------------------------------------------------------


def test_pay_page_shows_branding_subscription_and_amount_due(client, account, past_due, pay_path):
    # SPEC R-MAIL-5, R-MAIL-10
    account.branding_display_name = "Acme Billing"
    account.branding_primary_color = "#ff5500"
    account.branding_logo_url = "https://cdn.acme.test/logo.png"
    account.save()
    response = client.get(pay_path)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Billing" in html
    assert "--brand: #ff5500" in html
    assert 'src="https://cdn.acme.test/logo.png"' in html
    assert past_due.items.get().price.product.name in html
    assert 'data-status="past_due"' in html
    assert "$30.00 is due" in html
    assert "dashboard" not in html.lower()
    for name, value in HOSTED_HEADERS.items():
        assert response[name] == value


def test_pay_page_shows_the_connected_accounts_branding_on_behalf_of(client, account, customer):
    # SPEC R-CON-6
    connected = factories.make_connected_account(account, branding_display_name="Shop & Co")
    sub = factories.make_subscription(customer, on_behalf_of=connected)
    response = client.get(_link_path(sub))
    assert "Shop &amp; Co" in response.content.decode()
    assert "Acme Inc." not in response.content.decode()


def test_good_card_pays_the_open_invoice_and_the_subscription_is_active_again(
    client, past_due, pay_path, commit
):
    # SPEC R-MAIL-5
    [invoice] = _open(past_due)
    with commit():
        response = client.post(pay_path, _card())
    assert response.status_code == 200
    assert b"Payment received" in response.content
    invoice.refresh_from_db()
    past_due.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert past_due.status == SubscriptionStatus.ACTIVE
    card = past_due.default_payment_method
    assert card.card_last4 == "4242" and card.customer_id == past_due.customer_id
    assert invoice.payment_intent.payment_method_id == card.pk
    assert emails(EmailKind.RECEIPT)[-1].object_id == invoice.pk


def test_declined_card_shows_the_error_and_is_not_kept(client, past_due, pay_path, commit):
    # SPEC R-MAIL-5, R-INV-10: the card is neither default nor kept; the customer's attempt
    # leaves the retry schedule alone (Stripe's attempt_count counts the schedule's attempts)
    [invoice] = _open(past_due)
    attempts, scheduled = invoice.attempt_count, invoice.next_payment_attempt
    cards = set(PaymentMethod.objects.filter(customer=past_due.customer_id))
    with commit():
        response = client.post(pay_path, _card(DECLINED))
    assert response.status_code == 402
    assert b"Your card was declined." in response.content
    assert b'id="payment-error"' in response.content
    invoice.refresh_from_db()
    past_due.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (attempts, scheduled)
    assert past_due.status == SubscriptionStatus.PAST_DUE
    assert past_due.default_payment_method_id is None
    assert set(PaymentMethod.objects.filter(customer=past_due.customer_id)) == cards


@pytest.mark.parametrize(
    ("card", "message"),
    [
        (_card("4242424242424241"), "Card number: Your card number is incorrect."),
        (_card(exp_year="2020"), "Expiration year: Your card&#x27;s expiration year is in"),
        (_card(exp_month="13"), "Expiration month: Ensure this value is less than or equal to 12."),
        (_card(cvc="12a"), "CVC: Your card&#x27;s security code is invalid."),
        (_card(number=""), "Card number: This field is required."),
    ],
)
def test_invalid_card_errors_name_the_field_and_nothing_is_written(
    client, past_due, pay_path, card, message
):
    # SPEC R-INV-10
    cards = PaymentMethod.objects.count()
    attempts = _open(past_due)[0].attempt_count
    response = client.post(pay_path, card)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert PaymentMethod.objects.count() == cards
    assert _open(past_due)[0].attempt_count == attempts


def test_card_needing_3d_secure_gets_the_confirmation_step_then_pays(
    client, past_due, pay_path, commit
):
    # SPEC R-INV-5, R-MAIL-5
    [invoice] = _open(past_due)
    with commit():
        response = client.post(pay_path, _card(THREE_D_SECURE))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Complete authentication" in html
    invoice.refresh_from_db()
    intent = invoice.payment_intent
    assert intent.status == PaymentIntentStatus.REQUIRES_ACTION
    assert f'value="{intent.pk}"' in html
    past_due.refresh_from_db()
    assert past_due.default_payment_method_id is None  # not before it has paid
    with commit():
        response = client.post(
            pay_path + "authenticate/", {"payment_intent": intent.pk, "outcome": "complete"}
        )
    assert response.status_code == 200
    assert b"Payment received" in response.content
    invoice.refresh_from_db()
    past_due.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    assert past_due.status == SubscriptionStatus.ACTIVE
    assert past_due.default_payment_method.card_last4 == "3155"


def test_failed_authentication_charges_nothing_and_drops_the_new_card(
    client, past_due, pay_path, commit
):
    # SPEC R-INV-5
    with commit():
        client.post(pay_path, _card(THREE_D_SECURE))
    [invoice] = _open(past_due)
    intent = invoice.payment_intent
    with commit():
        response = client.post(
            pay_path + "authenticate/", {"payment_intent": intent.pk, "outcome": "fail"}
        )
    assert response.status_code == 402
    assert b"Authentication failed" in response.content
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.OPEN
    assert not PaymentMethod.objects.filter(customer=past_due.customer_id, card_last4="3155")


def test_pending_3d_secure_payment_can_be_confirmed_from_the_email_link(
    verified, clock, price, make_clock_customer, commit, advance, client
):
    # SPEC R-MAIL-1 (payment confirmation email), R-INV-5: the customer's own card, confirmed
    customer = make_clock_customer(card=THREE_D_SECURE)
    with commit():
        sub = subs.create_subscription(customer, items=[{"price": price}])
    email = emails(EmailKind.PAYMENT_ACTION_REQUIRED)[-1]
    path = _path(re.search(r"https://billing\.acme\.test/pay/[\w-]+/", email.text_body).group())
    page = client.get(path)
    assert b"Confirm payment" in page.content
    step = client.get(path + "authenticate/")
    assert b"Complete authentication" in step.content
    intent = step.context["intent"]
    with commit():
        response = client.post(
            path + "authenticate/", {"payment_intent": intent.pk, "outcome": "complete"}
        )
    assert b"Payment received" in response.content
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    # The card that paid was already the customer's default: nothing to change.
    assert sub.default_payment_method_id is None


def test_without_open_invoices_the_new_card_is_used_at_the_next_attempt(client, customer):
    # SPEC R-MAIL-5
    sub = factories.make_subscription(customer)
    path = _link_path(sub)
    page = client.get(path)
    assert b"Nothing is due now" in page.content
    response = client.post(path, _card())
    assert response.status_code == 200
    assert b"will be used at the next payment attempt" in response.content
    sub.refresh_from_db()
    assert sub.default_payment_method.card_last4 == "4242"
    assert Invoice.objects.filter(subscription=sub).count() == 0


def test_trial_paused_without_a_card_restarts_with_one_and_the_link_is_then_used_up(
    verified, clock, price, make_clock_customer, commit, advance, client
):
    # Reference 001: a trial that ended without a payment method pauses the subscription; the
    # customer activates it on the hosted page and pays the first invoice. R-MAIL-6 (3).
    customer = make_clock_customer(card=None)
    with commit():
        sub = subs.create_subscription(
            customer,
            items=[{"price": price}],
            trial_period_days=7,
            missing_payment_method=MissingPaymentMethodBehavior.PAUSE,
        )
    path = _link_path(sub, email_kind=EmailKind.TRIAL_ENDING)
    advance(clock, days=8)
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.PAUSED
    assert b"Add a card to restart your subscription" in client.get(path).content
    with commit():
        response = client.post(path, _card())
    assert response.status_code == 200, response.content
    assert b"Payment received" in response.content
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    assert sub.latest_invoice.amount_paid == 3000
    # The trial is over and a payment method is there: the link has done its job.
    assert client.get(path).status_code == 404


# ---- invalid links --------------------------------------------------------------------


def _invalid_paths(customer):
    """One path per way a link stops working, plus a guessed one."""
    paths = {"guessed": "/pay/c2VjcmV0LXRva2VuLW5vdC1pc3N1ZWQtYnktdXMtZXZlcg/"}
    expired = factories.make_subscription(
        customer, start=timezone.now() - timedelta(days=40)
    )  # its period ended ten days ago
    paths["expired"] = _link_path(expired, now=timezone.now() - timedelta(days=11))
    deactivated = factories.make_subscription(customer)
    paths["deactivated"] = _link_path(deactivated)
    deactivate_links(subscription=deactivated, reason="test")
    canceled = factories.make_subscription(customer)
    paths["canceled"] = _link_path(canceled)
    canceled.status = SubscriptionStatus.CANCELED
    canceled.save()
    trialing = factories.make_subscription(
        customer,
        status=SubscriptionStatus.TRIALING,
        start=timezone.now() - timedelta(days=10),
        trial_end=timezone.now() - timedelta(days=1),
    )
    used = _link_path(trialing, now=timezone.now() - timedelta(days=5))
    trialing.default_payment_method = factories.make_card(customer)
    trialing.save()
    paths["used up"] = used
    manage = factories.make_subscription(customer)
    paths["other purpose"] = _link_path(manage, LinkPurpose.MANAGE).replace("/manage/", "/pay/")
    return paths


def test_every_invalid_link_gets_the_same_page_revealing_nothing(client, account, customer):
    # SPEC R-MAIL-5, R-MAIL-6
    paths = _invalid_paths(customer)
    pages = {}
    for why, path in paths.items():
        response = client.get(path)
        assert response.status_code == 404, why
        for name, value in HOSTED_HEADERS.items():
            assert response[name] == value, (why, name)
        pages[why] = response.content
        html = response.content.decode()
        for secret in (customer.email, customer.name, account.name, "Jenny"):
            assert secret not in html, (why, secret)
        assert "This link is no longer valid" in html
        # POSTs get the same answer (and write nothing).
        assert client.post(path, _card()).status_code == 404
    # Byte for byte the same page, but for the per-response CSP nonce.
    normalized = {re.sub(rb'nonce="[^"]*"', b"", page) for page in pages.values()}
    assert len(normalized) == 1
    assert PaymentMethod.objects.filter(card_last4="4242", customer=customer).count() == 1


def test_tokens_are_not_logged(client, customer, caplog):
    # The token is the credential: Django's "Not Found: <path>" warning must not carry it.
    caplog.set_level(logging.DEBUG)
    client.get("/pay/a-guessed-token-of-some-length/")
    path = _link_path(factories.make_subscription(customer))
    client.post(path, _card("4242424242424241"))
    assert "a-guessed-token" not in caplog.text
    assert path.split("/")[2] not in caplog.text


# ---- abuse: rate limits, CSRF ---------------------------------------------------------


def test_rate_limit_per_link(client, customer, settings):
    settings.RELANCE_HOSTED_LINK_LIMIT = (3, 600)
    path = _link_path(factories.make_subscription(customer))
    assert [client.get(path).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(path)
    assert response.status_code == 429
    assert b"Too many requests" in response.content
    assert response["Retry-After"]
    for name, value in HOSTED_HEADERS.items():
        assert response[name] == value
    # Another link is not affected.
    assert client.get(_link_path(factories.make_subscription(customer))).status_code == 200


def test_rate_limit_per_client_address_stops_guessing(db, client, settings):
    settings.RELANCE_HOSTED_ADDRESS_LIMIT = (5, 600)
    codes = [client.get(f"/pay/guess-{n}/").status_code for n in range(7)]
    assert codes == [404] * 5 + [429] * 2
    other = Client(REMOTE_ADDR="203.0.113.9")
    assert other.get("/pay/guess-x/").status_code == 404


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(db, settings):
    """Behind one proxy, clients are told apart by the address the proxy recorded, and what a
    client writes further left in X-Forwarded-For does not let it dodge its limit."""
    settings.RELANCE_HOSTED_ADDRESS_LIMIT = (2, 600)
    settings.RELANCE_TRUSTED_PROXIES = 1
    proxy = Client(REMOTE_ADDR="10.0.0.2")

    def guess(forwarded):
        return proxy.get("/pay/guess/", HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert [guess(f"{n}.1.1.1, 198.51.100.7") for n in range(3)] == [404, 404, 429]
    assert guess("198.51.100.8") == 404


def test_card_submissions_are_limited_per_link(client, customer, settings):
    settings.RELANCE_HOSTED_CARD_LIMIT = (2, 3600)
    path = _link_path(factories.make_subscription(customer))
    bad = _card("4242424242424241")
    assert [client.post(path, bad).status_code for _ in range(3)] == [400, 400, 429]


def test_forms_are_csrf_protected(customer):
    browser = Client(enforce_csrf_checks=True)
    sub = factories.make_subscription(customer)
    path = _link_path(sub)
    assert browser.post(path, _card()).status_code == 403
    page = browser.get(path)
    token = page.context["csrf_token"]
    response = browser.post(path, {**_card(), "csrfmiddlewaretoken": str(token)})
    assert response.status_code == 200
    sub.refresh_from_db()
    assert sub.default_payment_method is not None
    manage = _link_path(sub, LinkPurpose.MANAGE)
    refused = browser.post(manage, {"action": "cancel", "confirm": "on"})
    assert refused.status_code == 403
    assert b"Please try again" in refused.content
    for name, value in HOSTED_HEADERS.items():
        assert refused[name] == value
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end


def test_csrf_accepts_the_null_origin_no_referrer_makes_browsers_send(customer, caplog):
    # Referrer-Policy: no-referrer makes a browser post `Origin: null` and no Referer, over
    # HTTPS too; the token check still applies, and a foreign origin is still refused.
    browser = Client(enforce_csrf_checks=True)
    sub = factories.make_subscription(customer)
    path = _link_path(sub, LinkPurpose.MANAGE)
    token = str(browser.get(path).context["csrf_token"])
    form = {"action": "cancel", "confirm": "on", "csrfmiddlewaretoken": token}
    foreign = browser.post(path, form, HTTP_ORIGIN="https://evil.test", secure=True)
    assert foreign.status_code == 403
    assert path.split("/")[2] not in caplog.text
    response = browser.post(path, form, HTTP_ORIGIN="null", secure=True)
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.cancel_at_period_end


# ---- /manage/ -------------------------------------------------------------------------


def test_cancel_at_period_end_asks_for_confirmation_then_undo(client, customer):
    # SPEC R-MAIL-7, R-SUB-8
    sub = factories.make_subscription(customer)
    path = _link_path(sub, LinkPurpose.MANAGE)
    page = client.get(path)
    assert page.status_code == 200
    assert b"Cancel subscription" in page.content
    for name, value in HOSTED_HEADERS.items():
        assert page[name] == value
    asked = client.post(path, {"action": "cancel"})
    assert asked.status_code == 200
    assert b"Cancel your subscription?" in asked.content
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end
    done = client.post(path, {"action": "cancel", "confirm": "on"})
    assert done.status_code == 302
    assert done["Location"] == f"{path}?done=cancel"
    sub.refresh_from_db()
    assert sub.cancel_at_period_end
    assert sub.status == SubscriptionStatus.ACTIVE
    page = client.get(done["Location"])
    assert b"will end at the end of the current period" in page.content
    assert b"Don't cancel" in page.content
    client.post(path, {"action": "undo_cancel", "confirm": "on"})
    sub.refresh_from_db()
    assert not sub.cancel_at_period_end and sub.cancel_at is None


def test_action_not_available_is_refused(client, customer):
    sub = factories.make_subscription(customer)
    path = _link_path(sub, LinkPurpose.MANAGE)
    response = client.post(path, {"action": "resume", "confirm": "on"})
    assert response.status_code == 400
    assert b"not available" in response.content
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


@pytest.mark.parametrize("anchor", ["now", "unchanged"])
def test_resume_a_paused_subscription(client, customer, anchor):
    # SPEC R-TRIAL-8
    card = factories.make_card(customer)
    customer.invoice_settings_default_payment_method = card
    customer.save()
    start = timezone.now() - timedelta(days=10)
    sub = factories.make_subscription(
        customer, status=SubscriptionStatus.PAUSED, start=start, billing_cycle_anchor=start
    )
    path = _link_path(sub, LinkPurpose.MANAGE)
    assert b"Resume subscription" in client.get(path).content
    asked = client.post(path, {"action": "resume"})
    assert b"Resume your subscription?" in asked.content
    assert b'name="billing_cycle_anchor"' in asked.content
    done = client.post(path, {"action": "resume", "billing_cycle_anchor": anchor, "confirm": "on"})
    assert done["Location"].endswith("?done=resume")
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.latest_invoice.status == InvoiceStatus.PAID
    if anchor == "unchanged":
        assert sub.billing_cycle_anchor == start
    else:
        assert sub.billing_cycle_anchor > start


def test_resume_without_a_card_leads_to_the_payment_page(client, customer):
    # SPEC R-TRIAL-8: the subscription stays paused until the resume invoice is paid
    sub = factories.make_subscription(customer, status=SubscriptionStatus.PAUSED)
    path = _link_path(sub, LinkPurpose.MANAGE)
    done = client.post(path, {"action": "resume", "billing_cycle_anchor": "now", "confirm": "on"})
    assert done["Location"].endswith("?done=resume_pending")
    page = client.get(done["Location"])
    assert b"resumes once its invoice is paid" in page.content
    assert b"Pay or update payment method" in page.content
    to_pay = client.post(path + "pay/")
    assert to_pay.status_code == 302
    assert to_pay["Location"].startswith("/pay/")
    response = client.post(to_pay["Location"], _card())
    assert b"Payment received" in response.content
    sub.refresh_from_db()
    assert sub.status == SubscriptionStatus.ACTIVE


# ---- dashboard ------------------------------------------------------------------------


def test_dashboard_shows_active_links_and_deactivates_them(member_client, customer):
    sub = factories.make_subscription(customer)
    pay_path = _link_path(sub)
    _link_path(sub, LinkPurpose.MANAGE)
    url = f"/customers/{customer.pk}/"
    page = member_client.get(url)
    html = page.content.decode()
    assert 'data-active-links="2"' in html
    assert f"/customers/{customer.pk}/deactivate-links/" in html
    confirm = member_client.get(f"/customers/{customer.pk}/deactivate-links/")
    assert b"Deactivate this customer" in confirm.content
    done = member_client.post(f"/customers/{customer.pk}/deactivate-links/", follow=True)
    assert b"2 links deactivated" in done.content
    assert 'data-active-links="0"' in done.content.decode()
    assert set(HostedLink.objects.values_list("reason", flat=True)) == {
        "deactivated from the dashboard"
    }
    assert resolve_link(pay_path.split("/")[2]) is None
    assert Client().get(pay_path).status_code == 404


def test_only_owners_and_finance_deactivate_links(client, account, customer):
    support = factories.make_member(account, email="support@acme.test", role=Role.SUPPORT)
    client.force_login(support)
    _link_path(factories.make_subscription(customer))
    page = client.get(f"/customers/{customer.pk}/")
    assert b"deactivate-links" not in page.content
    assert client.post(f"/customers/{customer.pk}/deactivate-links/").status_code == 403
    assert HostedLink.objects.filter(deactivated_at__isnull=True).count() == 1


def test_another_accounts_customer_is_not_found(member_client, other_account):
    stranger = factories.make_customer(other_account)
    _link_path(factories.make_subscription(stranger))
    response = member_client.post(f"/customers/{stranger.pk}/deactivate-links/")
    assert response.status_code == 404
    assert HostedLink.objects.filter(deactivated_at__isnull=True).count() == 1


def test_a_method_the_page_does_not_take_gets_a_405_with_the_hosted_headers(client, customer):
    """The 405 of a hosted page is no exception to its headers (no referrer, no caching, no
    framing)."""
    path = _link_path(factories.make_subscription(customer))

    response = client.put(path)

    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    for name, value in HOSTED_HEADERS.items():
        assert response[name] == value
