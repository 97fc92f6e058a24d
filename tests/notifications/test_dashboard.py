"""The dashboard pages: Settings → Emails with its preview, the Emails log, one email, Resend,
the customer page's emails, and account/mode isolation (SPEC R-MAIL-1, R-MAIL-9, R-CORE-3)."""

import pytest
from django.core import mail
from django.urls import reverse

from billing.choices import Role
from billing.middleware import SESSION_LIVEMODE
from notifications.choices import EmailKind, EmailStatus
from notifications.models import EmailLog, EmailSettings
from notifications.services import sending
from tests import factories

SETTINGS_URL = "/settings/emails/"


def _post_data(**overrides):
    data = {
        "payment_failed": "on",
        "trial_ending": "on",
        "payment_action_required": "on",
        "payment_action_reminders": "on",
        "payment_action_reminder_days": "3",
        "invoice_reminder_days": "7",
        "invoice_reminder_count": "3",
        "expiring_card": "on",
        "receipts": "on",
        "finalized_invoices": "on",
        "subscription_canceled": "on",
        "payment_link_destination": "hosted",
        "payment_link_url": "",
        "manage_link_destination": "hosted",
        "manage_link_url": "",
        "verified_domain": "acme.test",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _log(
    account,
    *,
    kind=EmailKind.RECEIPT,
    status=EmailStatus.SENT,
    customer=None,
    livemode=False,
    to="jenny@example.com",
    key=None,
    **fields,
):
    return EmailLog.objects.create(
        account=account,
        livemode=livemode,
        customer=customer,
        kind=kind,
        to=to,
        subject=f"{kind} subject",
        text_body="Hello Jenny",
        html_body="<!doctype html><p>Hello <b>Jenny</b><script>alert(1)</script></p>",
        status=status,
        dedup_key=key or f"{kind}:{customer.pk if customer else 'x'}:{EmailLog.objects.count()}",
        **fields,
    )


def switch_to_live(client):
    session = client.session
    session[SESSION_LIVEMODE] = True
    session.save()


def test_the_settings_url_is_in_the_notifications_namespace():
    assert reverse("notifications:settings") == SETTINGS_URL
    assert reverse("notifications:emails") == "/emails/"


def test_owners_see_the_settings_form_with_a_preview_of_every_email(member_client, account):
    # SPEC R-MAIL-1, R-MAIL-10
    account.branding_primary_color = "#123abc"
    account.save()
    response = member_client.get(SETTINGS_URL)
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="email-settings-form"' in content
    for kind in EmailKind.values:
        assert f'data-kind="{kind}"' in content
    # The previews are sandboxed documents carrying the branding.
    assert 'sandbox=""' in content
    assert "#123abc" in content
    # Each preview rides escaped inside srcdoc, never as live markup in the dashboard page.
    assert content.lower().count("<!doctype html>") == 1
    assert "&lt;!doctype html&gt;" in content
    assert 'name="verified_domain"' in content


def test_owners_save_the_settings(member_client, account):
    response = member_client.post(
        SETTINGS_URL, _post_data(upcoming_renewal="on", payment_failed=None)
    )
    assert response.status_code == 302
    saved = EmailSettings.objects.get(account=account, livemode=False)
    assert saved.upcoming_renewal is True
    assert saved.payment_failed is False
    assert saved.verified_domain == "acme.test"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"payment_link_destination": "custom"}, "payment_link_url"),
        ({"manage_link_destination": "custom"}, "manage_link_url"),
        ({"verified_domain": "https://acme.test"}, "verified_domain"),
        ({"payment_action_reminder_days": "0"}, "payment_action_reminder_days"),
        ({"invoice_reminder_days": "45"}, "invoice_reminder_days"),
        (
            {"payment_link_url": "not a url", "payment_link_destination": "custom"},
            "payment_link_url",
        ),
    ],
)
def test_settings_errors_are_shown_inline_naming_the_field(
    member_client, account, overrides, field
):
    response = member_client.post(SETTINGS_URL, _post_data(**overrides))
    assert response.status_code == 400
    content = response.content.decode()
    assert f'data-field="{field}"' in content
    assert not EmailSettings.objects.filter(account=account).exists()


