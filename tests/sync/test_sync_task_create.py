"""A task born in GoHighLevel reaches Connecteam although its ``TaskCreate`` names no contact
(GoHighLevel #332, which the sandbox reproduces): the sync finds the task by the location's task
search before deciding, under a real `connector serve` fed by the sandbox's own webhooks. What
is asserted is read back from both apps and the sandbox's request log."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.runtime.e2e_support import RequestLog
from tests.serve.conftest import Served, wait_for
from tests.sync.served import BOARD, DUE, person, registry, served, spec

__all__ = ["registry", "served", "spec"]  # the fixtures


def test_a_task_created_in_ghl_without_its_contact_in_the_event_reaches_connecteam(
    served: Served,
) -> None:
    contact_id, user_id = person(served)
    log = RequestLog(served.sandbox)
    due = datetime.fromtimestamp(DUE, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with served.ghl() as ghl:
        made = ghl.post(
            f"contacts/{contact_id}/tasks",
            json={
                "title": "Send the quote",
                "body": "with the discount",
                "dueDate": due,
                "completed": False,
            },
        )
        made.raise_for_status()
    task_id = made.json()["task"]["id"]
    served.settled()
    # the event the sandbox sent carries neither the contact nor the body, as GoHighLevel's
    events = [e for e in served.sandbox.app.webhooks.log() if e.get("event") == "TaskCreate"]
    assert events and all(e.get("status") == 200 for e in events), events
    with served.connecteam() as ct:
        tasks = ct.get(
            f"tasks/v1/taskboards/{BOARD}/tasks",
            params={"userIds": [user_id], "status": "all", "limit": 100},
        ).json()["data"]["tasks"]
    (copy,) = tasks
    assert (copy["title"], copy["dueDate"], copy["status"]) == ("Send the quote", DUE, "published")
    description = copy.get("description")
    assert "with the discount" in str(description), description
    assert log.requests("POST", f"/ghl/locations/{served.sandbox.state.default_location_id}")
    # Connecteam's report of the copy finds it paired: no second GoHighLevel task
    with served.ghl() as ghl:
        (only,) = wait_for(lambda: ghl.get(f"contacts/{contact_id}/tasks").json()["tasks"])
    assert only["id"] == task_id
    runs = served.runs()
    assert all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]
