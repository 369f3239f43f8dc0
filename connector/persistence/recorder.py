"""How a durable run reaches the run store: in few transactions.

:class:`RunRecorder` is the :class:`~connector.records.Recorder` of the durable runtime. It keeps
what a run records (its row, each step's record, the search terms, and writes other stores ask
to make with it, :meth:`RunRecorder.defer`) and writes them in one transaction when the run ends,
or when the oldest of them has waited :data:`FLUSH_SECONDS` (a thread of its own sees to that,
so the run history page follows a long run as it goes). A run of a few fast steps is then one
transaction, where it was one per step and two more.

Nothing durable depends on these rows being written at once: a run is resumed from its DBOS
checkpoints, whether or not its row reached the store (``Worker.resume`` finds the runs DBOS
left pending), and a resumed run records its steps again (its earlier step rows are cleared
by its first write, as :meth:`~connector.persistence.runs.RunStore.run_started` does).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.errors import StoreError
from connector.persistence.database import retrying
from connector.persistence.dialects import insert
from connector.persistence.history import (
    people_in,
    person_of,
    set_person,
    settled_person,
    step_people,
    step_terms,
    touched,
    write_people,
    write_terms,
)
from connector.persistence.incidents import close_fixed
from connector.persistence.prepared import Prepared
from connector.persistence.tables import runs_table, steps_table
from connector.records import RunRecord, StepRecord, now_iso

__all__ = ["FLUSH_SECONDS", "RunRecorder"]

FLUSH_SECONDS = 0.5  # the longest a finished step waits before the store has it

Write = Callable[[sa.Connection], Any]

# the statements of a run's transaction, compiled once (connector.persistence.prepared)
_START = (
    "recipe",
    "recipe_hash",
    "recipe_path",
    "trigger_app",
    "trigger_event",
    "trigger_json",
    "dry_run",
    "sandbox",
    "parent",
    "env_json",
    "person",
)
_FINISH = ("status", "output_json", "error", "finished_at", "duration_ms")
_by_id = runs_table.c.id == sa.bindparam("b_id")
_insert_step = Prepared(
    sa.insert(steps_table), keys=("run_id", "seq", "step_id", "record_json", "status")
)
_insert_run = Prepared(
    lambda dialect: (
        insert(dialect, runs_table)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(runs_table.c.id)
    ),  # whether it was made (rowcount does not say)
    keys=("id", "started_at", *_START, *_FINISH),
)
_update_run = Prepared(sa.update(runs_table).where(_by_id), keys=(*_START, *_FINISH))
_finish_run = Prepared(sa.update(runs_table).where(_by_id), keys=_FINISH)
_started_at = Prepared(sa.select(runs_table.c.started_at).where(_by_id))
_delete_steps = Prepared(sa.delete(steps_table).where(steps_table.c.run_id == sa.bindparam("b_id")))


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


@dataclass
class _Pending:
    """What one run has recorded that the store does not have yet."""

    run: RunRecord
    since: float  # monotonic time of the oldest thing not written
    written: bool = False  # the run's row is in the store (written by this process)
    steps: list[dict[str, Any]] = field(default_factory=list)
    terms: set[str] = field(default_factory=set)
    people: dict[str, str] = field(default_factory=dict)  # the people its records name, by id
    writes: list[Write] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RunRecorder:
    """Records runs on ``engine``'s run store, a transaction per run (see the module docstring)."""

    def __init__(self, engine: sa.Engine, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self._pending: dict[str, _Pending] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    # Recorder ----------------------------------------------------------------------------------

    def run_started(self, run: RunRecord) -> None:
        pending = _Pending(
            run, time.monotonic(), terms=set(touched(run.trigger)), people=people_in(run.trigger)
        )
        with self._changed:
            self._pending[run.id] = pending
            if self._thread is None or not self._thread.is_alive():
                self._closed = False
                self._thread = threading.Thread(
                    target=self._flush_late, name="connector-recorder", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def step_finished(self, run: RunRecord, step: StepRecord) -> None:
        pending = self._pending.get(run.id)
        if pending is None:  # a run this recorder did not start: nothing to hold it for
            return
        seq = len(run.steps) - 1 if run.steps and run.steps[-1] is step else len(run.steps)
        data = step.to_json()
        row = {
            "run_id": run.id,
            "seq": seq,
            "step_id": step.id,
            "record_json": _dumps(data),
            "status": step.status,
        }
        with pending.lock:
            pending.steps.append(row)
            pending.terms.update(step_terms(data))  # the ids and emails it touched
            for term, name in step_people(data).items():
                pending.people.setdefault(term, name)
        if time.monotonic() - pending.since >= self.flush_seconds:
            self._flush(pending, final=False)

    def run_finished(self, run: RunRecord) -> None:
        pending = self._pending.get(run.id)
        if pending is None:
            return
        try:
            self._flush(pending, final=True)
        finally:
            with self._changed:
                self._pending.pop(run.id, None)

    # writes of other stores, made with the run's --------------------------------------------

    def defer(self, run_id: str, write: Write) -> None:
        """Make ``write`` (given the connection of a transaction) in the run's next transaction;
        at once when the run is not being recorded here."""
        pending = self._pending.get(run_id)
        if pending is None:
            self._transaction(write)
            return
        with pending.lock:
            pending.writes.append(write)

    def flush(self, run_id: str) -> None:
        """Write what ``run_id`` holds now (a write it deferred is needed by a later step)."""
        pending = self._pending.get(run_id)
        if pending is not None:
            self._flush(pending, final=False)

    def flush_all(self) -> None:
        for pending in list(self._pending.values()):
            with contextlib.suppress(StoreError):
                self._flush(pending, final=False)

    def close(self) -> None:
        """Write what is held and stop the thread that writes late."""
        self.flush_all()
        with self._changed:
            self._closed = True
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # writing -----------------------------------------------------------------------------------

    def _flush(self, pending: _Pending, *, final: bool) -> None:
        with pending.lock:
            if (
                pending.written
                and not final
                and not (pending.steps or pending.terms or pending.writes or pending.people)
            ):
                return
            steps, terms, writes = list(pending.steps), set(pending.terms), list(pending.writes)
            people = dict(pending.people)
            run = pending.run

            def write(conn: sa.Connection) -> None:
                person = None  # who the run was about, when its trigger names nobody
                if final and person_of(run.trigger) is None:  # who its trigger's ids name
                    person = settled_person(conn, run.trigger, people)
                if not pending.written:
                    self._write_run(conn, run, person)
                elif final:
                    _finish_run.execute(conn, {"b_id": run.id, **_finish_values(run)})
                    if person is not None:
                        set_person(conn, run.id, person)
                _insert_step.executemany(conn, steps)
                write_terms(conn, run.id, run.started_at, sorted(terms))
                write_people(conn, people, now_iso())
                for deferred in writes:
                    deferred(conn)
                if final and run.status == "succeeded" and run.parent:
                    close_fixed(conn, run.id, run.parent)  # the incident this run fixed

            self._transaction(write)
            pending.written = True
            del pending.steps[: len(steps)]
            pending.terms.difference_update(terms)
            for term in people:
                pending.people.pop(term, None)
            del pending.writes[: len(writes)]
            pending.since = time.monotonic()

    def _write_run(self, conn: sa.Connection, run: RunRecord, person: str | None) -> None:
        """The run's row, with what it is now (``person``: who it was about, when its trigger
        names nobody); a row that is there already is an earlier pass of this run (resumed): it
        keeps its start time and loses its step rows, recorded again."""
        values = _start_values(run)
        if person is not None:
            values["person"] = person
        values.update(_finish_values(run))
        if _insert_run.first(conn, {"id": run.id, "started_at": run.started_at, **values}):
            return
        started = _started_at.first(conn, {"b_id": run.id})
        if started is not None and started[0] is not None:
            run.started_at = started[0]
        _update_run.execute(conn, {"b_id": run.id, **values})
        _delete_steps.execute(conn, {"b_id": run.id})

    def _transaction(self, write: Write) -> None:
        def once() -> None:
            with self.engine.begin() as conn:
                write(conn)

        try:
            retrying(once)  # a database restarting is waited for
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"run store: {str(getattr(exc, 'orig', exc)).splitlines()[0]}"
            ) from None

    def _flush_late(self) -> None:
        """The thread that writes what has waited :attr:`flush_seconds` (a long run's steps)."""
        while True:
            with self._changed:
                while not self._pending and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                due = [
                    p
                    for p in self._pending.values()
                    if time.monotonic() - p.since >= self.flush_seconds
                ]
            for pending in due:
                with contextlib.suppress(Exception):  # the run's own next write tries again
                    self._flush(pending, final=False)
            time.sleep(self.flush_seconds / 2)


def _start_values(run: RunRecord) -> dict[str, Any]:
    return {
        "recipe": run.recipe,
        "recipe_hash": run.recipe_hash,
        "recipe_path": run.recipe_path,
        "trigger_app": run.trigger_app,
        "trigger_event": run.trigger_event,
        "trigger_json": _dumps(run.trigger),
        "dry_run": run.dry_run,
        "sandbox": run.sandbox,
        "parent": run.parent,
        "env_json": _dumps(run.env),
        "person": person_of(run.trigger),
    }


def _finish_values(run: RunRecord) -> dict[str, Any]:
    return {
        "status": run.status,
        "output_json": _dumps(run.output) if run.status != "running" else None,
        "error": run.error,
        "finished_at": run.finished_at,
        "duration_ms": run.duration_ms,
    }
