"""Deliveries seen: a webhook delivered twice (GoHighLevel's ``webhookId``, Connecteam's
``requestId``) runs once, across restarts and across every process on the database.

One row per (source, delivery id), inserted with the event's runs in one transaction by the
intake; :meth:`Deliveries.first` says whether this is the first time a delivery is seen.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import sqlalchemy as sa

from connector.db import insert, metadata

__all__ = ["Deliveries", "deliveries_table"]

deliveries_table = sa.Table(
    "deliveries",
    metadata,
    sa.Column("source", sa.String(32), primary_key=True),
    sa.Column("delivery_id", sa.String(200), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False),
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
        statement = (
            insert(conn.dialect.name, deliveries_table)
            .values(source=source, delivery_id=_short(delivery_id), received_at=self.clock())
            .on_conflict_do_nothing()
        )
        return bool(conn.execute(statement).rowcount)

    def prune(self, before: float) -> int:
        """Forget deliveries received before ``before`` (vendors retry for hours, not weeks)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(deliveries_table).where(deliveries_table.c.received_at < before)
            )
            return int(result.rowcount or 0)


def _short(delivery_id: str) -> str:
    """The id as stored: itself, or the sha256 of one too long for the column."""
    if len(delivery_id) <= 200:
        return delivery_id
    return "sha256:" + hashlib.sha256(delivery_id.encode()).hexdigest()
