"""A backfill: every contact of a sandbox location, page by page, through the durable runtime.

    .venv/bin/python bench/backfill.py [--contacts 100000] [--check]

The sandbox (in this process, rate limits off) holds ``--contacts`` generated contacts in one
location. Two processes of their own walk them, one after the other, in the same run:

- baseline: the same pages (``GET /contacts/``, 100 a page, ``startAfter``/``startAfterId``) with
  one ``httpx.Client``, each contact's id kept in a set: the floor of any walk;
- durable: ``bench/recipes/backfill.yaml`` through ``Runtime.run`` on SQLite: ``pages:`` on the
  list, each page a checkpointed request, and a ``foreach`` that links each contact in the
  id-link store (a checkpoint per contact), the pages streamed to it.

Prints each one's wall time and peak RSS (``VmHWM`` of the process) and the durable walk's
ratios to the baseline. ``--check`` exits 1 when the durable walk's peak RSS is 150 MB or more
or when it did not link every contact. The rate budget of the runtime is off (at GoHighLevel's
100 requests per 10 s, 1,000 pages take 100 s whatever the runtime does). Not a test: timings
depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECIPE = ROOT / "bench" / "recipes" / "backfill.yaml"
LIMIT_MB = 150.0


def _peak_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (``ru_maxrss`` keeps the high-water mark of the
    parent a child was forked from, the sandbox's 100,000 contacts, across ``exec``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def baseline_worker() -> dict[str, float]:
    import httpx

    env = os.environ
    seen: set[str] = set()
    params: dict[str, str | int] = {"locationId": env["GHL_LOCATION_ID"], "limit": 100}
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {env['GHL_TOKEN']}", "Version": "2021-07-28"}
    pages = 0
    with httpx.Client(base_url=env["GHL_BASE_URL"], headers=headers) as client:
        while True:
            body = client.get("/contacts/", params=params).raise_for_status().json()
            pages += 1
            seen.update(c["id"] for c in body["contacts"])
            meta = body.get("meta") or {}
            if not meta.get("startAfterId"):
                break
            params.update(startAfter=meta["startAfter"], startAfterId=meta["startAfterId"])
    return {"seconds": time.perf_counter() - started, "items": len(seen), "pages": pages}


def durable_worker() -> dict[str, float]:
    import sqlalchemy as sa

    from connector.apps.plugins import default_registry
    from connector.persistence.links import links_table
    from connector.runtime.durable import Runtime, RuntimeOptions
    from connector.runtime.prepare import prepare_text

    env = dict(os.environ)
    registry, _ = default_registry([], home=Path(env["CONNECTOR_HOME"]))
    text = RECIPE.read_text()
    prepared = prepare_text(str(RECIPE), text, registry)
    assert prepared.plan is not None, prepared.problems
    with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
        runtime.keep_recipe(prepared.plan, text)
        started = time.perf_counter()
        record = runtime.run(prepared.plan, {})
        seconds = time.perf_counter() - started
        with runtime.db.engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(links_table)
            linked = conn.execute(count).scalar() or 0
    summary = record.steps[0].output or {}
    return {
        "seconds": seconds,
        "items": float(linked),
        "pages": float(summary.get("pages", 0)),
        "status": 1.0 if record.status == "succeeded" else 0.0,
    }


def _worker(kind: str) -> int:
    result = baseline_worker() if kind == "baseline" else durable_worker()
    result["peak_mb"] = _peak_mb()
    print(json.dumps(result), flush=True)
    return 0


def _spawn(kind: str, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"the {kind} walk failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--worker", choices=("baseline", "durable"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    sys.path.insert(0, str(ROOT))
    from connector.sandbox.ratelimit import RateLimitConfig
    from connector.sandbox.seeding import seed_contacts
    from connector.sandbox.server import start_in_thread

    with (
        start_in_thread(limits=RateLimitConfig(enabled=False)) as sandbox,
        tempfile.TemporaryDirectory() as home,
    ):
        state = sandbox.state
        started = time.perf_counter()
        seed_contacts(state, state.default_location_id, args.contacts)
        lid = state.default_location_id
        total = sum(1 for c in state.ghl.contacts.values() if c["locationId"] == lid)
        print(f"seeded {args.contacts:,} contacts in {time.perf_counter() - started:.2f} s")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "CONNECTEAM_"))},
            **sandbox.env,
            "CONNECTOR_HOME": home,
        }
        env.pop("CONNECTOR_DATABASE_URL", None)
        base = _spawn("baseline", env)
        durable = _spawn("durable", env)
    for name, result in (("baseline (httpx)", base), ("durable (pages: + foreach)", durable)):
        print(
            f"{name:28} {result['seconds']:8.2f} s  {result['items'] / result['seconds']:9.0f}"
            f" contacts/s  peak RSS {result['peak_mb']:6.1f} MB  {int(result['pages'])} pages"
            f"  {int(result['items']):,} of {total:,} contacts"
        )
    print(
        f"durable / baseline: time {durable['seconds'] / base['seconds']:.1f}x,"
        f" peak RSS {durable['peak_mb'] / base['peak_mb']:.2f}x"
        f" (limit {LIMIT_MB:.0f} MB: {'ok' if durable['peak_mb'] < LIMIT_MB else 'OVER'})"
    )
    ok = durable["peak_mb"] < LIMIT_MB and durable["items"] == total and durable["status"] == 1.0
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
