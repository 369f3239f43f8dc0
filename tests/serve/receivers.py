"""Local alert targets for the tests: an SMTP server (aiosmtpd) and a webhook receiver for
Apprise's ``json://``, each keeping what it received."""

from __future__ import annotations

import email
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Mailbox:
    """A local SMTP server (aiosmtpd): the messages it received, as text."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[str] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content)
                parts = [message, *message.walk()] if message.is_multipart() else [message]
                texts = [
                    p.get_payload(decode=True).decode()
                    for p in parts
                    if p.get_content_type() == "text/plain"
                ]
                mailbox.messages.append(str(message["Subject"]) + "\n" + "\n".join(texts))
                return "250 OK"

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def url(self) -> str:
        return (
            f"mailto://127.0.0.1:{self.port}?from=connector@example.com"
            "&to=ops@example.com&mode=insecure"
        )


class Receiver:
    """A local webhook receiver for Apprise's json://; ``hold`` keeps every request waiting
    until it is set."""

    def __init__(self, held: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.hold = threading.Event()
        if not held:
            self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.hold.wait()
                receiver.bodies.append(json.loads(data))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
