"""The world of the `connector serve` subprocess tests (test_serve_chaos, test_scale_out): a seed
with people for four flows, the webhook deliveries that start them (duplicates included), a
`connector serve` child process, and the checks of both systems' state afterwards.

SERVE_CHAOS_EVENTS scales it (default 300)."""

from __future__ import annotations

import base64
import contextlib
import itertools
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

from connector.persistence.database import open_database
from connector.persistence.runs import RunStore
from connector.persistence.tables import runs_table
from connector.records import RunRecord
from connector.sandbox.server import RunningSandbox
from tests import workloads
from tests.runtime.e2e_support import LOCAL
from tests.serve.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "connector" / "sandbox" / "seed.yaml"
N = int(os.environ.get("SERVE_CHAOS_EVENTS", "300"))
EACH = N // 4
TWICE = 0.10
TAG = "connecteam-task-completed"
# the flows these events start (flow 7's poll would add runs of its own: not served here)
SERVED = (
    "create-contact-from-connecteam",
    "create-task-from-connecteam",
    "tag-contact-on-activity",
    "archive-user-on-contact-delete",
)
# the sandbox's limits are scaled up for these tests (CHAOS_LIMITS); so are the budgets
SCALED = {
    "CONNECTOR_RETRY_BASE_DELAY": "0.05",
    "CONNECTOR_RATE_LIMITS": "ghl:burst=100/1,connecteam:minute=6000/60",
}
Delivery = tuple[str, bytes, dict[str, str]]  # (kind, body, headers)


def gid(prefix: str, i: int) -> str:
    return f"{prefix}{i:04d}".ljust(20, "x")


def seed() -> dict[str, Any]:
    data = yaml.safe_load(SEED.read_text())
    location = data["ghl"]["locations"][0]["id"]
    contacts, users = data["ghl"]["contacts"], data["connecteam"]["users"]
    for i in range(EACH):
        for kind, base in (("task", 70000), ("tag", 50000), ("arch", 60000)):
            contacts.append(
                {
                    "id": gid(kind, i),
                    "locationId": location,
                    "firstName": f"{kind.title()}{i}",
                    "lastName": "Served",
                    "email": f"{kind}{i}@serve.example",
                    "dateAdded": "2024-03-01T15:04:05.000Z",
                }
            )
            fields = [] if kind == "arch" else [{"customFieldId": 501, "value": gid(kind, i)}]
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
    return data


def deliveries(sandbox: RunningSandbox) -> list[Delivery]:
    """(path, body, headers) of every delivery, duplicates included, in a shuffled order."""
    location = sandbox.env["GHL_LOCATION_ID"]

    def connecteam(event: str, item: dict[str, Any]) -> Delivery:
        body = {
            "requestId": str(uuid.uuid4()),
            "company": "serve-chaos",
            "activityType": "Task" if event.startswith("task") else "User",
            "eventType": event,
            "eventTimestamp": int(time.time()),
            "data": [item],
        }
        return "connecteam", json.dumps(body).encode(), {"content-type": "application/json"}

    def ghl(payload: dict[str, Any]) -> Delivery:
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
            ghl({"type": "ContactDelete", "id": gid("arch", i), "email": f"arch{i}@serve.example"})
        )
    rng = random.Random(7)
    twice = rng.sample(out, int(len(out) * TWICE))
    every = out + twice
    rng.shuffle(every)
    return every


