"""A reconcile: the comparison the sync makes for one event, made for every record of both apps.

Every record of a pair's GoHighLevel type is walked page by page and brought together with its
counterpart by the same sync run an event would start (paired by the match keys when it is not
yet, its counterpart created when the pair creates from that side, drift repaired by the rules);
then the Connecteam records nothing paired yet get the same. The first reconcile of a new
install is the initial sync; a later one repairs what webhooks never told. Run again, it finds
everything in sync and sends only reads.

A dry run reads the same and writes nothing: each sync run plans its writes instead. Memory is
one page of records at a time; the position of the walk is kept (``cursors``) so a reconcile
that is stopped goes on where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from connector.language.sync_spec import PairSpec, SyncSpec
from connector.records import RunRecord, new_run_id
from connector.sync.engine import sync_job
from connector.sync.merge import values_of
from connector.sync.progress import Limits, Progress, estimate

__all__ = [
    "REPORTED",
    "Reconcile",
    "Tally",
    "Walker",
    "about",
    "in_sync",
    "last_summaries",
    "last_summary",
    "said",
]

REPORTED = 1_000  # ambiguous and unmatched records named in a reconcile's report, at most


def in_sync(pair: PairSpec, side: str, record: Mapping[str, Any], base: Mapping[str, Any]) -> bool:
    """Whether ``record`` (of ``side``) holds what its pair last agreed on, as a sync run would
    judge it: no mapped field that flows from ``side`` has another value (an emptied one is not
    a change)."""
    values = values_of(pair, side, record)
    return not any(
        f.flows_from(side) and values[f.name] is not None and values[f.name] != base.get(f.name)
        for f in pair.fields
    )


def last_summary(cursor: Callable[[str], str | None], sync: str) -> dict[str, Any] | None:
    """What the last completed reconcile of the sync ``sync`` found and did, with ``at`` (epoch
    seconds), from the cursors (``cursor(name)``); None when none ever completed."""
    stored = cursor(f"reconcile:{sync}:last")
    if not stored:
        return None
    try:
        found = json.loads(stored)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def last_summaries(named: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The last completed reconcile of every sync, by its name, from the cursors named
    ``reconcile:...`` (``named``)."""
    out: dict[str, dict[str, Any]] = {}
    for name in named:
        head, _, rest = name.partition(":")
        sync, _, last = rest.rpartition(":")
        if head == "reconcile" and last == "last" and sync and ":" not in sync:
            found = last_summary(named.get, sync)
            if found is not None:
                out[sync] = found
    return dict(sorted(out.items()))


def said(summary: Mapping[str, Any]) -> str:
    """One line of what a reconcile found and did: ``8,000 records: 5,980 in sync, ...``."""
    created = summary.get("created") or {}
    updated = summary.get("updated") or {}
    return (
        f"{summary.get('records', 0):,} records: {summary.get('in_sync', 0):,} in sync, "
        f"{summary.get('paired', 0):,} paired, created {created.get('ghl', 0):,} in GoHighLevel "
        f"and {created.get('connecteam', 0):,} in Connecteam, updated {updated.get('ghl', 0):,} "
        f"in GoHighLevel and {updated.get('connecteam', 0):,} in Connecteam, "
        f"{summary.get('conflicts', 0):,} conflicts, {summary.get('ambiguous', 0):,} ambiguous, "
        f"{summary.get('unmatched', 0):,} unmatched, {summary.get('failed', 0):,} failed"
    )


def about(record: Mapping[str, Any]) -> str:
    """An ambiguous or unmatched record of a report, in words."""
    title = record.get("title") or f"{record.get('side')} {record.get('pair')}"
    text = f"{title} {record.get('id')}"
    if record.get("candidates"):
        text += (
            f": {len(record['candidates'])} candidates by {record.get('key')} "
            f"({', '.join(str(c) for c in record['candidates'])})"
        )
    elif record.get("why"):
        text += f": {record['why']}"
    return text


class Walker(Protocol):
    """What a reconcile needs besides the sync runs: reading one page, the pairs, the cursors."""

    def read(self, request: tuple[str, dict[str, Any]], unit: str) -> Any: ...

    def bases(self, kind: str, side: str, record_ids: list[str]) -> Mapping[str, Mapping[str, Any]]:
        """Of ``record_ids``, the paired ones and what their pair last agreed on."""
        ...

    def cursor(self, name: str) -> str | None: ...

    def keep_cursor(self, name: str, value: str) -> None: ...


