"""A real local HTTP server that answers webhook deliveries 200 and keeps what it received."""

import contextlib
import http.server
import threading


@contextlib.contextmanager
def running_receiver():
    """Yield a server on 127.0.0.1 with `.url` and `.received` (body, Stripe-Signature) pairs."""
    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("Stripe-Signature")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass  # keep test output clean

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.received = received
    server.url = f"http://127.0.0.1:{server.server_port}/hooks"
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
