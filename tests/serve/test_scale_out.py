"""Scale-out on PostgreSQL: three `connector serve` processes on one database share the events
(delivered round-robin, as a load balancer would), one is killed with SIGKILL half-way and not
started again, and the two left finish its runs (they find its executor gone by its liveness
lock and recover its runs through DBOS). Afterwards every event's effect is in the sandbox
exactly once and every run succeeded."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.wiring import sandbox_env
from tests.runtime.e2e_support import CHAOS_LIMITS
from tests.serve.served_events import (
    SCALED,
    Balancer,
    Server,
    check_effects,
    deliveries,
    ended_runs,
    free_port,
    seed,
)

PROCESSES = 3


@pytest.fixture()
def cluster(
    tmp_path: Path, postgres_database: Callable[[], str]
) -> Iterator[tuple[RunningSandbox, list[Server], dict[str, str]]]:
    url = postgres_database()
    with start_in_thread(seed=seed(), limits=CHAOS_LIMITS) as sandbox:
        base = {**os.environ, **sandbox_env(sandbox), "CONNECTOR_DATABASE_URL": url, **SCALED}
        servers = []
        for n in range(PROCESSES):
            logs = tmp_path / f"p{n}"
            logs.mkdir()
            env = {**base, "CONNECTOR_EXECUTOR_ID": f"serve-{n}"}
            servers.append(Server(env, free_port(), logs))
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
    items = deliveries(sandbox)
    balancer = Balancer(sandbox, env, servers)
    with (
        balancer.killing(servers[0], after=len(items) // 2, timeout=600),
        ThreadPoolExecutor(8) as pool,
    ):
        list(pool.map(balancer.deliver, items))

    runs = ended_runs(env, timeout=300)
    for server in servers[1:]:
        assert server.terminate() == 0
    assert [(r.recipe, r.error) for r in runs if r.status != "succeeded"] == []
    check_effects(sandbox)
    # the work was shared, and the killed process had some of it
    logs = [(s.logs / "serve-1.log").read_text() for s in servers]
    assert all("recipe=" in text for text in logs), "a process ran nothing"
    assert "recovered" in "".join(logs[1:]), "no survivor recovered the killed process's runs"
