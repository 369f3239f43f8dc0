"""A PostgreSQL restart while `connector serve` runs: the server's sessions are cut, the database
is gone for a few seconds, then back. Webhooks are refused meanwhile (not stored, so the sender
sends them again); runs under way wait for the database and go on. Afterwards every contact has
its one note, and every run succeeded."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.apps.registry import Registry
from connector.persistence.database import close_all
from connector.persistence.runs import RunStore
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.server import Service
from connector.serve.wiring import sandbox_env
from tests.runtime.e2e_support import LOCAL, set_faults
from tests.serve.conftest import planned, start_service, stop_service
from tests.serve.served_events import signed

ROOT = Path(__file__).resolve().parents[2]
RECIPE = Path(__file__).parent / "recipes" / "note_new_contact.yaml"
EVENTS = 60
PAUSE_SECONDS = 3
POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"


@pytest.fixture()
def cluster(skip_or_fail: Callable[[str], Any]) -> Iterator[tuple[str, str]]:
    """A PostgreSQL cluster of the test's own, started by ``.ci/postgres start``: its URL and its
    folder (for ``.ci/postgres pause``). The cluster the other tests share
    (``CONNECTOR_TEST_POSTGRES_URL``) is not the one restarted, so tests running beside this one
    (pytest-xdist) keep their database."""
    if not os.environ.get(POSTGRES_ENV):
        skip_or_fail(
            f'no PostgreSQL: set {POSTGRES_ENV} (eval "$(.ci/postgres start)" starts a throwaway one)'
        )
    started = subprocess.run(
        [str(ROOT / ".ci" / "postgres"), "start"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        skip_or_fail(f"`.ci/postgres start` failed: {started.stderr.strip()[-300:]}")
    values = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines()
    )
    folder = values["CONNECTOR_TEST_POSTGRES_DIR"]
    try:
        yield values[POSTGRES_ENV], folder
    finally:
        subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", folder], check=False)


@pytest.fixture()
def served(
    tmp_path: Path, registry: Registry, cluster: tuple[str, str]
) -> Iterator[tuple[RunningSandbox, Service, str, str, str]]:
    url, folder = cluster
    sandbox = start_in_thread()
    env = {
        **sandbox_env(sandbox),
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_DATABASE_URL": url,
    }
    service, base, thread = start_service(registry, [planned(registry, RECIPE)], env, sandbox)
    yield sandbox, service, base, url, folder
    stop_service(service, thread, sandbox)
    close_all()


def wait_until_down(url: str, pause: threading.Thread) -> None:
    """Return once a new connection to the server is refused (it is stopping or stopped)."""
    import psycopg

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            psycopg.connect(url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return
        if not pause.is_alive():
            break  # it stopped and started again between two tries
        time.sleep(0.02)
    pytest.fail("the PostgreSQL server was never seen down while `.ci/postgres pause` ran")


def test_runs_wait_out_a_postgresql_restart_and_finish(
    served: tuple[RunningSandbox, Service, str, str, str],
) -> None:
    sandbox, service, base, url, folder = served
    # GoHighLevel answers slowly, so that runs are part-way through when the database goes
    set_faults(sandbox, "slow:1.0,delay=0.3,path=/ghl")
    state = sandbox.state
    location = state.default_location_id
    with state.lock:
        contacts = [c["id"] for c in state.ghl.contacts.values() if c.get("locationId") == location]
    ids = [contacts[i % len(contacts)] for i in range(EVENTS)]
    # each webhook names a contact, most contacts several times (each a different version, so
    # that none is dropped as a burst): the note's `once:` makes it one note per contact
    refused = 0

    def deliver(n: int, contact: str) -> None:
        nonlocal refused
        body = {
            "type": "ContactCreate",
            "id": contact,
            "locationId": location,
            "webhookId": f"restart-{n}",
            "firstName": f"X{n}",
        }
        while True:
            raw, headers = signed(sandbox, body)
            try:
                if (
                    LOCAL.post(
                        f"{base}/webhooks/ghl", content=raw, headers=headers, timeout=30
                    ).status_code
                    == 200
                ):
                    return
            except httpx.HTTPError:
                pass
            refused += 1
            time.sleep(0.2)

    # the first third of the webhooks start runs; then the server stops, and the rest are sent
    # only once it is seen down, so that some are refused and runs are under way at the cut
    before = EVENTS // 3
    for n in range(before):
        deliver(n, ids[n])
        time.sleep(0.05)
    pause = threading.Thread(
        target=subprocess.run,
        args=(
            [
                str(ROOT / ".ci" / "postgres"),
                "pause",
                folder,
                str(PAUSE_SECONDS),
            ],
        ),
        kwargs={"check": True},
    )
    pause.start()
    wait_until_down(url, pause)
    for n in range(before, EVENTS):
        deliver(n, ids[n])
        time.sleep(0.05)
    pause.join()
    store = RunStore(service.runtime.db.engine)

    deadline = time.monotonic() + 120
    while True:
        runs = store.list(limit=10_000)
        done = len(runs) == EVENTS and all(r.status != "running" for r in runs)
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert done, (
        f"{len(runs)} runs of {EVENTS}, {service.runtime.unfinished()} unfinished in DBOS: "
        + repr(sorted({(r.status, r.error) for r in runs}, key=str))
    )
    assert refused > 0  # the restart happened while webhooks came
    assert {r.status for r in runs} == {"succeeded"}, [
        (r.id, r.status, r.error) for r in runs if r.status != "succeeded"
    ]
    notes = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()["ghl"]["notes"]
    for contact in set(ids):
        welcome = [
            n for n in notes.get(contact, []) if str(n.get("body", "")).startswith("Welcome")
        ]
        assert len(welcome) == 1, (contact, welcome)
