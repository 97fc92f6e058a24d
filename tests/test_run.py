"""`run.py`, the README's commands: what it hands the processes it starts."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run", ROOT / "run.py")
run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run)


def test_email_links_lead_to_the_server_it_starts():
    env = run.public_url_env({"PATH": "/usr/bin"}, "127.0.0.1", "8123")
    assert env["RELANCE_PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert env["PATH"] == "/usr/bin"


def test_a_server_on_every_interface_is_linked_by_name():
    assert run.public_url_env({}, "0.0.0.0", "8000")["RELANCE_PUBLIC_URL"] == (
        "http://localhost:8000"
    )
    assert run.public_url_env({}, "::1", "8000")["RELANCE_PUBLIC_URL"] == "http://[::1]:8000"


def test_a_public_url_that_is_set_wins():
    env = run.public_url_env({"RELANCE_PUBLIC_URL": "https://billing.example.com"}, "x", "1")
    assert env["RELANCE_PUBLIC_URL"] == "https://billing.example.com"
