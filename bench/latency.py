"""`connector serve` against an API that takes its time: events per second, CPU, memory, latency.

    .venv/bin/python bench/latency.py [--delay 0.25] [--events 600] [--senders 8]
        [--workers 64] [--rate 0] [--database-url URL] [--warm 20]

Three processes on this machine:

- a target: GoHighLevel's contact, tasks and task-made answers, each after ``--delay`` seconds
  (uvicorn; every request waits on the event loop, so the target itself is never the limit);
- `connector serve bench/recipes/webhook_three_steps.yaml --workers N` on SQLite in a temporary
  CONNECTOR_HOME (or ``--database-url``), the budget roomy (``CONNECTOR_RATE_LIMITS``) so it never
  waits: each signed ``ContactCreate`` webhook runs GET contact, GET tasks, POST task;
- this one: the load generator. ``--senders`` asyncio tasks POST webhooks back to back, one
  contact per event (``--rate`` > 0: at that many events per second instead, open loop).

Reported for the server: events per second (first webhook to last run finished), CPU
milliseconds per event (the server process's user + system time from /proc over the same span,
every thread), its peak RSS (VmHWM), the webhook answer p50/p99 (received, checked, stored) and
webhook-to-finished p50/p99 (from the POST to the run's ``finished_at``). Beside it, in the same
run against the same target: a plain asyncio/httpx loop making the same three requests per event
with as many events in flight as the server has workers, nothing recorded: its events per second,
CPU per event and per-event latency; and DBOS alone (bench/queue_floor.py: the same number of
workflows of three steps that wait the target's delay, queued as serve queues its runs, nothing
of ours, on the same database: SQLite, or with ``--database-url`` that PostgreSQL), the floor
under any served run that checkpoints its requests. Linux only; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import sqlalchemy as sa
from benchlib import (
    CONTACT,
    ROOT,
    TOKEN,
    Signer,
    connector_cmd,
    cpu_seconds,
    free_port,
    peak_rss_mb,
    percentile,
    postgres_database,
    start_target,
    wait_http,
)

HERE = Path(__file__).parent
LOCATION = "ve9EPM428h8vShlRW1KT"
# room enough never to wait, in the shape of the real limit (a 10 s window, a day counter)
ROOMY = "ghl:burst=1000000000/10,ghl:day=1000000000/86400"


async def plain_loop(base: str, n: int, inflight: int) -> tuple[float, float, list[float]]:
    """The same three requests per event in asyncio/httpx, ``inflight`` events at once (a client
    of one connection each: httpx's shared pool costs more CPU than the requests as it grows):
    events per second, CPU ms per event (this process), per-event seconds."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Version": "2021-07-28"}
    cid = CONTACT["contact"]["id"]
    took: list[float] = []
    clients = [
        httpx.AsyncClient(base_url=base + "/", timeout=60, limits=httpx.Limits(max_connections=1))
        for _ in range(inflight)
    ]

    async def once(client: httpx.AsyncClient) -> None:
        t0 = time.perf_counter()
        c = (await client.get(f"contacts/{cid}", headers=headers)).json()
        (await client.get(f"contacts/{cid}/tasks", headers=headers)).json()
        body = {
            "title": f"Welcome ({c['contact']['firstName']})",
            "dueDate": "2026-12-01T10:00:00Z",
            "completed": False,
        }
        answer = await client.post(f"contacts/{cid}/tasks", headers=headers, json=body)
        assert answer.status_code == 201
        took.append(time.perf_counter() - t0)

    async def lane(client: httpx.AsyncClient, count: int) -> None:
        for _ in range(count):
            await once(client)

    try:
        await asyncio.gather(*(lane(client, 2) for client in clients))  # warm up
        took.clear()
        cpu0, t0 = time.process_time(), time.perf_counter()
        per, extra = divmod(n, inflight)
        await asyncio.gather(*(lane(c, per + (i < extra)) for i, c in enumerate(clients)))
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        for client in clients:
            await client.aclose()
    return n / wall, cpu * 1000 / n, took


