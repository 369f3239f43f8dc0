"""Requests per edit and sync runs per second of the two-way sync, beside the plain-loop floor.

    .venv/bin/python bench/sync.py [--pairs 40]

The sandbox (no faults, its rate limits off) gets PAIRS paired contacts and users. Then,
for each pair: one field edited in GoHighLevel and its event synced (the edit), Connecteam's
report of the sync's own write synced (the echo), and the same GoHighLevel event delivered again
(a duplicate). The sandbox counts every request it is sent, by kind of event, so the figures are
the vendors' view, not the runtime's own report. The floor is a plain httpx loop that makes the
least one edit needs without a durable runtime (read the other side, write the field), against
the same sandbox, in the same run. Not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.apps.plugins import default_registry  # noqa: E402
from connector.language.sync_spec import load_sync  # noqa: E402
from connector.language.template_env import template_env  # noqa: E402
from connector.persistence.database import close_all  # noqa: E402
from connector.records import new_run_id  # noqa: E402
from connector.runtime.durable import Runtime, RuntimeOptions  # noqa: E402
from connector.sandbox.ratelimit import RateLimitConfig  # noqa: E402
from connector.sandbox.server import start_in_thread  # noqa: E402
from connector.sync.engine import sync_job  # noqa: E402

DECLARATION = ROOT / "tests" / "sync" / "people.sync.yaml"


class Counter:
    """Counts the vendor requests the sandbox receives (a middleware in front of it)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reads = 0
        self.writes = 0

    def wrap(self, app: Any) -> Any:
        async def counted(scope: Any, receive: Any, send: Any) -> None:
            path = str(scope.get("path", ""))
            if scope["type"] == "http" and not path.startswith("/_sandbox"):
                with self.lock:
                    if scope["method"] == "GET" or path.endswith("/search"):
                        self.reads += 1
                    else:
                        self.writes += 1
            await app(scope, receive, send)

        return counted

    def take(self) -> tuple[int, int]:
        with self.lock:
            out = (self.reads, self.writes)
            self.reads = self.writes = 0
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()
    registry, _ = default_registry([], home=Path("/nonexistent"))
    spec, problems = load_sync(DECLARATION, registry)
    assert spec is not None, problems
    pair = spec.pair("contact")
    counter = Counter()
    off = RateLimitConfig(enabled=False)  # the vendors' limits would set the pace, not the sync
    with (
        start_in_thread(wrap=counter.wrap, limits=off) as sandbox,
        tempfile.TemporaryDirectory() as home,
    ):
        env = {**sandbox.env, "CONNECTOR_HOME": home}
        state = sandbox.state
        ghl = httpx.Client(
            base_url=f"{sandbox.url}/ghl",
            headers={"Authorization": f"Bearer {state.default_token}", "Version": "2021-07-28"},
        )
        ct = httpx.Client(
            base_url=f"{sandbox.url}/connecteam", headers={"X-API-KEY": state.default_api_key}
        )
        runtime = Runtime(registry, env, RuntimeOptions(budgets=False))
        runtime.keep_sync(spec)

        def sync(side: str, event: str, record: dict[str, Any]) -> None:
            record_id = pair.record(side).event_id(record) or ""
            job = sync_job(
                spec, pair, side, record_id, event, record,
                run_id=new_run_id(), env=template_env(env, registry.template_variables),
            )  # fmt: skip
            done = runtime.run_job(job)
            assert done.status == "succeeded", done.error

        people = []
        for n in range(args.pairs):
            email = f"bench.person{n}@example.org"
            phone = f"+1444777{n:04d}"
            contact = ghl.post(
                "/contacts/",
                json={"locationId": state.default_location_id, "firstName": f"P{n}",
                      "lastName": "Bench", "email": email, "phone": phone},
            ).json()["contact"]  # fmt: skip
            user = ct.post(
                "/users/v1/users",
                json=[{"userType": "user", "firstName": f"P{n}", "lastName": "Bench",
                       "email": email, "phoneNumber": phone}],
            ).json()["data"]["results"][0]  # fmt: skip
            sync("ghl", "ContactCreate", ghl.get(f"/contacts/{contact['id']}").json()["contact"])
            people.append((contact["id"], user["userId"]))
        counter.take()
        figures: dict[str, list[tuple[int, int]]] = {"edit": [], "echo": [], "duplicate": []}
        started = time.perf_counter()
        for n, (contact_id, user_id) in enumerate(people):
            sandbox.clock.advance(1)
            ghl.put(f"/contacts/{contact_id}", json={"lastName": f"Edited{n}"})
            edited = ghl.get(f"/contacts/{contact_id}").json()["contact"]
            counter.take()
            sync("ghl", "ContactUpdate", edited)
            figures["edit"].append(counter.take())
            user = ct.get("/users/v1/users", params={"userIds": [user_id], "userStatus": "all"})
            report = user.json()["data"]["users"][0]
            counter.take()
            sync("connecteam", "user_updated", report)
            figures["echo"].append(counter.take())
            sync("ghl", "ContactUpdate", edited)
            figures["duplicate"].append(counter.take())
        synced = time.perf_counter() - started
        runs = 3 * len(people)
        runtime.close()
        # the floor: the least an edit needs, in a plain loop (read the other side, write)
        started = time.perf_counter()
        for n, (_contact_id, user_id) in enumerate(people):
            ct.get("/users/v1/users", params={"userIds": [user_id], "userStatus": "all"})
            ct.put("/users/v1/users", json=[{"userId": user_id, "lastName": f"Plain{n}"}])
        floor = time.perf_counter() - started
        ghl.close()
        ct.close()
    close_all()
    print(f"{len(people)} pairs; each: one GoHighLevel edit, its echo, a duplicate")
    for kind, counts in figures.items():
        reads = statistics.mean(r for r, _ in counts)
        writes = statistics.mean(w for _, w in counts)
        print(f"  {kind:<10} requests per event: {reads:.2f} reads, {writes:.2f} writes")
    per_second = runs / synced
    floor_rate = len(people) / floor
    print(f"sync runs/s {per_second:.1f} (edits, echoes and duplicates)")
    print(f"plain loop (read + write per edit) {floor_rate:.1f} edits/s")
    print(f"ratio: {per_second / floor_rate:.3f}x the plain loop's rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
