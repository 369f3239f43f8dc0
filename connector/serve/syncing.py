"""The events a served sync takes: which pairs of a declaration an event is about, and the sync
job each becomes on the run queue.

An event of a record type a loaded sync pairs (a GoHighLevel ``ContactUpdate``, a Connecteam
``user_updated``) becomes one sync job per pair, partitioned by the pair (the GoHighLevel id when
the record is paired, else the record's own), so two events about one pair never run at once in
any process, and run in the order they came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from connector.language.sync_spec import SIDES, PairSpec, SyncSpec
from connector.persistence.deliveries import Deliveries
from connector.persistence.sync import SyncStore
from connector.serve.events import Event
from connector.sync.engine import sync_job

__all__ = ["SyncRouter", "SyncWork"]

SyncWork = tuple[dict[str, Any], str]  # a sync job and its partition


class SyncRouter:
    def __init__(self, syncs: Sequence[SyncSpec], engine: sa.Engine) -> None:
        self.syncs = list(syncs)
        self.store = SyncStore(engine)

    def __bool__(self) -> bool:
        return bool(self.syncs)

    def jobs(
        self,
        event: Event,
        deliveries: Deliveries,
        conn: sa.Connection,
        env: Mapping[str, str],
        *,
        sandbox: bool = False,
    ) -> list[SyncWork]:
        """The sync jobs ``event`` makes (none when no loaded sync pairs its record type)."""
        if event.app not in SIDES or not isinstance(event.payload, Mapping):
            return []
        out: list[SyncWork] = []
        for spec in self.syncs:
            for pair in spec.pairs_for(event.app, event.type):
                record_type = pair.record(event.app)
                record = record_type.event_record(event.payload)
                record_id = record_type.event_id(record)
                if not record_id:
                    continue
                run_id = deliveries.run_id(event.key, f"{spec.name}:{pair.kind}", conn)
                job = sync_job(
                    spec,
                    pair,
                    event.app,
                    record_id,
                    event.type,
                    dict(record),
                    run_id=run_id,
                    env=env,
                    sandbox=sandbox,
                )
                out.append((job, self.partition(pair, event.app, record_id, conn)))
        return out

    def partition(
        self, pair: PairSpec, side: str, record_id: str, conn: sa.Connection | None = None
    ) -> str:
        """The run queue partition of a pair's events: one at a time per pair."""
        if side == "ghl":
            return f"sync:{pair.kind}:{record_id}"
        state = self.store.pair(pair.kind, side, record_id, conn)
        if state is not None:
            return f"sync:{pair.kind}:{state.ghl_id}"
        return f"sync:{pair.kind}:{side}:{record_id}"
