"""One sync run: an event about one record, brought to the other side by the declared rules.

A run is durable like a recipe's: every request is a checkpointed attempt through the caller (so
retries, the rate budget and the journal of writes apply), every read of the database is a
checkpoint, and a write happens once per state of the pair (its key names the pair and the
version of its state). The pair's new state (the agreed values, each side's change time, the
conflicts met) is written in the transaction that records the last write as done, so what the
store says the two sides agreed on is never ahead of what was written.

What one run does, for an event from side S about record R:

1. A delete or archive of R: what the pair declares (keep the counterpart, archive it, or delete
   it), and the pair is forgotten.
2. R as it is now: the event's payload when it carries every mapped field and a change time,
   else a read of R (GoHighLevel's ``TaskCreate`` omits fields; a Connecteam archive carries only
   an id).
3. Not paired: the match keys are looked up on the other side; one candidate is paired (and the
   two brought together by the rules), two or more are reported and nothing is done, none gets a
   counterpart created (when the pair creates from S).
4. Paired: an event older than the state of R the pair already holds changes nothing; when none
   of R's mapped fields differs from the last synced values (our own write coming back, a
   duplicate, a poll re-reporting), nothing is sent. Otherwise the other side's record is read,
   :func:`connector.sync.merge.merge` decides, and each side gets at most one write.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from connector.apps import App
from connector.apps.records import Address, RecordType
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.errors import ConnectorError, HTTPStepError, StepError, step_failure
from connector.language.sync_spec import PairSpec, SyncSpec
from connector.persistence.links import LinkStore
from connector.persistence.sync import Conflict, PairState, SyncStore
from connector.records import Recorder, RunRecord, StepRecord, bounded, ms_since, now_iso
from connector.sending.auth import ACCOUNT
from connector.sending.caller import Call, Caller
from connector.sending.http import ParameterError, Redactor, build_request
from connector.sync.merge import Merge, SideState, merge, values_of

__all__ = ["OTHER", "SyncRun", "fetch", "prepare", "sync_job"]

OTHER = {"ghl": "connecteam", "connecteam": "ghl"}
TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}
MAX_ROUNDS = 3  # a run brings along what its writes' answers show changed meanwhile, this often


def sync_job(
    spec: SyncSpec,
    pair: PairSpec,
    side: str,
    record_id: str,
    event: str,
    payload: Any,
    *,
    run_id: str,
    env: Mapping[str, str],
    sandbox: bool = False,
) -> dict[str, Any]:
    """The input of a sync run's workflow (small and JSON, like a recipe run's)."""
    return {
        "kind": "sync",
        "run_id": run_id,
        "recipe_hash": spec.text_hash,
        "pair": pair.kind,
        "side": side,
        "id": str(record_id),
        "event": event,
        "payload": payload,
        "env": dict(env),
        "sandbox": sandbox,
    }


class SyncRun:
    """One sync run (see the module). ``execute`` returns the run's record."""

    def __init__(
        self,
        *,
        spec: SyncSpec,
        job: Mapping[str, Any],
        registry: Registry,
        clients: Mapping[str, httpx.Client],
        caller: Caller,
        store: SyncStore,
        links: LinkStore,
        recorder: Recorder | None,
        redactor: Redactor,
        dry_run: bool = False,
    ) -> None:
        self.spec = spec
        # a dry run reads both apps as a real one does, writes nothing (neither app nor store)
        # and records each write it would make as a planned step
        self.dry_run = dry_run
        # records a dry reconcile has already paired or given a counterpart (as if it had)
        self.also_paired: Callable[[str, str, str], bool] = lambda kind, side, rid: False
        self.job = job
        self.pair = spec.pair(str(job["pair"]))
        self.side = str(job["side"])
        self.other = OTHER[self.side]
        self.record_id = str(job["id"])
        self.event = str(job["event"])
        self.env: Mapping[str, str] = job.get("env") or {}
        self.registry = registry
        self.clients = clients
        self.caller = caller
        self.store = store
        self.links = links
        self.recorder = recorder
        self.redactor = redactor
        self.run = RunRecord(
            id=str(job["run_id"]),
            recipe=spec.name,
            recipe_hash=spec.text_hash,
            recipe_path=spec.path,
            trigger_app=self.side,
            trigger_event=self.event,
            trigger=redactor.value(job.get("payload")),
            sandbox=bool(job.get("sandbox")),
            env=dict(self.env),
        )
        self.notes: list[str] = []
        self.output: dict[str, Any] = {"pair": self.pair.kind, self.side: self.record_id}
        # the sides this run has read as they are now (an event's payload may be old news)
        self.fresh: set[str] = set()

    # the run -------------------------------------------------------------------------------------

    def execute(self) -> RunRecord:
        started = time.perf_counter()
        if self.recorder is not None:
            self.recorder.run_started(self.run)
        try:
            self._sync()
            self.run.status = "succeeded"
        except ConnectorError as exc:
            self.run.status = "failed"
            self.run.error = self.redactor.text(str(exc))
        finally:
            self.output["notes"] = self.notes
            self.run.output = self.redactor.value(self.output)
            self.run.finished_at = now_iso()
            self.run.duration_ms = ms_since(started)
            if self.recorder is not None:
                self.recorder.run_finished(self.run)
        return self.run

    def _sync(self) -> None:
        meaning = self.pair.record(self.side).events.get(self.event, "upsert")
        state = self._state()
        if meaning in ("delete", "archive"):
            self._gone(state, meaning)
            return
        mine = self._current(state)
        if mine is None:
            self.notes.append(
                f"the {self._title(self.side)} {self.record_id} is gone; nothing to do"
            )
            return
        mine_at = self.pair.record(self.side).changed_at(mine)
        if state is None:
            self._unpaired(mine, mine_at)
            return
        self._as_paired(state, mine, mine_at)

    def _as_paired(self, state: PairState, mine: Mapping[str, Any], mine_at: float | None) -> None:
        """The event's record, paired as ``state`` says: brought together with its partner."""
        seen = state.seen.get(self.side)
        values = values_of(self.pair, self.side, mine)
        if (
            seen is not None
            and mine_at is not None
            and (
                mine_at < seen
                or (mine_at == seen and digest(values) in state.superseded.get(self.side, []))
            )
        ):
            self.notes.append(
                f"the event is older than the {self._title(self.side)} the pair already holds;"
                " nothing to do"
            )
            return
        changed = [
            f.name
            for f in self.pair.fields
            if f.flows_from(self.side)
            and values[f.name] is not None
            and values[f.name] != state.base.get(f.name)
        ]
        if not changed and state.base:
            self.notes.append("in sync: no mapped field changed since the last sync")
            if mine_at is not None and (seen is None or mine_at > seen):
                state.seen[self.side] = mine_at
                self._save(state, [])
            return
        other_id = state.connecteam_id if self.other == "connecteam" else state.ghl_id
        theirs = self._read(
            self.other, other_id, "read_" + self.other, state.address.get(self.other, {})
        )
        if theirs is None:
            self.notes.append(
                f"the paired {self._title(self.other)} {other_id} is gone; nothing was written"
            )
            return
        for side, record in ((self.side, mine), (self.other, theirs)):
            if self.pair.record(side).inactive(record):
                self.notes.append(
                    f"the paired {self._title(side)} is archived; nothing was written until it"
                    " is back in use"
                )
                return
        self._bring_together(state, mine, theirs)

    # pairing -------------------------------------------------------------------------------------

    def _unpaired(self, mine: Mapping[str, Any], mine_at: float | None) -> None:
        values = values_of(self.pair, self.side, mine)
        candidates = self._match(values)
        if candidates is None:
            return  # ambiguous: said in a note
        if candidates:
            other = self.pair.record(self.other)
            theirs_id = other.id_of(candidates[0])
            # the look-up answered the record as its app lists it, change time and all: no need
            # to read it again
            theirs = candidates[0]
            if other.changed_at(theirs) is None:
                theirs = (
                    self._read(
                        self.other, theirs_id, "read_" + self.other, other.address_of(theirs)
                    )
                    or theirs
                )
            self._pair_with(mine, theirs, {}, f"by {self._matched_by}")
            return
        # a record matched but was paired: perhaps with this one, by the run that made this
        # record from it and kept the pair after this run read it unpaired
        if self._taken and self._paired_meanwhile(mine, mine_at):
            return
        if not self.pair.creates_from(self.side):
            self.notes.append(
                f"no {self._title(self.other)} matches and the pair creates none from"
                f" {TITLES[self.side]}"
            )
            return
        self._create(mine, values, mine_at)

    def _pair_with(
        self, mine: Mapping[str, Any], theirs: Mapping[str, Any], where: Address, how: str
    ) -> None:
        """Pair this run's record with ``theirs`` (reached at ``where`` too), and bring the two
        together by the rules."""
        theirs_id = self.pair.record(self.other).id_of(theirs)
        ids = {self.side: self.record_id, self.other: theirs_id}
        state = PairState(
            self.pair.kind,
            ids["ghl"],
            ids["connecteam"],
            address={
                self.side: self._address_of(mine),
                self.other: {**where, **self.pair.record(self.other).address_of(theirs)},
            },
        )
        self.notes.append(f"paired {how} with {self._title(self.other)} {theirs_id}")
        self.output["paired"] = ids
        self._bring_together(state, mine, theirs, pairing=True)

    def _paired_meanwhile(self, mine: Mapping[str, Any], mine_at: float | None) -> bool:
        """Read this run's pair again (it read it unpaired); paired since, by the run that made
        this record's counterpart, go on as a paired record. Whether it was."""
        state = self._state("state-again")
        if state is None:
            return False
        theirs = state.connecteam_id if self.other == "connecteam" else state.ghl_id
        self.notes.append(
            f"paired meanwhile with {self._title(self.other)} {theirs} by the run that made it"
        )
        self._as_paired(state, mine, mine_at)
        return True

    _matched_by = ""
    _taken = False  # a record matched by a key was paired already

    def _match(self, values: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
        """The unpaired record of the other side that matches by the first match key that finds
        any: [] for none, None when the match is ambiguous (two candidates there, or two records
        on this side with that value: nothing is done)."""
        for key in self.pair.match:
            value = values.get(key)
            if value is None:
                continue
            found = self._with_value(self.other, key, value)
            if found is None:
                continue  # the other side cannot be looked up by this key
            free = [r for r in found if not self._paired(self.other, self._id(self.other, r))]
            if not free:
                self._taken = self._taken or bool(found)
                continue
            twins = self._with_value(self.side, key, value, back=True) or []
            for side, records in ((self.other, free), (self.side, twins)):
                if len(records) > 1:
                    ids = [self._id(side, r) for r in records]
                    self.notes.append(
                        f"ambiguous: {len(records)} {self._title(side)}s have {key} {value!r}"
                        f" ({', '.join(ids)}); nothing was paired or created"
                    )
                    self.output["ambiguous"] = {"key": key, "candidates": ids}
                    return None
            self._matched_by = key
            return free
        return []

    def _with_value(
        self, side: str, key: str, value: Any, *, back: bool = False
    ) -> list[Mapping[str, Any]] | None:
        """The records of ``side`` whose mapped field ``key`` has ``value`` (after its
        transform); None when that side's records cannot be looked up by it."""
        record = self.pair.record(side)
        field = self.pair.field(key).on(side)
        request = record.find(field, value, self.env) if record.find else None
        if request is None or record.found is None:
            return None
        name = f"find_back_by_{key}" if back else f"find_by_{key}"
        answer = self._request(name, request, name.replace("_by_", "_"))
        return [
            r for r in record.found(answer) if _same(values_of(self.pair, side, r).get(key), value)
        ]

    def _id(self, side: str, record: Mapping[str, Any]) -> str:
        return self.pair.record(side).id_of(record)

    def _parent_counterpart(self, mine: Mapping[str, Any]) -> str | None:
        """For a pair whose records belong to another pair's (a task to its contact): the
        counterpart, on the other side, of this record's parent (None, with a note, when the
        parent is not paired)."""
        if not self.pair.parent:
            return None
        parent = self.pair.record(self.side).parent_of(mine)
        if parent is None:
            self.notes.append(
                f"the {self._title(self.side)} names no {self.pair.parent}: nothing created"
            )
            return None
        kind = self.pair.parent

        def look() -> Any:
            found = self.store.pair(kind, self.side, parent)
            return found.to_json() if found is not None else None

        data = self.caller.checkpoints.step(f"parent:{self.side}:{parent}", look)
        if data is None:
            self.notes.append(
                f"its {kind} {parent} is not paired: no {self._title(self.other)} was created"
            )
            return None
        pair = PairState.from_json(data)
        return pair.connecteam_id if self.other == "connecteam" else pair.ghl_id

    def _paired(self, side: str, record_id: str) -> bool:
        if self.also_paired(self.pair.kind, side, record_id):
            return True

        def look() -> bool:
            return self.store.pair(self.pair.kind, side, record_id) is not None

        return bool(self.caller.checkpoints.step(f"paired:{side}:{record_id}", look))

    def _create(
        self, mine: Mapping[str, Any], values: Mapping[str, Any], mine_at: float | None
    ) -> None:
        target = self.pair.record(self.other)
        if target.create is None or target.created is None:
            self.notes.append(f"a {target.title} cannot be created; nothing was done")
            return
        fields = {
            f.on(self.other): values[f.name]
            for f in self.pair.fields
            if values.get(f.name) is not None and f.flows_from(self.side)
        }
        lacking = [name for name in target.create_needs if fields.get(name) in (None, "")]
        if lacking:
            self.notes.append(
                f"no {target.title} can be made from it: {target.title}s need "
                f"{', '.join(lacking)}; nothing was created"
            )
            self.output["cannot_create"] = lacking
            return
        parent = self._parent_counterpart(mine)
        if self.pair.parent and parent is None:
            return
        request = target.create(target.encode(fields), self.env, parent)
        sent = {f.name: values[f.name] for f in self.pair.fields if f.on(self.other) in fields}
        if not self.pair.match and target.made is not None:
            # no match keys (tasks): a record under the same parent that shows every value is
            # this one's counterpart, made by a sync run that has not yet kept the pair; or one
            # that has kept it since this run read it unpaired (the run that made this record
            # from it, still going when this one began)
            twin = self._twin("twin_" + self.other, target, request, sent, parent, mine_too=True)
            if twin is not None:
                candidate, where, partner = twin
                if partner is None:
                    self._pair_with(mine, candidate, where, "as its twin under the same parent")
                    return
                self._paired_meanwhile(mine, mine_at)
                return
        key = f"sync:{self.pair.kind}:create-from-{self.side}:{self.record_id}"
        created = target.created
        base = {f.name: values[f.name] for f in self.pair.fields if values.get(f.name) is not None}

        def link(output: Any) -> Callable[[Any], Any] | None:
            record = created(output)
            if record is None:
                return None
            new_id = target.id_of(record)
            ids = {self.side: self.record_id, self.other: new_id}
            state = PairState(
                self.pair.kind,
                ids["ghl"],
                ids["connecteam"],
                base=dict(base),
                seen={self.side: mine_at, self.other: target.changed_at(record)},
                address={
                    self.side: self._address_of(mine),
                    self.other: target.address_of(record) or target.address_of(request[1]),
                },
                version=1,
            )
            return self._writer(state, [])

        def resolve(unit: str) -> tuple[bool, Any]:
            return self._made(unit, target, request, sent, parent)

        answer = self._request(
            "create_" + self.other,
            request,
            "create",
            effect_key=key,
            link=link,
            resolve=resolve if target.made is not None else None,
        )
        made = created(answer)
        if made is not None:
            self.output["created"] = {self.other: target.id_of(made)}
            self.notes.append(f"created {self._title(self.other)} {target.id_of(made)}")

    # bringing a pair together --------------------------------------------------------------------

    def _bring_together(
        self,
        state: PairState,
        mine: Mapping[str, Any],
        theirs: Mapping[str, Any],
        *,
        pairing: bool = False,
        round: int = 1,
    ) -> None:
        records = {self.side: mine, self.other: theirs}
        sides = {
            side: SideState(
                values_of(self.pair, side, records[side]),
                self.pair.record(side).changed_at(records[side]),
            )
            for side in ("ghl", "connecteam")
        }
        base = state.base if not pairing else {}
        merged = merge(self.pair, base, sides["ghl"], sides["connecteam"])
        merged.round = round
        self._record_merge(merged)
        conflicts = [
            Conflict(
                sync=self.spec.name,
                kind=self.pair.kind,
                ghl_id=state.ghl_id,
                connecteam_id=state.connecteam_id,
                field=d.field,
                base=d.base,
                ghl=d.ghl,
                connecteam=d.connecteam,
                ghl_at=sides["ghl"].at,
                connecteam_at=sides["connecteam"].at,
                rule=d.rule,
                winner=d.winner,
                run_id=self.run.id,
            )
            for d in merged.conflicts
        ]
        address = {side: dict(state.address.get(side, {})) for side in ("ghl", "connecteam")}
        for side in ("ghl", "connecteam"):
            address[side].update(self.pair.record(side).address_of(records[side]))
        new = PairState(
            state.kind,
            state.ghl_id,
            state.connecteam_id,
            base=merged.base,
            seen={side: sides[side].at for side in ("ghl", "connecteam")},
            superseded=dict(state.superseded),
            address=address,
            version=state.version + 1,
        )
        writes = [side for side in (self.other, self.side) if merged.to(side)]
        if not writes:
            self._save(new, conflicts)
            return
        if self.side in writes and self.side not in self.fresh:
            # a write back to the side the event came from: decided on the event's copy, which
            # may be older than that side is now (edits made since it was sent). Decide again
            # on the record as it is, or the write would revert those edits.
            now = self._read(
                self.side,
                self.record_id,
                "reread_" + self.side,
                state.address.get(self.side, {}),
            )
            self.fresh.add(self.side)
            if now is None:
                self.notes.append(
                    f"the {self._title(self.side)} {self.record_id} is gone; nothing was written"
                )
                return
            if values_of(self.pair, self.side, now) != sides[self.side].values or (
                self.pair.record(self.side).changed_at(now) != sides[self.side].at
            ):
                self._bring_together(state, now, theirs, pairing=pairing, round=round)
                return
        answers: dict[str, Any] = {}
        written = {target: merged.to(target) for target in writes}
        for position, target in enumerate(writes):
            last = position == len(writes) - 1
            patch = {
                self.pair.field(name).on(target): value for name, value in merged.to(target).items()
            }
            target_id = state.ghl_id if target == "ghl" else state.connecteam_id
            record_type = self.pair.record(target)
            request = record_type.update(
                target_id,
                record_type.encode(patch),
                records[target],
                state.address.get(target, {}),
            )
            key = f"sync:{self.pair.kind}:{state.ghl_id}:v{state.version}:to-{target}"

            def link(
                output: Any, _target: str = target, _last: bool = last
            ) -> Callable[[Any], Any] | None:
                answers[_target] = output
                if not _last:
                    return None
                return self._writer(self._written(new, sides, answers, written), conflicts)

            answers[target] = self._request(
                f"write_{target}" + (f"_{round}" if round > 1 else ""),
                request,
                "write",
                effect_key=key,
                link=link,
            )
            self.notes.append(
                f"wrote {', '.join(sorted(merged.to(target)))} to {self._title(target)} {target_id}"
            )
        # a written side whose answer shows a change the merge did not know of (made between
        # the read and the write): it is that side's newest state; bring it along now
        changed = {
            target: after
            for target in writes
            if (after := self.pair.record(target).record_of(answers.get(target))) is not None
            and any(
                values_of(self.pair, target, after).get(name) != value
                for name, value in new.base.items()
            )
        }
        self.fresh.update(writes)  # their answers show them as they are now
        if changed and round < MAX_ROUNDS:
            records.update(changed)
            self._bring_together(
                self._written(new, sides, answers, written),
                records[self.side],
                records[self.other],
                round=round + 1,
            )

    # writes whose answer was lost ---------------------------------------------------------------

    def _made(
        self,
        unit: str,
        target: RecordType,
        request: tuple[str, dict[str, Any]],
        sent: Mapping[str, Any],
        parent: str | None,
    ) -> tuple[bool, Any]:
        """Whether a create whose answer was lost made its record: a record of the other side,
        unpaired or paired with this one, that shows every value it sent (the answer it would
        have given); else it is sent again."""
        assert target.as_created is not None
        twin = self._twin(_lookup_step(unit), target, request, sent, parent, mine_too=True)
        return (True, target.as_created(twin[0])) if twin is not None else (False, None)

    def _twin(
        self,
        step_id: str,
        target: RecordType,
        request: tuple[str, dict[str, Any]],
        sent: Mapping[str, Any],
        parent: str | None,
        *,
        mine_too: bool = False,
    ) -> tuple[Mapping[str, Any], Address, str | None] | None:
        """A record of the other side, under the parent the create names, that shows every
        value in ``sent`` and is not paired (or, ``mine_too``, is paired with this run's
        record); with where it is reached, and its partner (None, or this run's record)."""
        if target.made is None or target.made_found is None:
            return None
        listing = target.made(request[1], self.env, parent)
        if listing is None:
            return None
        answer = self._request(step_id, listing, "read")
        for candidate in target.made_found(answer):
            values = values_of(self.pair, self.other, candidate)
            if not all(_same(values.get(name), value) for name, value in sent.items()):
                continue
            partner = self._partner(self.other, target.id_of(candidate))
            if partner is None or (mine_too and partner == self.record_id):
                return candidate, target.address_of(listing[1]), partner
        return None

    def _partner(self, side: str, record_id: str) -> str | None:
        """The id of the record ``side``'s ``record_id`` is paired with, if it is."""

        def look() -> str | None:
            found = self.store.pair(self.pair.kind, side, record_id)
            if found is None:
                return None
            return found.connecteam_id if side == "ghl" else found.ghl_id

        return self.caller.checkpoints.step(f"partner:{side}:{record_id}", look)

    def _written(
        self,
        new: PairState,
        sides: Mapping[str, SideState],
        answers: Mapping[str, Any],
        written: Mapping[str, Mapping[str, Any]],
    ) -> PairState:
        """The pair's state after the writes answered ``answers``: a side written to is known
        as of its answer, and the values it had before are superseded by the write (an event
        that carries them is older than the write)."""
        state = PairState(
            new.kind,
            new.ghl_id,
            new.connecteam_id,
            base=dict(new.base),
            seen=dict(new.seen),
            superseded=dict(new.superseded),
            address=new.address,
            version=new.version,
        )
        for target, answer in answers.items():
            record_type = self.pair.record(target)
            after = record_type.record_of(answer)
            if after is None:
                continue
            at = record_type.changed_at(after)
            if at is not None:
                state.seen[target] = at
                # what the side held before the write: as read, and as its answer shows it
                # with the written fields as they were (an edit made between read and write)
                before = dict(values_of(self.pair, target, after))
                before.update({f: sides[target].values.get(f) for f in written.get(target, {})})
                state.superseded[target] = [digest(sides[target].values), digest(before)]
        return state

    def _record_merge(self, merged: Merge) -> None:
        name = "merge" if merged.round == 1 else f"merge_{merged.round}"
        step = StepRecord(name, "sync.merge", "succeeded", started_at=now_iso())
        step.raw = merged.to_json()
        step.output = self.redactor.value(step.raw)
        if merged.conflicts:
            step.note = "; ".join(
                f"conflict on {d.field}: "
                + (
                    f"{TITLES[d.winner]} wins ({d.rule})"
                    if d.winner
                    else "left for a person (manual)"
                )
                for d in merged.conflicts
            )
        self._finish(step)
        self.output[name] = step.output

    def _gone(self, state: PairState | None, meaning: str) -> None:
        if state is None:
            self.notes.append(f"the {self._title(self.side)} {self.record_id} was not paired")
            return
        rule = self.pair.on_delete(self.side)
        other_id = state.connecteam_id if self.other == "connecteam" else state.ghl_id
        target = self.pair.record(self.other)
        action = {"archive": target.archive, "propagate": target.remove}.get(rule)
        address = state.address.get(self.other, {})

        def forget(conn: Any) -> None:
            self.store.forget_in(conn, self.pair.kind, state.ghl_id)

        if action is None:
            # the pair is remembered: the record kept is never copied back to make up for the
            # one that went (an archived record may come back into use, and the pair with it)
            self.notes.append(
                f"{meaning}: the {self._title(self.other)} {other_id} is kept, and stays paired"
                " (delete: keep)"
            )
            return
        key = f"sync:{self.pair.kind}:{state.ghl_id}:{rule}-{self.other}"
        try:
            self._request(
                f"{rule}_{self.other}",
                action(other_id, address),
                rule,
                effect_key=key,
                link=lambda _out: forget,
            )
        except HTTPStepError as exc:
            # already gone (a person removed it, or an earlier attempt whose answer was lost)
            if rule != "propagate" or not target.missing(exc.status_code, exc.api_message):
                raise
            if not self.dry_run:
                self.caller.checkpoints.step("forget", lambda: self._in_transaction(forget))
            self.notes.append(
                f"{meaning}: the {self._title(self.other)} {other_id} was gone already"
            )
            return
        self.notes.append(f"{meaning}: {rule} of {self._title(self.other)} {other_id}")

    # the database --------------------------------------------------------------------------------

    def _state(self, step: str = "state") -> PairState | None:
        def read() -> Any:
            found = self.store.pair(self.pair.kind, self.side, self.record_id)
            return found.to_json() if found is not None else None

        data = self.caller.checkpoints.step(step, read)
        return PairState.from_json(data) if data is not None else None

    def _writer(self, state: PairState, conflicts: list[Conflict]) -> Callable[[Any], Any]:
        def write(conn: Any) -> Any:
            self.store.put_in(conn, state)
            self.links.put_in(conn, state.kind, state.ghl_id, state.connecteam_id)
            recorded = [c.field for c in conflicts if self.store.conflict_in(conn, c)]
            return {"version": state.version, "conflicts": recorded}

        return write

    def _save(self, state: PairState, conflicts: list[Conflict]) -> None:
        if self.dry_run:
            return
        writer = self._writer(state, conflicts)
        self.caller.checkpoints.step(f"save@v{state.version}", lambda: self._in_transaction(writer))

    def _in_transaction(self, func: Callable[[Any], Any]) -> Any:
        with self.store.engine.begin() as conn:
            return func(conn)

    # requests ------------------------------------------------------------------------------------

    def _current(self, state: PairState | None) -> Mapping[str, Any] | None:
        """The event's record: its payload when complete, else read."""
        payload = self.job.get("payload")
        record = self.pair.record(self.side)
        if (
            isinstance(payload, Mapping)
            and record.changed_at(payload) is not None
            and all(f.on(self.side) in record.decode(payload) for f in self.pair.fields)
        ):
            return payload
        address = dict(state.address.get(self.side, {})) if state is not None else {}
        if isinstance(payload, Mapping):
            address.update(record.address_of(payload))
        self.fresh.add(self.side)
        if record.read(self.record_id, address) is None and record.locate is not None:
            return self._locate(record, payload if isinstance(payload, Mapping) else {})
        return self._read(self.side, self.record_id, "read_" + self.side, address)

    def _address_of(self, mine: Mapping[str, Any]) -> dict[str, Any]:
        """Where this run's record is reached: as its event said (a Connecteam task's board is
        in its webhook, not in a read of it), and as the record shows."""
        record = self.pair.record(self.side)
        payload = self.job.get("payload")
        address = dict(record.address_of(payload)) if isinstance(payload, Mapping) else {}
        address.update(record.address_of(mine))
        return address

    def _locate(self, record: RecordType, hint: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The record whose address nothing gives, found by its app's search (GoHighLevel
        #332: a ``TaskCreate`` names no contact), page by page; None when no page has it."""
        assert record.locate is not None and record.located is not None
        page = 0
        while (request := record.locate(self.record_id, hint, self.env, page)) is not None:
            found = record.located(self._request(f"locate_{self.side}_{page}", request, "read"))
            for candidate in found:
                if record.id_of(candidate) == self.record_id:
                    return candidate
            if not found and page > 0:
                break
            page += 1
        self.notes.append(f"the {record.title} {self.record_id} was not found by its search")
        return None

    def _read(
        self, side: str, record_id: str, step_id: str, address: Mapping[str, Any]
    ) -> Mapping[str, Any] | None:
        record = self.pair.record(side)
        request = record.read(record_id, address)
        if request is None:
            raise StepError(
                step_id,
                f"the {record.title} {record_id} cannot be read: neither its event nor the pair"
                " says where it is",
            )
        try:
            answer = self._request(step_id, request, "read")
        except HTTPStepError as exc:
            if record.missing(exc.status_code, exc.api_message):
                return None
            raise
        return record.record_of(answer)

    def _request(
        self,
        step_id: str,
        request: tuple[str, dict[str, Any]],
        unit: str,
        *,
        effect_key: str | None = None,
        link: Callable[[Any], Callable[[Any], Any] | None] | None = None,
        resolve: Callable[[str], tuple[bool, Any]] | None = None,
    ) -> Any:
        name = request[0]
        step = StepRecord(step_id, name, started_at=now_iso())
        started = time.perf_counter()
        try:
            op, app, client, built, location = prepare(
                self.registry, self.clients, self.env, step_id, request
            )
            step.method, step.url = built.method, self.redactor.text(str(built.url))
            step.request_body = self.redactor.value(_body(built))
            if self.dry_run and effect_key is not None:  # a write: shown, not sent
                step.status = "planned"
                self.output.setdefault("planned", []).append(
                    {"step": step_id, "method": built.method, "body": step.request_body}
                )
                return None
            call = Call(
                unit=f"{step_id}:{unit}",
                app=app,
                op=op,
                client=client,
                request=built,
                location=location,
                effect_key=effect_key,
                owner=f"{self.run.id}/{step_id}",
                step_id=step_id,
                link=link,
                resolve=resolve,
                describe=f"{op.method} {built.url.path} in {app.title}",
            )
            output = self.caller.call(call, step)
            step.raw = output
            step.status = "succeeded"
            return output
        except ConnectorError as exc:
            step.status = "failed"
            step.error = self.redactor.text(step_failure(step_id, exc))
            raise
        finally:
            step.duration_ms = ms_since(started)
            step.output = bounded(self.redactor.value(step.raw))  # cut, the cut marked
            self._finish(step)

    def _finish(self, step: StepRecord) -> None:
        self.run.steps.append(step)
        if self.recorder is not None:
            self.recorder.step_finished(self.run, step)

    def _title(self, side: str) -> str:
        return self.pair.record(side).title


def prepare(
    registry: Registry,
    clients: Mapping[str, httpx.Client],
    env: Mapping[str, str],
    step_id: str,
    request: tuple[str, dict[str, Any]],
) -> tuple[Operation, App, httpx.Client, httpx.Request, str]:
    """The operation, app, client, built request and location of a record type's ``request``
    (the app's location parameter filled from the environment when the request has none)."""
    name, params = request
    op = registry.operation(name)
    if not isinstance(op, Operation):
        raise StepError(step_id, f"the catalog has no operation {name!r}")
    app = registry.apps[op.app]
    client = clients.get(op.app)
    if client is None:
        raise StepError(step_id, f"no client for app {op.app!r}")
    location = app.location(params, env)
    lp = app.location_param
    if lp and op.param(lp) is not None and not params.get(lp) and location:
        params = {**params, lp: location}
    try:
        built = build_request(client, app, op, params)
    except ParameterError as exc:
        raise StepError(step_id, str(exc)) from None
    if location:
        built.extensions[ACCOUNT] = location
    return op, app, client, built, location


def fetch(
    registry: Registry,
    clients: Mapping[str, httpx.Client],
    caller: Caller,
    env: Mapping[str, str],
    request: tuple[str, dict[str, Any]],
    unit: str,
) -> Any:
    """A read made outside any sync run (a reconcile's page), through ``caller``: the rate
    budget and the retry policy apply."""
    op, app, client, built, location = prepare(registry, clients, env, unit, request)
    call = Call(
        unit=unit,
        app=app,
        op=op,
        client=client,
        request=built,
        location=location,
        effect_key=None,
        owner=unit,
        step_id=unit,
    )
    return caller.call(call, StepRecord(unit, op.name))


def _lookup_step(unit: str) -> str:
    """The step of a look-up after a lost answer (``write_connecteam:write:lookup1``)."""
    step, _, lookup = unit.rpartition(":")
    return f"{step.split(':', 1)[0]}_{lookup}"


def digest(values: Mapping[str, Any]) -> str:
    """A short digest of a record's mapped values (to know a state again)."""
    text = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


def _body(request: httpx.Request) -> Any:
    if not request.content:
        return None
    try:
        return json.loads(request.content)
    except ValueError:
        return None
