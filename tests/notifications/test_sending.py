"""Logging and delivery: test-mode restriction, de-duplication, retries, SMTP, purge."""

import email
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from billing.choices import Role
from billing.models import DueJob
from notifications import tasks
from notifications.choices import EmailKind, EmailStatus
from notifications.models import EmailLog
from notifications.services import emails as email_rules
from notifications.services import sending
from notifications.services.settings import update_email_settings
from tests import factories
from tests.notifications.backends import FlakyBackend
from tests.notifications.smtp import start_server


def _memo(account, commit, to="jenny@example.com", key="memo-1", livemode=False):
    with commit():
        return email_rules.send_team_memo(
            account=account,
            livemode=livemode,
            to=to,
            subject="Call Jenny",
            body="Her payment failed twice.",
            dedup_key=key,
        )


def test_test_mode_sends_to_the_verified_domain(account, verified, commit):
    # SPEC R-MAIL-8
    entry = _memo(account, commit, to="Jenny@Example.com")
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SENT
    assert mail.outbox[0].to == ["Jenny@Example.com"]


def test_test_mode_sends_to_active_team_members(account, owner, commit):
    # SPEC R-MAIL-8: owner@acme.test is a member; no verified domain is set
    entry = _memo(account, commit, to="owner@acme.test")
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SENT


def test_test_mode_suppresses_other_addresses_and_logs_why(account, verified, commit):
    # SPEC R-MAIL-8, R-MAIL-9: logged as not sent, with the reason
    entry = _memo(account, commit, to="someone@elsewhere.test")
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SUPPRESSED
    assert "verified domain (example.com)" in entry.reason
    assert entry.text_body  # the rendered body is logged all the same
    assert mail.outbox == []


def test_test_mode_suppresses_inactive_team_members(account, commit):
    # SPEC R-MAIL-8: only *active* team members
    user = factories.make_member(account, email="gone@acme.test", role=Role.SUPPORT)
    user.is_active = False
    user.save()
    entry = _memo(account, commit, to="gone@acme.test")
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SUPPRESSED
    assert "none is set" in entry.reason


def test_another_accounts_team_member_is_not_a_team_member_here(account, other_account, commit):
    # SPEC R-MAIL-8
    factories.make_member(other_account, email="boss@globex.test")
    entry = _memo(account, commit, to="boss@globex.test")
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SUPPRESSED


def test_live_mode_sends_to_anyone(account, commit):
    # SPEC R-MAIL-8 restricts test mode only
    entry = _memo(account, commit, to="someone@elsewhere.test", livemode=True)
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SENT


def test_a_customer_without_an_email_address_is_logged_not_sent(account, commit):
    # SPEC R-MAIL-9
    entry = _memo(account, commit, to="")
    assert entry.status == EmailStatus.SUPPRESSED
    assert entry.reason == "The customer has no email address."


def test_the_same_cause_gives_one_email(account, verified, commit):
    # One email per cause: the de-duplication key is unique in the log.
    first = _memo(account, commit, key="same")
    again = _memo(account, commit, key="same")
    assert first is not None and again is None
    assert EmailLog.objects.count() == 1
    assert len(mail.outbox) == 1


def test_a_retried_delivery_task_never_sends_twice(account, verified, commit):
    # The task claims the row (queued → sending) before sending and records `sent` after.
    entry = _memo(account, commit)
    assert len(mail.outbox) == 1
    assert tasks.deliver_email(entry.pk) == 0
    assert sending.deliver([entry.pk]) == (0, [])
    assert len(mail.outbox) == 1
    entry.refresh_from_db()
    assert entry.attempts == 1


def test_a_failed_send_is_recorded_and_retried_by_a_due_job(account, verified, commit, settings):
    settings.EMAIL_BACKEND = "tests.notifications.backends.FlakyBackend"
    FlakyBackend.failures_left = 1
    with pytest.raises(Exception, match="unexpectedly closed"):
        _memo(account, commit)
    entry = EmailLog.objects.get()
    assert entry.status == EmailStatus.FAILED
    assert "SMTPServerDisconnected" in entry.error
    job = DueJob.objects.get(kind=sending.RETRY_JOB, target_id=entry.pk, status="pending")
    assert job.test_clock_id is None
    from billing import timeline

    with commit():
        timeline.run(job.pk)
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SENT
    assert entry.attempts == 2
    assert len(mail.outbox) == 1


def test_a_send_that_keeps_failing_stops_after_the_last_attempt(
    account, verified, commit, settings
):
    settings.EMAIL_BACKEND = "tests.notifications.backends.FlakyBackend"
    FlakyBackend.failures_left = 100
    with pytest.raises(Exception):  # noqa: B017 — the backend's error, re-raised by the task
        _memo(account, commit)
    entry = EmailLog.objects.get()
    for _ in range(sending.MAX_ATTEMPTS - 1):
        with pytest.raises(Exception):  # noqa: B017
            tasks.deliver_email(entry.pk)
    entry.refresh_from_db()
    assert entry.attempts == sending.MAX_ATTEMPTS
    assert entry.status == EmailStatus.FAILED
    # No further retry is planned after the last attempt.
    assert DueJob.objects.filter(kind=sending.RETRY_JOB, status="pending").count() == 1
    FlakyBackend.failures_left = 0


