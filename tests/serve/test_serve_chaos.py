"""`connector serve` through faults and crashes: 300 webhook events of four kinds (Connecteam
user_created and task_published and task_completed, GoHighLevel ContactDelete), 10 % of them
delivered twice, to a `connector serve` process that is killed with SIGKILL and started again
three times while the sandbox answers 20 % of requests with a fault. Senders retry every
delivery until it is answered 200, as the vendors do. Afterwards every event's effect is in the
sandbox exactly once, and every run succeeded; the last process stops cleanly on SIGTERM.

SERVE_CHAOS_EVENTS scales it (default 300)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.wiring import sandbox_env
from tests.runtime.e2e_support import CHAOS_FAULTS, CHAOS_LIMITS, set_faults
from tests.serve.conftest import wait_for
from tests.serve.served_events import (
    EACH,
    SCALED,
    Delivery,
    Server,
    check_effects,
    deliveries,
    ended_runs,
    free_port,
    post,
    seed,
)

KILLS = 3


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[RunningSandbox, Server, dict[str, str]]]:
    with start_in_thread(seed=seed(), limits=CHAOS_LIMITS) as sandbox:
        env = {
            **os.environ,
            **sandbox_env(sandbox),
            "CONNECTOR_HOME": str(tmp_path / "home"),
            **SCALED,
        }
        env.pop("CONNECTOR_DATABASE_URL", None)
        server = Server(env, free_port(), tmp_path)
        yield sandbox, server, env
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
        sandbox.app.close()
    close_all()


def test_every_event_once_through_faults_duplicates_and_kills(
    world: tuple[RunningSandbox, Server, dict[str, str]],
) -> None:
    sandbox, server, env = world
    items = deliveries(sandbox)
    server.start()
    set_faults(sandbox, *CHAOS_FAULTS, seed=3)
    answered = 0
    lock = threading.Lock()
    stop_at = [len(items) * k // (KILLS + 1) for k in range(1, KILLS + 1)]
    restarting = threading.Event()
    restarting.set()  # set: the server is up

    def deliver(item: Delivery) -> None:
        nonlocal answered
        while True:  # as the vendors do: again until a 2xx
            restarting.wait()
            status = post(sandbox, env, item, server.port)
            if status == 200:
                break
            assert status is None or status >= 500, status  # never a refusal of a good event
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
        list(pool.map(deliver, items))
    chaos.join(timeout=600)
    assert server.starts == KILLS + 1

    runs = ended_runs(env, timeout=900)  # one run per distinct event
    set_faults(sandbox)
    assert server.terminate() == 0, (server.logs / f"serve-{server.starts}.log").read_text()[-2000:]

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
    check_effects(sandbox)
