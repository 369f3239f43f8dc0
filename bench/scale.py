"""Scale-out: runs per second of 1, 2 and 4 `connector serve` processes on PostgreSQL, 1 on SQLite.

    .venv/bin/python bench/scale.py [--events 300] [--workers 8] [--senders 8]
        [--postgres postgresql://USER@HOST:PORT/DB] [--skip-postgres]

Each configuration (sqlite x1; postgresql x1, x2, x4) gets a fresh database: a temporary
CONNECTOR_HOME for SQLite, a new database for PostgreSQL, made on the server that ``--postgres``
(else CONNECTOR_TEST_POSTGRES_URL) names and dropped afterwards. ``eval "$(.ci/postgres start)"``
starts a throwaway one. Each process is a ``connector serve bench/recipes/webhook_three_steps.yaml``
child (two GoHighLevel reads and a write per ``ContactCreate``) with its own
CONNECTOR_EXECUTOR_ID, against a local HTTP server that answers at once, with request budgets
roomy enough never to wait. Once every process answers ``/healthz`` (start-up is not timed),
``--senders`` threads POST signed (Ed25519) webhooks, each with its own ``webhookId`` and contact,
round-robin over the processes as a load balancer would; the clock runs from the first POST until
the run store in the shared database records the last run as finished. The floor, measured in the
same run, is the same three requests per event in a plain httpx loop. Prints runs per second of
each configuration, its ratio to the floor and each PostgreSQL figure over the one-process one;
and, to read them by, the webhooks answered per second while they were sent, the serve
processes' CPU per run and when idle, how busy the whole machine was (PostgreSQL and the senders
share it) and how many runs each process logged. Exits 1 when a run failed or a configuration
could not be measured. Not a test: timings depend on the machine (N processes on fewer than N
cores cannot go N times as fast).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import sqlalchemy as sa
from benchlib import (
    ROOT,
    TOKEN,
    ContactTasksHandler,
    Signer,
    plain_rate,
    postgres_database,
    serve,
)

HERE = Path(__file__).parent
RECIPE = HERE / "recipes" / "webhook_three_steps.yaml"
ROOMY_LIMITS = ((10**9, 1.0, "burst"), (10**9, 86_400.0, "day"))
LOCATION = "ve9EPM428h8vShlRW1KT"
CONFIGS = (("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4))
WARM_PER_PROCESS = 5  # events each process runs before the clock starts
IDLE_SECONDS = 3.0  # how long the processes' CPU is measured with nothing to do
STALL_SECONDS = 120.0  # no run finishing for this long: the configuration is given up
POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"
ENDED = ("succeeded", "failed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Webhooks(Signer):
    """Signed GoHighLevel ``ContactCreate`` deliveries, a contact and a ``webhookId`` each."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._lock = threading.Lock()
        self.retries = 0

    def body(self, i: int) -> dict[str, str]:
        return {
            "type": "ContactCreate",
            "locationId": LOCATION,
            "id": f"c{i:019d}",  # a contact per event (identical events would be one burst)
            "webhookId": str(uuid.uuid4()),
        }

    def post(self, url: str, body: dict[str, str]) -> None:
        """Deliver ``body`` to ``url`` until it is answered 200 (signed afresh each attempt, the
        same ``webhookId``, as GoHighLevel sends again), a few attempts at most."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = httpx.Client(timeout=30)
        for attempt in range(5):
            raw, headers = self.sign(body)
            try:
                answer = client.post(url, content=raw, headers=headers)
                if answer.status_code == 200:
                    return
                why = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as exc:
                why = repr(exc)
            with self._lock:
                self.retries += 1
            if attempt == 4:
                raise RuntimeError(f"webhook to {url} not accepted: {why}")
            time.sleep(0.1)


class Server:
    """A `connector serve` child process, its output in ``log``."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/webhooks/ghl"
        self.log = log
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "connector", "serve", str(RECIPE),
                 "--port", str(self.port), "--workers", str(workers), "--grace", "2"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"connector serve exited {self.proc.returncode}: {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"connector serve not healthy after {timeout:.0f} s")
            time.sleep(0.1)

    def cpu(self) -> float:
        """CPU seconds the process has used (0.0 where there is no /proc)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def runs_logged(self) -> int:
        return sum(1 for line in self.text().splitlines() if " recipe=" in line)

    def troubles(self) -> list[str]:
        """The log's warning and error lines (tracebacks included)."""
        levels = ("WARNING", "ERROR", "CRITICAL")  # uvicorn's lines start with theirs
        marks = (" WARNING ", " ERROR ", " CRITICAL ", "Traceback")
        return [
            line
            for line in self.text().splitlines()
            if line.startswith(levels) or any(m in line for m in marks)
        ]


def stop_all(servers: list[Server], timeout: float = 20.0) -> None:
    """SIGTERM every server; SIGKILL those not ended within ``timeout`` seconds."""
    for server in servers:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for server in servers:
        try:
            server.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait(timeout=60)