def test_stale_sends_are_sent_again_once_then_marked_failed(account, verified, commit):
    # A crash between the server's acceptance and our record re-sends at most once.
    with commit():
        entry = sending.queue_email(
            EmailKind.TEAM_MEMO,
            account=account,
            livemode=False,
            to="jenny@example.com",
            dedup_key="stale",
            context={"memo_subject": "x", "memo_body": "y"},
        )
        # The worker that would send it "dies" right after claiming it.
        EmailLog.objects.filter(pk=entry.pk).update(
            status=EmailStatus.SENDING, claimed_at=timezone.now() - timedelta(minutes=11)
        )
    mail.outbox = []
    with commit():
        assert sending.recover_stale() == 1
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SENT and entry.recovered
    assert len(mail.outbox) == 1
    # Interrupted again after recovery: given up, never a third copy.
    EmailLog.objects.filter(pk=entry.pk).update(
        status=EmailStatus.SENDING, claimed_at=timezone.now() - timedelta(minutes=11)
    )
    with commit():
        sending.recover_stale()
    entry.refresh_from_db()
    assert entry.status == EmailStatus.FAILED
    assert "not sent again" in entry.error
    assert len(mail.outbox) == 1


def test_resend_makes_a_new_log_entry_and_sends_again(account, verified, commit):
    # SPEC R-MAIL-9: Resend from the log
    entry = _memo(account, commit)
    with commit():
        again = sending.resend(entry)
    again.refresh_from_db()
    assert again.pk != entry.pk and again.resent_from == entry
    assert again.status == EmailStatus.SENT
    assert again.subject == entry.subject
    assert len(mail.outbox) == 2


def test_entries_older_than_30_days_are_purged(account, verified, commit):
    # SPEC R-MAIL-9
    old = _memo(account, commit, key="old")
    recent = _memo(account, commit, key="recent")
    EmailLog.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=31))
    EmailLog.objects.filter(pk=recent.pk).update(created=timezone.now() - timedelta(days=29))
    assert tasks.purge_email_log() == 1
    assert list(EmailLog.objects.values_list("pk", flat=True)) == [recent.pk]


def test_the_purge_and_recovery_schedules_exist(db):
    # SPEC R-MAIL-9: a daily purge, created by the app's migration
    from django_q.models import Schedule

    names = set(Schedule.objects.values_list("func", flat=True))
    assert {
        "notifications.tasks.purge_email_log",
        "notifications.tasks.recover_stale_emails",
    } <= names


def test_emails_carry_the_accounts_branding(account, verified, commit):
    # SPEC R-MAIL-10
    account.branding_display_name = "Acme Billing"
    account.branding_primary_color = "#ff5500"
    account.branding_logo_url = "https://acme.test/logo.png"
    account.email = "help@acme.test"
    account.save()
    entry = _memo(account, commit)
    assert "#ff5500" in entry.html_body
    assert 'src="https://acme.test/logo.png"' in entry.html_body
    message = mail.outbox[0]
    assert message.from_email.startswith("Acme Billing <")
    assert message.reply_to == ["help@acme.test"]
    assert message.alternatives[0][1] == "text/html"


def test_a_real_smtp_round_trip(account, verified, commit, settings):
    # Through Django's SMTP backend to a local aiosmtpd server.
    controller, collector = start_server()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = controller.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        entry = _memo(account, commit)
    finally:
        controller.stop()
    entry.refresh_from_db()
    assert entry.status == EmailStatus.SENT
    [(sender, recipients, raw)] = collector.messages
    assert recipients == ["jenny@example.com"]
    parsed = email.message_from_bytes(raw)
    assert parsed["Subject"] == "Call Jenny"
    assert parsed["X-Relance-Email-Id"] == entry.pk
    kinds = [part.get_content_type() for part in parsed.walk()]
    assert "text/plain" in kinds and "text/html" in kinds


def test_an_unreachable_smtp_server_fails_the_email_for_a_retry(
    account, verified, commit, settings
):
    from tests.notifications.smtp import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.EMAIL_TIMEOUT = 2
    with pytest.raises(OSError):
        _memo(account, commit)
    entry = EmailLog.objects.get()
    assert entry.status == EmailStatus.FAILED
    assert DueJob.objects.filter(kind=sending.RETRY_JOB, target_id=entry.pk).exists()


def test_cancellation_confirmation_can_go_to_any_recipient(account, verified, customer, commit):
    # For automations (#7): the render helper and send function with an arbitrary recipient
    sub = factories.make_subscription(customer, cancel_at_period_end=True)
    with commit():
        entry = email_rules.send_cancellation_confirmation(
            sub,
            dedup_key="auto-run-1-step-2",
            to="ops@example.com",
            survey_url="https://acme.test/why",
        )
    entry.refresh_from_db()
    assert entry.kind == EmailKind.CANCELLATION_CONFIRMATION
    assert entry.to == "ops@example.com"
    assert entry.status == EmailStatus.SENT
    assert "will end" in entry.subject
    assert "Tell us why you are leaving: https://acme.test/why" in entry.text_body
    assert 'href="https://acme.test/why"' in entry.html_body


def test_every_kind_renders_its_three_templates(account):
    from notifications.previews import sample_context
    from notifications.services.rendering import render_email
    from notifications.services.settings import email_settings

    current = email_settings(account, False)
    for kind in EmailKind.values:
        rendered = render_email(kind, sample_context(kind, account, current), account=account)
        assert rendered.subject and "\n" not in rendered.subject
        assert "{{" not in rendered.text and "&amp;" not in rendered.text
        assert rendered.html.startswith("<!doctype html>")


def test_an_unknown_kind_is_refused(account):
    from notifications.services.rendering import render_email

    with pytest.raises(ValueError, match="unknown email kind"):
        render_email("newsletter", {}, account=account)


def test_settings_turned_off_send_nothing(account, verified, customer, commit):
    update_email_settings(account, livemode=False, subscription_canceled=False)
    sub = factories.make_subscription(customer)
    event = factories.make_event(account, type="customer.subscription.deleted", obj=sub)
    assert email_rules.subscription_canceled(event) is None
    assert EmailLog.objects.count() == 0
