"""The run store: every run and every step, in SQLite under ``CONNECTOR_HOME``.

It is the audit trail: run id, recipe name and hash, trigger payload, each step's request and
response, status and timings. What it is given is already redacted by the engine; the store never
sees a token. Steps are written as they finish, so a run that dies half way leaves what it did.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from connector.errors import StoreError
from connector.records import RunRecord, StepRecord

__all__ = ["RunStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    recipe TEXT NOT NULL,
    recipe_hash TEXT NOT NULL,
    recipe_path TEXT NOT NULL,
    trigger_app TEXT NOT NULL,
    trigger_event TEXT NOT NULL,
    trigger_json TEXT NOT NULL,
    status TEXT NOT NULL,
    dry_run INTEGER NOT NULL DEFAULT 0,
    output_json TEXT,
    error TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_ms REAL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_recipe ON runs (recipe, started_at);
CREATE TABLE IF NOT EXISTS steps (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    step_id TEXT NOT NULL,
    record_json TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
"""


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
    )


class RunStore:
    """A SQLite run store; also a :class:`~connector.records.Recorder`."""

    FILENAME = "runs.sqlite3"

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the run store at {path}: {exc}") from None
        self._seq: dict[str, int] = {}

    @classmethod
    def open(cls, home: Path) -> RunStore:
        return cls(home / cls.FILENAME)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        """One statement, committed on its own (autocommit): a crash keeps every earlier write."""
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise StoreError(f"run store: {exc}") from None

    # Recorder ----------------------------------------------------------------------------------

    def run_started(self, run: RunRecord) -> None:
        self._write(
            "INSERT INTO runs (id, recipe, recipe_hash, recipe_path, trigger_app, trigger_event,"
            " trigger_json, status, dry_run, started_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                run.id,
                run.recipe,
                run.recipe_hash,
                run.recipe_path,
                run.trigger_app,
                run.trigger_event,
                _dumps(run.trigger),
                run.status,
                int(run.dry_run),
                run.started_at,
            ),
        )
        self._seq[run.id] = 0

    def step_finished(self, run: RunRecord, step: StepRecord) -> None:
        seq = self._seq.get(run.id, 0)
        self._seq[run.id] = seq + 1
        self._write(
            "INSERT INTO steps (run_id, seq, step_id, record_json, status) VALUES (?,?,?,?,?)",
            (run.id, seq, step.id, _dumps(step.to_json()), step.status),
        )

    def run_finished(self, run: RunRecord) -> None:
        self._write(
            "UPDATE runs SET status=?, output_json=?, error=?, finished_at=?, duration_ms=?"
            " WHERE id=?",
            (
                run.status,
                _dumps(run.output),
                run.error,
                run.finished_at,
                run.duration_ms,
                run.id,
            ),
        )
        self._seq.pop(run.id, None)

    # Queries -----------------------------------------------------------------------------------

    def list(
        self, *, limit: int = 50, recipe: str | None = None, status: str | None = None
    ) -> list[RunRecord]:
        sql = "SELECT * FROM runs"
        where, args = [], []
        if recipe:
            where.append("recipe = ?")
            args.append(recipe)
        if status:
            where.append("status = ?")
            args.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        try:
            rows = self._db.execute(sql, (*args, limit)).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"run store: {exc}") from None
        return [self._run(row, with_steps=False) for row in rows]

    def get(self, run_id: str) -> RunRecord | None:
        """A run by id, or by a unique prefix of its id."""
        try:
            rows = self._db.execute(
                "SELECT * FROM runs WHERE id = ? OR id LIKE ? ESCAPE '\\' LIMIT 2",
                (run_id, run_id.replace("%", "").replace("_", "\\_") + "%"),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"run store: {exc}") from None
        exact = [r for r in rows if r[0] == run_id]
        if exact:
            return self._run(exact[0], with_steps=True)
        if len(rows) == 1:
            return self._run(rows[0], with_steps=True)
        return None

    def _run(self, row: tuple[Any, ...], *, with_steps: bool) -> RunRecord:
        cols = [d[0] for d in self._db.execute("SELECT * FROM runs LIMIT 0").description]
        data = dict(zip(cols, row, strict=True))
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
        )
        if with_steps:
            steps = self._db.execute(
                "SELECT record_json FROM steps WHERE run_id = ? ORDER BY seq", (record.id,)
            ).fetchall()
            record.steps = [_step_from_json(json.loads(s[0])) for s in steps]
        return record
