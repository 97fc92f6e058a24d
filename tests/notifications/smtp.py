"""A real SMTP server on 127.0.0.1 (aiosmtpd) for round-trip tests and the benchmark's sink."""

import socket
import threading

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """Keeps what the server received: (envelope sender, recipients, raw message bytes)."""

    def __init__(self, keep=True):
        self.keep = keep
        self.count = 0
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            if self.keep:
                self.messages.append(
                    (envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                )
        return "250 Message accepted for delivery"


def start_server(keep=True) -> tuple[Controller, Collector]:
    """Start a local SMTP server; stop it with `controller.stop()`."""
    collector = Collector(keep=keep)
    controller = Controller(collector, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, collector
