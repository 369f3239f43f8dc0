"""``connector runs retry|replay|prune`` and run-id lookup, end to end: the CLI on one
CONNECTOR_HOME, against the sandbox served in this process. What runs a recipe (``run``,
``runs retry``, ``runs replay``: a durable runtime each) is a process of its own, forked after the
imports (:func:`launcher`); what only reads or prunes the history (``runs show``, ``list``,
``prune``) runs in this process, through the same command (:func:`e2e_support.cli_here`), which
proves the same without an interpreter's start and imports each time.

What a command claims is checked where it happened: the sandbox's state over HTTP (tasks, notes,
tags), the log of requests the sandbox received (a step not run again sent nothing), and the
database under CONNECTOR_HOME.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e_support import (
    CONTACT,
    RECIPES,
    Launcher,
    RequestLog,
    cli_here,
    ghl_contact,
    ghl_items,
    set_faults,
)

from connector.persistence.database import close_all
from connector.persistence.runs import RunStore
from connector.records import RunRecord
from connector.sandbox.server import RunningSandbox

RUN_ID = re.compile(r"run_[0-9a-f]{20}")
TASKS = f"/ghl/contacts/{CONTACT}/tasks"
NOTES = f"/ghl/contacts/{CONTACT}/notes"
TAGS = f"/ghl/contacts/{CONTACT}/tags"

# three writes, none with `once:`: a step that ran again would write again, visibly
THREE_WRITES = {
    "name": "task-note-tag",
    "description": "A task, a note and a tag on one contact.",
    "trigger": {
        "app": "manual",
        "event": "test",
        "sample": {"contactId": CONTACT, "title": "t", "note": "n", "tag": "g"},
    },
    "steps": [
        {
            "id": "task",
            "action": "ghl.create-task",
            "with": {
                "contactId": "{{ trigger.contactId }}",
                "title": "{{ trigger.title }}",
                "dueDate": "2026-12-24T10:00:00Z",
                "completed": False,
            },
        },
        {
            "id": "note",
            "action": "ghl.create-note",
            "with": {"contactId": "{{ trigger.contactId }}", "body": "{{ trigger.note }}"},
        },
        {
            "id": "tag",
            "action": "ghl.add-tags",
            "with": {"contactId": "{{ trigger.contactId }}", "tags": ["{{ trigger.tag }}"]},
        },
    ],
    "output": {
        "task_id": "{{ steps.task.output.task.id }}",
        "note_id": "{{ steps.note.output.note.id }}",
        "tags": "{{ steps.tag.output.tags }}",
    },
}
EVENT = {
    "contactId": CONTACT,
    "title": "Send the signed estimate",
    "note": "Estimate sent by mail",
    "tag": "estimate-sent",
}


@pytest.fixture()
def log(sandbox: RunningSandbox) -> RequestLog:
    return RequestLog(sandbox)


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture()
def env(home: Path, sandbox: RunningSandbox) -> Iterator[dict[str, str]]:
    yield {
        **sandbox.env,
        "CONNECTOR_HOME": str(home),
        # a failing request gives up fast: two attempts, a few milliseconds apart
        "CONNECTOR_RETRY_ATTEMPTS": "2",
        "CONNECTOR_RETRY_BASE_DELAY": "0.01",
        "CONNECTOR_RETRY_MAX_DELAY": "0.02",
    }
    close_all()


@pytest.fixture()
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "task-note-tag.yaml"
    path.write_text(yaml.safe_dump(THREE_WRITES, sort_keys=False))
    return path


@pytest.fixture()
def event(tmp_path: Path) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(EVENT))
    return path


def here_json(env: Mapping[str, str], *args: str, expect: int | None = 0) -> Any:
    return json.loads(cli_here(env, *args, expect=expect).stdout)


def _ours(items: list[dict[str, Any]], field: str, value: str) -> list[dict[str, Any]]:
    return [i for i in items if i.get(field) == value]


def _sent(log: RequestLog, path: str) -> int:
    return len(log.requests("POST", path))


def _steps(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in record["steps"]}


def test_retry_finishes_a_failed_run_from_the_step_that_failed(
    sandbox: RunningSandbox,
    log: RequestLog,
    env: dict[str, str],
    recipe: Path,
    event: Path,
    launcher: Launcher,
) -> None:
    set_faults(sandbox, f"503:1,method=POST,path={TAGS}")
    failed = launcher.cli_json(env, "run", str(recipe), "--event", str(event), "--json", expect=1)
    assert failed["status"] == "failed"
    steps = _steps(failed)
    assert [steps[s]["status"] for s in ("task", "note", "tag")] == [
        "succeeded",
        "succeeded",
        "failed",
    ]
    assert "503" in failed["error"]
    # what the failed run did: one task, one note, no tag (two attempts refused)
    assert len(_ours(ghl_items(sandbox, "tasks"), "title", EVENT["title"])) == 1
    assert len(_ours(ghl_items(sandbox, "notes"), "body", EVENT["note"])) == 1
    assert EVENT["tag"] not in ghl_contact(sandbox)["tags"]
    assert (_sent(log, TASKS), _sent(log, NOTES), _sent(log, TAGS)) == (1, 1, 2)

    set_faults(sandbox)
    retried = launcher.cli_json(env, "runs", "retry", failed["id"], "--json")

    # a new run, linked to the failed one, that succeeded
    assert retried["id"] != failed["id"]
    assert RUN_ID.fullmatch(retried["id"]), retried["id"]  # a run id like the others
    assert retried["parent"] == failed["id"]
    assert retried["status"] == "succeeded", retried["error"]
    # only the failed step was sent again: no second task, no second note
    assert (_sent(log, TASKS), _sent(log, NOTES), _sent(log, TAGS)) == (1, 1, 3)
    tasks = _ours(ghl_items(sandbox, "tasks"), "title", EVENT["title"])
    notes = _ours(ghl_items(sandbox, "notes"), "body", EVENT["note"])
    assert len(tasks) == len(notes) == 1
    tags = ghl_contact(sandbox)["tags"]
    assert EVENT["tag"] in tags
    # the retry's output is the world's: the first run's task and note, the tags the API has now
    assert retried["output"] == {"task_id": tasks[0]["id"], "note_id": notes[0]["id"], "tags": tags}
    assert _steps(retried)["task"]["output"] == steps["task"]["output"]

    # the history keeps both: the failed run as it was, and the retry pointing at it
    shown = here_json(env, "runs", "show", retried["id"][:12], "--json")
    assert shown["id"] == retried["id"] and shown["parent"] == failed["id"]
    text = cli_here(env, "runs", "show", retried["id"]).stdout
    assert f"made from run {failed['id']}" in text
    old = here_json(env, "runs", "show", failed["id"], "--json")
    assert old["status"] == "failed" and old["parent"] is None
    listed = here_json(env, "runs", "list", "--json")["runs"]
    assert {r["id"]: r["parent"] for r in listed} == {
        failed["id"]: None,
        retried["id"]: failed["id"],
    }

    # a run that succeeded is not retried
    again = launcher.cli(env, "runs", "retry", retried["id"], expect=2)
    assert "only a failed run is retried" in again.stderr
    assert _sent(log, "/ghl") == 5  # nothing more was sent


def test_replay_from_a_step_runs_it_and_the_later_ones_again_as_a_new_linked_run(
    sandbox: RunningSandbox,
    log: RequestLog,
    env: dict[str, str],
    recipe: Path,
    event: Path,
    launcher: Launcher,
) -> None:
    first = launcher.cli_json(env, "run", str(recipe), "--event", str(event), "--json")
    assert first["status"] == "succeeded"
    assert (_sent(log, TASKS), _sent(log, NOTES), _sent(log, TAGS)) == (1, 1, 1)

    replayed = launcher.cli_json(env, "runs", "replay", first["id"], "--from", "note", "--json")

    assert replayed["id"] != first["id"]
    assert RUN_ID.fullmatch(replayed["id"]), replayed["id"]
    assert replayed["parent"] == first["id"]
    assert replayed["status"] == "succeeded", replayed["error"]
    # `task` came before `note`: not sent again; `note` and `tag` were
    assert (_sent(log, TASKS), _sent(log, NOTES), _sent(log, TAGS)) == (1, 2, 2)
    tasks = _ours(ghl_items(sandbox, "tasks"), "title", EVENT["title"])
    notes = _ours(ghl_items(sandbox, "notes"), "body", EVENT["note"])
    assert len(tasks) == 1
    assert len(notes) == 2  # the replayed step wrote its note again (it declares no `once:`)
    assert replayed["output"]["task_id"] == first["output"]["task_id"] == tasks[0]["id"]
    assert {first["output"]["note_id"], replayed["output"]["note_id"]} == {n["id"] for n in notes}
    assert ghl_contact(sandbox)["tags"].count(EVENT["tag"]) == 1

    # a replay without --from starts at the first step: all three are sent again
    whole = launcher.cli_json(env, "runs", "replay", first["id"], "--json")
    assert whole["parent"] == first["id"] and whole["status"] == "succeeded"
    assert (_sent(log, TASKS), _sent(log, NOTES), _sent(log, TAGS)) == (2, 3, 3)
    assert len(_ours(ghl_items(sandbox, "tasks"), "title", EVENT["title"])) == 2

    # a step the run does not have is named as such, and nothing is sent
    wrong = launcher.cli(env, "runs", "replay", first["id"], "--from", "nosuch", expect=1)
    assert "has no step 'nosuch'" in wrong.stderr and "task, note, tag" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    assert _sent(log, "/ghl") == 8


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "connector.sqlite3")


def _record(run_id: str, started_at: str, status: str) -> RunRecord:
    return RunRecord(
        id=run_id,
        recipe="located",
        recipe_hash="0" * 64,
        recipe_path=str(RECIPES / "located.yaml"),
        trigger_app="manual",
        trigger_event="test",
        trigger={},
        status=status,  # type: ignore[arg-type]
        started_at=started_at,
    )


def test_prune_deletes_old_finished_runs_and_keeps_new_and_running_ones(
    env: dict[str, str], home: Path, launcher: Launcher
) -> None:
    located = str(RECIPES / "located.yaml")
    ids = [launcher.cli_json(env, "run", located, "--json")["id"] for _ in range(3)]
    old_ok, old_failed, new_ok = ids
    with _db(home) as db:
        db.execute(
            "UPDATE runs SET started_at = '2020-01-01T00:00:00.000Z' WHERE id IN (?, ?)",
            (old_ok, old_failed),
        )
        db.execute("UPDATE runs SET status = 'failed' WHERE id = ?", (old_failed,))
    # an old run still running (interrupted) is kept: `runs resume` may finish it
    with RunStore.for_env(env) as store:
        store.run_started(_record("run_interrupted0000000", "2020-01-01T00:00:00.000Z", "running"))

    done = cli_here(env, "runs", "prune", "--older-than", "30d")
    assert done.stdout.startswith("deleted 2 runs started before ")
    assert not done.stderr

    listed = here_json(env, "runs", "list", "--json")["runs"]
    assert sorted(r["id"] for r in listed) == sorted([new_ok, "run_interrupted0000000"])
    with _db(home) as db:
        left = {row[0] for row in db.execute("SELECT DISTINCT run_id FROM run_steps")}
    assert left == {new_ok}  # the pruned runs' steps went with them
    with _db(home) as db:  # and so did their checkpoints, which hold events and responses
        checkpointed = {row[0] for row in db.execute("SELECT workflow_uuid FROM workflow_status")}
        outputs = {row[0] for row in db.execute("SELECT workflow_uuid FROM operation_outputs")}
    assert old_ok not in checkpointed and old_failed not in checkpointed
    assert new_ok in checkpointed and old_ok not in outputs and new_ok in outputs
    gone = cli_here(env, "runs", "show", old_ok, expect=1)
    assert f"no run {old_ok!r}" in gone.stderr

    nothing = cli_here(env, "runs", "prune", "--older-than", "30d")
    assert nothing.stdout.startswith("deleted 0 runs started before ")
    one = cli_here(env, "runs", "prune", "--older-than", "0m")
    assert one.stdout.startswith("deleted 1 run started before ")  # the new one; not the running
    assert [r["id"] for r in here_json(env, "runs", "list", "--json")["runs"]] == [
        "run_interrupted0000000"
    ]


@pytest.mark.parametrize("age", ["banana", "30", "d", "-5d", "30w", ""])
def test_prune_with_a_bad_age_is_a_usage_error(env: dict[str, str], age: str) -> None:
    done = cli_here(env, "runs", "prune", "--older-than", age, expect=2)
    assert "--older-than" in done.stderr
    assert "use a number and d, h or m" in done.stderr
    assert "Traceback" not in done.stderr
    assert not done.stdout


def test_prune_without_an_age_is_a_usage_error(env: dict[str, str]) -> None:
    done = cli_here(env, "runs", "prune", expect=2)
    assert "--older-than" in done.stderr and "Traceback" not in done.stderr


def test_an_ambiguous_id_prefix_says_so_and_an_unknown_id_is_named(
    env: dict[str, str], home: Path, launcher: Launcher
) -> None:
    with RunStore.for_env(env) as store:
        for run_id in ("run_aaaa1", "run_aaaa10", "run_aaab2"):
            store.run_started(_record(run_id, "2026-01-01T00:00:00.000Z", "failed"))

    for command in (["show"], ["retry"], ["replay"]):
        # retry and replay start a runtime first
        call = cli_here if command == ["show"] else launcher.cli
        done = call(env, "runs", *command, "run_aaa", expect=2)
        assert "'run_aaa' is ambiguous" in done.stderr, command
        assert "run_aaaa1" in done.stderr and "run_aaab2" in done.stderr
        assert "give more of it" in done.stderr
        assert "Traceback" not in done.stderr

        unknown = call(env, "runs", *command, "run_zzz", expect=1)
        assert "no run 'run_zzz'" in unknown.stderr, command
        assert "connector runs list" in unknown.stderr
        assert "Traceback" not in unknown.stderr

    # an id that is whole is that run, even when it begins another's
    assert here_json(env, "runs", "show", "run_aaaa1", "--json")["id"] == "run_aaaa1"
    assert here_json(env, "runs", "show", "run_aaab", "--json")["id"] == "run_aaab2"
    # characters that mean something to SQL LIKE are only characters
    assert "no run 'run_%'" in cli_here(env, "runs", "show", "run_%", expect=1).stderr
    assert "no run 'run__aaa'" in cli_here(env, "runs", "show", "run__aaa", expect=1).stderr
    assert "no run 'run\\\\aaa'" in cli_here(env, "runs", "show", "run\\aaa", expect=1).stderr
