"""A keep-alive webhook receiver for `manage.py bench_webhooks`, run in its own process:

    python -m billing.webhooks.bench_receiver --fail-rate 0.01

Prints its port, then answers POSTs with 200 (or 500 for `--fail-rate` of them, at random
with a fixed seed) and `GET /stats` with the 2xx count per event id. No Django here: it starts
in a fraction of a second and never touches the database.
"""

import argparse
import contextlib
import json
import random
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(fail_rate: float, seed: int = 1) -> None:
    rng = random.Random(seed)
    lock = threading.Lock()
    ok: Counter = Counter()
    totals = {"requests": 0, "failed": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one write (no Nagle/delayed-ACK stall on keep-alive).
        wbufsize = -1

        def log_message(self, *args):
            pass

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                totals["requests"] += 1
                fail = rng.random() < fail_rate
                if fail:
                    totals["failed"] += 1
                else:
                    # The event id is the first field of the body: no need to parse it all.
                    ok[body[8:64].split(b'"', 1)[0].decode()] += 1
            self._answer(500 if fail else 200, b"{}")

        def do_GET(self):
            with lock:
                stats = {**totals, "ok": dict(ok)}
            self._answer(200, json.dumps(stats).encode())

        def do_DELETE(self):
            with lock:
                ok.clear()
                totals.update(requests=0, failed=0)
            self._answer(200, b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--fail-rate", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    serve(arguments.fail_rate, arguments.seed)
    sys.exit(0)