def signed(sandbox: RunningSandbox, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    raw = json.dumps({**body, "timestamp": now}, separators=(",", ":")).encode()
    key = sandbox.app.webhooks._ed25519  # the sandbox's GoHighLevel signing key
    signature = base64.b64encode(key.sign(raw)).decode()
    return raw, {"content-type": "application/json", "x-ghl-signature": signature}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`connector serve` as a child process, killed and started again at will."""

    def __init__(
        self, env: dict[str, str], port: int, logs: Path, recipes: list[Path] | None = None
    ) -> None:
        self.env, self.port, self.logs = env, port, logs
        self.recipes = logs / "recipes"
        self.recipes.mkdir()
        for path in recipes or [workloads.recipe(name) for name in SERVED]:
            (self.recipes / path.name).write_text(path.read_text())
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
            return LOCAL.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
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


def post(sandbox: RunningSandbox, env: dict[str, str], item: Delivery, port: int) -> int | None:
    """One attempt at a delivery to the server on ``port``: its status, None when no answer
    came. A GoHighLevel one is signed as it goes (a fresh timestamp, the same webhookId)."""
    kind, raw, headers = item
    if kind == "ghl":
        raw, headers = signed(sandbox, json.loads(raw))
        path = "/webhooks/ghl"
    else:
        path = f"/webhooks/connecteam/{env['CONNECTEAM_WEBHOOK_SECRET']}"
    try:
        answer = LOCAL.post(f"http://127.0.0.1:{port}{path}", content=raw, headers=headers)
    except httpx.HTTPError:
        return None
    return answer.status_code


class Balancer:
    """Deliveries spread round-robin over the serving processes alive, as a load balancer
    spreads them, each sent again until a 2xx; :meth:`killing` kills one process half-way."""

    def __init__(self, sandbox: RunningSandbox, env: dict[str, str], servers: list[Server]):
        self.sandbox, self.env = sandbox, env
        self.alive = list(servers)
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self.answered = 0

    def deliver(self, item: Delivery) -> None:
        while True:
            with self._lock:
                server = self.alive[next(self._turn) % len(self.alive)]
            if post(self.sandbox, self.env, item, server.port) == 200:
                break
            time.sleep(0.1)
        with self._lock:
            self.answered += 1

    @contextlib.contextmanager
    def killing(self, victim: Server, after: int, timeout: float = 900) -> Iterator[None]:
        """Kill ``victim`` (SIGKILL, not started again) once ``after`` deliveries were answered
        and it is running a run (one for the others to recover: a process that keeps up may
        have none at the moment the half is reached), while the block delivers; afterwards,
        that it is dead. A run is the victim's while DBOS says it is PENDING under the victim's
        executor id, and running while its record says so (its workflow ends a moment after)."""
        engine = sa.create_engine(self.env["CONNECTOR_DATABASE_URL"])
        in_flight = sa.text(
            "SELECT count(*) FROM dbos.workflow_status w JOIN runs r ON r.id = w.workflow_uuid"
            " WHERE w.status = 'PENDING' AND w.executor_id = :victim AND r.status = 'running'"
        )

        def busy() -> bool:
            with engine.connect() as conn:
                found = conn.execute(in_flight, {"victim": victim.env["CONNECTOR_EXECUTOR_ID"]})
                return bool(found.scalar())

        def killer() -> None:
            wait_for(lambda: self.answered >= after, timeout=timeout, every=0.01)
            wait_for(busy, timeout=timeout, every=0.01)
            with self._lock:
                self.alive.remove(victim)
            victim.kill()

        chaos = threading.Thread(target=killer, daemon=True)
        chaos.start()
        yield
        chaos.join(timeout=timeout)
        engine.dispose()
        assert victim.proc is not None and victim.proc.returncode is not None


def ended_runs(env: dict[str, str], timeout: float, total: int = 4 * EACH) -> list[RunRecord]:
    """The runs, once there is one per distinct event (``total``) and none is running."""
    engine = open_database(env).engine
    counts = sa.select(
        sa.func.count(), sa.func.count().filter(runs_table.c.status == "running")
    ).select_from(runs_table)

    def all_ended() -> bool:  # counted by the database: the records are read once, at the end
        with engine.connect() as conn:
            made, running = conn.execute(counts).one()
        return bool(made == total and running == 0)

    wait_for(all_ended, timeout=timeout, every=0.5)
    return RunStore(engine).list(limit=100_000)


def check_effects(sandbox: RunningSandbox) -> None:
    """Every event's effect is in the sandbox, once."""
    state = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()
    contacts = state["ghl"]["contacts"]
    tasks = [t for ts in state["ghl"]["tasks"].values() for t in ts]
    users = {u["userId"]: u for u in state["connecteam"]["users"]}
    for i in range(EACH):
        made = [c for c in contacts if c.get("email") == f"new{i}@serve.example"]
        assert len(made) == 1, (i, made)
        titled = [t for t in tasks if t.get("title") == f"Served task {i}"]
        assert [t["contactId"] for t in titled] == [gid("task", i)], (i, titled)
        [tagged] = [c for c in contacts if c["id"] == gid("tag", i)]
        assert TAG in tagged["tags"], (i, tagged["tags"])
        assert users[60000 + i]["isArchived"] is True, i