async def send_webhooks(
    url: str, signer: Signer, first: int, n: int, senders: int, rate: float
) -> tuple[dict[str, float], list[float]]:
    """POST ``n`` webhooks; returns each event's contact id -> wall time sent, and the answer
    latencies (seconds)."""
    sent: dict[str, float] = {}
    answers: list[float] = []
    # a client of one connection per sender: httpx's shared pool costs CPU as it grows
    clients = [httpx.AsyncClient(timeout=120) for _ in range(senders)]

    async def post(client: httpx.AsyncClient, i: int) -> None:
        contact = f"c{i:019d}"
        body = {
            "type": "ContactCreate",
            "locationId": LOCATION,
            "id": contact,
            "webhookId": str(uuid.uuid4()),
        }
        raw, headers = signer.sign(body)
        sent[contact] = time.time()
        t0 = time.perf_counter()
        answer = await client.post(url, content=raw, headers=headers)
        answers.append(time.perf_counter() - t0)
        assert answer.status_code == 200, answer.text

    try:
        if rate > 0:
            tasks = []
            start = time.perf_counter()
            for k in range(n):
                delay = start + k / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                client = clients[k % senders]
                tasks.append(asyncio.create_task(post(client, first + k)))
            await asyncio.gather(*tasks)
        else:
            queue = list(range(first, first + n))

            async def lane(client: httpx.AsyncClient) -> None:
                while queue:
                    await post(client, queue.pop(0))

            await asyncio.gather(*(lane(client) for client in clients))
    finally:
        for client in clients:
            await client.aclose()
    return sent, answers


def dbos_queue_floor(
    n: int, delay: float, senders: int, workers: int, database_url: str = ""
) -> dict[str, float] | None:
    """bench/queue_floor.py's figures for the same load, on the same database (None when it
    fails: said on stderr)."""
    cmd = [sys.executable, str(HERE / "queue_floor.py"), "--json", "--events", str(n)]
    cmd += ["--delay", str(delay), "--senders", str(senders), "--workers", str(workers)]
    if database_url:
        cmd += ["--database-url", database_url]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        print(f"bench/queue_floor.py failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None


def finished_runs(engine: sa.Engine) -> dict[str, float]:
    """Contact id -> the wall time its run finished, for every finished run."""
    out: dict[str, float] = {}
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT trigger_json, finished_at FROM runs WHERE status IN ('succeeded', 'failed')"
        ).all()
    for trigger, finished in rows:
        contact = json.loads(trigger).get("id")
        out[contact] = datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=0.25, help="the target's answer delay, s")
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--senders", type=int, default=8, help="webhooks in flight at once")
    parser.add_argument("--rate", type=float, default=0.0, help="events/s, open loop (0: off)")
    parser.add_argument("--workers", type=int, default=64, help="connector serve --workers")
    parser.add_argument("--database-url", default="", help="CONNECTOR_DATABASE_URL (PostgreSQL)")
    parser.add_argument(
        "--warm",
        type=int,
        default=20,
        help="events run before the measurement; after the plain loop's quiet spell DBOS polls"
        " the run queue slowly for about 20 s (docs/scaling.md): 300 or more measures the"
        " steady pace",
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="FILE",
        help="run the server under py-spy (GIL samples, raw stacks to FILE; py-spy must be installed)",
    )
    args = parser.parse_args()
    if args.database_url:  # a new database for this measurement, dropped afterwards
        with postgres_database(args.database_url) as url:
            return measure(args, url)
    return measure(args, "")


