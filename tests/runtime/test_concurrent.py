"""One event delivered to eight processes at once: ``connector run recipes/task_once.yaml`` eight
times together (forked at once by ``crash_worker.py`` after its imports), on one CONNECTOR_HOME
and one sandbox. The write declared with ``once:`` happens exactly once: one task in GoHighLevel,
one link, and eight successful runs with the same output, seven of them given the recorded result. Also when the write is slow (the others arrive while it
is in flight) and when its answer is lost (the lookup settles it).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from e2e_support import CONTACT, LOCAL, RECIPES, Launcher, RequestLog, ghl_items, set_faults

from connector.persistence.links import LinkStore
from connector.sandbox.server import RunningSandbox

PROCESSES = 8
TASK_ID = 4242  # the Connecteam task id: the write's once.key and the link's Connecteam side
EVENT = {"contactId": CONTACT, "taskId": TASK_ID, "title": "Confirm the Friday delivery"}
TASKS = f"/ghl/contacts/{CONTACT}/tasks"
SENT = None  # the note of the one run that sent the write


@pytest.mark.parametrize(
    ("fault", "sender_note"),
    [
        pytest.param(None, SENT, id="plain"),
        # the others claim while the first request is on its way, and wait for it
        pytest.param("slow:1,delay=1.5,method=POST", SENT, id="slow-write"),
        # the sandbox applies the write and drops the connection: the lookup finds it
        pytest.param(
            "drop-after:1,method=POST",
            "the answer was lost; the lookup found the write",
            id="answer-lost",
        ),
    ],
)
def test_one_event_in_eight_processes_writes_once(
    tmp_path: Path,
    sandbox: RunningSandbox,
    env: dict[str, str],
    launcher: Launcher,
    fault: str | None,
    sender_note: str | None,
) -> None:
    if fault:
        set_faults(sandbox, f"{fault},path={TASKS}")
    log = RequestLog(sandbox)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))

    args = ["run", str(RECIPES / "task_once.yaml"), "--event", str(event), "--json"]
    results = launcher.together(env, args, [tmp_path / f"run{n}" for n in range(PROCESSES)])

    records = []
    for code, out, err in results:
        assert code == 0, f"stdout: {out}\nstderr: {err}"
        records.append(json.loads(out))
    assert len({r["id"] for r in records}) == PROCESSES
    assert [r["status"] for r in records] == ["succeeded"] * PROCESSES

    # GoHighLevel has exactly one task for the event, and was sent exactly one create
    tasks = [t for t in ghl_items(sandbox, "tasks") if t["title"] == EVENT["title"]]
    assert len(tasks) == 1
    task_id = tasks[0]["id"]
    assert len(log.requests("POST", TASKS)) == 1
    if fault:
        assert _fired(sandbox) == 1  # the fault met the one create, and nothing else

    # every run has the same output, the world's; one sent the write, seven got its result
    assert [r["output"] for r in records] == [{"task_id": task_id}] * PROCESSES
    steps = [r["steps"][0] for r in records]
    senders = [s for s in steps if s.get("attempts")]
    assert len(senders) == 1
    assert senders[0].get("note") == sender_note
    assert senders[0]["output"]["task"]["id"] == task_id
    others = [s for s in steps if not s.get("attempts")]
    assert len(others) == PROCESSES - 1
    assert {s.get("note") for s in others} == {"done before: the recorded result, not sent again"}
    assert all(s["output"] == senders[0]["output"] for s in others)

    # one link, pairing the Connecteam task with the GoHighLevel task
    with LinkStore.for_env(env) as links:
        paired = links.list_links()
        link = links.get("task", connecteam_id=TASK_ID)
    assert [(x.kind, x.ghl_id, x.connecteam_id) for x in paired] == [("task", task_id, TASK_ID)]
    assert link is not None and link.ghl_id == task_id

    # the journal has the one write, done; the run history has the eight runs
    with sqlite3.connect(Path(env["CONNECTOR_HOME"]) / "connector.sqlite3") as db:
        effects = db.execute("SELECT key, state FROM effects").fetchall()
        runs = db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
    assert len(effects) == 1 and effects[0][1] == "done", effects
    assert str(TASK_ID) in effects[0][0]
    assert runs == [("succeeded", PROCESSES)]


def _fired(sandbox: RunningSandbox) -> int:
    fired = LOCAL.get(f"{sandbox.url}/_sandbox/faults").json()["fired"]
    return sum(int(n) for n in fired.values())
