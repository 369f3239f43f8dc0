"""The state of two-way syncs: the last synced state of every pair, and the conflicts met.

:class:`SyncStore` reads and writes ``sync_state`` and ``sync_conflicts``
(:mod:`connector.persistence.tables`). Writes take a connection (``*_in``) so that the sync puts
them in the transaction that records its write as done (:meth:`EffectJournal.done`): the state a
pair is in is never ahead of, or behind, what was written to the apps.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.persistence.dialects import insert
from connector.persistence.incidents import close_conflict
from connector.persistence.tables import links_table, sync_conflicts_table, sync_state_table

__all__ = ["Conflict", "PairState", "SyncStore"]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"), sort_keys=True)


@dataclass
class PairState:
    """What a pair last agreed on: per field the value both sides had after the last sync, and
    per side the vendor's change time of the newest state the sync has seen."""

    kind: str
    ghl_id: str
    connecteam_id: str
    base: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, float | None] = field(default_factory=dict)  # side -> epoch seconds
    # side -> digests of the values that side had before the sync's last write to it
    superseded: dict[str, list[str]] = field(default_factory=dict)
    # side -> where that side's record is reached besides its id (a task's contact or board)
    address: dict[str, dict[str, Any]] = field(default_factory=dict)
    version: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ghl_id": self.ghl_id,
            "connecteam_id": self.connecteam_id,
            "base": self.base,
            "seen": self.seen,
            "superseded": self.superseded,
            "address": self.address,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PairState:
        return cls(
            kind=str(data["kind"]),
            ghl_id=str(data["ghl_id"]),
            connecteam_id=str(data["connecteam_id"]),
            base=dict(data.get("base") or {}),
            seen=dict(data.get("seen") or {}),
            superseded=dict(data.get("superseded") or {}),
            address=dict(data.get("address") or {}),
            version=int(data.get("version") or 0),
        )


