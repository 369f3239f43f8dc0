"""Deliveries seen: a webhook delivered twice (GoHighLevel's ``webhookId``, Connecteam's
``requestId``) runs once, across restarts and across every process on the database.

One row per (source, delivery id), inserted with the event's runs in one transaction by the
intake; :meth:`Deliveries.first` says whether this is the first time a delivery is seen.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from connector.persistence.dialects import insert
from connector.persistence.prepared import Prepared
from connector.persistence.tables import deliveries_table, event_runs_table, latest_table

__all__ = ["Deliveries", "deliveries_table", "event_runs_table", "latest_table"]

_d, _l, _e = deliveries_table.c, latest_table.c, event_runs_table.c
# Compiled once (connector.persistence.prepared): every webhook runs these.
_SEEN = Prepared(
    sa.select(_d.received_at).where(
        _d.source == sa.bindparam("source"), _d.delivery_id == sa.bindparam("delivery_id")
    )
)
_FIRST = Prepared(
    lambda dialect: insert(dialect, deliveries_table).on_conflict_do_nothing(),
    keys=("source", "delivery_id", "received_at"),
)
_LATEST = Prepared(
    sa.select(_l.fingerprint, _l.event_key, _l.received_at).where(
        _l.subject == sa.bindparam("subject")
    )
)


def _latest_upsert(dialect: str) -> Any:
    latest = insert(dialect, latest_table)
    return latest.on_conflict_do_update(
        index_elements=["subject"],
        set_={
            "fingerprint": latest.excluded.fingerprint,
            "event_key": latest.excluded.event_key,
            "received_at": latest.excluded.received_at,
        },
    )


_SET_LATEST = Prepared(_latest_upsert, keys=("subject", "fingerprint", "event_key", "received_at"))
_RUN_ID = Prepared(
    sa.select(_e.run_id).where(
        _e.event_key == sa.bindparam("event_key"), _e.recipe == sa.bindparam("recipe")
    )
)
_NEW_RUN_ID = Prepared(
    lambda dialect: insert(dialect, event_runs_table).on_conflict_do_nothing(),
    keys=("event_key", "recipe", "run_id", "received_at"),
)


class Deliveries:
    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def first(self, source: str, delivery_id: str, conn: sa.Connection | None = None) -> bool:
        """Record ``delivery_id`` from ``source``; True the first time, False ever after.
        With ``conn``, inside the caller's transaction (so it commits with what the delivery
        starts)."""
        if conn is None:
            with self.engine.begin() as own:
                return self.first(source, delivery_id, own)
        values = {"source": source, "delivery_id": _short(delivery_id), "received_at": self.clock()}
        return bool(_FIRST.execute(conn, values))

    def seen(self, source: str, delivery_id: str, conn: sa.Connection | None = None) -> bool:
        """Whether ``delivery_id`` from ``source`` was recorded before."""
        if conn is None:
            with self.engine.connect() as own:
                return self.seen(source, delivery_id, own)
        found = _SEEN.first(conn, {"source": source, "delivery_id": _short(delivery_id)})
        return found is not None

    def repeats(
        self,
        subject: str,
        fingerprint: str,
        event_key: str,
        window: float,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Whether another event (not ``event_key`` delivered again) about ``subject`` said the
        same (``fingerprint``) less than ``window`` seconds ago: a redundant event of a burst
        (GoHighLevel sends several for one change). Records this one as the last."""
        if conn is None:
            with self.engine.begin() as own:
                return self.repeats(subject, fingerprint, event_key, window, own)
        now = self.clock()
        key = _short(event_key)
        row = _LATEST.first(conn, {"subject": subject[:200]})
        if row is not None and row[0] == fingerprint and now - row[2] < window:
            return bool(row[1] != key)
        values = {
            "subject": subject[:200],
            "fingerprint": fingerprint,
            "event_key": key,
            "received_at": now,
        }
        _SET_LATEST.execute(conn, values)
        return False

    def run_id(self, event_key: str, recipe: str, conn: sa.Connection) -> str:
        """The id of ``recipe``'s run for the event ``event_key``: the one given when the event
        first came (so a delivery sent again makes the same run), else a new one. New ids sort
        in the order events arrive (they start with the time in milliseconds), which is the
        order their runs are taken from the queue among those queued in the same second."""
        key = {"event_key": _short(event_key), "recipe": recipe[:200]}
        now = self.clock()
        digest = hashlib.sha256(f"{event_key}\x00{recipe}".encode()).hexdigest()
        run_id = f"run_{int(now * 1000):011x}{digest[:9]}"
        # a new event (the usual case) is one statement; one seen before keeps its first id
        if _NEW_RUN_ID.execute(conn, {**key, "run_id": run_id, "received_at": now}) == 1:
            return run_id
        return str(_RUN_ID.first(conn, key)[0])

    def prune(self, before: float) -> int:
        """Forget deliveries received before ``before`` (vendors retry for hours, not weeks)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(deliveries_table).where(deliveries_table.c.received_at < before)
            )
            conn.execute(sa.delete(latest_table).where(latest_table.c.received_at < before))
            conn.execute(sa.delete(event_runs_table).where(event_runs_table.c.received_at < before))
            return int(result.rowcount or 0)


def _short(delivery_id: str) -> str:
    """The id as stored: itself, or the sha256 of one too long for the column."""
    if len(delivery_id) <= 200:
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()
