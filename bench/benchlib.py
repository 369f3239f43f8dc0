"""What the benchmarks share: a local JSON server that answers at once, the plain-loop floor of the
three-step benchmarks, GoHighLevel-signed webhooks, and timing whole processes.

Imported by the scripts beside it (``python bench/NAME.py`` puts this folder on the path).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789"
CONTACT = {
    "contact": {"id": "ocQHyuzHvysMo5N5VsXc", "firstName": "Ada", "email": "ada@example.com"}
}


class JSONHandler(BaseHTTPRequestHandler):
    """Keep-alive, one write per response (no delayed-ACK stalls), no request log. Subclasses
    answer with :meth:`reply` from ``do_GET`` / ``do_POST``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    def reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def log_message(self, *args: object) -> None:
        pass


class ContactTasksHandler(JSONHandler):
    """The GoHighLevel of the three-step benchmarks: the contact, its (no) tasks, a task made."""

    def do_GET(self) -> None:
        self.reply(200, {"tasks": []} if self.path.endswith("/tasks") else CONTACT)

    def do_POST(self) -> None:
        self.read_body()
        self.reply(201, {"task": {"id": "task123"}})


def three_steps(base: str) -> Callable[[], None]:
    """One event of the three-step recipe as a plain httpx loop does it (the floor a served or
    durable run is measured against): read the contact, read its tasks, make a task."""
    plain = httpx.Client(base_url=base + "/")
    headers = {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}
    cid = CONTACT["contact"]["id"]

    def once() -> None:
        c = plain.get(f"contacts/{cid}", headers=headers).json()
        plain.get(f"contacts/{cid}/tasks", headers=headers).json()
        body = {
            "title": f"Welcome ({c['contact']['firstName']})",
            "dueDate": "2026-12-01T10:00:00Z",
            "completed": False,
        }
        assert plain.post(f"contacts/{cid}/tasks", headers=headers, json=body).status_code == 201

    return once


def plain_rate(base: str, n: int) -> float:
    """Events per second of :func:`three_steps` (after 20 that warm up)."""
    once = three_steps(base)
    for _ in range(20):
        once()
    t0 = time.perf_counter()
    for _ in range(n):
        once()
    return n / (time.perf_counter() - t0)


class Signer:
    """Signs GoHighLevel webhooks (Ed25519 ``x-ghl-signature``) with a key of its own; the server
    trusts :attr:`public_pem` (``GHL_WEBHOOK_PUBLIC_KEY``)."""

    def __init__(self) -> None:
        self.key = ed25519.Ed25519PrivateKey.generate()
        self.public_pem = (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def sign(self, body: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """``body`` with a fresh ``timestamp``, as bytes, and the headers that carry it."""
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        raw = json.dumps({**body, "timestamp": now}, separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "x-ghl-signature": base64.b64encode(self.key.sign(raw)).decode(),
        }
        return raw, headers


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """``handler`` on a free local port, on a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def connector_cmd() -> list[str]:
    script = Path(sys.executable).parent / "connector"
    return [str(script)] if script.exists() else [sys.executable, "-m", "connector"]


def processes(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    """Wall seconds of ``runs`` whole processes of ``cmd`` (after one that warms the caches)."""
    subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.decode()}")
    return times
