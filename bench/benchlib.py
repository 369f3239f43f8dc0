"""What the benchmarks share: a local JSON server that answers at once, the plain-loop floor of the
three-step benchmarks, GoHighLevel-signed webhooks, and timing whole processes.

Imported by the scripts beside it (``python bench/NAME.py`` puts this folder on the path).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa
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


# A GoHighLevel of contacts and tasks that answers every request after a delay, in a process of
# its own (uvicorn: each request waits on the event loop, so the target is never the limit);
# argv: port, delay in seconds, and a file that gets "CONTACT TIME" for each PUT (or "").
DELAYED_TARGET = """
import asyncio, sys, time
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

DELAY = float(sys.argv[2])
LOG = open(sys.argv[3], "a", buffering=1) if sys.argv[3] else None
CONTACT = {"contact": {"id": "c", "firstName": "Ada", "email": "ada@example.com"}}

async def contact(request):
    await asyncio.sleep(DELAY)
    return JSONResponse(CONTACT)

async def tasks(request):
    if request.method == "POST":
        await request.body()
        await asyncio.sleep(DELAY)
        return JSONResponse({"task": {"id": "task123"}}, status_code=201)
    await asyncio.sleep(DELAY)
    return JSONResponse({"tasks": []})

async def task(request):
    await request.body()
    await asyncio.sleep(DELAY)
    if LOG is not None:
        LOG.write(f"{request.path_params['cid']} {time.time()}\\n")
    return JSONResponse({"task": {"id": request.path_params["tid"], "completed": True}})

app = Starlette(routes=[
    Route("/ghl/contacts/{cid}", contact),
    Route("/ghl/contacts/{cid}/tasks", tasks, methods=["GET", "POST"]),
    Route("/ghl/contacts/{cid}/tasks/{tid}", task, methods=["PUT"]),
])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error",
            access_log=False, backlog=4096, timeout_keep_alive=60)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_target(delay: float, log: str = "") -> tuple[subprocess.Popen[bytes], str]:
    """:data:`DELAYED_TARGET` on a free port; returns the process and its GoHighLevel base URL
    once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", DELAYED_TARGET, str(port), str(delay), log],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/ghl"
    wait_http(base + "/contacts/x", proc, "the target")
    return proc, base


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, seconds: float = 120) -> None:
    """Wait until ``url`` answers at all (``proc`` still running)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{what} did not start (exit {proc.poll()})")
        time.sleep(0.2)


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (every thread) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of ``pid`` (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


@contextlib.contextmanager
def postgres_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server`` (its URL), dropped afterwards: each measurement starts
    from nothing, as one on a new SQLite file does."""
    admin_url = server.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        try:
            with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg.Error as exc:
            print(f"could not drop the database {name}: {exc}", file=sys.stderr)
