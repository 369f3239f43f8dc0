"""A fake Acme API on a real port, for the tests: widgets with a growing ``version``, notes on
them, and a log of every request it received (with the time it arrived on its own clock).

``throttle_notes(n, reset_ms)`` makes the next ``n`` note writes answer 429 with
``X-Acme-Calls-Left: 0`` and ``X-Acme-Calls-Reset-Ms: reset_ms``, as Acme does when its window
is spent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "acme-test-key"
LIMIT = 10


@dataclass
class Received:
    at: float  # time.monotonic() when it arrived
    method: str
    path: str
    status: int
    body: Any = None


@dataclass
class FakeAcme:
    widgets: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    log: list[Received] = field(default_factory=list)
    throttled: int = 0
    reset_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def put_widget(self, widget_id: str, name: str) -> dict[str, Any]:
        """Create or change a widget (its version grows), as a user of Acme would."""
        with self.lock:
            version = max((w["version"] for w in self.widgets.values()), default=0) + 1
            self.widgets[widget_id] = {"id": widget_id, "name": name, "version": version}
            return dict(self.widgets[widget_id])

    def throttle_notes(self, n: int, reset_ms: int) -> None:
        with self.lock:
            self.throttled, self.reset_ms = n, reset_ms

    def notes_of(self, widget_id: str) -> list[str]:
        with self.lock:
            return list(self.notes.get(widget_id, []))

    def received(self, method: str | None = None, path: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r
                for r in self.log
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def start(self) -> FakeAcme:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def _handle(self, method: str) -> None:
                arrived = time.monotonic()
                size = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(size) if size else b""
                body = json.loads(raw) if raw else None
                url = urlsplit(self.path)
                status, answer, headers = fake._answer(method, url.path, url.query, body, self)
                with fake.lock:
                    fake.log.append(Received(arrived, method, url.path, status, body))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def _answer(
        self, method: str, path: str, query: str, body: Any, request: BaseHTTPRequestHandler
    ) -> tuple[int, Any, dict[str, str]]:
        room = {"X-Acme-Calls-Left": str(LIMIT - 1), "X-Acme-Calls-Limit": str(LIMIT)}
        if request.headers.get("X-Acme-Key") != API_KEY:
            return 401, {"error": "bad key"}, room
        with self.lock:
            if method == "GET" and path == "/widgets":
                since = int(parse_qs(query).get("since", ["0"])[0])
                found = [dict(w) for w in self.widgets.values() if w["version"] > since]
                return 200, {"widgets": sorted(found, key=lambda w: w["version"])}, room
            one = re.fullmatch(r"/widgets/([^/]+)", path)
            if method == "GET" and one:
                widget = self.widgets.get(one.group(1))
                if widget is None:
                    return 404, {"error": "no such widget"}, room
                return 200, {"widget": dict(widget)}, room
            notes = re.fullmatch(r"/widgets/([^/]+)/notes", path)
            if method == "POST" and notes:
                if self.throttled > 0:
                    self.throttled -= 1
                    spent = {
                        "X-Acme-Calls-Left": "0",
                        "X-Acme-Calls-Limit": str(LIMIT),
                        "X-Acme-Calls-Reset-Ms": str(self.reset_ms),
                    }
                    return 429, {"error": "slow down"}, spent
                text = body.get("text") if isinstance(body, dict) else None
                if not isinstance(text, str):
                    return 422, {"error": "text is required"}, room
                self.notes.setdefault(notes.group(1), []).append(text)
                return 201, {"note": {"widgetId": notes.group(1), "text": text}}, room
        return 404, {"error": f"no route {method} {path}"}, room
