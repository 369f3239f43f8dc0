"""Polls as sync sources under a real `connector serve` (on a thread): the GoHighLevel contact
poll and the Connecteam task poll feed the loaded sync declaration. A poll re-reporting records
as they already are writes nothing (read from the sandbox's own request log); a GoHighLevel edit
and a Connecteam completion whose webhooks never came reach the other side through the polls
(read back from both apps)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import sqlalchemy as sa

from tests.runtime.e2e_support import RequestLog
from tests.serve.conftest import Served, wait_for
from tests.sync.served import (
    BOARD,
    DUE,
    ct_task,
    ghl_tasks,
    person,
    poll,
    pollers_of,
    registry,
    served,
    spec,
    user,
    webhooks_off,
)

__all__ = ["registry", "served", "spec"]  # the fixtures
WRITES = ("POST", "PUT", "DELETE")
READS_BY_POST = ("/ghl/contacts/search", "/ghl/locations/")  # searches are POSTs that read


def _writes(log: RequestLog) -> list[Any]:
    return [
        r
        for r in log.requests()
        if r.method in WRITES
        and not r.path.startswith(READS_BY_POST)
        and not r.path.endswith("/tasks/search")
    ]


def test_a_poll_re_reporting_unchanged_records_writes_nothing(served: Served) -> None:
    contact_id, user_id = person(served)
    ct_task(served, user_id, "Unchanged task")
    wait_for(lambda: ghl_tasks(served, contact_id), every=0.3)
    served.settled()
    log = RequestLog(served.sandbox)
    # the contact was written moments ago: the contact poll finds it again (and again), and the
    # task poll finds the task it never saw: both are as the pair last synced them
    for _ in range(2):
        poll(served, "sync:ghl:contact", "sync:ghl:task", "sync:connecteam:task")
    polled = [r for r in log.requests("POST", "/ghl/contacts/search")]
    assert polled, "the contact poll searched nothing"
    assert [r for r in log.requests("GET", "/connecteam/tasks/") if "/tasks" in r.path]
    assert _writes(log) == []
    runs = served.runs()
    assert all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]
    # the polls did feed the sync
    polled = {(r.trigger_app, r.trigger_event) for r in runs}
    assert {("ghl", "ContactUpdate"), ("ghl", "task.updated"), ("connecteam", "task.updated")} <= (
        polled
    )


def test_changes_without_webhooks_reach_the_other_side_through_the_polls(
    served: Served,
) -> None:
    contact_id, user_id = person(served)
    task = ct_task(served, user_id, "Complete me")
    other = ct_task(served, user_id, "Rename me")
    made = wait_for(lambda: len(ghl_tasks(served, contact_id)) == 2, every=0.3)
    assert made
    served.settled()
    by_title = {t["title"]: t for t in ghl_tasks(served, contact_id)}
    assert by_title["Complete me"]["completed"] is False
    webhooks_off(served)
    # GoHighLevel: the first name edited, a task renamed (which no webhook ever reports);
    # Connecteam: the task completed, before any poll saw it
    served.sandbox.clock.advance(2)
    with served.ghl() as ghl:
        ghl.put(f"contacts/{contact_id}", json={"firstName": "Amazing"}).raise_for_status()
        renamed = by_title["Rename me"]["id"]
        ghl.put(
            f"contacts/{contact_id}/tasks/{renamed}", json={"title": "Renamed in GoHighLevel"}
        ).raise_for_status()
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
    assert user(served, user_id)["firstName"] == "Grace"  # no webhook: nothing yet
    poll(served, "sync:ghl:contact", "sync:ghl:task", "sync:connecteam:task")
    assert user(served, user_id)["firstName"] == "Amazing"
    after = {t["id"]: t for t in ghl_tasks(served, contact_id)}
    assert set(after) == {by_title["Complete me"]["id"], renamed}
    assert after[by_title["Complete me"]["id"]]["completed"] is True
    with served.connecteam() as ct:
        answer = ct.get(
            f"tasks/v1/taskboards/{BOARD}/tasks",
            params={"userIds": [user_id], "status": "all", "limit": 100},
        )
    titles = {t["id"]: t["title"] for t in answer.json()["data"]["tasks"]}
    assert titles == {task["id"]: "Complete me", other["id"]: "Renamed in GoHighLevel"}
    runs = served.runs()
    assert all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]


def test_a_task_poll_reads_and_writes_its_cursors_in_one_statement_each(served: Served) -> None:
    """A task poll keeps a cursor per task (what it last saw of it): it reads them all in one
    statement and writes the changed ones with its own position in one transaction, however many
    tasks the board has (it read each one by one: a statement per task, every few seconds)."""
    contact_id, user_id = person(served)
    for n in range(6):
        ct_task(served, user_id, f"Task {n}")
    assert wait_for(lambda: len(ghl_tasks(served, contact_id)) == 6, every=0.3)
    served.settled()
    poll(served, "sync:ghl:task", "sync:connecteam:task")  # every task's cursor is written
    pollers = pollers_of(served)
    engine = served.service.runtime.db.engine
    here = threading.get_ident()
    seen: list[str] = []

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        if threading.get_ident() == here and "cursors" in sql:
            seen.append(sql.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        with served.connecteam() as ct:  # one task changed, which the next poll must see
            first = ct.get(f"tasks/v1/taskboards/{BOARD}/tasks", params={"status": "all"})
            task = next(t for t in first.json()["data"]["tasks"] if t["title"] == "Task 0")
            ct.put(
                f"tasks/v1/taskboards/{BOARD}/tasks/{task['id']}",
                json={
                    "title": "Task 0 renamed",
                    "userIds": [user_id],
                    "status": "published",
                    "dueDate": DUE,
                },
            ).raise_for_status()
        pollers["sync:ghl:task"].poll()
        pollers["sync:connecteam:task"].poll()
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
    served.settled()
    # each poll: its own position, every task's cursor, then one write of what changed
    assert Counter(seen) == {"SELECT": 4, "INSERT": 2}, seen
    titles = {t["title"] for t in ghl_tasks(served, contact_id)}
    assert "Task 0 renamed" in titles