def test_a_merchant_url_is_used_for_links_when_chosen(member_client, account):
    # SPEC R-MAIL-4, R-MAIL-7
    response = member_client.post(
        SETTINGS_URL,
        _post_data(
            payment_link_destination="custom",
            payment_link_url="https://acme.test/billing",
            manage_link_destination="custom",
            manage_link_url="https://acme.test/account",
        ),
    )
    assert response.status_code == 302
    page = member_client.get(SETTINGS_URL).content.decode()
    assert "https://acme.test/billing" in page and "https://acme.test/account" in page


def test_others_read_the_settings_but_cannot_change_them(client, account):
    user = factories.make_member(account, email="fin@acme.test", role=Role.FINANCE)
    client.force_login(user)
    page = client.get(SETTINGS_URL)
    assert page.status_code == 200
    assert b'id="email-settings-form"' not in page.content
    assert b'data-setting="payment_failed"' in page.content
    assert client.post(SETTINGS_URL, _post_data()).status_code == 403


def test_live_mode_has_its_own_settings_without_a_verified_domain(member_client, account):
    # SPEC R-MAIL-8 (test mode only), R-CORE-3
    switch_to_live(member_client)
    page = member_client.get(SETTINGS_URL).content.decode()
    assert 'name="verified_domain"' not in page
    assert member_client.post(SETTINGS_URL, _post_data(receipts=None)).status_code == 302
    assert EmailSettings.objects.get(account=account, livemode=True).receipts is False
    assert not EmailSettings.objects.filter(account=account, livemode=False).exists()


def test_the_emails_list_filters_by_kind_status_customer_and_date(member_client, account):
    # SPEC R-MAIL-9
    jenny = factories.make_customer(account, email="jenny@example.com")
    bob = factories.make_customer(account, email="bob@example.com")
    receipt = _log(account, customer=jenny)
    failed = _log(account, customer=bob, kind=EmailKind.PAYMENT_FAILED, status=EmailStatus.FAILED)
    suppressed = _log(
        account,
        customer=bob,
        kind=EmailKind.TRIAL_ENDING,
        status=EmailStatus.SUPPRESSED,
        reason="Test mode: not verified",
    )

    def listed(**params):
        response = member_client.get("/emails/", params)
        assert response.status_code == 200
        return {
            pk
            for pk in (receipt.pk, failed.pk, suppressed.pk)
            if f'data-email="{pk}"' in response.content.decode()
        }

    assert listed() == {receipt.pk, failed.pk, suppressed.pk}
    assert listed(kind="payment_failed") == {failed.pk}
    assert listed(status="suppressed") == {suppressed.pk}
    assert listed(customer="bob@") == {failed.pk, suppressed.pk}
    assert listed(customer=jenny.pk) == {receipt.pk}
    assert listed(created_from="2000-01-01", created_to="2000-01-02") == set()
    assert "Test mode: not verified" in member_client.get("/emails/").content.decode()


def test_the_emails_list_is_keyset_paginated(member_client, account, settings):
    settings.DASHBOARD_PAGE_SIZE = 2
    logs = [_log(account) for _ in range(3)]
    first = member_client.get("/emails/").content.decode()
    assert f'data-email="{logs[2].pk}"' in first and f'data-email="{logs[0].pk}"' not in first
    second = member_client.get("/emails/", {"after": logs[1].pk}).content.decode()
    assert f'data-email="{logs[0].pk}"' in second
    # A bad cursor shows the first page instead of failing.
    assert member_client.get("/emails/", {"after": "nonsense"}).status_code == 200


def test_an_email_shows_its_body_in_a_sandboxed_frame(member_client, account):
    # SPEC R-MAIL-9: rendered body viewable
    entry = _log(account)
    page = member_client.get(f"/emails/{entry.pk}/").content.decode()
    assert 'sandbox=""' in page
    # The HTML rides escaped inside srcdoc: never as live markup in the dashboard page.
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Hello Jenny" in page
    assert 'id="resend"' in page


