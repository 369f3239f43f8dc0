"""What the benchmarks share: a local JSON server that answers at once, and timing whole processes.

Imported by the scripts beside it (``python bench/NAME.py`` puts this folder on the path).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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