def machine_busy() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot, from /proc/stat ((0, 0) else)."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return 0.0, 0.0
    ticks = [int(v) for v in line.split()[1:]]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


@dataclass
class Result:
    name: str
    processes: int
    rate: float | None = None  # runs finished per second
    answered: float | None = None  # webhooks answered per second, while they were sent
    server_cpu_ms: float | None = None  # the serve processes' CPU per timed run
    busy: float | None = None  # share of the machine's CPU in use while timed
    idle: float | None = None  # the share of a core each process uses with nothing to do
    failed: list[str] = field(default_factory=list)
    error: str | None = None
    shares: list[int] = field(default_factory=list)  # runs each process logged (warm-up too)
    troubles: list[str] = field(default_factory=list)
    retries: int = 0


def ended(engine: sa.Engine) -> dict[str, int]:
    """Runs in the run store, by status."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT status, COUNT(*) FROM runs GROUP BY status")).all()
    return {str(status): int(count) for status, count in rows}


def wait_ended(engine: sa.Engine, total: int, servers: list[Server]) -> dict[str, int]:
    """Once ``total`` runs have ended: the runs by status. Gives up when a process exits or no
    run ends for STALL_SECONDS."""
    last, since = -1, time.monotonic()
    while True:
        counts = ended(engine)
        done = sum(counts.get(s, 0) for s in ENDED)
        if done >= total:
            return counts
        if done != last:
            last, since = done, time.monotonic()
        elif time.monotonic() - since > STALL_SECONDS:
            raise RuntimeError(f"stalled: {done} of {total} runs ended ({counts})")
        for server in servers:
            if server.proc.poll() is not None:
                raise RuntimeError(f"a connector serve exited {server.proc.returncode} mid-run")
        time.sleep(0.05)


def run_config(
    result: Result, env: dict[str, str], args: argparse.Namespace, hooks: Webhooks, logs: Path
) -> None:
    """Start ``result.processes`` servers on the database ``env`` names, time ``args.events``
    webhooks to finished runs, stop the servers. Fills in ``result``."""
    from connector.persistence.database import close_all, open_database

    n = max(args.events, 1)
    servers: list[Server] = []
    try:
        for i in range(result.processes):
            # one after the other: each makes or checks the schema as it starts
            penv = {**env, "CONNECTOR_EXECUTOR_ID": f"bench-{i}"}
            servers.append(Server(penv, args.workers, logs / f"{result.name}-{i}.log"))
            servers[-1].wait_healthy()
        engine = open_database(env).engine
        urls = [s.url for s in servers]
        warm = WARM_PER_PROCESS * len(servers)
        bodies = [hooks.body(i) for i in range(n + warm)]
        turn = itertools.cycle(urls)
        jobs = [(next(turn), body) for body in bodies]
        with ThreadPoolExecutor(args.senders) as pool:
            list(pool.map(lambda job: hooks.post(*job), jobs[:warm]))
            wait_ended(engine, warm, servers)
            idle0 = sum(s.cpu() for s in servers)
            time.sleep(IDLE_SECONDS)
            result.idle = (sum(s.cpu() for s in servers) - idle0) / IDLE_SECONDS / len(servers)
            hooks.retries = 0
            cpu0, machine0 = sum(s.cpu() for s in servers), machine_busy()
            t0 = time.perf_counter()
            list(pool.map(lambda job: hooks.post(*job), jobs[warm:]))
            result.answered = n / (time.perf_counter() - t0)
            counts = wait_ended(engine, warm + n, servers)
            result.rate = n / (time.perf_counter() - t0)
            cpu1, machine1 = sum(s.cpu() for s in servers), machine_busy()
        result.server_cpu_ms = (cpu1 - cpu0) * 1000 / n
        if machine1[1] > machine0[1]:
            result.busy = (machine1[0] - machine0[0]) / (machine1[1] - machine0[1])
        result.retries = hooks.retries
        if counts.get("failed"):
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("SELECT error FROM runs WHERE status = 'failed' LIMIT 3")
                ).all()
            result.failed = [str(r[0]) for r in rows] + [f"({counts['failed']} failed in all)"]
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        close_all()
        stop_all(servers)
        result.shares = [s.runs_logged() for s in servers]
        result.troubles = [f"[{i}] {t}" for i, s in enumerate(servers) for t in s.troubles()]
        if result.error and servers:
            result.troubles.append(f"[{len(servers) - 1}] tail: {servers[-1].tail()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300, help="timed events per configuration")
    parser.add_argument("--workers", type=int, default=8, help="runs each process executes at once")
    parser.add_argument("--senders", type=int, default=8, help="threads POSTing webhooks")
    parser.add_argument(
        "--postgres", metavar="URL", help=f"PostgreSQL server to make databases on ({POSTGRES_ENV})"
    )
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    n = max(args.events, 1)

    server_url = args.postgres or os.environ.get(POSTGRES_ENV, "")
    skipped = None
    if args.skip_postgres:
        skipped = "--skip-postgres"
    elif not server_url:
        skipped = (
            f"no PostgreSQL server: pass --postgres URL or set {POSTGRES_ENV} "
            '(eval "$(.ci/postgres start)" starts a throwaway one)'
        )
    else:
        try:
            with psycopg.connect(server_url.replace("+psycopg", "", 1), connect_timeout=5):
                pass
        except Exception as exc:
            skipped = "cannot connect to the PostgreSQL server: " + " ".join(str(exc).split())

    upstream = serve(ContactTasksHandler)
    base = f"http://127.0.0.1:{upstream.server_address[1]}/ghl"
    hooks = Webhooks()
    env = {
        **os.environ,
        "GHL_TOKEN": TOKEN,
        "GHL_BASE_URL": base,
        "GHL_LOCATION_ID": LOCATION,
        "GHL_WEBHOOK_PUBLIC_KEY": hooks.public_pem,
        "CONNECTOR_RATE_LIMITS": ",".join(f"ghl:{nm}={c}/{w:g}" for c, w, nm in ROOMY_LIMITS),
    }
    for name in ("CONNECTOR_DATABASE_URL", "CONNECTOR_EXECUTOR_ID", "CONNECTOR_PLUGINS_DIR"):
        env.pop(name, None)

    before = machine_busy()
    time.sleep(IDLE_SECONDS)
    after = machine_busy()
    load = (after[0] - before[0]) / (after[1] - before[1]) if after[1] > before[1] else None
    floor = plain_rate(base, n)
    results: list[Result] = []
    try:
        for dialect, count in CONFIGS:
            if dialect == "postgresql" and skipped:
                continue
            result = Result(f"{dialect} x{count}", count)
            results.append(result)
            with tempfile.TemporaryDirectory(prefix="bench-scale-") as home:
                cenv = {**env, "CONNECTOR_HOME": home}
                logs = Path(home) / "logs"
                logs.mkdir()
                if dialect == "sqlite":
                    run_config(result, cenv, args, hooks, logs)
                else:
                    with postgres_database(server_url) as url:
                        run_config(
                            result, {**cenv, "CONNECTOR_DATABASE_URL": url}, args, hooks, logs
                        )
            print(f"  done: {result.name}", file=sys.stderr, flush=True)
    finally:
        upstream.shutdown()

    print(
        f"events: {n} per configuration (+{WARM_PER_PROCESS} per process to warm up), "
        f"senders: {args.senders}, workers: {args.workers} per process, cores: {os.cpu_count()}"
        + (f", machine busy before: {load:.0%}" if load is not None else "")
    )
    print(f"plain loop (3 requests per event): {floor:8.1f} runs/s")
    print()
    pg1 = next((r.rate for r in results if r.name == "postgresql x1"), None)
    print(
        f"{'configuration':<16}{'runs/s':>9}{'/ floor':>10}{'/ pg x1':>10}"
        f"{'answers/s':>11}{'cpu ms/run':>12}{'busy':>7}{'idle':>7}   runs per process"
    )
    for r in results:
        if r.rate is None:
            print(f"{r.name:<16}{'-':>9}{'-':>10}{'-':>10}   {r.error}")
            continue
        vs = f"{r.rate / pg1:.2f}x" if r.name.startswith("postgresql") and pg1 else ""
        busy = f"{r.busy:.0%}" if r.busy is not None else "-"
        idle = f"{r.idle:.0%}" if r.idle is not None else "-"
        shares = "/".join(str(s) for s in r.shares)
        print(
            f"{r.name:<16}{r.rate:9.1f}{r.rate / floor:9.3f}x{vs:>10}"
            f"{r.answered or 0:11.1f}{r.server_cpu_ms or 0:12.1f}{busy:>7}{idle:>7}   {shares}"
        )
    print(
        "\nanswers/s: webhooks answered per second while they were sent\n"
        "cpu ms/run: the serve processes' CPU per timed run\n"
        "busy: the machine's CPU in use while timed (PostgreSQL, the senders, anything else)\n"
        "idle: the share of a core each serve process used with nothing to do"
    )
    if skipped:
        print(f"postgresql rows skipped: {skipped}")
    bad = False
    for r in results:
        if r.retries:
            print(
                f"{r.name}: {r.retries} webhook deliveries were answered other than 200 "
                "and sent again"
            )
        if r.failed:
            bad = True
            print(f"{r.name}: runs failed: {r.failed}")
        if r.error:
            bad = True
        if r.troubles:
            print(f"{r.name}: {len(r.troubles)} warning/error lines in the serve logs, the first:")
            for line in r.troubles[:5]:
                print(f"    {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
