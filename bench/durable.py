"""Durable runs per second: a 3-step recipe through the durable runtime vs the same requests in httpx.

    .venv/bin/python bench/durable.py [--runs 200] [--rounds 5] [--cli-runs 5] [--check]

Both sides talk to the same local HTTP server (a real socket, keep-alive, answers at once), in the
same process and run, interleaved run by run (in a shuffled order each time) so that all of them
see the same machine, however its load changes:

- durable: ``bench/recipes/three_steps.yaml`` (two reads, then a write) through ``Runtime.run`` on
  SQLite in a temporary CONNECTOR_HOME: a DBOS workflow per run, every request attempt a
  checkpoint, the write claimed in the effect journal, the rate budget reserved in the database
  for every request, the run recorded in the run store;
- plain: the same three requests with one ``httpx.Client``, nothing recorded;
- DBOS alone: a DBOS workflow of three steps that do nothing, on the same database settings, started
  the way ``Runtime.run`` starts a run: the floor of any runtime that checkpoints each request as a
  DBOS step, and so the best ratio such a runtime can reach against this server;
- DBOS + the 3 requests: the same workflow whose steps make the plain loop's requests, nothing
  else (no budget, no journal, no run store): what such a runtime costs before it does anything
  of its own.

The GoHighLevel budget keeps its shape (a sliding window of 10 s and a day counter, reserved as
the runtime reserves them, a few requests at a time) but gets room enough never to wait. Prints runs per second and CPU per run (the running
thread's CPU time, median) of each, and their ratios (target: DBOS alone's CPU per run at least
0.6x ours), ``Runtime.launch()`` / ``close()`` in this process, then the wall time of whole
``connector run recipes/pull-contact-on-select.yaml --sandbox`` processes (median of
``--cli-runs``) beside ``python -c pass`` and the import of the durable runtime. ``--check`` exits 1
when the ratio to DBOS alone misses the target. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from benchlib import TOKEN, ContactTasksHandler, connector_cmd, processes, serve

HERE = Path(__file__).parent
TARGET = 0.6  # CPU per run of DBOS alone (3 no-op steps) / CPU per run of ours, at least
ROOMY_LIMITS = ((10**9, 10.0, "burst"), (10**9, 86_400.0, "day"))


def timed(func: Callable[[], None], n: int, cpu: list[float] | None = None) -> list[float]:
    """Wall seconds of each of ``n`` calls; their CPU seconds (this thread's) go to ``cpu``."""
    times = []
    for _ in range(n):
        c0 = time.thread_time()
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.thread_time() - c0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each side per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--cli-runs", type=int, default=5, help="`connector run --sandbox` processes (0: none)"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile one more round of durable runs (Runtime.run and below), then print it",
    )
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 if ours is under {TARGET}x DBOS's floor"
    )
    args = parser.parse_args()
    runs, rounds = max(args.runs, 1), max(args.rounds, 1)

    server = serve(ContactTasksHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}/ghl"
    home = tempfile.TemporaryDirectory()
    env = {"GHL_TOKEN": TOKEN, "GHL_BASE_URL": base, "CONNECTOR_HOME": home.name}

    t0 = time.perf_counter()
    from connector.apps.plugins import default_registry
    from connector.runtime.durable import Runtime
    from connector.runtime.prepare import prepare

    imported = time.perf_counter() - t0
    from dbos import DBOS, SetWorkflowID

    @DBOS.workflow(name="bench.floor")
    def floor_workflow(steps: int) -> dict[str, Any]:
        """The least a durable run on DBOS does: a workflow, and a checkpoint per request."""
        for i in range(steps):
            DBOS.run_step({"name": f"nothing{i}"}, lambda: {"ok": None})
        return {"done": True}

    registry, _ = default_registry([], home=Path("/nonexistent"))
    registry.apps["ghl"] = dataclasses.replace(registry.apps["ghl"], rate_limits=ROOMY_LIMITS)
    prepared = prepare(HERE / "recipes" / "three_steps.yaml", registry)
    assert prepared.plan is not None, prepared.problems
    plan = prepared.plan
    event = dict(plan.sample or {})

    runtime = Runtime(registry, env)
    runtime.keep_recipe(plan, prepared.text)
    t0 = time.perf_counter()
    runtime.launch()
    launched = time.perf_counter() - t0

    plain = httpx.Client(base_url=base + "/")
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Version": "2021-07-28",
        "Accept": "application/json",
    }
    cid = event["contactId"]

    def baseline() -> None:
        c = plain.get(f"/contacts/{cid}", headers=headers).json()
        plain.get(f"/contacts/{cid}/tasks", headers=headers).json()
        title = f"{event['title']} ({c['contact']['firstName']})"
        body = {"title": title, "dueDate": "2026-12-01T10:00:00Z", "completed": False}
        response = plain.post(f"/contacts/{cid}/tasks", headers=headers, json=body)
        assert response.status_code == 201
        response.json()

    def durable() -> None:
        record = runtime.run(plan, event)
        assert record.status == "succeeded", record.error

    def floor() -> None:
        with SetWorkflowID(uuid.uuid4().hex):
            floor_workflow(3)

    @DBOS.workflow(name="bench.floor_requests")
    def requests_workflow() -> dict[str, Any]:
        """DBOS alone with the requests: each of the plain loop's requests a step of its own."""
        c = DBOS.run_step(
            {"name": "contact"}, lambda: plain.get(f"/contacts/{cid}", headers=headers).json()
        )
        DBOS.run_step(
            {"name": "tasks"}, lambda: plain.get(f"/contacts/{cid}/tasks", headers=headers).json()
        )
        title = f"{event['title']} ({c['contact']['firstName']})"
        body = {"title": title, "dueDate": "2026-12-01T10:00:00Z", "completed": False}
        return dict(
            DBOS.run_step(
                {"name": "task"},
                lambda: plain.post(f"/contacts/{cid}/tasks", headers=headers, json=body).json(),
            )
        )

    def floor_requests() -> None:
        with SetWorkflowID(uuid.uuid4().hex):
            requests_workflow()

    for func in (baseline, durable, floor, floor_requests):  # warm every path
        timed(func, 20)
    plain_times: list[float] = []
    durable_times: list[float] = []
    floor_times: list[float] = []
    requests_times: list[float] = []
    plain_cpu: list[float] = []
    durable_cpu: list[float] = []
    floor_cpu: list[float] = []
    requests_cpu: list[float] = []
    sides = [
        (baseline, plain_times, plain_cpu),
        (durable, durable_times, durable_cpu),
        (floor, floor_times, floor_cpu),
        (floor_requests, requests_times, requests_cpu),
    ]
    shuffle = random.Random(26).shuffle
    for _ in range(rounds * runs):
        shuffle(sides)
        for func, times, cpu in sides:
            times += timed(func, 1, cpu)
    if args.profile:  # Runtime.run executes the workflow in this thread: profile it here
        profile = cProfile.Profile()
        profile.enable()
        timed(durable, runs)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    t0 = time.perf_counter()
    runtime.close()
    closed = time.perf_counter() - t0
    plain.close()
    server.shutdown()

    plain_rate = len(plain_times) / sum(plain_times)
    durable_rate = len(durable_times) / sum(durable_times)
    floor_rate = len(floor_times) / sum(floor_times)
    ratio = durable_rate / plain_rate
    print(f"{rounds} rounds of {runs} runs each side; 3 requests a run (GET, GET, POST)")
    print(
        f"{'plain httpx':<24} {plain_rate:8.1f} runs/s  "
        f"median {statistics.median(plain_times) * 1000:7.3f} ms/run  (baseline)"
    )
    print(
        f"{'durable (Runtime.run)':<24} {durable_rate:8.1f} runs/s  "
        f"median {statistics.median(durable_times) * 1000:7.3f} ms/run"
    )
    print(
        f"{'DBOS alone, 3 no-op steps':<24} {floor_rate:8.1f} runs/s  "
        f"median {statistics.median(floor_times) * 1000:7.3f} ms/run  "
        f"(no request, nothing of ours: {floor_rate / plain_rate:.3f}x the baseline)"
    )
    cpu = {
        "plain httpx": statistics.median(plain_cpu) * 1000,
        "durable (Runtime.run)": statistics.median(durable_cpu) * 1000,
        "DBOS alone, 3 no-op steps": statistics.median(floor_cpu) * 1000,
        "DBOS + the 3 requests": statistics.median(requests_cpu) * 1000,
    }
    print("CPU per run (this thread's, median):")
    for label, ms in cpu.items():
        print(f"  {label:<26} {ms:7.3f} ms")
    floor_ratio = cpu["DBOS alone, 3 no-op steps"] / cpu["durable (Runtime.run)"]
    verdict = "ok" if floor_ratio >= TARGET else "UNDER"
    print(
        f"ratio durable/DBOS alone, by CPU per run: {floor_ratio:.3f}x"
        f"  (target >= {TARGET}x)  {verdict}"
    )
    print(
        f"ratio durable/plain: {ratio:.3f}x by runs/s,"
        f" {cpu['plain httpx'] / cpu['durable (Runtime.run)']:.3f}x by CPU per run"
    )
    print(f"ratio durable/DBOS alone, by runs/s: {durable_rate / floor_rate:.3f}x")
    print(
        "ratio DBOS + the 3 requests/DBOS alone, by CPU per run:"
        f" {cpu['DBOS alone, 3 no-op steps'] / cpu['DBOS + the 3 requests']:.3f}x"
        " (the best any runtime checkpointing each request as a DBOS step can reach)"
    )
    print(
        f"in this process: import {imported:.3f} s, Runtime.launch() {launched:.3f} s, "
        f"Runtime.close() {closed:.3f} s"
    )

    if args.cli_runs > 0:
        with tempfile.TemporaryDirectory() as cli_home:
            cli_env = {**os.environ, "CONNECTOR_HOME": cli_home}
            cli_env.pop("CONNECTOR_PLUGINS_DIR", None)
            rows = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "import connector.runtime.durable": [
                    sys.executable,
                    "-c",
                    "import connector.runtime.durable",
                ],
                "connector run pull-contact-on-select --sandbox": [
                    *connector_cmd(),
                    "run",
                    "recipes/pull-contact-on-select.yaml",
                    "--sandbox",
                ],
            }
            print(f"whole processes, median of {args.cli_runs}:")
            for label, cmd in rows.items():
                times = processes(cmd, args.cli_runs, cli_env)
                print(
                    f"  {label:<48} {statistics.median(times):6.3f} s  "
                    f"min {min(times):.3f} max {max(times):.3f}"
                )
    home.cleanup()
    return 1 if args.check and floor_ratio < TARGET else 0


if __name__ == "__main__":
    sys.exit(main())
