"""Scale-out on PostgreSQL: three `connector serve` processes on one database share the events
(delivered round-robin, as a load balancer would), one is killed with SIGKILL half-way and not
started again, and the two left finish its runs (they find its executor gone by its liveness
lock and recover its runs through DBOS). Afterwards every event's effect is in the sandbox
exactly once and every run succeeded."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.db import close_all, open_database
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.wiring import sandbox_env
from connector.store import RunStore
from tests.serve.conftest import wait_for
from tests.serve.test_serve_chaos import (
    EACH,
    LIMITS,
    TAG,
    Server,
    _deliveries,
    _free_port,
    _gid,
    _seed,
    _signed,
)

PROCESSES = 3


@pytest.fixture()
def cluster(
    tmp_path: Path, postgres_database: Callable[[], str]
) -> Iterator[tuple[RunningSandbox, list[Server], dict[str, str]]]:
    url = postgres_database()
    with start_in_thread(seed=_seed(), limits=LIMITS) as sandbox:
        base = {
            **os.environ,
            **sandbox_env(sandbox),
            "CONNECTOR_DATABASE_URL": url,
            "CONNECTOR_RETRY_BASE_DELAY": "0.05",
            "CONNECTOR_RATE_LIMITS": "ghl:burst=100/1,connecteam:minute=6000/60",
        }
        servers = []
        for n in range(PROCESSES):
            logs = tmp_path / f"p{n}"
            logs.mkdir()
            env = {**base, "CONNECTOR_EXECUTOR_ID": f"serve-{n}"}
            servers.append(Server(env, _free_port(), logs))
        yield sandbox, servers, base
        for server in servers:
            if server.proc is not None and server.proc.poll() is None:
                server.kill()
        sandbox.app.close()
    close_all()


def test_the_survivors_finish_a_killed_process_runs(
    cluster: tuple[RunningSandbox, list[Server], dict[str, str]],
) -> None:
    sandbox, servers, env = cluster
    for server in servers:
        server.start()
    deliveries = _deliveries(sandbox)
    alive = list(servers)
    turn = itertools.cycle(range(PROCESSES))
    lock = threading.Lock()
    answered = 0

    def deliver(item: tuple[str, bytes, dict[str, str]]) -> None:
        nonlocal answered
        kind, raw, headers = item
        path = (
            f"/webhooks/connecteam/{env['CONNECTEAM_WEBHOOK_SECRET']}"
            if kind == "connecteam"
            else "/webhooks/ghl"
        )
        while True:  # round-robin over the processes alive, again until a 2xx
            with lock:
                server = alive[next(turn) % len(alive)]
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
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        with lock:
            answered += 1

    victim = servers[0]

    def killer() -> None:
        wait_for(lambda: answered >= len(deliveries) // 2, timeout=600, every=0.01)
        with lock:
            alive.remove(victim)
        victim.kill()

    chaos = threading.Thread(target=killer, daemon=True)
    chaos.start()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(deliver, deliveries))
    chaos.join(timeout=600)
    assert victim.proc is not None and victim.proc.returncode is not None

    store = RunStore(open_database(env).engine)
    expected = 4 * EACH

    def all_ended() -> bool:
        runs = store.list(limit=100_000)
        return len(runs) == expected and all(r.status != "running" for r in runs)

    wait_for(all_ended, timeout=300, every=0.5)
    for server in servers[1:]:
        assert server.terminate() == 0
    runs = store.list(limit=100_000)
    assert [(r.recipe, r.error) for r in runs if r.status != "succeeded"] == []

    state: dict[str, Any] = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    contacts = state["ghl"]["contacts"]
    tasks = [t for ts in state["ghl"]["tasks"].values() for t in ts]
    users = {u["userId"]: u for u in state["connecteam"]["users"]}
    for i in range(EACH):
        assert len([c for c in contacts if c.get("email") == f"new{i}@serve.example"]) == 1, i
        titled = [t for t in tasks if t.get("title") == f"Served task {i}"]
        assert [t["contactId"] for t in titled] == [_gid("task", i)], (i, titled)
        [tagged] = [c for c in contacts if c["id"] == _gid("tag", i)]
        assert TAG in tagged["tags"], i
        assert users[60000 + i]["isArchived"] is True, i
    # the work was shared, and the killed process had some of it
    logs = [(s.logs / "serve-1.log").read_text() for s in servers]
    assert all("recipe=" in text for text in logs), "a process ran nothing"
    assert "recovered" in "".join(logs[1:]), "no survivor recovered the killed process's runs"
