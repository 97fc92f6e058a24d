"""Real HTTP receivers on 127.0.0.1, started by the tests, and helpers to drive deliveries."""

import json
import random
import socket
import struct
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing.services.test_clocks import advance_test_clock, create_test_clock

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Receiver:
    """A local webhook receiver. `behave(n)` decides request n's fate (0-based): "ok", "fail"
    (HTTP 500), "timeout" (answers after the client gave up) or "reset" (TCP reset)."""

    def __init__(self, behave):
        self.behave = behave
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    n = len(receiver.requests)
                    fate = receiver.behave(n)
                    receiver.requests.append(
                        {"headers": dict(self.headers), "body": body, "fate": fate}
                    )
                if fate == "reset":
                    # SO_LINGER 0: close() sends a RST instead of a FIN.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if fate == "timeout":
                    time.sleep(receiver.slow_seconds)
                status = 200 if fate == "ok" else 500
                answer = b'{"received": true}' if fate == "ok" else b"boom"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.slow_seconds = 1.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def received(self, fate=None) -> list[dict]:
        """Requests answered with `fate` (all by default), bodies parsed."""
        with self.lock:
            found = [r for r in self.requests if fate is None or r["fate"] == fate]
        return [{**r, "json": json.loads(r["body"])} for r in found]

    def event_ids(self, fate="ok") -> list[str]:
        return [r["json"]["id"] for r in self.received(fate)]


@pytest.fixture
def receivers():
    """Start receivers with `receivers(behave)`; all are stopped after the test."""
    started = []

    def start(behave=lambda n: "ok"):
        receiver = Receiver(behave)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(receivers):
    """A receiver that answers 200 to everything."""
    return receivers()


@pytest.fixture
def failing(receivers):
    """A receiver that answers 500 to everything."""
    return receivers(lambda n: "fail")


def flaky(rate: float, seed: int = 5):
    """A behaviour failing a `rate` share of requests, reproducibly."""
    rng = random.Random(seed)
    return lambda n: "fail" if rng.random() < rate else "ok"


def first_then_ok(fate: str, count: int = 1):
    """A behaviour giving `fate` to the first `count` requests, then "ok"."""
    return lambda n: fate if n < count else "ok"


@pytest.fixture(autouse=True)
def _short_timeout(settings):
    """A receiver that "times out" needs to sleep only past this."""
    settings.RELANCE_WEBHOOKS_TIMEOUT = 0.4


@pytest.fixture
def clock(account):
    return create_test_clock(account, frozen_time=START, name="webhooks")


def advance(clock, **delta):
    """Advance a test clock and run its due jobs now (django-q2 runs tasks inline in tests;
    transactional tests commit for real, so on-commit work runs as in production)."""
    clock.refresh_from_db()
    advance_test_clock(clock, to=clock.frozen_time + timedelta(**delta))
    clock.refresh_from_db()
    assert clock.status == "ready"
    return clock


def advance_to(clock, when):
    clock.refresh_from_db()
    return advance(clock, seconds=(when - clock.frozen_time).total_seconds())
