"""Polls as sync sources under a real `connector serve` (on a thread): the GoHighLevel contact
poll and the Connecteam task poll feed the loaded sync declaration. A poll re-reporting records
as they already are writes nothing (read from the sandbox's own request log); a GoHighLevel edit
and a Connecteam completion whose webhooks never came reach the other side through the polls
(read back from both apps)."""

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
from tests.runtime.e2e_support import RequestLog
from tests.serve.conftest import Served, start_service, stop_service, wait_for
from tests.sync.conftest import HERE

BOARD = 7001  # the sandbox's task board
DUE = 1798131600  # 2026-12-24T17:00:00Z
WRITES = ("POST", "PUT", "DELETE")
READS_BY_POST = ("/ghl/contacts/search", "/ghl/locations/")  # searches are POSTs that read


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
    yield Served(sandbox, svc, url, env, thread)
    stop_service(svc, thread, sandbox)
    close_all()


def _pollers(served: Served) -> dict[str, Any]:
    pollers = {p.plan.name: p for p in served.service.pollers}
    assert set(pollers) == {"sync:ghl:contact", "sync:connecteam:task"}, pollers
    cursors = Cursors(served.service.runtime.db.engine)
    wait_for(lambda: all(cursors.get(p.name) is not None for p in pollers.values()))
    return pollers


def _poll(served: Served, *names: str) -> None:
    pollers = _pollers(served)
    for name in names:
        pollers[name].poll()
    served.settled()


def _webhooks_off(served: Served) -> None:
    served.sandbox.app.webhooks.url = None
    hooks = served.sandbox.app.connecteam_webhooks
    for hook in hooks.registered():
        hooks.unregister(int(hook["id"]))


def _person(served: Served) -> tuple[str, int]:
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


def _ct_task(served: Served, user_id: int, title: str) -> dict[str, Any]:
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


def _ghl_tasks(served: Served, contact_id: str) -> list[dict[str, Any]]:
    with served.ghl() as ghl:
        found: list[dict[str, Any]] = ghl.get(f"contacts/{contact_id}/tasks").json()["tasks"]
    return found


def _user(served: Served, user_id: int) -> dict[str, Any]:
    with served.connecteam() as ct:
        users = ct.get("users/v1/users", params={"userIds": [user_id], "userStatus": "all"})
    found: dict[str, Any] = users.json()["data"]["users"][0]
    return found


def _writes(log: RequestLog) -> list[Any]:
    return [
        r
        for r in log.requests()
        if r.method in WRITES
        and not r.path.startswith(READS_BY_POST)
        and not r.path.endswith("/tasks/search")
    ]


def test_a_poll_re_reporting_unchanged_records_writes_nothing(served: Served) -> None:
    contact_id, user_id = _person(served)
    _ct_task(served, user_id, "Unchanged task")
    wait_for(lambda: _ghl_tasks(served, contact_id), every=0.3)
    served.settled()
    log = RequestLog(served.sandbox)
    # the contact was written moments ago: the contact poll finds it again (and again), and the
    # task poll finds the task it never saw: both are as the pair last synced them
    for _ in range(2):
        _poll(served, "sync:ghl:contact", "sync:connecteam:task")
    polled = [r for r in log.requests("POST", "/ghl/contacts/search")]
    assert polled, "the contact poll searched nothing"
    assert [r for r in log.requests("GET", "/connecteam/tasks/") if "/tasks" in r.path]
    assert _writes(log) == []
    runs = served.runs()
    assert all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]
    # the polls did feed the sync
    assert {"ContactUpdate", "task.updated"} <= {r.trigger_event for r in runs}


def test_changes_without_webhooks_reach_the_other_side_through_the_polls(
    served: Served,
) -> None:
    contact_id, user_id = _person(served)
    task = _ct_task(served, user_id, "Complete me")
    (ghl_task,) = wait_for(lambda: _ghl_tasks(served, contact_id), every=0.3)
    served.settled()
    assert ghl_task["completed"] is False
    _webhooks_off(served)
    # GoHighLevel: the first name edited; Connecteam: the task completed, before any poll saw it
    served.sandbox.clock.advance(2)
    with served.ghl() as ghl:
        ghl.put(f"contacts/{contact_id}", json={"firstName": "Amazing"}).raise_for_status()
    with served.connecteam() as ct:
        ct.put(
            f"tasks/v1/taskboards/{BOARD}/tasks/{task['id']}",
            json={
                "title": "Complete me",
                "userIds": [user_id],
                "status": "completed",
                "dueDate": DUE,
            },
        ).raise_for_status()
    served.settled()
    assert _user(served, user_id)["firstName"] == "Grace"  # no webhook: nothing yet
    _poll(served, "sync:ghl:contact", "sync:connecteam:task")
    assert _user(served, user_id)["firstName"] == "Amazing"
    (done,) = _ghl_tasks(served, contact_id)
    assert done["completed"] is True and done["id"] == ghl_task["id"]
    runs = served.runs()
    assert all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]
