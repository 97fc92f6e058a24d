"""bench_emails runs end to end against its local SMTP sink."""

from django.core.management import call_command

from notifications.models import EmailLog


def test_bench_emails_prints_both_rates_and_the_ratio(db, capsys):
    call_command("bench_emails", count=30)
    out = capsys.readouterr().out
    assert "raw smtplib loop:" in out
    assert "relance deliver:" in out
    assert "ratio:" in out
    assert EmailLog.objects.count() == 0  # the throwaway account's rows are gone
