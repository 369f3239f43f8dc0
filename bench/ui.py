"""The run history page at scale: the list at 100,000 runs, a run with 500 ``foreach`` items.

    .venv/bin/python bench/ui.py [--runs 100000] [--items 500] [--repeat 20]

A fresh SQLite database under a temporary CONNECTOR_HOME is filled fast, by direct inserts in
one transaction: ``--runs`` runs (90% succeeded, 8% failed, 2% waiting, over 8 recipes and a
month), each with one id it touched (``run_terms``, 100 runs per contact id, as the store writes
them). One more run is recorded through the run store as the engine records one: three steps,
the last a ``foreach`` of ``--items`` items, each with its request and response. The page is
then asked for, in process through Starlette's test client (routing, the database, templates
and the whole HTML, no network), ``--repeat`` times each after two that warm up; the median is
printed with its target:

- ``GET /`` (the newest 50 and the counts by status), a page 1,000 pages deep (keyset), a
  status filter, a recipe filter and a search by contact id: each under 200 ms;
- ``GET /ui/runs/ID`` for the run of ``--items`` items: under 300 ms.

The baselines, measured in the same run, are what ``connector runs list --json`` and ``runs show
--json`` do for the same data (``RunStore.list(limit=50)``, ``RunStore.get`` and the record as
JSON); each figure is also printed as a ratio to its baseline. Exits 1 when a target is missed.
Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from connector.apps.plugins import default_registry
from connector.persistence.database import close_all
from connector.persistence.tables import metadata
from connector.records import RunRecord, StepRecord
from connector.runtime.durable import Runtime
from connector.ui import mount

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

RECIPES = [f"recipe-{n}" for n in range(8)]
LIST_TARGET_MS = 200.0
RUN_TARGET_MS = 300.0


def fill(engine: sa.Engine, count: int) -> tuple[str, str]:
    """``count`` runs with a term each, by direct inserts; a contact id and a cursor deep in."""
    runs, terms = metadata.tables["runs"], metadata.tables["run_terms"]
    rng = random.Random(7)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    rows, term_rows = [], []
    for i in range(count):
        at = (start + timedelta(seconds=i * 26)).isoformat(timespec="milliseconds")
        at = at.replace("+00:00", "Z")
        roll = rng.random()
        status = "succeeded" if roll < 0.9 else "failed" if roll < 0.98 else "waiting"
        contact = f"contact{i % (count // 100 or 1):06d}"
        rows.append(
            {
                "id": f"run_{i:020d}",
                "recipe": RECIPES[i % len(RECIPES)],
                "recipe_hash": "ab" * 32,
                "recipe_path": "recipes/bench.yaml",
                "trigger_app": "ghl",
                "trigger_event": "ContactUpdate" if i % 3 else "ContactCreate",
                "trigger_json": json.dumps({"type": "ContactUpdate", "contactId": contact}),
                "person": f"Person {i % 997} Bench",
                "status": status,
                "dry_run": False,
                "sandbox": False,
                "started_at": at,
                "finished_at": at,
                "duration_ms": 40.0 + rng.random() * 100,
                "error": "step 'contact': HTTP 404: Contact not found"
                if status == "failed"
                else None,
            }
        )
        term_rows.append({"term": contact, "run_id": rows[-1]["id"], "started_at": at})
    with engine.begin() as conn:
        conn.execute(sa.insert(runs), rows)
        conn.execute(sa.insert(terms), term_rows)
        conn.exec_driver_sql("ANALYZE")
    deep = rows[-1 - 50 * 1000] if count > 50 * 1000 else rows[0]
    return "contact000042", f"{deep['started_at']}~{deep['id']}"


def big_run(runtime: Runtime, items: int) -> str:
    """A run recorded through the run store: two reads and a ``foreach`` of ``items``."""
    run = RunRecord(
        id="run_bench_foreach_500",
        recipe="recipe-0",
        recipe_hash="ab" * 32,
        recipe_path="recipes/bench.yaml",
        trigger_app="connecteam",
        trigger_event="user_created",
        trigger={"eventType": "user_created", "data": [{"userId": 9001, "email": "a@b.co"}]},
        started_at="2026-12-31T23:59:59.000Z",
    )
    store = runtime.store
    store.run_started(run)
    contact = {"contact": {"id": "ocQHyuzHvysMo5N5VsXc", "email": "a@b.co", "tags": ["x"] * 5}}
    steps = [
        StepRecord(id="contact", action="ghl.get-contact", status="succeeded", method="GET",
                   url="https://services.leadconnectorhq.com/contacts/ocQHyuzHvysMo5N5VsXc",
                   status_code=200, output=contact, attempts=1,
                   request_headers={"Authorization": "Bearer [redacted]", "Version": "2021-07-28"}),
        StepRecord(id="tasks", action="ghl.get-all-tasks", status="succeeded", method="GET",
                   url="https://services.leadconnectorhq.com/contacts/ocQHyuzHvysMo5N5VsXc/tasks",
                   status_code=200, output={"tasks": []}, attempts=1),
        StepRecord(id="notes", action="connecteam.create-note", status="succeeded", items=[
            StepRecord(id="notes", action="connecteam.create-note", status="succeeded", index=i,
                       method="POST", url=f"https://api.connecteam.com/users/v1/users/{9001 + i}/notes",
                       status_code=201, attempts=1 + (i % 7 == 0),
                       waits=[{"seconds": 1.0, "reason": "429 Retry-After"}] if i % 7 == 0 else [],
                       request_body={"text": f"Note {i} from GoHighLevel: call back about the quote"},
                       output={"data": {"noteId": 50_000 + i, "userId": 9001 + i}})
            for i in range(items)
        ]),
    ]  # fmt: skip
    for step in steps:
        run.steps.append(step)
        store.step_finished(run, step)
    run.status = "succeeded"
    store.run_finished(run)
    return run.id


def median_ms(func: Callable[[], object], repeat: int) -> float:
    for _ in range(2):
        func()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="connector-bench-ui-") as home:
        registry, _ = default_registry([], home=Path("/nonexistent"))
        runtime = Runtime(registry, {"CONNECTOR_HOME": home})
        t0 = time.perf_counter()
        contact, deep = fill(runtime.db.engine, args.runs)
        big = big_run(runtime, args.items)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        app = Starlette()
        ui = mount(app, runtime, {})
        ui.access.host = "127.0.0.1"
        store = runtime.store
        failed = []
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:

            def get(path: str) -> Callable[[], object]:
                def once() -> object:
                    answer = client.get(path)
                    assert answer.status_code == 200, (path, answer.status_code)
                    return answer

                return once

            list_floor = median_ms(lambda: store.list(limit=50), args.repeat)
            run_floor = median_ms(lambda: json.dumps(store.get(big).to_json()), args.repeat)  # type: ignore[union-attr]
            cases = [
                ("list: newest 50 + counts", "/", LIST_TARGET_MS, list_floor),
                ("list: 1,000 pages deep", f"/?before={deep}", LIST_TARGET_MS, list_floor),
                ("list: status=failed", "/?status=failed", LIST_TARGET_MS, list_floor),
                ("list: recipe=recipe-3", "/?recipe=recipe-3", LIST_TARGET_MS, list_floor),
                (f"search: q={contact}", f"/?q={contact}", LIST_TARGET_MS, list_floor),
                ("queue (failed, waiting)", "/ui/queue", LIST_TARGET_MS, list_floor),
                (f"run: {args.items} foreach items", f"/ui/runs/{big}", RUN_TARGET_MS, run_floor),
            ]
            size = len(client.get(f"/ui/runs/{big}").content)
            print(
                f"\n{args.runs:,} runs; the run page of {args.items} items is {size / 1024:,.0f} KiB"
            )
            print(f"baseline runs list --json (50):  {list_floor:7.1f} ms")
            print(f"baseline runs show --json:       {run_floor:7.1f} ms\n")
            print(f"{'page':<32}{'median':>9}{'target':>9}{'x base':>9}")
            for name, path, target, floor in cases:
                ms = median_ms(get(path), args.repeat)
                ok = ms < target
                if not ok:
                    failed.append(name)
                print(
                    f"{name:<32}{ms:7.1f} ms{target:6.0f} ms{ms / floor:8.1f}x  {'ok' if ok else 'SLOW'}"
                )
        runtime.close()
        close_all()
    if failed:
        print(f"\nmissed the target: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
