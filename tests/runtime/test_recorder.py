"""How a durable run reaches the run store (:class:`RunRecorder`): in one transaction when it
ends, step by step when it runs long, and as a run resumed after a crash records it again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.persistence.database import make_engine
from connector.persistence.migrations import upgrade
from connector.persistence.recorder import RunRecorder
from connector.persistence.runs import RunStore
from connector.records import RunRecord, StepRecord


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _run(run_id: str = "run_recorded00000000001") -> RunRecord:
    return RunRecord(
        id=run_id,
        recipe="r",
        recipe_hash="h",
        recipe_path="r.yaml",
        trigger_app="manual",
        trigger_event="test",
        trigger={"contactId": "c1"},
        started_at="2026-12-01T10:00:00.000Z",
    )


def _step(run: RunRecord, step_id: str) -> StepRecord:
    step = StepRecord(step_id, "ghl.get-contact", "succeeded", output={"id": step_id})
    run.steps.append(step)
    return step


def test_a_fast_run_is_written_once_when_it_ends(engine: sa.Engine) -> None:
    recorder, store = RunRecorder(engine), RunStore(engine)
    run = _run()
    recorder.run_started(run)
    recorder.step_finished(run, _step(run, "a"))
    recorder.step_finished(run, _step(run, "b"))
    assert store.get(run.id) is None  # held: a run of a few fast steps is one transaction
    run.status, run.output, run.finished_at = "succeeded", {"ok": 1}, "2026-12-01T10:00:01.000Z"
    recorder.run_finished(run)
    stored = store.get(run.id)
    assert stored is not None and stored.status == "succeeded" and stored.output == {"ok": 1}
    assert [s.id for s in stored.steps] == ["a", "b"]
    recorder.close()


def test_a_long_run_is_written_as_it_goes(engine: sa.Engine) -> None:
    recorder, store = RunRecorder(engine, flush_seconds=0.05), RunStore(engine)
    run = _run()
    recorder.run_started(run)
    recorder.step_finished(run, _step(run, "a"))
    deadline = time.monotonic() + 60  # only a guard against hanging: the thread writes it
    while (found := store.get(run.id)) is None or not found.steps:
        assert time.monotonic() < deadline, "the held step was never written"
        time.sleep(0.01)
    assert found.status == "running" and [s.id for s in found.steps] == ["a"]
    recorder.close()


def test_a_resumed_run_keeps_its_start_and_records_its_steps_again(engine: sa.Engine) -> None:
    store = RunStore(engine)
    first = _run()
    store.run_started(first)  # an earlier pass, interrupted after one step
    store.step_finished(first, _step(first, "a"))
    recorder = RunRecorder(engine)
    again = _run()
    again.started_at = "2026-12-01T11:00:00.000Z"
    recorder.run_started(again)
    recorder.step_finished(again, _step(again, "a"))
    recorder.step_finished(again, _step(again, "b"))
    again.status = "succeeded"
    recorder.run_finished(again)
    stored = store.get(again.id)
    assert stored is not None and stored.started_at == first.started_at
    assert [s.id for s in stored.steps] == ["a", "b"] and stored.status == "succeeded"
    recorder.close()


def test_a_deferred_write_is_made_in_the_runs_transaction(engine: sa.Engine) -> None:
    recorder, store = RunRecorder(engine), RunStore(engine)
    run = _run()
    made: list[str] = []
    recorder.run_started(run)
    recorder.defer(run.id, lambda conn: made.append(run.id))
    assert made == []
    recorder.flush(run.id)
    assert made == [run.id] and store.get(run.id) is not None
    recorder.defer("run_not_recorded_here000", lambda conn: made.append("now"))
    assert made == [run.id, "now"]  # a run not being recorded: made at once
    recorder.close()
