"""Tasks both ways: a GoHighLevel task on a paired contact and a Connecteam quick task of the
paired user are one task. What each test asserts is read back from both apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connector.apps.registry import Registry
from connector.language.sync_spec import load_sync
from connector.runtime.durable import Runtime, RuntimeOptions
from connector.sync.engine import SyncRun
from tests.sync.conftest import HERE, Apps, Syncer
from tests.sync.test_sync_contacts import _ghl_event

BOARD = 7001  # the sandbox's task board


@pytest.fixture()
def tasks_syncer(registry: Registry, env: dict[str, str]) -> Iterator[Syncer]:
    spec, problems = load_sync(HERE / "people-and-tasks.sync.yaml", registry)
    assert spec is not None, problems
    env = {**env, "CONNECTOR_VAR_TASK_BOARD_ID": str(BOARD)}
    with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
        yield Syncer(runtime, spec, env)


def _person(apps: Apps, syncer: Syncer) -> tuple[dict[str, Any], dict[str, Any]]:
    contact = apps.new_contact(firstName="Ada", lastName="Lovelace", email="ada@example.com")
    user = apps.new_user(
        firstName="Ada", lastName="Lovelace", email="ada@example.com", phoneNumber="+15555550100"
    )
    assert syncer.event("ghl", "ContactCreate", _ghl_event(contact, "ContactCreate")).status == (
        "succeeded"
    )
    return contact, user


def _ghl_tasks(apps: Apps, contact_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = apps.ghl.get(f"/contacts/{contact_id}/tasks").json()["tasks"]
    return found


def _ct_tasks(apps: Apps, user_id: int) -> list[dict[str, Any]]:
    answer = apps.ct.get(
        f"/tasks/v1/taskboards/{BOARD}/tasks",
        params={"userIds": [user_id], "status": "all", "limit": 100},
    )
    found: list[dict[str, Any]] = answer.json()["data"]["tasks"]
    return found


def _ghl_task_synced(apps: Apps, syncer: Syncer, contact: dict[str, Any]) -> dict[str, Any]:
    """A task made on the contact in GoHighLevel, its ``TaskCreate`` run by the sync."""
    made = apps.ghl.post(
        f"/contacts/{contact['id']}/tasks",
        json={
            "title": "Call back",
            "body": "about the estimate",
            "dueDate": "2026-12-24T17:00:00Z",
            "completed": False,
        },
    )
    task: dict[str, Any] = made.json()["task"]
    record = syncer.event("ghl", "TaskCreate", {"type": "TaskCreate", **task}, kind="task")
    assert record.status == "succeeded", (record.error, record.output)
    return task


def _ct_item(task: dict[str, Any]) -> dict[str, Any]:
    """A quick task as Connecteam's task webhooks carry it (the envelope's data item)."""
    keys = ("id", "title", "userIds", "status", "type", "startTime", "dueDate", "labelIds")
    return {"data": {**{k: task.get(k) for k in keys}, "taskBoardId": BOARD, "isArchived": False}}


def test_a_task_born_in_ghl_gets_one_connecteam_task_and_its_report_no_copy(
    apps: Apps, tasks_syncer: Syncer
) -> None:
    contact, user = _person(apps, tasks_syncer)
    _ghl_task_synced(apps, tasks_syncer, contact)
    (copy,) = _ct_tasks(apps, user["userId"])
    assert copy["title"] == "Call back" and copy["status"] == "published"
    assert copy["dueDate"] == 1798131600  # 2026-12-24T17:00:00Z
    # Connecteam reports the task the sync published: it is paired, not copied back
    again = tasks_syncer.event("connecteam", "task_published", _ct_item(copy), kind="task")
    assert again.status == "succeeded", again.error
    assert len(_ghl_tasks(apps, contact["id"])) == 1
    assert len(_ct_tasks(apps, user["userId"])) == 1


def test_a_completion_and_a_rename_in_connecteam_reach_the_ghl_task_once(
    apps: Apps, tasks_syncer: Syncer
) -> None:
    contact, user = _person(apps, tasks_syncer)
    task = apps.ghl.post(
        f"/contacts/{contact['id']}/tasks",
        json={"title": "Inspect", "dueDate": "2026-12-20T09:00:00Z", "completed": False},
    ).json()["task"]
    tasks_syncer.event("ghl", "TaskCreate", {"type": "TaskCreate", **task}, kind="task")
    (copy,) = _ct_tasks(apps, user["userId"])
    body = {"userIds": copy["userIds"], "title": "Inspect the roof", "status": "completed"}
    apps.ct.put(f"/tasks/v1/taskboards/{BOARD}/tasks/{copy['id']}", json=body).raise_for_status()
    # completed (task_completed) and renamed, before any poll saw the task
    tasks_syncer.event("connecteam", "task_completed", _ct_item(copy), kind="task")
    (ghl,) = _ghl_tasks(apps, contact["id"])
    assert (ghl["title"], ghl["completed"]) == ("Inspect the roof", True)
    # reopened in GoHighLevel: Connecteam's task is published again, and nothing is copied
    apps.ghl.put(
        f"/contacts/{contact['id']}/tasks/{task['id']}", json={"completed": False}
    ).raise_for_status()
    tasks_syncer.event(
        "ghl", "TaskComplete", {"type": "TaskComplete", **ghl, "completed": False}, kind="task"
    )
    (again,) = _ct_tasks(apps, user["userId"])
    assert (again["title"], again["status"]) == ("Inspect the roof", "published")
    assert len(_ghl_tasks(apps, contact["id"])) == 1


def test_a_task_of_a_contact_not_paired_is_not_copied(apps: Apps, tasks_syncer: Syncer) -> None:
    contact = apps.new_contact(firstName="Solo", lastName="Contact", email="solo@example.com")
    task = apps.ghl.post(
        f"/contacts/{contact['id']}/tasks",
        json={"title": "Alone", "dueDate": "2026-12-20T09:00:00Z", "completed": False},
    ).json()["task"]
    record = tasks_syncer.event("ghl", "TaskCreate", {"type": "TaskCreate", **task}, kind="task")
    assert record.status == "succeeded"
    assert "not paired" in " ".join(record.output["notes"])


def test_a_report_read_unpaired_while_its_pair_was_being_kept_makes_no_copy(
    apps: Apps, tasks_syncer: Syncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run that makes a Connecteam task from a GoHighLevel one keeps the pair a moment after
    the task exists; a report of the new task whose run read its pair in that moment (unpaired)
    finds, looking for a twin before it would create one, the GoHighLevel task paired with its
    own task: it takes the pair as kept, and creates no copy (a loaded served run made one)."""
    contact, user = _person(apps, tasks_syncer)
    task = _ghl_task_synced(apps, tasks_syncer, contact)
    (published,) = _ct_tasks(apps, user["userId"])
    read_state = SyncRun._state

    def before_the_pair(run: SyncRun, step: str = "state") -> Any:
        return None if step == "state" else read_state(run, step)  # read a moment too early

    monkeypatch.setattr(SyncRun, "_state", before_the_pair)
    again = tasks_syncer.event("connecteam", "task_published", _ct_item(published), kind="task")
    assert again.status == "succeeded", (again.error, again.output)
    assert [t["id"] for t in _ghl_tasks(apps, contact["id"])] == [task["id"]]
    assert [t["id"] for t in _ct_tasks(apps, user["userId"])] == [published["id"]]
    assert any("paired meanwhile" in note for note in again.output["notes"]), again.output
