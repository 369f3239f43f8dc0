"""CPU of an idle `connector serve`: what a server costs when nothing happens.

    .venv/bin/python bench/idle.py [--seconds 60] [--workers 8] [--database-url URL]

Starts `connector serve bench/recipes/webhook_three_steps.yaml` in a temporary CONNECTOR_HOME
(SQLite unless ``--database-url``), waits until it answers ``/healthz`` and a few seconds more
(start-up is not idle), then reads its CPU time (user + system, every thread) from
``/proc/PID/stat`` at the start and the end of ``--seconds`` with nothing sent to it. Beside it,
in the same run and for the same time, a process of DBOS alone: launched on its own SQLite file
with one queue polled at DBOS's default interval (1 s), nothing queued; the floor of any server
on DBOS. Prints both as milliseconds of CPU per second and % of one core (target: under 2 %).
Linux only; not a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from benchlib import ROOT, connector_cmd, cpu_seconds, free_port

HERE = Path(__file__).parent
TARGET = 2.0  # % of one core, at most

DBOS_ALONE = textwrap.dedent(
    """
    import sys, time
    from dbos import DBOS
    DBOS(config={"name": "idle", "system_database_url": "sqlite:///" + sys.argv[1]})
    DBOS.launch()
    DBOS.register_queue("idle")
    print("ready", flush=True)
    time.sleep(3600)
    """
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to measure")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start-up")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--database-url", default="", help="CONNECTOR_DATABASE_URL (PostgreSQL)")
    args = parser.parse_args()

    home = tempfile.TemporaryDirectory()
    port = free_port()
    env = {
        **os.environ,
        "CONNECTOR_HOME": home.name,
        "GHL_TOKEN": "idle-bench-token",
        "GHL_LOCATION_ID": "ve9EPM428h8vShlRW1KT",
    }
    if args.database_url:
        env["CONNECTOR_DATABASE_URL"] = args.database_url
    cmd = [
        *connector_cmd(),
        "serve",
        str(HERE / "recipes" / "webhook_three_steps.yaml"),
        "--port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    server = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    alone = subprocess.Popen(
        [sys.executable, "-c", DBOS_ALONE, str(Path(home.name) / "alone.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"connector serve did not start (exit {server.poll()})")
            time.sleep(0.2)
        assert alone.stdout is not None and alone.stdout.readline().strip() == "ready"
        time.sleep(args.settle)
        t0 = time.monotonic()
        c_server, c_alone = cpu_seconds(server.pid), cpu_seconds(alone.pid)
        time.sleep(args.seconds)
        took = time.monotonic() - t0
        served = (cpu_seconds(server.pid) - c_server) * 1000 / took
        floor = (cpu_seconds(alone.pid) - c_alone) * 1000 / took
    finally:
        for proc in (server, alone):
            proc.send_signal(signal.SIGTERM)
        for proc in (server, alone):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        home.cleanup()
    print(f"idle for {took:.0f} s, after {args.settle:.0f} s of settling")
    print(f"{'connector serve':<28} {served:7.1f} ms CPU/s  {served / 10:5.2f} % of a core")
    print(
        f"{'DBOS alone (one queue, 1 s)':<28} {floor:7.1f} ms CPU/s  {floor / 10:5.2f} % of a core"
    )
    verdict = "ok" if served / 10 < TARGET else "OVER"
    print(f"target: under {TARGET:g} % of a core  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
