"""A reconcile of N pairs against the sandbox with the vendors' rate limits off: peak memory,
requests sent against the least a reconcile can send, and wall time against a plain httpx walk
of the same pages; and what 10,000 pairs take at the vendors' real rate limits.

    .venv/bin/python bench/reconcile.py [--pairs 100000] [--drift 0.01]

(BENCH_PROFILE=FILE: the reconcile process runs under cProfile, its statistics in FILE.)

The sandbox gets PAIRS contacts and PAIRS users, the same people, put straight into its state,
and the sync's database gets their pairs as a sync that ran before would have left them (the
setup, not measured). DRIFT of the pairs then changed in one app with no webhook: GoHighLevel for
half, Connecteam for the other half. `connector sync reconcile` runs in a process of its own
(peak RSS is its own: VmHWM, read while it runs); the sandbox counts every request it gets,
so the figures are the vendors' view. The least a reconcile can send is every page of both
walks plus one write per drifted pair. The plain walk is an httpx loop that reads the same pages
and does nothing with them. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchlib import peak_rss_mb  # noqa: E402
from connector.builtins import connecteam as ct_app  # noqa: E402
from connector.builtins import ghl as ghl_app  # noqa: E402
from connector.builtins.records import WALK_PAGE  # noqa: E402
from connector.persistence.database import open_database  # noqa: E402
from connector.persistence.sync import PairState, SyncStore  # noqa: E402
from connector.persistence.tables import links_table, sync_state_table  # noqa: E402
from connector.sandbox.ratelimit import RateLimitConfig  # noqa: E402
from connector.sandbox.seeding import add_contact, add_user  # noqa: E402
from connector.sandbox.server import RunningSandbox, start_in_thread  # noqa: E402
from connector.sandbox.state import iso, load_seed  # noqa: E402
from connector.sync.progress import duration, estimate  # noqa: E402

PROFILE = (
    ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
)
DECLARATION = ROOT / "tests" / "sync" / "people.sync.yaml"
T0 = 1_704_067_200
NO_BUDGET = "ghl:burst=100000000/1,ghl:day=100000000/1,connecteam:minute=100000000/1,connecteam:day=100000000/1"
REAL = {
    "ghl": [(c, w) for c, w, _ in ghl_app.RATE_LIMITS],
    "connecteam": [(c, w) for c, w, _ in ct_app.RATE_LIMITS],
}


class Counted:
    """Every /ghl and /connecteam request the sandbox gets, by method and kind."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        inner = sandbox.app.faults

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            path = str(scope.get("path", ""))
            if scope["type"] == "http" and not path.startswith("/_sandbox"):
                app = "ghl" if path.startswith("/ghl") else "connecteam"
                method = str(scope["method"])
                write = method in ("PUT", "DELETE") or (
                    method == "POST" and not path.endswith("/search")
                )
                with self.lock:
                    self.seen[f"{app}:{'write' if write else 'read'}"] += 1
            await inner(scope, receive, send)

        sandbox.app.faults = counted  # type: ignore[assignment]

    def take(self) -> Counter[str]:
        with self.lock:
            out, self.seen = self.seen, Counter()
        return out