@dataclass
class Conflict:
    """The same field changed on both sides since the last sync, and how it was decided."""

    sync: str
    kind: str
    ghl_id: str
    connecteam_id: str
    field: str
    base: Any
    ghl: Any
    connecteam: Any
    ghl_at: float | None
    connecteam_at: float | None
    rule: str
    winner: str | None  # None: left for a person (rule manual)
    run_id: str = ""
    id: int | None = None
    status: str = ""
    created_at: str = ""

    @property
    def fingerprint(self) -> str:
        """One conflict is the same pair, field and pair of values, whichever run met it."""
        key = _json([self.kind, self.ghl_id, self.field, self.ghl, self.connecteam])
        return hashlib.sha256(key.encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sync": self.sync,
            "kind": self.kind,
            "ghl_id": self.ghl_id,
            "connecteam_id": self.connecteam_id,
            "field": self.field,
            "base": self.base,
            "ghl": self.ghl,
            "connecteam": self.connecteam,
            "ghl_at": self.ghl_at,
            "connecteam_at": self.connecteam_at,
            "rule": self.rule,
            "winner": self.winner,
            "status": self.status,
            "run_id": self.run_id,
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Conflict:
        keys = cls.__dataclass_fields__
        return cls(**{k: data.get(k) for k in keys if k in data})  # type: ignore[arg-type]


def _by(table: sa.Table, side: str, *columns: Any) -> sa.Select[Any]:
    column = table.c.ghl_id if side == "ghl" else table.c.connecteam_id
    query = sa.select(*columns) if columns else sa.select(table)
    return query.where(table.c.kind == sa.bindparam("kind"), column == sa.bindparam("id"))


# the statements a sync run makes for every record, built once (a reconcile makes thousands)
_STATE_BY = {side: _by(sync_state_table, side) for side in ("ghl", "connecteam")}
_LINK_BY = {
    side: _by(links_table, side, links_table.c.ghl_id, links_table.c.connecteam_id)
    for side in ("ghl", "connecteam")
}
_LEAVE = sa.delete(sync_state_table).where(
    sync_state_table.c.kind == sa.bindparam("kind"),
    sync_state_table.c.connecteam_id == sa.bindparam("connecteam_id"),
    sync_state_table.c.ghl_id != sa.bindparam("ghl_id"),
)
_UPSERTS: dict[str, Any] = {}


def _upsert_state(dialect: str) -> Any:
    """Insert a pair's state, or update the one of its GoHighLevel record (per dialect, once)."""
    stmt = _UPSERTS.get(dialect)
    if stmt is None:
        t = sync_state_table
        columns = (
            "connecteam_id",
            "base_json",
            "ghl_seen_at",
            "connecteam_seen_at",
            "superseded_json",
            "address_json",
            "version",
            "updated_at",
        )
        stmt = insert(dialect, t)  # the values: the parameters it is executed with
        stmt = _UPSERTS[dialect] = stmt.on_conflict_do_update(
            index_elements=["kind", "ghl_id"], set_={c: stmt.excluded[c] for c in columns}
        )
    return stmt


def _state(row: Any) -> PairState:
    return PairState(
        kind=row.kind,
        ghl_id=row.ghl_id,
        connecteam_id=row.connecteam_id,
        base=json.loads(row.base_json),
        seen={"ghl": row.ghl_seen_at, "connecteam": row.connecteam_seen_at},
        superseded=json.loads(row.superseded_json) if row.superseded_json else {},
        address=json.loads(row.address_json) if row.address_json else {},
        version=row.version,
    )


class SyncStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # state ---------------------------------------------------------------------------------------

    def state(
        self, kind: str, side: str, record_id: str, conn: sa.Connection | None = None
    ) -> PairState | None:
        """The state of the pair whose ``side`` record is ``record_id`` (None: not paired); in
        ``conn``'s transaction when given."""
        row = self._first(_STATE_BY[side], {"kind": kind, "id": str(record_id)}, conn)
        if row is None:
            return None
        return _state(row)

    def pair(
        self, kind: str, side: str, record_id: str, conn: sa.Connection | None = None
    ) -> PairState | None:
        """The pair ``side``'s record ``record_id`` is in: its synced state, else the id link a
        recipe or a person made (with no state yet); None when it is not paired."""
        if conn is None:
            with self.engine.connect() as own:  # one connection for both looks
                return self.pair(kind, side, record_id, own)
        return self.state(kind, side, record_id, conn) or self.linked(kind, side, record_id, conn)

    def _first(self, query: Any, params: Mapping[str, Any], conn: sa.Connection | None) -> Any:
        """The first row of ``query``, in ``conn``'s transaction when given."""
        if conn is not None:
            return conn.execute(query, params).first()
        with self.engine.connect() as own:
            return own.execute(query, params).first()

    def put_in(self, conn: sa.Connection, state: PairState) -> None:
        """Write ``state`` (a new pair, or the next version of one) in ``conn``'s transaction."""
        values = {
            "connecteam_id": state.connecteam_id,
            "base_json": _json(state.base),
            "ghl_seen_at": state.seen.get("ghl"),
            "connecteam_seen_at": state.seen.get("connecteam"),
            "superseded_json": _json(state.superseded) if state.superseded else None,
            "address_json": _json(state.address) if state.address else None,
            "version": state.version,
            "updated_at": _now(),
        }
        # a record paired again (its old counterpart gone) leaves its old pair
        conn.execute(
            _LEAVE,
            {"kind": state.kind, "ghl_id": state.ghl_id, "connecteam_id": state.connecteam_id},
        )
        conn.execute(
            _upsert_state(conn.dialect.name), {"kind": state.kind, "ghl_id": state.ghl_id, **values}
        )

    def forget_in(self, conn: sa.Connection, kind: str, ghl_id: str) -> None:
        """Unpair: the pair's state and its id link go."""
        t = sync_state_table
        conn.execute(sa.delete(t).where(t.c.kind == kind, t.c.ghl_id == ghl_id))
        conn.execute(
            sa.delete(links_table).where(links_table.c.kind == kind, links_table.c.ghl_id == ghl_id)
        )

    def linked(
        self, kind: str, side: str, record_id: str, conn: sa.Connection | None = None
    ) -> PairState | None:
        """A pair the id-link store knows (made by a recipe, or by hand) that has no synced
        state yet: its base is empty."""
        row = self._first(_LINK_BY[side], {"kind": kind, "id": str(record_id)}, conn)
        if row is None:
            return None
        return PairState(kind=kind, ghl_id=str(row.ghl_id), connecteam_id=str(row.connecteam_id))

    def bases(self, kind: str, side: str, record_ids: list[str]) -> dict[str, dict[str, Any]]:
        """For the ``side`` records among ``record_ids`` that are paired: the values their pair
        last agreed on (``{}`` for a pair the id-link store knows with no synced state yet). One
        query for a page of records (a reconcile's)."""
        if not record_ids:
            return {}
        ids = [str(r) for r in record_ids]
        t, links = sync_state_table, links_table
        column = t.c.ghl_id if side == "ghl" else t.c.connecteam_id
        linked = links.c.ghl_id if side == "ghl" else links.c.connecteam_id
        out: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(linked).where(links.c.kind == kind, linked.in_(ids))):
                out[str(row[0])] = {}
            for row in conn.execute(
                sa.select(column, t.c.base_json).where(t.c.kind == kind, column.in_(ids))
            ):
                out[str(row[0])] = json.loads(row[1])
        return out

    def put(self, state: PairState) -> None:
        with self.engine.begin() as conn:
            self.put_in(conn, state)

    # conflicts -----------------------------------------------------------------------------------

    def conflict_in(self, conn: sa.Connection, conflict: Conflict) -> bool:
        """Record ``conflict`` once; False when it was recorded before."""
        t = sync_conflicts_table
        stmt = insert(conn.dialect.name, t).values(
            fingerprint=conflict.fingerprint,
            sync=conflict.sync,
            kind=conflict.kind,
            ghl_id=conflict.ghl_id,
            connecteam_id=conflict.connecteam_id,
            field=conflict.field,
            base_json=_json(conflict.base),
            ghl_json=_json(conflict.ghl),
            connecteam_json=_json(conflict.connecteam),
            ghl_at=conflict.ghl_at,
            connecteam_at=conflict.connecteam_at,
            rule=conflict.rule,
            winner=conflict.winner,
            status="open" if conflict.winner is None else "decided",
            run_id=conflict.run_id,
            created_at=_now(),
        )
        done = conn.execute(stmt.on_conflict_do_nothing(index_elements=["fingerprint"]))
        return bool(done.rowcount)

    def conflicts(
        self, *, status: str | None = None, kind: str | None = None, limit: int = 200
    ) -> list[Conflict]:
        """Conflicts, newest first (``status``: open, decided, resolved)."""
        t = sync_conflicts_table
        query = sa.select(t).order_by(t.c.id.desc()).limit(limit)
        if status:
            query = query.where(t.c.status == status)
        if kind:
            query = query.where(t.c.kind == kind)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_conflict(row) for row in rows]

    def conflict(self, conflict_id: int) -> Conflict | None:
        t = sync_conflicts_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == conflict_id)).first()
        return _conflict(row) if row is not None else None

    def summary(self) -> dict[str, Any]:
        """Per kind: the pairs kept and the conflicts by status."""
        kinds: dict[str, dict[str, Any]] = {}
        state, conflicts = sync_state_table, sync_conflicts_table
        with self.engine.connect() as conn:
            for kind, count in conn.execute(
                sa.select(state.c.kind, sa.func.count()).group_by(state.c.kind)
            ):
                kinds.setdefault(kind, {"pairs": 0, "conflicts": {}})["pairs"] = int(count)
            for kind, status, count in conn.execute(
                sa.select(conflicts.c.kind, conflicts.c.status, sa.func.count()).group_by(
                    conflicts.c.kind, conflicts.c.status
                )
            ):
                entry = kinds.setdefault(kind, {"pairs": 0, "conflicts": {}})
                entry["conflicts"][status] = int(count)
        return {"kinds": kinds}

    def resolve_in(self, conn: sa.Connection, conflict_id: int, winner: str) -> None:
        t = sync_conflicts_table
        conn.execute(
            sa.update(t)
            .where(t.c.id == conflict_id)
            .values(status="resolved", winner=winner, resolved_at=_now())
        )
        close_conflict(conn, conflict_id, winner)  # its alert's incident


def _conflict(row: Any) -> Conflict:
    return Conflict(
        id=row.id,
        sync=row.sync,
        kind=row.kind,
        ghl_id=row.ghl_id,
        connecteam_id=row.connecteam_id,
        field=row.field,
        base=json.loads(row.base_json) if row.base_json else None,
        ghl=json.loads(row.ghl_json) if row.ghl_json else None,
        connecteam=json.loads(row.connecteam_json) if row.connecteam_json else None,
        ghl_at=row.ghl_at,
        connecteam_at=row.connecteam_at,
        rule=row.rule,
        winner=row.winner,
        run_id=row.run_id,
        status=row.status,
        created_at=row.created_at,
    )
