"""The run store: every run and every step, in the one database (:mod:`connector.persistence.database`).

It is the audit trail: run id, recipe name and hash, trigger payload, each step's request and
response, attempts and waits, status and timings. What it is given is already redacted by the
engine; the store never sees a token. It also keeps the text of every recipe a run started with
(by hash), so a run resumed after its file changed finishes as it began.

Steps are written as they finish. A resumed run is replayed from its checkpoints and records its
steps again, so :meth:`RunStore.run_started` clears a run's earlier step rows. One engine, a
connection per call: the store is safe to use from worker threads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connector.errors import StoreError
from connector.persistence.database import reading, retrying
from connector.persistence.history import (
    marks_table,
    people_in,
    person_of,
    settle_person,
    step_people,
    step_terms,
    terms_table,
    touched,
    write_people,
    write_terms,
)
from connector.persistence.incidents import close_fixed, forget_incidents
from connector.persistence.tables import (
    forks_table,
    recipes_table,
    runs_table,
    steps_table,
)
from connector.records import RunRecord, StepRecord, now_iso

__all__ = ["AmbiguousRunId", "RunStore", "run_from_json"]


class AmbiguousRunId(StoreError):
    def __init__(self, prefix: str, matches: list[str]) -> None:
        self.matches = matches
        super().__init__(
            f"{prefix!r} is ambiguous: it starts {len(matches)} run ids"
            f" ({', '.join(matches[:3])}{', ...' if len(matches) > 3 else ''}); give more of it"
        )


# the statements of every run, built once (building one costs more than SQLite takes to run it)
_insert_step = sa.insert(steps_table)
_update_status = sa.update(runs_table).where(runs_table.c.id == sa.bindparam("b_id"))


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def _step_from_json(data: dict[str, Any]) -> StepRecord:
    request = data.get("request") or {}
    return StepRecord(
        id=data["id"],
        action=data["action"],
        status=data["status"],
        method=data.get("method"),
        url=data.get("url"),
        status_code=data.get("status_code"),
        output=data.get("output"),
        error=data.get("error"),
        request_headers=request.get("headers"),
        request_body=request.get("body"),
        started_at=data.get("started_at"),
        duration_ms=data.get("duration_ms"),
        index=data.get("index"),
        items=[_step_from_json(i) for i in data["items"]]
        if data.get("items") is not None
        else None,
        attempts=data.get("attempts") or 0,
        waits=data.get("waits") or [],
        note=data.get("note"),
        done_before=bool(data.get("done_before")),
        response_body=(data.get("response") or {}).get("body"),
    )


def run_from_json(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> RunRecord:
    """The record :meth:`~connector.records.RunRecord.to_json` gave (what a run's workflow
    returns), with the ``env`` it ran with (not in that JSON)."""
    trigger = data.get("trigger") or {}
    record = RunRecord(
        id=data["id"],
        recipe=data["recipe"],
        recipe_hash=data["recipe_hash"],
        recipe_path=data["recipe_path"],
        trigger_app=trigger.get("app", ""),
        trigger_event=trigger.get("event", ""),
        trigger=trigger.get("payload"),
        status=data["status"],
        output=data.get("output"),
        error=data.get("error"),
        dry_run=bool(data.get("dry_run")),
        started_at=data["started_at"],
        finished_at=data.get("finished_at"),
        duration_ms=data.get("duration_ms"),
        sandbox=bool(data.get("sandbox")),
        parent=data.get("parent"),
        env=dict(env or {}),
    )
    record.steps = [_step_from_json(step) for step in data.get("steps") or ()]
    return record


class RunStore:
    """The run records in the one database; also a :class:`~connector.records.Recorder`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> RunStore:
        from connector.persistence.database import open_database

        return cls(open_database(env).engine)

    @classmethod
    def open(cls, home: Path) -> RunStore:
        """The store of the default database under ``home`` (a ``CONNECTOR_HOME``)."""
        return cls.for_env({"CONNECTOR_HOME": str(home)})

    def close(self) -> None:
        """Nothing to do: the engine belongs to the database handle."""

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _do(self, func: Any, *, read: bool = False) -> Any:
        def once() -> Any:
            if read:
                with reading(self.engine) as conn:
                    return func(conn)
            with self.engine.begin() as conn:
                return func(conn)

        try:
            return retrying(once)  # a database restarting is waited for
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"run store: {str(getattr(exc, 'orig', exc)).splitlines()[0]}"
            ) from None

    # Recipes -----------------------------------------------------------------------------------

    def put_recipe(self, recipe_hash: str, name: str, path: str, text: str) -> None:
        def put(conn: sa.Connection) -> None:
            exists = conn.execute(
                sa.select(recipes_table.c.hash).where(recipes_table.c.hash == recipe_hash)
            ).first()
            if exists is None:
                conn.execute(
                    sa.insert(recipes_table).values(
                        hash=recipe_hash, name=name, path=path, text=text
                    )
                )

        self._do(put)

    def get_recipe(self, recipe_hash: str) -> tuple[str, str] | None:
        """The (path, text) of the recipe with this hash."""
        row = self._do(
            lambda c: c.execute(
                sa.select(recipes_table.c.path, recipes_table.c.text).where(
                    recipes_table.c.hash == recipe_hash
                )
            ).first(),
            read=True,
        )
        return None if row is None else (row[0], row[1])

    # Recorder ----------------------------------------------------------------------------------

    def run_started(self, run: RunRecord) -> None:
        values = {
            "recipe": run.recipe,
            "recipe_hash": run.recipe_hash,
            "recipe_path": run.recipe_path,
            "trigger_app": run.trigger_app,
            "trigger_event": run.trigger_event,
            "trigger_json": _dumps(run.trigger),
            "status": run.status,
            "dry_run": run.dry_run,
            "sandbox": run.sandbox,
            "parent": run.parent,
            "env_json": _dumps(run.env),
            "person": person_of(run.trigger),
        }
        people = people_in(run.trigger)

        def start(conn: sa.Connection) -> None:
            row = conn.execute(
                sa.select(runs_table.c.started_at).where(runs_table.c.id == run.id)
            ).first()
            if row is None:
                conn.execute(
                    sa.insert(runs_table).values(id=run.id, started_at=run.started_at, **values)
                )
                write_terms(conn, run.id, run.started_at, touched(run.trigger))
                write_people(conn, people, now_iso())
            else:  # resumed: replayed from its checkpoints, it records its steps again
                run.started_at = row[0]
                conn.execute(
                    sa.update(runs_table).where(runs_table.c.id == run.id).values(**values)
                )
                conn.execute(sa.delete(steps_table).where(steps_table.c.run_id == run.id))

        self._do(start)

    def step_finished(self, run: RunRecord, step: StepRecord) -> None:
        seq = len(run.steps) - 1 if run.steps and run.steps[-1] is step else len(run.steps)
        data = step.to_json()
        row = {
            "run_id": run.id,
            "seq": seq,
            "step_id": step.id,
            "record_json": _dumps(data),
            "status": step.status,
        }
        terms = step_terms(data)  # the ids and emails it touched, for the page's search
        people = step_people(data)

        def write(conn: sa.Connection) -> None:
            conn.execute(_insert_step, row)
            write_terms(conn, run.id, run.started_at, terms)
            write_people(conn, people, now_iso())

        self._do(write)

    def run_finished(self, run: RunRecord) -> None:
        self.set_status(run)
        if person_of(run.trigger) is None:  # who its trigger's ids name, now that it has run
            self._do(lambda c: settle_person(c, run.id, run.trigger))

    def set_status(self, run: RunRecord) -> None:
        values = {
            "b_id": run.id,
            "status": run.status,
            "output_json": _dumps(run.output),
            "error": run.error,
            "finished_at": run.finished_at,
            "duration_ms": run.duration_ms,
        }

        def write(conn: sa.Connection) -> None:
            conn.execute(_update_status, values)
            if run.status == "succeeded" and run.parent:
                close_fixed(conn, run.id, run.parent)  # the incident this run fixed

        self._do(write)

    # Queries -----------------------------------------------------------------------------------

    def list(
        self, *, limit: int = 50, recipe: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        query = sa.select(runs_table)
        if recipe:
            query = query.where(runs_table.c.recipe == recipe)
        if status:
            query = query.where(runs_table.c.status == status)
        query = query.order_by(runs_table.c.started_at.desc(), runs_table.c.id.desc()).limit(limit)
        rows = self._do(lambda c: c.execute(query).mappings().all(), read=True)
        return [self._run(dict(row), None) for row in rows]

    def failed_steps(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The id of the first failed step of each run in ``run_ids`` that has one."""
        if not run_ids:
            return {}
        query = (
            sa.select(steps_table.c.run_id, steps_table.c.step_id)
            .where(steps_table.c.run_id.in_(list(run_ids)), steps_table.c.status == "failed")
            .order_by(steps_table.c.run_id, steps_table.c.seq)
        )
        rows = self._do(lambda c: c.execute(query).all(), read=True)
        found: dict[str, str] = {}
        for run_id, step_id in rows:
            found.setdefault(run_id, step_id)
        return found

    def ids(self, *, status: str) -> Sequence[str]:
        rows = self._do(
            lambda c: c.execute(
                sa.select(runs_table.c.id).where(runs_table.c.status == status)
            ).all(),
            read=True,
        )
        return [r[0] for r in rows]

    def put_fork(self, run_id: str, kind: str, claims_of: str) -> None:
        """Record that ``run_id`` is a ``kind`` ("retry" or "replay") of another run, going on
        with the write claims of ``claims_of``."""
        self._do(
            lambda c: c.execute(
                sa.insert(forks_table).values(run_id=run_id, kind=kind, claims_of=claims_of)
            )
        )

    def claims_of(self, run_id: str) -> str | None:
        """Whose write claims the retry ``run_id`` goes on with; None for any other run."""
        row = self._do(
            lambda c: c.execute(
                sa.select(forks_table.c.claims_of).where(
                    forks_table.c.run_id == run_id, forks_table.c.kind == "retry"
                )
            ).first(),
            read=True,
        )
        return None if row is None else str(row[0])

    def lineage(self, run_id: str) -> Sequence[str]:
        """``run_id`` and every run made from it (its retries and replays, and theirs)."""

        def walk(conn: sa.Connection) -> Sequence[str]:
            found, frontier = [run_id], [run_id]
            while frontier:
                rows = conn.execute(
                    sa.select(runs_table.c.id).where(runs_table.c.parent.in_(frontier))
                ).all()
                frontier = [r[0] for r in rows if r[0] not in found]
                found.extend(frontier)
            return found

        return self._do(walk, read=True)

    def get(self, run_id: str) -> RunRecord | None:
        """A run by id, or by a unique prefix of its id (:class:`AmbiguousRunId` if not unique)."""
        # a prefix of the id, LIKE's wildcards and its escape taken literally
        escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = escaped + "%"

        def find(conn: sa.Connection) -> RunRecord | None:
            rows = (
                conn.execute(
                    sa.select(runs_table)
                    .where(
                        sa.or_(
                            runs_table.c.id == run_id, runs_table.c.id.like(pattern, escape="\\")
                        )
                    )
                    .limit(6)
                )
                .mappings()
                .all()
            )
            exact = [r for r in rows if r["id"] == run_id]
            if exact:
                row = exact[0]
            elif len(rows) == 1:
                row = rows[0]
            elif rows:
                raise AmbiguousRunId(run_id, [r["id"] for r in rows])
            else:
                return None
            steps = conn.execute(
                sa.select(steps_table.c.record_json)
                .where(steps_table.c.run_id == row["id"])
                .order_by(steps_table.c.seq)
            ).all()
            return self._run(dict(row), [s[0] for s in steps])

        try:
            with reading(self.engine) as conn:
                return find(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"run store: {exc}") from None

    def copy_from(self, other: RunStore, run_id: str) -> None:
        """Copy one run (its row and its steps) from another store (a sandbox's database)."""
        with other.engine.connect() as conn:
            run = (
                conn.execute(sa.select(runs_table).where(runs_table.c.id == run_id))
                .mappings()
                .first()
            )
            steps = (
                conn.execute(sa.select(steps_table).where(steps_table.c.run_id == run_id))
                .mappings()
                .all()
            )
            where = terms_table.c.run_id == run_id
            terms = [r[0] for r in conn.execute(sa.select(terms_table.c.term).where(where))]
        if run is None:
            return

        def copy(c: sa.Connection) -> None:
            c.execute(sa.delete(steps_table).where(steps_table.c.run_id == run_id))
            c.execute(sa.delete(runs_table).where(runs_table.c.id == run_id))
            c.execute(sa.insert(runs_table).values(**dict(run)))
            if steps:
                c.execute(sa.insert(steps_table), [dict(s) for s in steps])
            write_terms(c, run_id, run["started_at"], terms)

        self._do(copy)

    def prune(self, before_iso: str) -> Sequence[str]:
        """Delete finished runs that started before ``before_iso`` (and their steps, and the
        incidents announced resolved before it); returns their ids, so their checkpoints and
        effect claims can go too."""

        def prune(conn: sa.Connection) -> Sequence[str]:
            finished = (
                runs_table.c.started_at < before_iso,
                runs_table.c.status.in_(("succeeded", "failed")),
            )
            ids = [r[0] for r in conn.execute(sa.select(runs_table.c.id).where(*finished))]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                conn.execute(sa.delete(steps_table).where(steps_table.c.run_id.in_(chunk)))
                conn.execute(sa.delete(runs_table).where(runs_table.c.id.in_(chunk)))
                conn.execute(sa.delete(forks_table).where(forks_table.c.run_id.in_(chunk)))
                conn.execute(sa.delete(terms_table).where(terms_table.c.run_id.in_(chunk)))
                conn.execute(sa.delete(marks_table).where(marks_table.c.run_id.in_(chunk)))
            forget_incidents(conn, before_iso)  # those over and announced by then
            return ids

        ids: Sequence[str] = self._do(prune)
        return ids

    def _run(self, data: Mapping[str, Any], steps: Sequence[str] | None) -> RunRecord:
        record = RunRecord(
            id=data["id"],
            recipe=data["recipe"],
            recipe_hash=data["recipe_hash"],
            recipe_path=data["recipe_path"],
            trigger_app=data["trigger_app"],
            trigger_event=data["trigger_event"],
            trigger=json.loads(data["trigger_json"]),
            status=data["status"],
            output=json.loads(data["output_json"]) if data["output_json"] else None,
            error=data["error"],
            dry_run=bool(data["dry_run"]),
            started_at=data["started_at"],
            finished_at=data["finished_at"],
            duration_ms=data["duration_ms"],
            sandbox=bool(data["sandbox"]),
            parent=data["parent"],
            env=json.loads(data["env_json"]) if data["env_json"] else {},
        )
        if steps is not None:
            record.steps = [_step_from_json(json.loads(s)) for s in steps]
        return record
