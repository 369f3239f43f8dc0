"""Named durable positions: a schedule's last firing, a poll's high-water mark. A cursor moves
only once what it covers is stored."""

from __future__ import annotations

import time

import sqlalchemy as sa

from connector.persistence.dialects import insert
from connector.persistence.tables import cursors_table

__all__ = ["Cursors", "cursors_table"]


class Cursors:
    """Named durable positions (a schedule's last firing, a poll's high-water mark)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, name: str) -> str | None:
        t = cursors_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t.c.value).where(t.c.name == name)).first()
        return None if row is None else str(row[0])

    def put(self, name: str, value: str) -> None:
        self.put_many([(name, value)])

    def put_many(self, items: list[tuple[str, str]]) -> None:
        """Store several ``(name, value)`` cursors in one transaction: all of them or none."""
        if not items:
            return
        now = time.time()
        with self.engine.begin() as conn:
            statement = insert(conn.dialect.name, cursors_table)
            statement = statement.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "value": statement.excluded.value,
                    "updated_at": statement.excluded.updated_at,
                },
            )
            rows = [{"name": name, "value": value, "updated_at": now} for name, value in items]
            conn.execute(statement, rows)

    def named(self, prefix: str) -> dict[str, str]:
        """Every cursor whose name starts with ``prefix``, by name."""
        t = cursors_table
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.name, t.c.value).where(t.c.name.like(escaped + "%", escape="\\"))
            )
            return {str(name): str(value) for name, value in rows}
