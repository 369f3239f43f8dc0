"""``connector test``: a replayed run's waits move the test's fixed clock instead of sleeping."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from recipe_tests_support import RECIPES, connector

from connector import clock
from connector.runtime import worker

PUSH_TASK = (RECIPES / "push-task-edits.yaml").read_text()

THROTTLED = """\
env: {GHL_LOCATION_ID: loc1}
tests:
  - name: throttled
    links: [{kind: task, ghl_id: T1, connecteam_id: 65f1a2b3c4d5e6f708192a3b, meta: {contactId: C1}}]
    responses:
      - {request: PUT /contacts/C1/tasks/T1, status: 429, headers: {Retry-After: "30"}, body: {}}
      - {request: PUT /contacts/C1/tasks/T1, body: {task: {id: T1}}}
      - {request: PUT /contacts/C1/tasks/T1/completed, body: {task: {id: T1}}}
    expect:
      status: succeeded
      output: {ghl_task: T1, updated: true}
"""


def test_a_recorded_429_is_waited_for_on_the_fixed_clock_not_slept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "push-task-edits.yaml").write_text(PUSH_TASK)
    path = tmp_path / "push-task-edits.test.yaml"
    path.write_text(THROTTLED)
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(min(seconds, 0.05))  # the runtime's own short polls go on

    def durable_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(worker.DBOS, "sleep", durable_sleep)
    result = connector("test", "--json", str(path))
    assert result.exit_code == 0, result.output
    (test,) = json.loads(result.stdout)["tests"]
    assert test["status"] == "passed"
    (wait,) = test["actual"]["waits"]["update_task"]
    assert wait["seconds"] >= 30 and "Retry-After" in wait["reason"]
    assert [s for s in slept if s >= 1] == []
    assert [r["path"] for r in test["actual"]["requests"]][:2] == [
        "/contacts/C1/tasks/T1",
        "/contacts/C1/tasks/T1",
    ]
    again = json.loads(connector("test", "--json", str(path)).stdout)["tests"][0]
    assert again["actual"] == test["actual"]  # the jitter is the same each time


def test_advance_moves_only_a_fixed_clock() -> None:
    moment = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
    with clock.fixed(moment):
        clock.advance(30)
        assert clock.now() == moment + timedelta(seconds=30)
    before = datetime.now(UTC)
    clock.advance(3600)
    assert clock.now() - before < timedelta(seconds=60)
