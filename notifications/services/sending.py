"""Logging and delivering customer emails (SPEC R-MAIL-8, R-MAIL-9).

An email is logged the moment it is decided — sent, failed or suppressed, with the rendered
body — and delivered by a django-q2 task after the deciding transaction commits. Nothing is sent
from a view or inside a domain transaction.

At most once per cause: `dedup_key` (kind, object, cycle) is unique in the log, so a cause
handled twice (an event dispatched again, a due job retried) finds its email already logged.
A delivery claims the row with a conditional update (`queued|failed → sending`, one winner),
sends, then records `sent`. A retried or duplicated task finds the row claimed or sent and does
nothing. The one window left is a crash after the server accepted the message and before
`sent` was recorded: the row stays `sending`, and `recover_stale` sends it once more (marking it
`recovered`); a second interruption marks it failed instead. We prefer one possible duplicate
to a silently lost payment-failed email; a duplicate needs a crash in that window.
"""

import logging
import uuid
from datetime import timedelta
from email.utils import formataddr, parseaddr
from types import SimpleNamespace

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing import ids, timeline
from billing.models import Membership
from notifications import mime
from notifications.choices import EmailStatus
from notifications.models import EmailLog
from notifications.services.rendering import RenderedEmail, render_email
from notifications.services.settings import email_settings

log = logging.getLogger(__name__)

# Attempts in all before an email stays failed, and the wait before each retry.
MAX_ATTEMPTS = 5
RETRY_DELAYS = [
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
]
# A send claimed this long ago without being recorded was interrupted (worker killed).
STALE_AFTER = timedelta(minutes=10)
# R-MAIL-9: the log keeps 30 days.
RETENTION = timedelta(days=30)
# Rows claimed and recorded together when a worker sends many emails on one connection.
CHUNK = 100
RETRY_JOB = "email_retry"


def is_logged(dedup_key: str) -> bool:
    """Whether the cause `dedup_key` already has its email (sent or not)."""
    return EmailLog.objects.filter(dedup_key=dedup_key).exists()


def suppression_reason(account, livemode: bool, to: str) -> str:
    """Why an email to `to` must not go out, or "" (SPEC R-MAIL-8: test mode only sends to the
    verified domain and to active team members)."""
    if not to or "@" not in to:
        return "The customer has no email address."
    if livemode:
        return ""
    domain = to.rsplit("@", 1)[1].lower()
    verified = email_settings(account, livemode=False).verified_domain
    if verified and domain == verified:
        return ""
    is_member = Membership.objects.filter(
        account=account, user__is_active=True, user__email__iexact=to
    ).exists()
    if is_member:
        return ""
    where = f"the verified domain ({verified})" if verified else "a verified domain (none is set)"
    return f"Test mode: {to} is neither in {where} nor an active team member's address."


def queue_email(
    kind: str,
    *,
    account,
    livemode: bool,
    to: str,
    dedup_key: str,
    context: dict | None = None,
    rendered: RenderedEmail | None = None,
    customer=None,
    event=None,
    object_id: str = "",
    resent_from=None,
    brand_account=None,
) -> EmailLog | None:
    """Log an email (rendered now) and deliver it after commit; None if its cause already has one.

    Call inside the transaction that decided it: the row and the delivery stand or fall with it.
    `brand_account` is whose branding it wears when not `account`'s (a connected account the
    subscription is `on_behalf_of`, SPEC R-CON-6).
    """
    if is_logged(dedup_key):
        return None
    if rendered is None:
        rendered = render_email(kind, context or {}, account=brand_account or account)
    reason = suppression_reason(account, livemode, to)
    entry = EmailLog(
        account=account,
        livemode=livemode,
        customer=customer,
        kind=kind,
        to=to or "",
        subject=rendered.subject,
        text_body=rendered.text,
        html_body=rendered.html,
        status=EmailStatus.SUPPRESSED if reason else EmailStatus.QUEUED,
        reason=reason,
        event=event,
        object_id=object_id,
        dedup_key=dedup_key,
        resent_from=resent_from,
    )
    try:
        # A savepoint: on PostgreSQL a failed insert would otherwise break the whole transaction.
        with transaction.atomic():
            entry.save(force_insert=True)
    except IntegrityError:
        # Another worker logged the same cause between our check and our insert.
        return None
    if not reason:
        _deliver_after_commit(entry.pk)
    return entry