def measure(args: argparse.Namespace, database_url: str) -> int:
    """Serve, load and measure (on ``database_url``, else SQLite); print the figures."""
    n = max(args.events, 1)
    warm = max(args.warm, 1)

    home = tempfile.TemporaryDirectory()
    serve_port = free_port()
    target, base = start_target(args.delay)
    signer = Signer()
    env = {
        **os.environ,
        "CONNECTOR_HOME": home.name,
        "GHL_TOKEN": TOKEN,
        "GHL_BASE_URL": base,
        "GHL_LOCATION_ID": LOCATION,
        "GHL_WEBHOOK_PUBLIC_KEY": signer.public_pem,
        "CONNECTOR_RATE_LIMITS": ROOMY,
    }
    if database_url:
        env["CONNECTOR_DATABASE_URL"] = database_url
    profiler: subprocess.Popen[bytes] | None = None
    server = subprocess.Popen(
        [
            *connector_cmd(),
            "serve",
            str(HERE / "recipes" / "webhook_three_steps.yaml"),
            "--port",
            str(serve_port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{serve_port}/webhooks/ghl"
    try:
        wait_http(f"http://127.0.0.1:{serve_port}/healthz", server, "connector serve")
        if args.profile:  # attached by pid, so the server's own CPU and memory are still measured
            spy = ["py-spy", "record", "--gil", "-r", "250", "-f", "raw", "-o", args.profile]
            profiler = subprocess.Popen(
                [*spy, "--pid", str(server.pid)],
                stdout=subprocess.DEVNULL,
            )

        plain_rate, plain_cpu, plain_took = asyncio.run(plain_loop(base, n, args.workers))

        from connector.persistence.database import database_url as url_of

        # a plain engine: its reads take no lock the server's writers wait for
        db = sa.create_engine(url_of({"CONNECTOR_HOME": home.name, **env}))
        asyncio.run(send_webhooks(url, signer, 10**9, warm, args.senders, 0.0))  # warm up
        while len(finished_runs(db)) < warm:
            time.sleep(0.1)
        cpu0, t0 = cpu_seconds(server.pid), time.time()
        sent, answers = asyncio.run(send_webhooks(url, signer, 0, n, args.senders, args.rate))
        while True:
            done = finished_runs(db)
            if len(done) >= n + warm or server.poll() is not None:
                break
            time.sleep(0.05)
        cpu = cpu_seconds(server.pid) - cpu0
        last = max(done[c] for c in sent if c in done)
        served_rate = n / (last - t0)
        rss = peak_rss_mb(server.pid)
        to_finish = [done[c] - t for c, t in sent.items() if c in done]
        with db.connect() as conn:
            failed = conn.exec_driver_sql("SELECT count(*) FROM runs WHERE status != 'succeeded'")
            failures = int(failed.scalar() or 0)
        db.dispose()
    finally:
        for proc in (server, target):
            proc.send_signal(signal.SIGTERM)
        for proc in (server, target):
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if profiler is not None:  # py-spy writes its file once the server has exited
            profiler.wait(timeout=60)
        home.cleanup()

    floor = dbos_queue_floor(n, args.delay, args.senders, args.workers, database_url)
    load = f"{args.rate:g} events/s" if args.rate > 0 else f"{args.senders} senders"
    print(
        f"{n} events, target delay {args.delay * 1000:.0f} ms, {load}, --workers {args.workers},"
        f" {'PostgreSQL' if database_url else 'SQLite'}"
    )
    print(
        f"{'plain asyncio/httpx':<22} {plain_rate:8.1f} events/s  {plain_cpu:6.2f} ms CPU/event"
        f"  per event p50 {percentile(plain_took, 0.5) * 1000:7.0f} ms"
        f"  p99 {percentile(plain_took, 0.99) * 1000:7.0f} ms  ({args.workers} in flight)"
    )
    if floor is not None:
        print(
            f"{'DBOS alone, queued':<22} {floor['events_per_s']:8.1f} events/s"
            f"  {floor['cpu_ms_per_event']:6.2f} ms CPU/event  (3 steps waiting the target's delay,"
            " nothing of ours: bench/queue_floor.py)"
        )
    ms = [a * 1000 for a in answers]
    print(
        f"{'connector serve':<22} {served_rate:8.1f} events/s  {cpu * 1000 / n:6.2f} ms CPU/event"
        f"  webhook to finished p50 {percentile(to_finish, 0.5) * 1000:7.0f} ms"
        f"  p99 {percentile(to_finish, 0.99) * 1000:7.0f} ms"
    )
    print(
        f"{'':<22} webhook answer p50 {percentile(ms, 0.5):.1f} ms  p99 {percentile(ms, 0.99):.1f}"
        f" ms  peak RSS {rss:.0f} MB  failed runs {failures}"
    )
    print(
        f"served / plain: {served_rate / plain_rate:.3f}x the events/s,"
        f" {cpu * 1000 / n / plain_cpu:.1f}x the CPU per event"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