def test_resend_from_the_log_sends_again(member_client, account, commit):
    # SPEC R-MAIL-9: Resend
    factories.make_member(account, email="support@acme.test", role=Role.SUPPORT)
    entry = _log(account, to="owner@acme.test")
    with commit():
        response = member_client.post(f"/emails/{entry.pk}/resend/")
    again = EmailLog.objects.get(resent_from=entry)
    assert response.status_code == 302 and response["Location"] == f"/emails/{again.pk}/"
    again.refresh_from_db()
    assert again.status == EmailStatus.SENT
    assert mail.outbox[0].to == ["owner@acme.test"]


def test_read_only_members_cannot_resend(read_only_client, account):
    entry = _log(account)
    page = read_only_client.get(f"/emails/{entry.pk}/").content.decode()
    assert 'id="resend"' not in page
    assert read_only_client.post(f"/emails/{entry.pk}/resend/").status_code == 403
    assert not EmailLog.objects.filter(resent_from=entry).exists()


def test_the_customer_page_shows_the_customers_recent_emails(member_client, account, customer):
    # SPEC R-MAIL-9: logged on the customer
    mine = _log(account, customer=customer)
    other = _log(account, customer=factories.make_customer(account, email="x@example.com"))
    page = member_client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="customer-emails"' in page
    assert f'data-email="{mine.pk}"' in page
    assert f'data-email="{other.pk}"' not in page


def test_another_accounts_and_the_other_modes_emails_stay_invisible(
    member_client, account, other_account
):
    # SPEC R-CORE-3
    foreign = _log(other_account, to="x@globex.test")
    live = _log(account, livemode=True)
    mine = _log(account)
    listing = member_client.get("/emails/").content.decode()
    assert f'data-email="{mine.pk}"' in listing
    assert f'data-email="{foreign.pk}"' not in listing
    assert f'data-email="{live.pk}"' not in listing
    for entry in (foreign, live):
        assert member_client.get(f"/emails/{entry.pk}/").status_code == 404
        assert member_client.post(f"/emails/{entry.pk}/resend/").status_code == 404
    switch_to_live(member_client)
    live_listing = member_client.get("/emails/").content.decode()
    assert f'data-email="{live.pk}"' in live_listing
    assert f'data-email="{mine.pk}"' not in live_listing


def test_other_accounts_settings_are_untouched(member_client, account, other_account):
    member_client.post(SETTINGS_URL, _post_data(receipts=None))
    assert not EmailSettings.objects.filter(account=other_account).exists()


def test_the_nav_links_the_emails_page(member_client):
    page = member_client.get("/").content.decode()
    assert 'href="/emails/"' in page


def test_the_admin_resends_selected_emails(admin_client, account, commit):
    entry = _log(account, to="jenny@example.com", livemode=True)
    with commit():
        response = admin_client.post(
            "/admin/notifications/emaillog/",
            {"action": "resend", "_selected_action": [entry.pk]},
        )
    assert response.status_code == 302
    assert EmailLog.objects.filter(resent_from=entry).count() == 1
    assert admin_client.get(f"/admin/notifications/emaillog/{entry.pk}/change/").status_code == 200
    assert admin_client.get("/admin/notifications/emailsettings/").status_code == 200
    assert len(mail.outbox) == 1


def test_resend_of_a_suppressed_email_is_suppressed_again(member_client, account, commit):
    # SPEC R-MAIL-8 applies to resends too
    entry = _log(account, to="nobody@elsewhere.test", status=EmailStatus.SUPPRESSED)
    with commit():
        member_client.post(f"/emails/{entry.pk}/resend/")
    again = EmailLog.objects.get(resent_from=entry)
    assert again.status == EmailStatus.SUPPRESSED
    assert mail.outbox == []
    assert sending.suppression_reason(account, False, "nobody@elsewhere.test")
