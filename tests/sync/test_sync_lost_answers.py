"""What the served convergence test found, each on its own: a Connecteam task's board kept from
its event (a read of the task does not show it), a create whose answer was lost settled by
reading the other app (not left for a person, not made twice), a delete sent again after its
answer was lost finding the record gone, and a task the sync
made reported by its app before the sync kept the pair (paired as its twin, not copied back).
What each test asserts is read back from both apps and the sandbox's request log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.apps.registry import Registry
from connector.language.sync_spec import load_sync
from connector.persistence.sync import SyncStore
from connector.runtime.durable import Runtime, RuntimeOptions
from tests.runtime.e2e_support import set_faults
from tests.sync.conftest import Apps, Syncer
from tests.sync.test_sync_tasks import BOARD, _ct_item, _ct_tasks, _ghl_tasks, _person, tasks_syncer

__all__ = ["tasks_syncer"]  # the fixture
DUE = 1798131600  # 2026-12-24T17:00:00Z


def _ct_task(apps: Apps, user_id: int, title: str) -> dict[str, Any]:
    made = apps.ct.post(
        f"/tasks/v1/taskboards/{BOARD}/tasks",
        json={"title": title, "userIds": [user_id], "status": "published", "dueDate": DUE},
    )
    made.raise_for_status()
    task: dict[str, Any] = made.json()["data"]
    return task


def test_a_task_born_in_connecteam_takes_a_completion_from_ghl(
    apps: Apps, tasks_syncer: Syncer
) -> None:
    contact, user = _person(apps, tasks_syncer)
    task = _ct_task(apps, user["userId"], "Fix the gate")
    made = tasks_syncer.event("connecteam", "task_published", _ct_item(task), kind="task")
    assert made.status == "succeeded", made.error
    (ghl,) = _ghl_tasks(apps, contact["id"])
    apps.ghl.put(
        f"/contacts/{contact['id']}/tasks/{ghl['id']}", json={"completed": True}
    ).raise_for_status()
    done = tasks_syncer.event(
        "ghl", "TaskComplete", {"type": "TaskComplete", **ghl, "completed": True}, kind="task"
    )
    assert done.status == "succeeded", done.error  # the board is the event's, kept with the pair
    (copy,) = _ct_tasks(apps, user["userId"])
    assert copy["status"] == "completed"


def test_a_create_whose_answer_was_lost_is_found_not_made_twice(
    apps: Apps, tasks_syncer: Syncer
) -> None:
    contact, user = _person(apps, tasks_syncer)
    task = _ct_task(apps, user["userId"], "Order parts")
    set_faults(apps.sandbox, f"drop-after:1,path=/ghl/contacts/{contact['id']}/tasks,method=POST")
    try:
        record = tasks_syncer.event("connecteam", "task_published", _ct_item(task), kind="task")
    finally:
        set_faults(apps.sandbox)
    assert record.status == "succeeded", record.error
    (made,) = _ghl_tasks(apps, contact["id"])
    assert made["title"] == "Order parts"
    # the task it made is paired: GoHighLevel's report of it copies nothing back
    again = tasks_syncer.event("ghl", "TaskCreate", {"type": "TaskCreate", **made}, kind="task")
    assert again.status == "succeeded", again.error
    assert len(_ct_tasks(apps, user["userId"])) == 1


def test_a_task_reported_before_its_pair_was_kept_is_paired_with_its_twin(
    apps: Apps, tasks_syncer: Syncer
) -> None:
    contact, user = _person(apps, tasks_syncer)
    task = _ct_task(apps, user["userId"], "Call the supplier")
    # the task the sync is making from it, already in GoHighLevel (its run has not kept the
    # pair yet): GoHighLevel's TaskCreate (without its contact, #332) comes first
    twin = apps.ghl.post(
        f"/contacts/{contact['id']}/tasks",
        json={"title": "Call the supplier", "dueDate": "2026-12-24T17:00:00Z", "completed": False},
    ).json()["task"]
    report = {"type": "TaskCreate", "id": twin["id"], "title": twin["title"]}
    record = tasks_syncer.event("ghl", "TaskCreate", report, kind="task")
    assert record.status == "succeeded", record.error
    assert "twin" in " ".join(record.output["notes"])
    assert len(_ct_tasks(apps, user["userId"])) == 1
    # and Connecteam's report of the original finds it paired: no second GoHighLevel task
    late = tasks_syncer.event("connecteam", "task_published", _ct_item(task), kind="task")
    assert late.status == "succeeded", late.error
    assert len(_ghl_tasks(apps, contact["id"])) == 1


PROPAGATING = """\
sync: tasks-propagated
description: Tasks whose deletes in GoHighLevel delete them in Connecteam.
pairs:
  - kind: contact
    ghl: contact
    connecteam: user
    match: [email, phone]
    fields:
      firstName: {ghl: firstName, connecteam: firstName}
      lastName: {ghl: lastName, connecteam: lastName}
      email: {ghl: email, connecteam: email, transform: email}
      phone: {ghl: phone, connecteam: phoneNumber, transform: phone}
  - kind: task
    ghl: task
    connecteam: task
    parent: contact
    delete: {ghl: propagate}
    fields:
      title: {ghl: title, connecteam: title}
      due: {ghl: dueDate, connecteam: dueDate}
"""


@pytest.fixture()
def propagating(registry: Registry, env: dict[str, str], tmp_path: Path) -> Iterator[Syncer]:
    path = tmp_path / "tasks-propagated.sync.yaml"
    path.write_text(PROPAGATING)
    spec, problems = load_sync(path, registry)
    assert spec is not None, problems
    env = {**env, "CONNECTOR_VAR_TASK_BOARD_ID": str(BOARD)}
    with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
        yield Syncer(runtime, spec, env)


def test_a_delete_whose_answer_was_lost_is_done_when_sent_again(
    apps: Apps, propagating: Syncer
) -> None:
    contact, user = _person(apps, propagating)
    task = apps.ghl.post(
        f"/contacts/{contact['id']}/tasks",
        json={"title": "Throw away", "dueDate": "2026-12-24T17:00:00Z", "completed": False},
    ).json()["task"]
    made = propagating.event("ghl", "TaskCreate", {"type": "TaskCreate", **task}, kind="task")
    assert made.status == "succeeded", made.error
    (copy,) = _ct_tasks(apps, user["userId"])
    apps.ghl.delete(f"/contacts/{contact['id']}/tasks/{task['id']}").raise_for_status()
    # the first DELETE is done and its answer lost; the one sent again finds the task gone
    set_faults(
        apps.sandbox,
        f"drop-after:0.5,path=/connecteam/tasks/v1/taskboards/{BOARD}/tasks/",
        seed=1,
    )
    try:
        gone = propagating.event("ghl", "TaskDelete", {"type": "TaskDelete", **task}, kind="task")
    finally:
        set_faults(apps.sandbox)
    assert gone.status == "succeeded", gone.error
    assert "gone already" in " ".join(gone.output["notes"])
    assert _ct_tasks(apps, user["userId"]) == []
    assert SyncStore(propagating.runtime.db.engine).pair("task", "ghl", task["id"]) is None
    assert copy["id"]
