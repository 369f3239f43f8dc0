"""`connector serve` through faults and crashes: 300 webhook events of four kinds (Connecteam
user_created and task_published and task_completed, GoHighLevel ContactDelete), 10 % of them
delivered twice, to a `connector serve` process that is killed with SIGKILL and started again
three times while the sandbox answers 20 % of requests with a fault. Senders retry every
delivery until it is answered 200, as the vendors do. Afterwards every event's effect is in the
sandbox exactly once, and every run succeeded; the last process stops cleanly on SIGTERM.

SERVE_CHAOS_EVENTS scales it (default 300)."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.db import close_all, open_database
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.wiring import sandbox_env
from connector.store import RunStore
from tests.runtime.e2e_support import set_faults
from tests.serve.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "connector" / "sandbox" / "seed.yaml"
N = int(os.environ.get("SERVE_CHAOS_EVENTS", "300"))
EACH = N // 4
TWICE = 0.10
KILLS = 3
FAULTS = [  # 1 - 0.968**7: 20.4 % of requests meet a fault
    "429:0.032,retry_after=1",
    "500:0.032",
    "502:0.032",
    "503:0.032",
    "slow:0.032,delay=0.3",
    "drop-before:0.032",
    "drop-after:0.032",
]
LIMITS = RateLimitConfig(ghl_burst_max=100, ghl_burst_interval_ms=1000, connecteam_minute=6000)
TAG = "connecteam-task-completed"
# the flows these events start (flow 7's poll would add runs of its own: not served here)
SERVED = (
    "create-contact-from-connecteam",
    "create-task-from-connecteam",
    "tag-contact-on-activity",
    "archive-user-on-contact-delete",
)


def _gid(prefix: str, i: int) -> str:
    return f"{prefix}{i:04d}".ljust(20, "x")


def _seed() -> dict[str, Any]:
    seed = yaml.safe_load(SEED.read_text())
    location = seed["ghl"]["locations"][0]["id"]
    contacts, users = seed["ghl"]["contacts"], seed["connecteam"]["users"]
    for i in range(EACH):
        for kind, base in (("task", 70000), ("tag", 50000), ("arch", 60000)):
            contacts.append(
                {
                    "id": _gid(kind, i),
                    "locationId": location,
                    "firstName": f"{kind.title()}{i}",
                    "lastName": "Served",
                    "email": f"{kind}{i}@serve.example",
                    "dateAdded": "2024-03-01T15:04:05.000Z",
                }
            )
            fields = [] if kind == "arch" else [{"customFieldId": 501, "value": _gid(kind, i)}]
            users.append(
                {
                    "userId": base + i,
                    "firstName": f"{kind.title()}{i}",
                    "lastName": "Served",
                    "email": f"{kind}{i}@serve.example",
                    "phoneNumber": f"+1555{base + i:07d}",
                    "userType": "user",
                    "customFields": fields,
                }
            )
    return seed


def _deliveries(sandbox: RunningSandbox) -> list[tuple[str, bytes, dict[str, str]]]:
    """(path, body, headers) of every delivery, duplicates included, in a shuffled order."""
    location = sandbox.env["GHL_LOCATION_ID"]

    def connecteam(event: str, item: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        body = {
            "requestId": str(uuid.uuid4()),
            "company": "serve-chaos",
            "activityType": "Task" if event.startswith("task") else "User",
            "eventType": event,
            "eventTimestamp": int(time.time()),
            "data": [item],
        }
        return "connecteam", json.dumps(body).encode(), {"content-type": "application/json"}

    def ghl(payload: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
        # signed when sent (a fresh timestamp each attempt, the same webhookId)
        body = {**payload, "locationId": location, "webhookId": str(uuid.uuid4())}
        return "ghl", json.dumps(body).encode(), {}

    out = []
    for i in range(EACH):
        out.append(
            connecteam(
                "user_created",
                {
                    "userId": 40000 + i,
                    "firstName": f"New{i}",
                    "lastName": "Served",
                    "email": f"new{i}@serve.example",
                    "phoneNumber": f"+1555{40000 + i:07d}",
                    "userType": "user",
                },
            )
        )
        out.append(
            connecteam(
                "task_published",
                {
                    "id": f"st-{i}",
                    "taskBoardId": 7001,
                    "title": f"Served task {i}",
                    "userIds": [70000 + i],
                    "status": "published",
                    "dueDate": 1710950400,
                },
            )
        )
        out.append(
            connecteam(
                "task_completed",
                {
                    "id": f"tc-{i}",
                    "taskBoardId": 7001,
                    "userIds": [50000 + i],
                    "status": "completed",
                },
            )
        )
        out.append(
            ghl({"type": "ContactDelete", "id": _gid("arch", i), "email": f"arch{i}@serve.example"})
        )
    rng = random.Random(7)
    twice = rng.sample(out, int(len(out) * TWICE))
    every = out + twice
    rng.shuffle(every)
    return every


def _signed(sandbox: RunningSandbox, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    raw = json.dumps({**body, "timestamp": now}, separators=(",", ":")).encode()
    key = sandbox.app.webhooks._ed25519  # the sandbox's GoHighLevel signing key
    signature = base64.b64encode(key.sign(raw)).decode()
    return raw, {"content-type": "application/json", "x-ghl-signature": signature}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`connector serve` as a child process, killed and started again at will."""

    def __init__(self, env: dict[str, str], port: int, logs: Path) -> None:
        self.env, self.port, self.logs = env, port, logs
        self.recipes = logs / "recipes"
        self.recipes.mkdir()
        for name in SERVED:
            (self.recipes / f"{name}.yaml").write_text(
                (ROOT / "recipes" / f"{name}.yaml").read_text()
            )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.logs / f"serve-{self.starts}.log", "wb")  # noqa: SIM115 - the child's
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connector", "serve", str(self.recipes),
             "--port", str(self.port), "--workers", "8"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_for(self._healthy, timeout=120, every=0.1)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"connector serve exited: {self.proc.returncode}")
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=60)

    def terminate(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[RunningSandbox, Server, dict[str, str]]]:
    with start_in_thread(seed=_seed(), limits=LIMITS) as sandbox:
        env = {
            **os.environ,
            **sandbox_env(sandbox),
            "CONNECTOR_HOME": str(tmp_path / "home"),
            "CONNECTOR_RETRY_BASE_DELAY": "0.05",
            # the sandbox's limits are scaled up for the test; so are the budgets
            "CONNECTOR_RATE_LIMITS": "ghl:burst=100/1,connecteam:minute=6000/60",
        }
        env.pop("CONNECTOR_DATABASE_URL", None)
        server = Server(env, _free_port(), tmp_path)
        yield sandbox, server, env
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
        sandbox.app.close()
    close_all()