def _deliver_after_commit(log_id: str) -> None:
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task("notifications.tasks.deliver_email", log_id))


def resend(entry: EmailLog) -> EmailLog:
    """The same email again, as a new log entry (the restriction of R-MAIL-8 applies again)."""
    with transaction.atomic():
        return queue_email(
            entry.kind,
            account=entry.account,
            livemode=entry.livemode,
            to=entry.to,
            # A resend is a deliberate new cause: each one gets its own key.
            dedup_key=f"resend:{entry.pk}:{ids.generate('r')}",
            rendered=RenderedEmail(entry.subject, entry.text_body, entry.html_body),
            customer=entry.customer,
            event=entry.event,
            object_id=entry.object_id,
            resent_from=entry,
        )


class _Serialized:
    """What `LoggedEmail.message()` answers once prepared: the SMTP bytes written by
    `notifications.mime` (the SMTP backend asks for nothing else); any other use (the console
    backend, a debugger) gets Django's own MIME object, built on demand."""

    def __init__(self, email: "LoggedEmail", smtp_bytes: bytes):
        self._email = email
        self.smtp_bytes = smtp_bytes

    def as_bytes(self, unixfrom=False, linesep="\n"):
        if linesep == "\r\n" and not unixfrom:
            return self.smtp_bytes
        return self._email.django_message().as_bytes(unixfrom=unixfrom, linesep=linesep)

    def __getattr__(self, name):
        if name.startswith("_"):
            # copy/pickle probe private names before __init__ ran: no recursion through _email.
            raise AttributeError(name)
        return getattr(self._email.django_message(), name)


class LoggedEmail(EmailMultiAlternatives):
    """A log entry as a Django email. `prepare()` writes its SMTP bytes once with the fast
    writer of `notifications.mime`; backends that never call `message()` (anymail's API
    backends) see an ordinary EmailMultiAlternatives."""

    _prepared = None

    def prepare(self) -> "LoggedEmail":
        html = next(
            (content for content, mimetype in self.alternatives if mimetype == "text/html"), ""
        )
        self._prepared = _Serialized(
            self,
            mime.serialize(
                subject=self.subject,
                from_email=self.from_email,
                to=list(self.to),
                text=self.body,
                html=html,
                reply_to=list(self.reply_to),
                headers=self.extra_headers,
            ),
        )
        return self

    def django_message(self):
        return super().message()

    def message(self):
        return self._prepared if self._prepared is not None else super().message()


def build_message(entry: EmailLog, connection=None) -> LoggedEmail:
    """The message for a log entry: text with an HTML alternative, from the brand's name."""
    account = entry.account
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    message = LoggedEmail(
        subject=entry.subject,
        body=entry.text_body,
        from_email=formataddr((account.display_name, address)),
        to=[entry.to],
        reply_to=[account.email] if account.email else None,
        headers={
            "X-Relance-Email-Id": entry.pk,
            # RFC 3834: an automatic message, so auto-responders do not answer it.
            "Auto-Submitted": "auto-generated",
        },
        connection=connection,
    )
    if entry.html_body:
        message.attach_alternative(entry.html_body, "text/html")
    return message


def _claim(log_ids: list[str]) -> tuple[str, list[EmailLog]]:
    """Claim the sendable entries among `log_ids` (one UPDATE; only one worker can win a row)."""
    token = uuid.uuid4().hex
    EmailLog.objects.filter(
        pk__in=log_ids, status__in=[EmailStatus.QUEUED, EmailStatus.FAILED]
    ).update(
        status=EmailStatus.SENDING,
        claimed_at=timezone.now(),
        attempts=F("attempts") + 1,
        claim_token=token,
    )
    claimed = list(
        EmailLog.objects.select_related("account")
        .filter(pk__in=log_ids, status=EmailStatus.SENDING, claim_token=token)
        .order_by("created", "id")
    )
    return token, claimed