@dataclass
class Tally:
    """What a reconcile found and did (or, dry, would do)."""

    records: int = 0
    in_sync: int = 0
    paired: int = 0
    created: dict[str, int] = field(default_factory=lambda: {"ghl": 0, "connecteam": 0})
    updated: dict[str, int] = field(default_factory=lambda: {"ghl": 0, "connecteam": 0})
    conflicts: int = 0
    ambiguous: int = 0
    unmatched: int = 0
    failed: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)  # with --json: every change
    # the records a person must look at (the first REPORTED of each): side, id, and why
    ambiguous_records: list[dict[str, Any]] = field(default_factory=list)
    unmatched_records: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def needs_a_person(self) -> bool:
        return bool(self.ambiguous or self.failed)


class Reconcile:
    """One reconcile of ``spec`` (see the module). ``run(job, dry_run, planned)`` runs one sync job
    to its end and returns its record: durably for real, directly for a dry run, which takes the
    records ``planned`` (kind, side, id) for paired, as this dry run has paired or given a
    counterpart to them."""

    def __init__(
        self,
        spec: SyncSpec,
        walker: Walker,
        run: Callable[[Mapping[str, Any], bool, set[tuple[str, str, str]]], RunRecord],
        env: Mapping[str, str],
        *,
        dry_run: bool = False,
        keep_changes: bool = False,
        progress: Callable[[Progress, Tally], None] | None = None,
        stop: Callable[[], bool] | None = None,
        limits: Mapping[str, Limits] | None = None,
    ) -> None:
        self.spec = spec
        self.walker = walker
        self.run = run
        self.env = dict(env)
        self.dry_run = dry_run
        self.keep_changes = keep_changes
        self.progress = progress
        self.stop = stop or (lambda: False)  # asked between records: stop there (resumable)
        self.stopped = False
        # how far the walk is: records walked and in all (per side), requests sent per app, and
        # the apps' rate limits the time left is estimated from
        self.limits = dict(limits or {})
        self.at = Progress()
        self.totals: dict[tuple[str, str], int | None] = {}
        self.walked: dict[tuple[str, str], int] = {}
        self.tally = Tally()
        # the records paired so far by this run's own (dry) sync runs: a dry run writes no pair,
        # and the second side's walk must not meet them again
        self.planned: set[tuple[str, str, str]] = set()

    def __call__(self, *, restart: bool = False) -> Tally:
        if self.progress is not None:
            self._count_all()
        for pair in self.spec.pairs:
            if pair.parent is not None:
                continue  # records reached through another (tasks): synced with their events
            for side in ("ghl", "connecteam"):
                self._walk(pair, side, restart=restart)
                if self.stopped:
                    return self.tally  # the walk goes on from here next time
        if not self.dry_run:
            self.walker.keep_cursor(self._name("last"), json.dumps(self._summary()))
        return self.tally

    def _summary(self) -> dict[str, Any]:
        """The report kept under ``reconcile:<sync>:last``: the counts, the records a person
        must look at, and ``at``."""
        data = self.tally.to_json()
        data.pop("changes", None)
        data["at"] = time.time()
        return data

    def _name(self, *parts: str) -> str:
        return ":".join(("reconcile", self.spec.name, *parts))

    def _walk(self, pair: PairSpec, side: str, *, restart: bool) -> None:
        record_type = pair.record(side)
        if record_type.walk is None or record_type.page is None:
            return
        name = self._name(pair.kind, side)
        stored = None if (restart or self.dry_run) else self.walker.cursor(name)
        cursor: Any = json.loads(stored) if stored else None
        if stored == json.dumps("done"):
            return
        for records, after in self._pages(pair, side, cursor):
            ids = [record_type.id_of(r) for r in records]
            bases = self.walker.bases(pair.kind, side, [i for i in ids if i])
            for record_id, record in zip(ids, records, strict=True):
                if self.stop():
                    self.stopped = True  # this page is walked again from its start
                    return
                if not record_id:
                    continue
                base = bases.get(record_id)
                # a record as its pair last agreed (or, dry, that this run has paired): in sync,
                # with no sync run; any other is brought together with its counterpart by one
                if (pair.kind, side, record_id) in self.planned or (
                    base and in_sync(pair, side, record, base)
                ):
                    # counted once, by the first side's walk: the second meets the pairs and
                    # counterparts the first has just made (a dry run remembers them instead)
                    if side == "ghl":
                        self.tally.records += 1
                        self.tally.in_sync += 1
                    self._tell()
                    continue
                self._one(pair, side, record_id, dict(record))
            if not self.dry_run:
                self.walker.keep_cursor(name, json.dumps(after if after is not None else "done"))
        if not self.dry_run:
            self.walker.keep_cursor(name, json.dumps(None))  # the next reconcile starts over

    def _count_all(self) -> None:
        """How many records every walk has (one first page each, for the progress)."""
        for pair in self.spec.pairs:
            for side in ("ghl", "connecteam"):
                record_type = pair.record(side)
                if pair.parent is not None or record_type.walk is None:
                    continue
                answer = self.walker.read(
                    record_type.walk(None, self.env), f"walk:{pair.kind}:{side}:count"
                )
                self._sent(record_type.app)
                self._expect(pair, side, record_type.total(answer))

    def _expect(self, pair: PairSpec, side: str, total: int | None) -> None:
        """Note how many records a walk has in all (its first page says, when the app does; a
        side's walk starting says it again, with the counterparts the other's has made)."""
        self.totals[(pair.kind, side)] = total

    def _pages(
        self, pair: PairSpec, side: str, cursor: Any
    ) -> Iterator[tuple[list[Mapping[str, Any]], Any]]:
        record_type = pair.record(side)
        assert record_type.walk is not None and record_type.page is not None
        number = 0
        while True:
            number += 1
            answer = self.walker.read(
                record_type.walk(cursor, self.env), f"walk:{pair.kind}:{side}:{number}"
            )
            self._sent(record_type.app)
            if number == 1:
                self._expect(pair, side, record_type.total(answer))
            records, after = record_type.page(answer, cursor)
            yield records, after
            if after is None:
                return
            cursor = after

    def _one(self, pair: PairSpec, side: str, record_id: str, record: dict[str, Any]) -> None:
        job = sync_job(
            self.spec,
            pair,
            side,
            record_id,
            "reconcile",
            record,
            run_id=new_run_id(),
            env=self.env,
        )
        done = self.run(job, self.dry_run, self.planned)
        for step in done.steps:
            if step.method:  # a request (a dry run's planned ones would be sent)
                self._sent(step.action.split(".", 1)[0], max(1, step.attempts))
        self._count(pair, side, record_id, done)
        self._tell()

    def _tell(self) -> None:
        at = self.at
        at.done += 1
        if self.progress is None:
            return
        known = list(self.totals.values())
        at.total = sum(t or 0 for t in known) if known and None not in known else None
        at.seconds_left = estimate(at.left(), self.limits) if at.total is not None else None
        self.progress(at, self.tally)

    def _sent(self, app: str, requests: int = 1) -> None:
        self.at.requests[app] = self.at.requests.get(app, 0) + requests

    def _count(self, pair: PairSpec, side: str, record_id: str, done: RunRecord) -> None:
        tally = self.tally
        tally.records += 1
        if done.status != "succeeded":
            tally.failed += 1
            return
        output = done.output if isinstance(done.output, Mapping) else {}
        writes = [
            s
            for s in done.steps
            if s.id.startswith(("write_", "create_")) and s.status in ("succeeded", "planned")
        ]
        paired = output.get("paired")
        if isinstance(paired, Mapping):
            tally.paired += 1
            if self.dry_run:  # a dry run pairs nothing in the store: its walk remembers them
                for paired_side, paired_id in paired.items():
                    self.planned.add((pair.kind, str(paired_side), str(paired_id)))
        ambiguous = output.get("ambiguous")
        if ambiguous is not None:
            tally.ambiguous += 1
            if len(tally.ambiguous_records) < REPORTED:
                found = ambiguous if isinstance(ambiguous, Mapping) else {}
                tally.ambiguous_records.append(
                    {
                        "pair": pair.kind,
                        "side": side,
                        "title": pair.record(side).title,
                        "id": record_id,
                        **found,
                    }
                )
        notes = " ".join(str(n) for n in output.get("notes") or [])
        unmatched = "creates none" in notes or "cannot_create" in output
        if unmatched:
            tally.unmatched += 1
            if len(tally.unmatched_records) < REPORTED:
                why = next((str(n) for n in output.get("notes") or []), "")
                tally.unmatched_records.append(
                    {
                        "pair": pair.kind,
                        "side": side,
                        "title": pair.record(side).title,
                        "id": record_id,
                        "why": why,
                    }
                )
        for step in writes:
            target = step.id.split("_")[1]  # write_ghl, create_connecteam, write_ghl_2
            if step.id.startswith("create_"):
                tally.created[target] += 1
                if self.dry_run:
                    self.planned.add((pair.kind, side, record_id))
            else:
                tally.updated[target] += 1
            if self.keep_changes:
                tally.changes.append(
                    {
                        "pair": pair.kind,
                        side: record_id,
                        "to": target,
                        "action": "create" if step.id.startswith("create_") else "update",
                        "body": step.request_body,
                        "merge": output.get("merge"),
                    }
                )
        for key in ("merge", "merge_2"):
            merged = output.get(key)
            if isinstance(merged, Mapping):
                tally.conflicts += len(merged.get("conflicts") or [])
        if not writes and ambiguous is None and not unmatched:
            tally.in_sync += 1
