"""Side by side with n8n: the same webhook -> GET, POST, PUT workload, one system at a time.

    .venv/bin/python bench/n8n.py [--n8n /work/n8n] [--events 400] [--senders 8] [--delay 0]
        [--rounds 1] [--workers 64]

Both systems get the same events from the same load generator, against the same target (a
GoHighLevel that answers each request after ``--delay`` seconds and notes when each event's last
request, the PUT, arrived), on this machine, on SQLite, one after the other (``--rounds``
alternates them):

- n8n: ``n8n start`` on a fresh ``N8N_USER_FOLDER``, the workflow of :func:`workflow` (a Webhook
  node answering at once, then three HTTP Request nodes) imported with ``n8n import:workflow``
  and published with ``n8n publish:workflow``; events go to ``POST /webhook/connector-bench``;
- ``connector serve bench/recipes/hook_get_post_put.yaml`` (the same three requests), events to
  ``POST /hooks/hook-get-post-put``; the webhook is answered once the run is stored.

Printed per system: events per second (first webhook to last PUT), CPU milliseconds per event
and peak RSS of the server process (from /proc; n8n's node process), webhook answer p50/p99 and
webhook-to-last-request p50/p99; then ours over n8n's. n8n is not a dependency: when it is not
installed this prints how to install it and exits 0.

Installing n8n (2.8.4 is the newest that runs on node 20; the CDN n8n names for ``xlsx`` may be
unreachable, so the registry's is pinned):

    mkdir -p /work/n8n && cd /work/n8n
    echo '{"dependencies": {"n8n": "2.8.4"}, "overrides": {"xlsx": "0.18.5"}}' > package.json
    npm install --engine-strict=false

Linux only; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from benchlib import (
    ROOT,
    TOKEN,
    connector_cmd,
    cpu_seconds,
    free_port,
    peak_rss_mb,
    percentile,
    start_target,
    wait_http,
)

HERE = Path(__file__).parent
HOOK_TOKEN = "bench-hook-token-0123456789"
# room enough never to wait, in the shape of the real limit (a 10 s window, a day counter)
ROOMY = "ghl:burst=1000000000/10,ghl:day=1000000000/86400"
WORKFLOW_ID = "ConnectorBench01"
HOW_TO_INSTALL = __doc__.split("Installing n8n", 1)[1].split("Linux only", 1)[0]


def workflow(base: str) -> dict[str, Any]:
    """The n8n workflow: webhook, GET the contact, POST a task, PUT it done."""
    headers = {
        "parameters": [
            {"name": "Authorization", "value": f"Bearer {TOKEN}"},
            {"name": "Version", "value": "2021-07-28"},
        ]
    }
    contact = "{{ $('Webhook').item.json.body.contactId }}"

    def http(name: str, method: str, url: str, body: str | None, x: int) -> dict[str, Any]:
        parameters: dict[str, Any] = {
            "method": method,
            "url": url,
            "sendHeaders": True,
            "headerParameters": headers,
            "options": {},
        }
        if body is not None:
            parameters.update(sendBody=True, specifyBody="json", jsonBody=body)
        return {
            "parameters": parameters,
            "name": name,
            "type": "n8n-nodes-base.httpRequest",
            "typeVersion": 4.2,
            "position": [x, 0],
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        }

    nodes = [
        {
            "parameters": {
                "httpMethod": "POST",
                "path": "connector-bench",
                "responseMode": "onReceived",
                "options": {},
            },
            "name": "Webhook",
            "type": "n8n-nodes-base.webhook",
            "typeVersion": 2,
            "position": [0, 0],
            "webhookId": "5f0c6a3e-3c1b-4d7e-9a51-3b1f0d3c0b01",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "Webhook")),
        },
        http("Get contact", "GET", f"={base}/contacts/{contact}", None, 200),
        http(
            "Create task",
            "POST",
            f"={base}/contacts/{contact}/tasks",
            "={{ JSON.stringify({title: 'Call ' + $json.contact.firstName + ' ('"
            " + $('Webhook').item.json.body.n + ')', dueDate: '2026-12-01T10:00:00Z',"
            " completed: false}) }}",
            400,
        ),
        http(
            "Complete task",
            "PUT",
            f"={base}/contacts/{contact}/tasks/{{{{ $json.task.id }}}}",
            '={"completed": true}',
            600,
        ),
    ]
    chain = ["Webhook", "Get contact", "Create task", "Complete task"]
    connections = {
        a: {"main": [[{"node": b, "type": "main", "index": 0}]]}
        for a, b in itertools.pairwise(chain)
    }
    return {
        "id": WORKFLOW_ID,
        "name": "connector bench: webhook, GET, POST, PUT",
        "nodes": nodes,
        "connections": connections,
        "active": False,
        "settings": {"executionOrder": "v1", "saveDataSuccessExecution": "all"},
    }


class System:
    """One server under test: started, fed, measured, stopped."""

    name = ""
    proc: subprocess.Popen[bytes]

    def url(self) -> str:
        raise NotImplementedError

    def headers(self) -> dict[str, str]:
        return {"content-type": "application/json"}

    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Connector(System):
    name = "connector serve"

    def __init__(self, base: str, home: str, workers: int) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "CONNECTOR_HOME": home,
            "GHL_TOKEN": TOKEN,
            "GHL_BASE_URL": base,
            "GHL_LOCATION_ID": "ve9EPM428h8vShlRW1KT",
            "CONNECTOR_HOOK_TOKEN": HOOK_TOKEN,
            "CONNECTOR_RATE_LIMITS": ROOMY,
        }
        env.pop("CONNECTOR_DATABASE_URL", None)
        recipe = HERE / "recipes" / "hook_get_post_put.yaml"
        cmd = [*connector_cmd(), "serve", str(recipe), "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, "--workers", str(workers)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, self.name)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/hook-get-post-put"

    def headers(self) -> dict[str, str]:
        return {"content-type": "application/json", "authorization": f"Bearer {HOOK_TOKEN}"}


class N8n(System):
    name = "n8n"

    def __init__(self, n8n: Path, base: str, home: str) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "N8N_USER_FOLDER": home,
            "N8N_PORT": str(self.port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_RUNNERS_ENABLED": "true",
            "N8N_SECURE_COOKIE": "false",
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
            "DB_SQLITE_POOL_SIZE": "4",
        }
        binary = str(n8n / "node_modules" / ".bin" / "n8n")
        flow = Path(home) / "workflow.json"
        flow.write_text(json.dumps(workflow(base)))
        for step in (
            ["import:workflow", f"--input={flow}"],
            ["publish:workflow", f"--id={WORKFLOW_ID}"],
        ):
            done = subprocess.run(
                [binary, *step], env=env, capture_output=True, text=True, timeout=300
            )
            if done.returncode != 0:
                raise SystemExit(f"n8n {step[0]} failed: {done.stderr[-2000:]}")
        # node itself, not a wrapper, so that /proc shows n8n's own CPU and memory
        self.proc = subprocess.Popen(
            [shutil.which("node") or "node", binary, "start"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"http://127.0.0.1:{self.port}/healthz", self.proc, self.name, seconds=300)
        deadline = time.monotonic() + 120
        answered = 0
        while time.monotonic() < deadline:  # the webhook is registered a moment after start
            probe = httpx.post(self.url(), json={"contactId": "warm", "n": 0}, timeout=10)
            answered = answered + 1 if probe.status_code == 200 else 0
            if answered == 3:
                return
            time.sleep(1.0)
        raise SystemExit("n8n started, but its webhook never answered 200")

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/connector-bench"


async def feed(system: System, tag: str, n: int, senders: int) -> tuple[dict[str, float], list]:
    """POST ``n`` events, ``senders`` at a time; each event's contact id -> when it was sent,
    and the answer latencies (seconds)."""
    sent: dict[str, float] = {}
    answers: list[float] = []
    queue = list(range(n))
    headers = system.headers()
    # a client of one connection per sender: httpx's shared pool costs CPU as it grows
    clients = [httpx.AsyncClient(timeout=120) for _ in range(senders)]

    async def lane(client: httpx.AsyncClient) -> None:
        while queue:
            i = queue.pop(0)
            contact = f"{tag}{i:08d}"
            sent[contact] = time.time()
            t0 = time.perf_counter()
            body = json.dumps({"contactId": contact, "n": i})
            answer = await client.post(system.url(), content=body, headers=headers)
            answers.append(time.perf_counter() - t0)
            assert answer.status_code in (200, 202), answer.text

    try:
        await asyncio.gather(*(lane(client) for client in clients))
    finally:
        for client in clients:
            await client.aclose()
    return sent, answers


def arrivals(log: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            contact, _, at = line.partition(" ")
            if at:
                out[contact] = float(at)
    return out


def measure(system: System, log: Path, tag: str, n: int, senders: int) -> dict[str, float]:
    asyncio.run(feed(system, f"w{tag}", min(20, n), senders))  # warm up
    cpu0, t0 = cpu_seconds(system.pid()), time.time()
    sent, answers = asyncio.run(feed(system, tag, n, senders))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        seen = arrivals(log)
        if all(c in seen for c in sent):
            break
        time.sleep(0.1)
    cpu = cpu_seconds(system.pid()) - cpu0
    seen = arrivals(log)
    done = [seen[c] - t for c, t in sent.items() if c in seen]
    last = max((seen[c] for c in sent if c in seen), default=time.time())
    return {
        "events/s": len(done) / (last - t0),
        "lost": n - len(done),
        "cpu ms/event": cpu * 1000 / n,
        "rss MB": peak_rss_mb(system.pid()),
        "answer p50 ms": percentile(answers, 0.5) * 1000,
        "answer p99 ms": percentile(answers, 0.99) * 1000,
        "to last request p50 ms": percentile(done, 0.5) * 1000,
        "to last request p99 ms": percentile(done, 0.99) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n8n", default=os.environ.get("N8N_DIR", "/work/n8n"))
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.0, help="the target's answer delay, s")
    parser.add_argument("--rounds", type=int, default=1, help="each system this many times")
    parser.add_argument("--workers", type=int, default=64, help="connector serve --workers")
    args = parser.parse_args()
    n8n = Path(args.n8n)
    if not (n8n / "node_modules" / ".bin" / "n8n").exists() or shutil.which("node") is None:
        print(f"n8n is not installed in {n8n}: skipped. To install it:{HOW_TO_INSTALL}")
        return 0

    scratch = tempfile.TemporaryDirectory()
    log = Path(scratch.name) / "arrivals.txt"
    target, base = start_target(args.delay, str(log))
    results: dict[str, list[dict[str, float]]] = {"connector serve": [], "n8n": []}
    try:
        for r in range(max(args.rounds, 1)):
            for name in ("connector serve", "n8n"):
                home = tempfile.mkdtemp(dir=scratch.name)
                system: System = (
                    Connector(base, home, args.workers) if name != "n8n" else N8n(n8n, base, home)
                )
                try:
                    tag = f"r{r}{'n' if name == 'n8n' else 'c'}"
                    results[name].append(measure(system, log, tag, args.events, args.senders))
                finally:
                    system.stop()
    finally:
        target.send_signal(signal.SIGTERM)
        target.wait(timeout=30)
        scratch.cleanup()

    print(
        f"{args.events} events, {args.senders} senders, target delay {args.delay * 1000:.0f} ms,"
        f" {args.rounds} round(s) each (medians), SQLite; webhook -> GET, POST, PUT"
    )
    keys = list(results["n8n"][0])
    print(f"{'':<24}" + "".join(f"{k:>24}" for k in ("connector serve", "n8n", "ours / n8n")))
    for key in keys:
        ours = sorted(m[key] for m in results["connector serve"])[len(results["n8n"]) // 2]
        theirs = sorted(m[key] for m in results["n8n"])[len(results["n8n"]) // 2]
        ratio = f"{ours / theirs:.2f}x" if theirs else "-"
        print(f"{key:<24}{ours:>24.1f}{theirs:>24.1f}{ratio:>24}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
