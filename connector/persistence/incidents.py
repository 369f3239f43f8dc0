"""Incidents: what an alert told a person about, from the alert until it is resolved.

An incident opens with the alert (:meth:`IncidentStore.open`): one per failed run (keyed by the
run the retries and replays were made from, ``run:ROOT``, so a retry that fails again is a repeat
of the same incident, not a new one), per sync conflict left for a person (``conflict:ID``), per
level crossing its threshold (``level:NAME``). While it is open, the same key again is a repeat:
counted, never a second alert. It closes

- when a retry or replay of its run succeeds (:func:`close_fixed`, written in the transaction
  that records that run's end, by whichever process or command ran it),
- when a person marks the run resolved on the page (:func:`close_run`),
- when the conflict is decided, when the level is back to normal.

A closed incident waits for its "resolved" message: the serving process that moves it from
``closed`` to ``announced`` (:meth:`IncidentStore.claim`, one conditional update) sends it, so
the message goes out once however many processes look.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector.persistence.dialects import insert
from connector.persistence.tables import incidents_table, runs_table
from connector.records import now_iso

__all__ = [
    "Incident",
    "IncidentStore",
    "close_conflict",
    "close_fixed",
    "close_run",
    "fixed_by",
    "fixes",
    "forget_incidents",
    "incidents_table",
    "root_of",
]

MAX_HOPS = 50  # retries of retries followed back to the run they were made from


@dataclass(frozen=True)
class Incident:
    """One row of ``incidents``."""

    id: int
    key: str
    kind: str
    recipe: str
    run_id: str
    last_run_id: str
    repeats: int
    what: str
    said: str
    opened_at: str
    closed_at: str | None
    closed_by: str | None
    fixed_by: str | None
    status: str  # open | closed | announced

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _parent(conn: sa.Connection, run_id: str) -> str | None:
    row = conn.execute(sa.select(runs_table.c.parent).where(runs_table.c.id == run_id)).first()
    return None if row is None or not row[0] else str(row[0])


def root_of(conn: sa.Connection, run_id: str) -> str:
    """The run ``run_id`` was made from by retries and replays (itself when it is an original)."""
    root = run_id
    for _ in range(MAX_HOPS):
        parent = _parent(conn, root)
        if parent is None:
            break
        root = parent
    return root


def run_key(root: str) -> str:
    return f"run:{root}"


def _close(conn: sa.Connection, key: str, by: str, fixed: str | None) -> int:
    i = incidents_table.c
    return conn.execute(
        sa.update(incidents_table)
        .where(i.open_key == key)
        .values(open_key=None, status="closed", closed_at=now_iso(), closed_by=by, fixed_by=fixed)
    ).rowcount


def close_fixed(conn: sa.Connection, run_id: str, parent: str | None) -> int:
    """The run ``run_id`` (made from ``parent``) succeeded: the incident of its lineage closes."""
    if not parent:
        return 0
    return _close(conn, run_key(root_of(conn, parent)), f"run {run_id} succeeded", run_id)


def close_run(conn: sa.Connection, run_id: str, note: str | None) -> int:
    """A person marked ``run_id`` resolved: the incident of its lineage closes."""
    by = "marked resolved on the page" + (f": {note}" if note else "")
    return _close(conn, run_key(root_of(conn, run_id)), by, None)


def forget_incidents(conn: sa.Connection, before_iso: str) -> int:
    """Delete the incidents closed (and announced) before ``before_iso``."""
    i = incidents_table.c
    return conn.execute(
        sa.delete(incidents_table).where(i.status == "announced", i.closed_at < before_iso)
    ).rowcount


def close_conflict(conn: sa.Connection, conflict_id: int, winner: str) -> int:
    """A person decided the conflict ``conflict_id``: its incident closes."""
    return _close(conn, f"conflict:{conflict_id}", f"decided: the {winner} side's value won", None)


def fixes(conn: sa.Connection, run_id: str) -> list[str]:
    """The failed runs the succeeded run ``run_id`` fixed: its parent, and theirs, back to the
    first that did not fail (a retry of a retry of a failed run fixes all three)."""
    r = runs_table.c
    found: list[str] = []
    row = conn.execute(sa.select(r.status, r.parent).where(r.id == run_id)).first()
    if row is None or row[0] != "succeeded":
        return found
    parent = row[1]
    while parent and len(found) < MAX_HOPS:
        up = conn.execute(sa.select(r.status, r.parent).where(r.id == parent)).first()
        if up is None or up[0] not in ("failed", "waiting"):
            break
        found.append(str(parent))
        parent = up[1]
    return found


def fixed_by(conn: sa.Connection, run_id: str) -> str | None:
    """The first run made from the failed ``run_id`` (or from its failed retries) that
    succeeded, or None."""
    r = runs_table.c
    row = conn.execute(sa.select(r.status).where(r.id == run_id)).first()
    if row is None or row[0] not in ("failed", "waiting"):
        return None
    frontier, seen = [run_id], {run_id}
    for _ in range(MAX_HOPS):
        rows = conn.execute(
            sa.select(r.id, r.status, r.started_at)
            .where(r.parent.in_(frontier))
            .order_by(r.started_at, r.id)
        ).all()
        done = [str(c[0]) for c in rows if c[1] == "succeeded"]
        if done:
            return done[0]
        frontier = [str(c[0]) for c in rows if c[1] in ("failed", "waiting") and c[0] not in seen]
        seen.update(frontier)
        if not frontier:
            return None
    return None


class IncidentStore:
    """The reads and writes of ``incidents`` (a transaction per call)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open(
        self,
        *,
        kind: str,
        recipe: str,
        run_id: str,
        what: str,
        said: str,
        key: str | None = None,
    ) -> bool:
        """Open the incident ``key`` (default: the lineage of ``run_id``); True when it is new,
        False when it was open already (a repeat, counted)."""
        i = incidents_table.c
        with self.engine.begin() as conn:
            if key is None:
                key = run_key(root_of(conn, run_id))
            # a repeat by another run is counted; the same run told twice (finished again after
            # a restart) is not
            other = sa.and_(i.run_id != run_id, i.last_run_id != run_id) if run_id else sa.true()
            conn.execute(
                sa.update(incidents_table)
                .where(i.open_key == key, other)
                .values(repeats=i.repeats + 1, last_run_id=run_id or i.last_run_id)
            )
            if conn.execute(sa.select(i.id).where(i.open_key == key)).first() is not None:
                return False
            made = conn.execute(
                insert(conn.dialect.name, incidents_table)
                .values(
                    key=key,
                    open_key=key,
                    kind=kind,
                    recipe=recipe[:200],
                    run_id=run_id,
                    last_run_id=run_id,
                    repeats=0,
                    what=what,
                    said=said,
                    opened_at=now_iso(),
                    status="open",
                )
                .on_conflict_do_nothing(index_elements=["open_key"])
                .returning(i.id)
            ).first()
            return made is not None

    def close(self, key: str, by: str) -> bool:
        """Close the open incident ``key``; True when one was open."""
        with self.engine.begin() as conn:
            return _close(conn, key, by, None) > 0

    def is_open(self, key: str) -> bool:
        i = incidents_table.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(i.id).where(i.open_key == key)).first() is not None

    def find(
        self, *, status: str | Sequence[str] | None = None, limit: int = 100
    ) -> list[Incident]:
        """Incidents (of ``status``), oldest first."""
        i = incidents_table.c
        query = sa.select(*incidents_table.c).order_by(i.id).limit(limit)
        if isinstance(status, str):
            query = query.where(i.status == status)
        elif status is not None:
            query = query.where(i.status.in_(list(status)))
        with self.engine.connect() as conn:
            return [_row(row) for row in conn.execute(query).mappings()]

    def claim(self, incident_id: int) -> bool:
        """Take the closed incident's "resolved" message to send; True for the one caller that
        moved it from closed to announced."""
        i = incidents_table.c
        with self.engine.begin() as conn:
            return (
                conn.execute(
                    sa.update(incidents_table)
                    .where(i.id == incident_id, i.status == "closed")
                    .values(status="announced")
                ).rowcount
                > 0
            )

    def fixed_by(self, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            return fixed_by(conn, run_id)

    def fixes(self, run_id: str) -> list[str]:
        with self.engine.connect() as conn:
            return fixes(conn, run_id)


def _row(row: Any) -> Incident:
    data = dict(row)
    data.pop("open_key", None)
    return Incident(**data)
