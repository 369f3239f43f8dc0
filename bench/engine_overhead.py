"""Engine overhead: a 5-step recipe through the engine vs the same 5 requests with plain httpx.

Both talk to the same local HTTP server (a real socket, keep-alive), in the same process and run.
Prints the median time of each over N repetitions and their ratio (target: at most 1.2x).

    .venv/bin/python bench/engine_overhead.py [--repeat 300] [--store]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yaml
from benchlib import CONTACT, TOKEN, JSONHandler, serve

from connector.apps.plugins import default_registry
from connector.language.plan import plan_recipe
from connector.persistence.runs import RunStore
from connector.runtime.engine import Engine
from connector.sending.http import Redactor, make_clients

HERE = Path(__file__).parent


class Handler(JSONHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/tasks"):
            self.reply(200, {"tasks": []})
        elif self.path.endswith("/notes"):
            self.reply(200, {"notes": []})
        else:
            self.reply(200, CONTACT)

    def do_POST(self) -> None:
        self.read_body()
        if self.path.endswith("/tasks"):
            self.reply(201, {"task": {"id": "task123"}})
        else:
            self.reply(201, {"tags": ["bench"]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument(
        "--store", action="store_true", help="record every run in a SQLite run store"
    )
    args = parser.parse_args()

    server = serve(Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}/ghl"
    env = {"GHL_TOKEN": TOKEN, "GHL_BASE_URL": base}

    registry, _ = default_registry()
    data = yaml.safe_load((HERE / "recipes" / "five_steps.yaml").read_text())
    plan = plan_recipe(data, registry)
    clients = make_clients([registry.apps["ghl"]], env)
    tmp = tempfile.TemporaryDirectory()
    store = RunStore.open(Path(tmp.name)) if args.store else None
    engine = Engine(
        registry=registry, clients=clients, env=env, recorder=store, redactor=Redactor([TOKEN])
    )
    event = dict(plan.sample or {})

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
        t = plain.post(
            f"/contacts/{cid}/tasks",
            headers=headers,
            json={
                "title": f"Call back ({c['contact']['firstName']})",
                "dueDate": "2026-12-01T10:00:00Z",
                "completed": False,
            },
        ).json()
        plain.post(
            f"/contacts/{cid}/tags", headers=headers, json={"tags": ["bench", t["task"]["id"]]}
        ).json()
        plain.get(f"/contacts/{cid}/notes", headers=headers).json()

    def through_engine() -> None:
        record = engine.run(plan, event)
        assert record.status == "succeeded", record.error

    for _ in range(20):  # warm both paths
        baseline()
        through_engine()
    base_times, engine_times = [], []
    for _ in range(args.repeat):  # interleave, so both see the same machine
        t0 = time.perf_counter()
        baseline()
        t1 = time.perf_counter()
        through_engine()
        t2 = time.perf_counter()
        base_times.append(t1 - t0)
        engine_times.append(t2 - t1)
    b = statistics.median(base_times) * 1000
    e = statistics.median(engine_times) * 1000
    print(f"repetitions: {args.repeat}, run store: {'on' if store else 'off'}")
    print(f"plain httpx, 5 requests:  median {b:.3f} ms")
    print(f"engine, 5-step recipe:    median {e:.3f} ms")
    print(f"ratio engine/plain: {e / b:.3f}x  (target <= 1.2x)")
    server.shutdown()
    if store:
        store.close()


if __name__ == "__main__":
    main()
