"""The events a served sync takes: which pairs of a declaration an event is about, and the sync
job each becomes on the run queue.

An event of a record type a loaded sync pairs (a GoHighLevel ``ContactUpdate``, a Connecteam
``user_updated``) becomes one sync job per pair, partitioned by the pair (the GoHighLevel id when
the record is paired, else the record's own), so two events about one pair never run at once in
any process, and run in the order they came.

Polls feed the sync too (:func:`sync_pollers`): every record type a loaded sync pairs that
polls itself (:attr:`RecordType.poll <connector.apps.records.RecordType.poll>`: GoHighLevel
contacts updated since a cursor, every GoHighLevel task of the location, the Connecteam task
board ``CONNECTOR_VAR_TASK_BOARD_ID``) is polled every ``CONNECTOR_SYNC_POLL_SECONDS`` (default
120; 0 polls nothing). What a poll finds becomes sync jobs exactly as a webhook's event does, and the
sync run compares it with the pair's last synced state: a poll re-reporting a record as it
already is writes nothing, and a change no webhook told of (a lost delivery, a Connecteam task's
edit, which has no webhook) reaches the other side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.apps.events import Poller, PollSetup
from connector.errors import UsageError
from connector.language.sync_spec import SIDES, PairSpec, SyncSpec
from connector.persistence.deliveries import Deliveries
from connector.persistence.sync import SyncStore
from connector.serve.events import Event
from connector.sync.engine import sync_job

__all__ = ["POLL_ENV", "SyncPoll", "SyncRouter", "SyncWork", "sync_pollers"]

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


POLL_ENV = "CONNECTOR_SYNC_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 120.0


@dataclass(frozen=True)
class SyncPoll:
    """What a poller reads of its recipe's plan, for a sync's own poll."""

    name: str
    trigger_app: str
    trigger_event: str
    poll: dict[str, Any] = field(default_factory=dict)


def poll_seconds(env: Mapping[str, str]) -> float:
    raw = (env.get(POLL_ENV) or "").strip()
    if not raw:
        return DEFAULT_POLL_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise UsageError(f"{POLL_ENV} must be a number of seconds (0: no poll), not {raw!r}")
    return seconds


def sync_pollers(
    syncs: Sequence[SyncSpec],
    runtime: Any,
    accept: Callable[[str, list[Any], Any], list[str]],
    cursors: Any,
) -> list[Poller]:
    """The polls of the record types the loaded syncs pair, as each record type polls itself
    (:attr:`RecordType.poll <connector.apps.records.RecordType.poll>`): one per record type,
    whichever syncs pair it (its events go to every sync that pairs it)."""
    every = poll_seconds(runtime.env)
    if not every:
        return []
    polled = {
        (side, pair.record(side).name): pair.record(side)
        for spec in syncs
        for pair in spec.pairs
        for side in SIDES
        if pair.record(side).poll is not None
    }
    out: list[Poller] = []
    for (app, name), record in sorted(polled.items()):
        plan = SyncPoll(f"sync:{app}:{name}", app, record.poll_event, {"every": every})
        assert record.poll is not None
        poller = record.poll(PollSetup(plan, runtime, accept, cursors))
        if poller is None:  # the environment does not say what to poll (said by the app)
            continue
        out.append(poller)
    return out
