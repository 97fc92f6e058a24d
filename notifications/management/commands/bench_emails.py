"""Emails per second to a local SMTP sink: our delivery path against a raw smtplib loop.

    .venv/bin/python manage.py bench_emails --count 10000

Starts aiosmtpd's Sink (a dev dependency) in a separate process on 127.0.0.1, then, in the
same run and against the same server:

1. baseline: one smtplib connection, `sendmail` of each message pre-serialized to bytes — the
   least a Python sender can do per email;
2. ours: `notifications.services.sending.deliver` over one reused Django SMTP connection, for
   `--count` logged emails — claiming rows, building each MIME message (text + HTML) from the
   log and recording `sent`, as a worker does.

Prints both rates and ours as a share of the baseline (goal: at least 80%). The emails are
written to a throwaway account that is deleted afterwards.
"""

import smtplib
import socket
import subprocess
import sys
import time

from django.core.mail import get_connection
from django.core.management.base import BaseCommand, CommandError

from billing.models import Account
from notifications.choices import EmailKind, EmailStatus
from notifications.models import EmailLog
from notifications.previews import sample_context
from notifications.services import sending
from notifications.services.rendering import render_email
from notifications.services.settings import email_settings


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_sink(port: int) -> subprocess.Popen:
    """aiosmtpd's Sink handler (accepts and discards) in its own process, so the server does
    not compete with the measured code for this process's GIL."""
    try:
        import aiosmtpd  # noqa: F401
    except ImportError as exc:
        raise CommandError("bench_emails needs aiosmtpd (requirements/dev.txt)") from exc
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            f"127.0.0.1:{port}",
            "-c",
            "aiosmtpd.handlers.Sink",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise CommandError("the SMTP sink did not start")


class Command(BaseCommand):
    help = "Measure emails/s to a local SMTP sink against a raw smtplib baseline."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=10_000)

    def handle(self, *args, count, **options):
        if count < 1:
            raise CommandError("--count must be at least 1")
        port = _free_port()
        sink = _start_sink(port)
        account = Account.objects.create(name="bench_emails (temporary)")
        try:
            rendered = render_email(
                EmailKind.RECEIPT,
                sample_context(EmailKind.RECEIPT, account, email_settings(account, False)),
                account=account,
            )
            ids = self._log_rows(account, rendered, count)

            # 1. The baseline: the same message, pre-serialized, over raw smtplib.
            probe = sending.build_message(EmailLog.objects.select_related("account").get(pk=ids[0]))
            raw = probe.message().as_bytes(linesep="\r\n")
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for n in range(count):
                    smtp.sendmail(probe.from_email, [f"customer{n}@example.com"], raw)
            baseline = time.perf_counter() - start

            # 2. Ours: claim, build, send, record, on one reused connection.
            connection = get_connection(
                "django.core.mail.backends.smtp.EmailBackend",
                host="127.0.0.1",
                port=port,
                username="",
                password="",
                use_tls=False,
                use_ssl=False,
            )
            start = time.perf_counter()
            sent, errors = sending.deliver(ids, connection=connection)
            ours = time.perf_counter() - start
            if errors or sent != count:
                raise CommandError(f"sent {sent} of {count}; first error: {errors[:1]}")
            assert EmailLog.objects.filter(pk__in=ids, status=EmailStatus.SENT).count() == count
        finally:
            EmailLog.objects.filter(account=account).delete()
            account.delete()
            sink.terminate()
            sink.wait(timeout=10)

        base_rate, our_rate = count / baseline, count / ours
        self.stdout.write(f"emails: {count} ({len(raw)} bytes each, text + HTML)")
        self.stdout.write(f"raw smtplib loop: {baseline:.2f} s, {base_rate:,.0f} emails/s")
        self.stdout.write(f"relance deliver:  {ours:.2f} s, {our_rate:,.0f} emails/s")
        self.stdout.write(f"ratio: {our_rate / base_rate:.0%} of the baseline (goal: >= 80%)")

    def _log_rows(self, account, rendered, count) -> list[str]:
        """`count` queued log rows, as the rules would have written them."""
        rows = [
            EmailLog(
                account=account,
                kind=EmailKind.RECEIPT,
                to=f"customer{n}@example.com",
                subject=rendered.subject,
                text_body=rendered.text,
                html_body=rendered.html,
                status=EmailStatus.QUEUED,
                dedup_key=f"bench:{account.pk}:{n}",
            )
            for n in range(count)
        ]
        EmailLog.objects.bulk_create(rows, batch_size=1000)
        return list(
            EmailLog.objects.filter(account=account)
            .order_by("created", "id")
            .values_list("pk", flat=True)
        )
