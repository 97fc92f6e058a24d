"""The automations benchmark runs, and the engine agrees with the baseline on every event."""

from io import StringIO

from django.core.management import call_command

from automations.models import Automation


def test_bench_automations_prints_rates_and_leaves_nothing_behind(db):
    out = StringIO()
    call_command("bench_automations", sizes="20,40", events=300, freshness_calls=20, stdout=out)
    text = out.getvalue()
    assert "| 20 |" in text and "| 40 |" in text
    assert "engine / baseline" in text
    assert not Automation.objects.exists()