def deliver(log_ids: list[str], *, connection=None) -> tuple[int, list[Exception]]:
    """Send the sendable entries among `log_ids` over one connection; returns (sent, errors).

    Each failure is recorded on its entry, with a retry scheduled while attempts remain.
    """
    sent_total, errors = 0, []
    connection = connection or get_connection()
    opened = False
    try:
        for start in range(0, len(log_ids), CHUNK):
            token, claimed = _claim(log_ids[start : start + CHUNK])
            if not claimed:
                continue
            sent_ids = []
            for entry in claimed:
                try:
                    message = build_message(entry, connection).prepare()
                    if not opened:
                        connection.open()
                        opened = True
                    connection.send_messages([message])
                except Exception as exc:  # any backend error: SMTP, provider API, network
                    errors.append(exc)
                    _record_failure(entry, exc)
                    # A broken connection is reopened for the next message.
                    _close_quietly(connection)
                    opened = False
                else:
                    sent_ids.append(entry.pk)
            if sent_ids:
                EmailLog.objects.filter(pk__in=sent_ids, claim_token=token).update(
                    status=EmailStatus.SENT, sent_at=timezone.now(), claim_token=""
                )
                sent_total += len(sent_ids)
    finally:
        if opened:
            _close_quietly(connection)
    return sent_total, errors


def _close_quietly(connection) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken connection may fail too; nothing to do about it
        log.debug("closing the email connection failed", exc_info=True)


def _wall_clock_target(entry: EmailLog):
    """What the timeline needs to schedule a retry, without a customer: delivery retries run on
    wall time even for a test-clock customer (a real mail server is not on the test clock)."""
    return SimpleNamespace(account_id=entry.account_id, livemode=entry.livemode, pk=entry.pk)


def _record_failure(entry: EmailLog, exc: Exception) -> None:
    """Record the error; schedule the next attempt, or leave it failed after the last one."""
    error = f"{type(exc).__name__}: {exc}"[:4000]
    log.warning("email %s to %s failed (attempt %s): %s", entry.pk, entry.to, entry.attempts, error)
    with transaction.atomic():
        EmailLog.objects.filter(pk=entry.pk, status=EmailStatus.SENDING).update(
            status=EmailStatus.FAILED, error=error, claim_token=""
        )
        if entry.attempts < MAX_ATTEMPTS:
            delay = RETRY_DELAYS[min(entry.attempts, len(RETRY_DELAYS)) - 1]
            timeline.schedule(RETRY_JOB, _wall_clock_target(entry), at=timezone.now() + delay)


def _load_entry(log_id):
    return EmailLog.objects.filter(pk=log_id).first()


@timeline.handler(RETRY_JOB, target=_load_entry)
def _retry_due(entry: EmailLog, job) -> None:
    """A failed email's next attempt: hand it to a worker (sending stays outside the job's
    transaction); an entry sent or resent meanwhile is left alone."""
    if entry.status == EmailStatus.FAILED and entry.attempts < MAX_ATTEMPTS:
        _deliver_after_commit(entry.pk)


def recover_stale(now=None) -> int:
    """Sends interrupted between acceptance and record: try each once more, then give up.

    Called every few minutes by the django-q2 schedule (see migrations/0002_schedules.py).
    """
    now = now or timezone.now()
    stale = EmailLog.objects.filter(status=EmailStatus.SENDING, claimed_at__lt=now - STALE_AFTER)
    gave_up = stale.filter(recovered=True).update(
        status=EmailStatus.FAILED,
        claim_token="",
        error="Interrupted twice while sending; not sent again to avoid duplicates.",
    )
    requeue = list(stale.filter(recovered=False).values_list("pk", flat=True)[:1000])
    count = 0
    for log_id in requeue:
        with transaction.atomic():
            won = EmailLog.objects.filter(
                pk=log_id, status=EmailStatus.SENDING, recovered=False
            ).update(status=EmailStatus.QUEUED, recovered=True, claim_token="")
            if won:
                count += 1
                _deliver_after_commit(log_id)
    return count + gave_up


def purge_old(now=None) -> int:
    """Delete log entries older than 30 days (SPEC R-MAIL-9); returns how many.

    The log holds rendered bodies with customers' names and amounts: keeping them longer than
    the promised 30 days would only keep personal data nobody looks at. Deleted in slices so a
    large backlog never holds one long lock.
    """
    cutoff = (now or timezone.now()) - RETENTION
    deleted = 0
    while True:
        batch = list(
            EmailLog.objects.filter(created__lt=cutoff).values_list("pk", flat=True)[:1000]
        )
        if not batch:
            return deleted
        EmailLog.objects.filter(resent_from__in=batch).update(resent_from=None)
        deleted += EmailLog.objects.filter(pk__in=batch).delete()[0]
