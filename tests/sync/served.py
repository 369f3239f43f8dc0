"""A sync declaration under a real `connector serve` on a thread, wired to an in-thread sandbox
both ways, and the two apps as a person uses them (what the tests assert is read back from
there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.apps.registry import Registry
from connector.language.sync_spec import SyncSpec, load_sync
from connector.persistence.cursors import Cursors
from connector.persistence.database import close_all
from connector.persistence.links import LinkStore
from connector.sandbox.server import start_in_thread
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.serve.conftest import Served, start_service, stop_service, wait_for
from tests.sync.conftest import HERE

BOARD = 7001  # the sandbox's task board
DUE = 1798131600  # 2026-12-24T17:00:00Z


@pytest.fixture(scope="module")
def registry() -> Registry:
    from connector.apps.plugins import default_registry

    reg, _ = default_registry([], home=Path("/nonexistent"))
    return reg


@pytest.fixture()
def spec(registry: Registry) -> SyncSpec:
    loaded, problems = load_sync(HERE / "people-and-tasks.sync.yaml", registry)
    assert loaded is not None, problems
    return loaded


@pytest.fixture()
def served(tmp_path: Path, registry: Registry, spec: SyncSpec) -> Iterator[Served]:
    sandbox = start_in_thread()
    env = {
        **sandbox_env(sandbox),
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_VAR_TASK_BOARD_ID": str(BOARD),
        # the polls are called by the test; the server's own first poll only sets the cursors
        "CONNECTOR_SYNC_POLL_SECONDS": "3600",
    }
    svc, url, thread = start_service(registry, [], env, sandbox, syncs=[spec])
    wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
    served = Served(sandbox, svc, url, env, thread)
    pollers_of(served)  # the server's first polls (which only look) are made
    yield served
    stop_service(svc, thread, sandbox)
    close_all()


def pollers_of(served: Served) -> dict[str, Any]:
    pollers = {p.plan.name: p for p in served.service.pollers}
    assert set(pollers) == {"sync:ghl:contact", "sync:ghl:task", "sync:connecteam:task"}, pollers
    cursors = Cursors(served.service.runtime.db.engine)
    wait_for(lambda: all(cursors.get(p.name) is not None for p in pollers.values()))
    return pollers


def poll(served: Served, *names: str) -> None:
    pollers = pollers_of(served)
    for name in names:
        pollers[name].poll()
    served.settled()


def webhooks_off(served: Served) -> None:
    served.sandbox.app.webhooks.url = None
    hooks = served.sandbox.app.connecteam_webhooks
    for hook in hooks.registered():
        hooks.unregister(int(hook["id"]))


def person(served: Served) -> tuple[str, int]:
    """A contact made in GoHighLevel, and the Connecteam user the sync made for it."""
    with served.ghl() as ghl:
        made = ghl.post(
            "contacts/",
            json={
                "locationId": served.sandbox.state.default_location_id,
                "firstName": "Grace",
                "lastName": "Hopper",
                "email": "grace@example.com",
                "phone": "+15555550142",
            },
        )
        made.raise_for_status()
    contact_id = str(made.json()["contact"]["id"])
    links = LinkStore(served.service.runtime.db.engine)
    link = wait_for(lambda: links.get("contact", ghl_id=contact_id))
    served.settled()
    return contact_id, int(link.connecteam_id)


def ct_task(served: Served, user_id: int, title: str) -> dict[str, Any]:
    with served.connecteam() as ct:
        made = ct.post(
            f"tasks/v1/taskboards/{BOARD}/tasks",
            json={
                "title": title,
                "userIds": [user_id],
                "status": "published",
                "type": "oneTime",
                "dueDate": DUE,
            },
        )
        made.raise_for_status()
        task: dict[str, Any] = made.json()["data"]
    return task


def ghl_tasks(served: Served, contact_id: str) -> list[dict[str, Any]]:
    with served.ghl() as ghl:
        found: list[dict[str, Any]] = ghl.get(f"contacts/{contact_id}/tasks").json()["tasks"]
    return found


def user(served: Served, user_id: int) -> dict[str, Any]:
    with served.connecteam() as ct:
        users = ct.get("users/v1/users", params={"userIds": [user_id], "userStatus": "all"})
    found: dict[str, Any] = users.json()["data"]["users"][0]
    return found
