"""The journal of effects: which writes have reached an API, keyed by what identifies them.

A write step's *effect key* is what the recipe declares with ``once.key`` (scoped to the app and the
location or account it acts on), or, when it declares nothing, the run and the step itself (so a
crash between sending a request and checkpointing its answer is still noticed). One row per key:

``claimed``
    a run (the *owner*: run id and step) is about to perform the write; nothing has been sent.
``sending``
    the request is on its way. A row found ``sending`` by anyone but the attempt that is sending
    it means the outcome is unknown: the answer was lost, or the process died. The runtime then
    resolves it (the step's ``once.lookup``, or what the app knows) before anything is sent again.
``done``
    the write happened; ``output`` is its result, which every later run gets instead of writing
    again. The id pairing the step declares (``once.link``) is written in the same transaction.

A claim held by another run is waited for while that run is alive (its row was touched within
:data:`LEASE_SECONDS`, and the run has not ended); after that it is taken over, as an unknown
outcome when it was ``sending``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from connector.persistence.database import reading
from connector.persistence.dialects import insert
from connector.persistence.prepared import Prepared
from connector.persistence.tables import effects_table

__all__ = ["LEASE_SECONDS", "Claim", "EffectJournal", "effects_table"]

LEASE_SECONDS = 30.0


ClaimState = Literal["claimed", "unknown", "done", "busy"]


@dataclass(frozen=True)
class Claim:
    """What :meth:`EffectJournal.claim` found: the write is ours to make (``claimed``), was made
    (``done``, with its ``output``), may have been made (``unknown``), or another live run is
    making it (``busy``)."""

    state: ClaimState
    output: Any = None
    status_code: int | None = None
    owner: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "output": self.output,
            "status_code": self.status_code,
            "owner": self.owner,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Claim:
        return cls(
            data["state"], data.get("output"), data.get("status_code"), data.get("owner", "")
        )


LinkWriter = Callable[[sa.Connection], Any]

# the statements of every write, compiled once (connector.persistence.prepared)
_insert_claim = Prepared(
    # RETURNING says whether the row was made (a bound INSERT's rowcount does not, on psycopg)
    lambda dialect: (
        insert(dialect, effects_table)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(effects_table.c.key)
    ),
    keys=("key", "state", "owner", "run_id", "created_at", "updated_at"),
)
_by_key = effects_table.c.key == sa.bindparam("b_key")
_take_claim = sa.update(effects_table).where(_by_key)
_mark_done = Prepared(
    sa.update(effects_table).where(_by_key),
    keys=("state", "owner", "output_json", "status_code", "updated_at"),
)


class EffectJournal:
    """The ``effects`` table on the one database; every method is one short transaction."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def _row(self, conn: sa.Connection, key: str) -> Any:
        query = sa.select(effects_table).where(effects_table.c.key == key)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return conn.execute(query).first()

    def claim(self, key: str, owner: str, run_id: str) -> Claim:
        """Take the write ``key`` for ``owner``, or say why not."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._row(conn, key)
            if row is None:
                inserted = conn.execute(
                    insert(conn.dialect.name, effects_table)
                    .values(
                        key=key,
                        state="claimed",
                        owner=owner,
                        run_id=run_id,
                        created_at=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["key"])
                )
                if inserted.rowcount == 1:
                    return Claim("claimed", owner=owner)
                row = self._row(conn, key)
                assert row is not None
            if row.state == "done":
                return Claim("done", _loads(row.output_json), row.status_code, row.owner)
            if row.owner != owner and now - row.updated_at < LEASE_SECONDS:
                return Claim("busy", owner=row.owner)
            # ours again (a resumed run), or an abandoned claim we take over
            was_sending = row.state == "sending"
            conn.execute(
                sa.update(effects_table)
                .where(effects_table.c.key == key)
                .values(
                    owner=owner,
                    run_id=run_id,
                    state="sending" if was_sending else "claimed",
                    updated_at=now,
                )
            )
            return Claim("unknown" if was_sending else "claimed", owner=owner)

    def begin(self, key: str, owner: str, run_id: str, *, sending: bool = True) -> Claim:
        """:meth:`claim` and :meth:`sending` in one transaction, for the attempt that is about to
        send: ``claimed`` means the write is ours and (``sending``) marked as on its way, so it
        may go now; ``done``, ``busy`` as :meth:`claim` says; ``unknown`` when the row was left
        ``sending`` (by an earlier attempt of this same step when ``owner`` is ours, else by an
        earlier run whose claim is taken over), so nothing may be sent before the outcome is
        known."""
        now = self.clock()
        state = "sending" if sending else "claimed"
        with self.engine.begin() as conn:
            inserted = _insert_claim.first(
                conn,
                {
                    "key": key,
                    "state": state,
                    "owner": owner,
                    "run_id": run_id,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            if inserted is not None:
                return Claim("claimed", owner=owner)
            row = self._row(conn, key)
            assert row is not None
            if row.state == "done":
                return Claim("done", _loads(row.output_json), row.status_code, row.owner)
            if row.owner != owner and now - row.updated_at < LEASE_SECONDS:
                return Claim("busy", owner=row.owner)
            was_sending = row.state == "sending"
            conn.execute(
                _take_claim,
                {
                    "b_key": key,
                    "owner": owner,
                    "run_id": run_id,
                    "state": "sending" if was_sending else state,
                    "updated_at": now,
                },
            )
            return Claim("unknown" if was_sending else "claimed", owner=str(row.owner))

    def done_write(
        self, key: str, owner: str, output: Any, status_code: int | None
    ) -> Callable[[sa.Connection], None]:
        """:meth:`done` without an id pairing, as a write to make in someone else's transaction
        (the run's own, :class:`~connector.persistence.recorder.RunRecorder`)."""
        values = {
            "b_key": key,
            "state": "done",
            "owner": owner,
            "output_json": json.dumps(output, default=str, separators=(",", ":")),
            "status_code": status_code,
            "updated_at": self.clock(),
        }

        def write(conn: sa.Connection) -> None:
            _mark_done.execute(conn, values)

        return write

    def sending(self, key: str, owner: str) -> bool:
        """Mark the request as on its way. False when it already was: an earlier attempt of this
        same step sent it (or was about to) and its answer was lost, so the outcome is unknown."""
        with self.engine.begin() as conn:
            row = self._row(conn, key)
            if row is not None and row.state == "sending" and row.owner == owner:
                return False
            conn.execute(
                sa.update(effects_table)
                .where(effects_table.c.key == key)
                .values(state="sending", owner=owner, updated_at=self.clock())
            )
            return True

    def not_sent(self, key: str, owner: str) -> None:
        """The attempt is known to have written nothing (refused, throttled, never connected)."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(effects_table)
                .where(effects_table.c.key == key, effects_table.c.owner == owner)
                .values(state="claimed", updated_at=self.clock())
            )

    def done(
        self,
        key: str,
        owner: str,
        output: Any,
        status_code: int | None,
        link: LinkWriter | None = None,
    ) -> Any:
        """Record that the write happened, with the id pairing ``link`` writes in the same
        transaction. Returns what ``link`` returned."""
        linked = None
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(effects_table)
                .where(effects_table.c.key == key)
                .values(
                    state="done",
                    owner=owner,
                    output_json=json.dumps(output, default=str, separators=(",", ":")),
                    status_code=status_code,
                    updated_at=self.clock(),
                )
            )
            if link is not None:
                linked = link(conn)
        return linked

    def release(self, key: str, owner: str) -> None:
        """Give up a claim on which nothing was sent, so a later run may try."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(effects_table).where(
                    effects_table.c.key == key,
                    effects_table.c.owner == owner,
                    effects_table.c.state == "claimed",
                )
            )

    def get(self, key: str) -> Claim | None:
        with reading(self.engine) as conn:
            row = conn.execute(sa.select(effects_table).where(effects_table.c.key == key)).first()
        if row is None:
            return None
        state: ClaimState = "done" if row.state == "done" else "busy"
        return Claim(state, _loads(row.output_json), row.status_code, row.owner)

    def release_run(self, run_id: str) -> int:
        """Release every claim of a finished run on which nothing was sent. A write it left
        ``sending`` stays unknown, but its lease ends with the run: the next run of that key
        takes it over (and resolves it) at once instead of waiting :data:`LEASE_SECONDS`."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(effects_table).where(
                    effects_table.c.run_id == run_id, effects_table.c.state == "claimed"
                )
            )
            conn.execute(
                sa.update(effects_table)
                .where(effects_table.c.run_id == run_id, effects_table.c.state == "sending")
                .values(updated_at=self.clock() - LEASE_SECONDS)
            )
            return int(result.rowcount or 0)

    def settle(self, run_ids: Sequence[str], written: bool) -> list[str]:
        """A person's word on the writes of unknown outcome the runs ``run_ids`` left: they
        happened (done, with no recorded output), or they did not (forgotten, so the next run
        makes them). Returns the keys settled."""
        with self.engine.begin() as conn:
            where = effects_table.c.run_id.in_(run_ids) & (effects_table.c.state == "sending")
            keys = [str(r.key) for r in conn.execute(sa.select(effects_table.c.key).where(where))]
            if written:
                conn.execute(
                    sa.update(effects_table)
                    .where(where)
                    .values(
                        state="done", output_json=None, status_code=None, updated_at=self.clock()
                    )
                )
            else:
                conn.execute(sa.delete(effects_table).where(where))
            return keys

    def forget_runs(self, run_ids: Sequence[str]) -> int:
        """Forget the per-run claims (keys ``run:RUN/...``) of runs that were pruned. Claims of
        ``once.key`` writes stay: they are what keeps those writes from happening twice."""
        count = 0
        with self.engine.begin() as conn:
            for start in range(0, len(run_ids), 500):
                chunk = list(run_ids[start : start + 500])
                result = conn.execute(
                    sa.delete(effects_table).where(
                        effects_table.c.run_id.in_(chunk), effects_table.c.key.like("run:%")
                    )
                )
                count += int(result.rowcount or 0)
        return count

    def prune(self, before: float) -> int:
        """Forget per-run intents (keys starting ``run:``) of runs older than ``before``."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(effects_table).where(
                    effects_table.c.key.like("run:%"), effects_table.c.updated_at < before
                )
            )
            return int(result.rowcount or 0)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