def test_every_event_once_through_faults_duplicates_and_kills(
    world: tuple[RunningSandbox, Server, dict[str, str]],
) -> None:
    sandbox, server, env = world
    deliveries = _deliveries(sandbox)
    server.start()
    set_faults(sandbox, *FAULTS, seed=3)
    answered = 0
    lock = threading.Lock()
    stop_at = [len(deliveries) * k // (KILLS + 1) for k in range(1, KILLS + 1)]
    restarting = threading.Event()
    restarting.set()  # set: the server is up

    def deliver(item: tuple[str, bytes, dict[str, str]]) -> None:
        nonlocal answered
        kind, raw, headers = item
        path = (
            f"/webhooks/connecteam/{env['CONNECTEAM_WEBHOOK_SECRET']}"
            if kind == "connecteam"
            else "/webhooks/ghl"
        )
        while True:  # as the vendors do: again until a 2xx
            restarting.wait()
            if kind == "ghl":
                raw, headers = _signed(sandbox, json.loads(item[1]))
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{server.port}{path}",
                    content=raw,
                    headers=headers,
                    timeout=30,
                )
                if answer.status_code == 200:
                    break
                assert answer.status_code >= 500, answer.text  # never a refusal of a good event
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        with lock:
            answered += 1

    def killer() -> None:
        for mark in stop_at:
            wait_for(lambda: answered >= mark, timeout=600, every=0.01)  # noqa: B023
            restarting.clear()
            server.kill()
            server.start()
            restarting.set()

    chaos = threading.Thread(target=killer, daemon=True)
    chaos.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(deliver, deliveries))
    chaos.join(timeout=600)
    assert server.starts == KILLS + 1

    expected = 4 * EACH  # one run per distinct event
    store = RunStore(open_database(env).engine)

    def all_ended() -> bool:
        runs = store.list(limit=100_000)
        return len(runs) == expected and all(r.status != "running" for r in runs)

    wait_for(all_ended, timeout=900, every=0.5)
    set_faults(sandbox)
    assert server.terminate() == 0, (server.logs / f"serve-{server.starts}.log").read_text()[-2000:]

    runs = store.list(limit=100_000)
    failed = [(r.recipe, r.error) for r in runs if r.status != "succeeded"]
    assert failed == []
    by_recipe: dict[str, int] = {}
    for run in runs:
        by_recipe[run.recipe] = by_recipe.get(run.recipe, 0) + 1
    assert by_recipe == {
        "create-contact-from-connecteam": EACH,
        "create-task-from-connecteam": EACH,
        "tag-contact-on-activity": EACH,
        "archive-user-on-contact-delete": EACH,
    }

    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    contacts = state["ghl"]["contacts"]
    tasks = [t for ts in state["ghl"]["tasks"].values() for t in ts]
    users = {u["userId"]: u for u in state["connecteam"]["users"]}
    for i in range(EACH):
        made = [c for c in contacts if c.get("email") == f"new{i}@serve.example"]
        assert len(made) == 1, (i, made)
        titled = [t for t in tasks if t.get("title") == f"Served task {i}"]
        assert [t["contactId"] for t in titled] == [_gid("task", i)], (i, titled)
        [tagged] = [c for c in contacts if c["id"] == _gid("tag", i)]
        assert TAG in tagged["tags"], (i, tagged["tags"])
        assert users[60000 + i]["isArchived"] is True, i
