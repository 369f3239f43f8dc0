"""Paused recipes, and the events they hold.

A recipe paused (from the page, or ``connector recipes pause NAME``) keeps taking its events:
the intake accepts them as before (the webhook is answered, nothing is lost), but instead of
queueing each run it holds the event here (``held_events``: the run id it was given, the event's
app, type, key, subject and payload). When the recipe is resumed, every serving process that
serves it queues what it holds under the run ids they were given, so each event runs once, however
many processes release it (a run id is queued once), and then drops the held row.

The pause is a row of ``recipe_pauses`` in the one database, so every serving process, and the
command line, see the same one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector.errors import StoreError
from connector.persistence.dialects import insert
from connector.persistence.tables import held_table, pauses_table, recipes_table, runs_table
from connector.records import now_iso

__all__ = ["Held", "Pauses"]

# Built once: every delivery asks it.
_PAUSED_AMONG = sa.select(pauses_table.c.recipe).where(
    pauses_table.c.recipe.in_(sa.bindparam("names", expanding=True))
)


@dataclass(frozen=True)
class Held:
    """An event a paused recipe was given: the run it becomes when the recipe is resumed."""

    run_id: str
    recipe: str
    app: str
    type: str
    key: str
    subject: str | None
    payload: dict[str, Any]
    held_at: str


class Pauses:
    """The ``recipe_pauses`` and ``held_events`` tables (a connection per call, or the caller's)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _do(self, func: Any, *, write: bool = False, conn: sa.Connection | None = None) -> Any:
        try:
            if conn is not None:  # inside the caller's transaction
                return func(conn)
            if write:
                with self.engine.begin() as conn:
                    return func(conn)
            with self.engine.connect() as conn:
                return func(conn)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"paused recipes: {str(getattr(exc, 'orig', exc)).splitlines()[0]}"
            ) from None

    # pauses --------------------------------------------------------------------------------------

    def paused(self, recipe: str) -> bool:
        """Whether ``recipe`` is paused."""
        p = pauses_table.c
        return bool(
            self._do(lambda c: c.execute(sa.select(p.recipe).where(p.recipe == recipe)).first())
        )

    def paused_among(self, recipes: Iterable[str], conn: sa.Connection | None = None) -> set[str]:
        """Those of ``recipes`` that are paused (one query; inside ``conn``'s transaction when
        given)."""
        names = sorted(set(recipes))
        if not names:
            return set()
        rows = self._do(lambda c: c.execute(_PAUSED_AMONG, {"names": names}).all(), conn=conn)
        return {str(r[0]) for r in rows}

    def all_paused(self) -> dict[str, str]:
        """Every paused recipe, with when it was paused."""
        p = pauses_table.c
        rows = self._do(lambda c: c.execute(sa.select(p.recipe, p.paused_at)).all())
        return {str(name): str(at) for name, at in rows}

    def pause(self, recipe: str, by: str) -> bool:
        """Pause ``recipe`` (``by``: who, "page" or "cli"); False when it was paused already."""

        def put(conn: sa.Connection) -> bool:
            statement = (
                insert(conn.dialect.name, pauses_table)
                .on_conflict_do_nothing()
                .returning(pauses_table.c.recipe)  # whether it was made (rowcount does not say)
            )
            values = {"recipe": recipe, "paused_at": now_iso(), "by": by}
            return conn.execute(statement, values).first() is not None

        return bool(self._do(put, write=True))

    def resume(self, recipe: str) -> bool:
        """Resume ``recipe``; False when it was not paused. Its held events run next (released
        by the serving processes)."""
        p = pauses_table.c
        return bool(
            self._do(
                lambda c: c.execute(sa.delete(pauses_table).where(p.recipe == recipe)).rowcount,
                write=True,
            )
        )

    # held events ---------------------------------------------------------------------------------

    def hold(
        self,
        run_id: str,
        recipe: str,
        app: str,
        type_: str,
        key: str,
        subject: str | None,
        payload: Mapping[str, Any],
        conn: sa.Connection | None = None,
    ) -> None:
        """Hold an event of a paused recipe as the run ``run_id`` (held once: the same event
        delivered again is the same run); inside ``conn``'s transaction when given."""
        values = {
            "run_id": run_id,
            "recipe": recipe,
            "app": app,
            "type": type_,
            "key": key,
            "subject": subject,
            "payload_json": json.dumps(payload, default=str, separators=(",", ":")),
            "held_at": now_iso(),
        }

        def put(c: sa.Connection) -> None:
            c.execute(insert(c.dialect.name, held_table).on_conflict_do_nothing(), values)

        self._do(put, write=True, conn=conn)

    def counts(self) -> dict[str, int]:
        """How many events each recipe holds."""
        h = held_table.c
        rows = self._do(
            lambda c: c.execute(sa.select(h.recipe, sa.func.count()).group_by(h.recipe)).all()
        )
        return {str(name): int(n) for name, n in rows}

    def held(self, recipe: str, limit: int = 50) -> list[Held]:
        """The events ``recipe`` holds, oldest first."""
        h = held_table.c
        query = sa.select(held_table).where(h.recipe == recipe).order_by(h.held_at, h.run_id)
        rows = self._do(lambda c: c.execute(query.limit(limit)).mappings().all())
        return [_held(row) for row in rows]

    def releasable(self, recipes: Iterable[str], limit: int = 100) -> list[Held]:
        """The events held by those of ``recipes`` that are not paused (any more), oldest first."""
        names = list(recipes)
        if not names:
            return []
        h = held_table.c
        query = (
            sa.select(held_table)
            .where(h.recipe.in_(names), h.recipe.not_in(sa.select(pauses_table.c.recipe)))
            .order_by(h.held_at, h.run_id)
            .limit(limit)
        )
        return [_held(row) for row in self._do(lambda c: c.execute(query).mappings().all())]

    def released(self, run_id: str) -> None:
        """The held event ``run_id`` is on the run queue: it is held no more."""
        self._do(
            lambda c: c.execute(sa.delete(held_table).where(held_table.c.run_id == run_id)),
            write=True,
        )

    # what the command line lists ----------------------------------------------------------------

    def known(self) -> list[str]:
        """The names of every recipe the database knows: served or run once, or paused."""
        names = sa.union(sa.select(recipes_table.c.name), sa.select(pauses_table.c.recipe))
        return sorted({str(r[0]) for r in self._do(lambda c: c.execute(names).all())})

    def last_runs(self, recipe: str, limit: int = 5) -> list[tuple[str, str, str]]:
        """The newest runs of ``recipe``: (id, status, started_at), newest first."""
        r = runs_table.c
        query = (
            sa.select(r.id, r.status, r.started_at)
            .where(r.recipe == recipe)
            .order_by(r.started_at.desc(), r.id.desc())
            .limit(limit)
        )
        return [(str(a), str(b), str(c)) for a, b, c in self._do(lambda c: c.execute(query).all())]


def _held(row: Mapping[str, Any]) -> Held:
    try:
        payload = json.loads(row["payload_json"])
    except ValueError:
        payload = {}
    return Held(
        run_id=row["run_id"],
        recipe=row["recipe"],
        app=row["app"],
        type=row["type"],
        key=row["key"],
        subject=row["subject"],
        payload=payload if isinstance(payload, dict) else {"value": payload},
        held_at=row["held_at"],
    )