def populate(sandbox: RunningSandbox, env: dict[str, str], pairs: int, drift: float) -> int:
    """PAIRS people on both sides, paired in the sync's database; DRIFT of them then changed on
    one side. Returns how many drifted."""
    state = sandbox.state
    location = state.default_location_id
    engine = open_database(env).engine
    SyncStore(engine)  # the tables are there
    every = max(1, round(1 / drift)) if drift > 0 else 0
    drifted = 0
    batch: list[PairState] = []

    def flush() -> None:
        # many rows at once, as SyncStore.put_in and LinkStore.put_in would leave them
        if not batch:
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with engine.begin() as conn:
            conn.execute(
                sa.insert(links_table),
                [
                    {
                        "kind": "contact",
                        "ghl_id": p.ghl_id,
                        "connecteam_id": p.connecteam_id,
                        "ghl_id_is_int": 0,
                        "connecteam_id_is_int": 0,
                        "meta": "{}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for p in batch
                ],
            )
            conn.execute(
                sa.insert(sync_state_table),
                [
                    {
                        "kind": "contact",
                        "ghl_id": p.ghl_id,
                        "connecteam_id": p.connecteam_id,
                        "base_json": json.dumps(p.base, sort_keys=True),
                        "ghl_seen_at": p.seen["ghl"],
                        "connecteam_seen_at": p.seen["connecteam"],
                        "version": 1,
                        "updated_at": now,
                    }
                    for p in batch
                ],
            )
        batch.clear()

    for n in range(pairs):
        person = {
            "firstName": f"Ben{n}",
            "lastName": f"Mark{n}",
            "email": f"bench{n}@example.org",
            "phone": f"+1555{n:07d}",
        }
        at = T0 + n % 86_400
        contact = add_contact(state, location, person, at=at)
        user = add_user(state, {**person, "phoneNumber": person["phone"]}, at=at)
        base = dict(person)
        batch.append(
            PairState(
                "contact",
                contact,
                str(user),
                base=base,
                seen={"ghl": float(at), "connecteam": float(at)},
                version=1,
            )
        )
        if every and n % every == every - 1:  # changed since, and no webhook said so
            drifted += 1
            with state.lock:
                if drifted % 2:
                    record = state.ghl.contacts[contact]
                    record["lastName"] = f"Drifted{n}"
                    record["dateUpdated"] = iso(at + 100_000)
                else:
                    row = state.ct.users[user]
                    row.update(lastName=f"Drifted{n}", modifiedAt=at + 100_000)
        if len(batch) >= 5_000:
            flush()
    flush()
    engine.dispose()
    return drifted


def plain_walk(sandbox: RunningSandbox) -> float:
    """Seconds an httpx loop takes to read every page of both walks, doing nothing with them."""
    env = sandbox.env
    ghl = httpx.Client(
        base_url=env["GHL_BASE_URL"],
        headers={"Authorization": f"Bearer {env['GHL_TOKEN']}", "Version": "2021-07-28"},
    )
    ct = httpx.Client(
        base_url=env["CONNECTEAM_BASE_URL"], headers={"X-API-KEY": env["CONNECTEAM_API_KEY"]}
    )
    started = time.perf_counter()
    after = None
    while True:
        body: dict[str, Any] = {
            "locationId": env["GHL_LOCATION_ID"],
            "pageLimit": WALK_PAGE,
            "sort": [{"field": "dateAdded", "direction": "asc"}],
        }
        if after:
            body["searchAfter"] = after
        found = ghl.post("/contacts/search", json=body).json()["contacts"]
        if len(found) < WALK_PAGE:
            break
        after = found[-1]["searchAfter"]
    offset = 0
    while True:
        params = {"userStatus": "active", "limit": WALK_PAGE, "offset": offset}
        users = ct.get("/users/v1/users", params=params).json()["data"]["users"]
        offset += len(users)
        if len(users) < WALK_PAGE:
            break
    took = time.perf_counter() - started
    ghl.close()
    ct.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100_000, help="pairs to reconcile")
    parser.add_argument("--drift", type=float, default=0.01, help="share of pairs changed")
    args = parser.parse_args()
    seed = load_seed()
    seed["ghl"]["contacts"] = []
    seed["connecteam"]["users"] = []
    seed["connecteam"]["task_boards"] = []
    with (
        tempfile.TemporaryDirectory() as home,
        start_in_thread(seed=seed, limits=RateLimitConfig(enabled=False)) as sandbox,
    ):
        env = {**sandbox.env, "CONNECTOR_HOME": home, "CONNECTOR_RATE_LIMITS": NO_BUDGET}
        started = time.perf_counter()
        drifted = populate(sandbox, env, args.pairs, args.drift)
        print(
            f"setup: {args.pairs:,} pairs, {drifted:,} drifted, {time.perf_counter() - started:.1f} s"
        )
        counted = Counted(sandbox)
        plain = plain_walk(sandbox)
        counted.take()

        started = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                *PROFILE,
                "-m",
                "connector",
                "sync",
                "reconcile",
                str(DECLARATION),
                "--json",
            ],
            env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = b"", b""

        def read() -> None:
            nonlocal out, err
            out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]

        reader = threading.Thread(target=read)
        reader.start()
        peak = [0.0]
        ended = threading.Event()

        def watch() -> None:  # VmHWM is the process's own (ru_maxrss counts the fork's parent)
            while not ended.wait(0.1):
                try:
                    peak[0] = max(peak[0], peak_rss_mb(proc.pid))
                except (OSError, ValueError):
                    return

        watcher = threading.Thread(target=watch)
        watcher.start()
        _, status, _usage = os.wait4(proc.pid, 0)
        ended.set()
        watcher.join()
        wall = time.perf_counter() - started
        reader.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, 1):
            sys.exit(f"the reconcile failed ({proc.returncode}): {err.decode()[-2000:]}")
        tally = json.loads(out)["syncs"]["people"]
        sent = counted.take()

    rss_mb = peak[0]
    pages = 2 * (args.pairs // WALK_PAGE + 1)  # the last page of each walk is a short one
    writes = sent["ghl:write"] + sent["connecteam:write"]
    least = pages + drifted
    total = sum(sent.values())
    print(
        f"reconcile: {wall:.1f} s wall, peak RSS {rss_mb:.0f} MB (goal < 200 MB); "
        f"updated {tally['updated']}, in sync {tally['in_sync']:,}, failed {tally['failed']}"
    )
    print(
        f"requests: {total:,} sent ({dict(sorted(sent.items()))}), least {least:,} "
        f"({pages:,} pages + {drifted:,} writes): {total / least:.2f}x; writes {writes:,}"
    )
    print(f"plain httpx walk of the same pages: {plain:.1f} s; reconcile/plain {wall / plain:.2f}x")
    per_pair = {
        app: (sent[f"{app}:read"] + sent[f"{app}:write"]) / args.pairs
        for app in ("ghl", "connecteam")
    }
    for pairs in (10_000,):
        need = {app: round(n * pairs) for app, n in per_pair.items()}
        print(
            f"{pairs:,} pairs at the vendors' rate limits (GoHighLevel 100/10 s and 200,000/day, "
            f"Connecteam 100/min and 10,000/day), {args.drift:.0%} drifted: {need} requests, "
            f"{duration(estimate(need, REAL))}"
        )
        first = {app: pairs // WALK_PAGE + 1 + pairs for app in ("ghl", "connecteam")}
        print(
            f"  an initial sync of {pairs:,} people on both sides (each: a look-up on the other "
            f"side, one back, about {first} requests): {duration(estimate(first, REAL))}"
        )


if __name__ == "__main__":
    main()
