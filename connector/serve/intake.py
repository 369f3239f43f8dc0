"""The intake: events in, durable runs out.

:meth:`Intake.accept` takes the events of one delivery and, for each recipe whose trigger
matches (app, event type and the trigger's ``if``), puts a run on the durable run queue. It
returns only once every run is stored, so a webhook is answered 200 only when nothing can be
lost any more; a delivery that fails half-way is answered with an error, the vendor sends it
again, and the runs already stored are the same runs (each (event, recipe) keeps the run id it
was given first, :meth:`~connector.persistence.deliveries.Deliveries.run_id`), so nothing is done
twice. Runs about one record (a contact) run one at a time in the order their events arrived:
the run queue is partitioned by the event's subject, and run ids sort by arrival.

Before routing, an event is dropped (acknowledged, counted, runs nothing) when:

- its delivery was seen before (``webhookId``, ``requestId``): ``duplicate``;
- it is the echo of a write the runtime made (:mod:`connector.persistence.echoes`): ``echo``;
- it repeats, within ``BURST_SECONDS``, the last event about the same record word for word
  (GoHighLevel sends redundant bursts of contact events): ``burst``.

A run for a paused recipe (:mod:`connector.persistence.pauses`) is not queued: its event is
held under the run id it was given, and :meth:`Intake.release` queues it once the recipe is
resumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ConnectorError
from connector.language.plan import Plan
from connector.language.sync_spec import SyncSpec
from connector.language.template_env import template_env
from connector.persistence.deliveries import Deliveries
from connector.persistence.pauses import Pauses
from connector.records import new_run_id
from connector.runtime.api import RunClient
from connector.serve.events import Event, digest_of, run_id_for
from connector.serve.metrics import Metrics
from connector.serve.syncing import SyncRouter

__all__ = ["BURST_SECONDS", "Accepted", "Intake", "Router"]

log = logging.getLogger("connector.serve")

BURST_SECONDS = 60.0


@dataclass
class Accepted:
    runs: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # runs of paused recipes, to run when resumed
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> events
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"runs": self.runs}
        if self.held:
            out["held"] = self.held
        if self.duplicate:
            out["duplicate"] = True
        if self.dropped:
            out["dropped"] = self.dropped
        return out


class Router:
    """Which recipes an event starts: those whose trigger names its app and type, and whose
    ``trigger.if`` is true of it."""

    def __init__(
        self, plans: Sequence[Plan], env: Mapping[str, str], names: tuple[str, ...] = ()
    ) -> None:
        self.plans = {p.name: p for p in plans}
        self.env = template_env(env, names)  # what templates see: never a secret
        self._by_type: dict[tuple[str, str], list[Plan]] = {}
        for plan in plans:
            self._by_type.setdefault((plan.trigger_app, plan.trigger_event), []).append(plan)

    def match(self, event: Event, only: Plan | None = None) -> tuple[list[Plan], int]:
        """The plans ``event`` starts (of ``only``, when given), and how many matched by type
        but not by ``if``."""
        out, filtered = [], 0
        candidates = self._by_type.get((event.app, event.type), [])
        for plan in candidates if only is None else [p for p in candidates if p is only]:
            if plan.trigger_if is None or self._holds(plan, event):
                out.append(plan)
            else:
                filtered += 1
        return out, filtered

    def _holds(self, plan: Plan, event: Event) -> bool:
        assert plan.trigger_if is not None
        try:
            return bool(plan.trigger_if.render({"trigger": event.payload, "env": self.env}))
        except ConnectorError as exc:
            log.warning("recipe %s: trigger.if failed for event %s: %s", plan.name, event.key, exc)
            return False


class Intake:
    def __init__(
        self,
        runtime: RunClient,
        plans: Sequence[Plan],
        *,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        syncs: Sequence[SyncSpec] = (),
        sandbox: bool = False,
    ) -> None:
        self.runtime = runtime
        self.router = Router(plans, runtime.env, runtime.registry.template_variables)
        self.syncs = SyncRouter(syncs, runtime.db.engine)
        self.sandbox = sandbox
        self.metrics = metrics or Metrics()
        self.deliveries = Deliveries(runtime.db.engine, clock)
        self.pauses = Pauses(runtime.db.engine)
        self.echoes = runtime.echoes
        # per app, what a run for one of its events adds to the environment (App.run_env)
        self._run_env = {
            name: app.run_env(runtime.env)
            for name, app in runtime.registry.apps.items()
            if app.run_env is not None
        }
        # per app, the fields that differ between the events of a burst (App.delivery_fields)
        self._delivery_fields = {
            name: app.delivery_fields for name, app in runtime.registry.apps.items()
        }

    def accept(
        self,
        source: str,
        delivery_id: str | None,
        events: Sequence[Event],
        only: Plan | None = None,
        *,
        sync_only: bool = False,
    ) -> Accepted:
        """Store a run for every (event, matching recipe) of one delivery; see the module.
        ``only``: the one recipe the events are for (a recipe's poll); ``sync_only``: the events
        are for the loaded syncs alone (a sync's poll)."""
        self.metrics.received.labels(source).inc(len(events))
        # what is dropped and the runs' ids, decided in one transaction; then the runs are
        # queued; then the delivery is marked seen (after its runs: a crash in between leaves it
        # to be sent again, and it makes the same runs)
        with self.runtime.db.engine.begin() as conn:
            if delivery_id and self.deliveries.seen(source, delivery_id, conn):
                self.metrics.refused.labels(source, "duplicate").inc(len(events))
                return Accepted(duplicate=True)
            accepted = Accepted()
            todo: list[tuple[Plan, Event, str]] = []
            synced: list[tuple[dict[str, Any], str]] = []
            for event in events:
                reason = self._drop(event, conn)
                if reason is None:
                    plans, filtered = ([], 0) if sync_only else self.router.match(event, only)
                    if filtered:
                        self._count(accepted, source, "filtered", filtered)
                    jobs = (
                        self.syncs.jobs(
                            event,
                            self.deliveries,
                            conn,
                            self._env(event),
                            sandbox=self.sandbox,
                        )
                        if self.syncs and only is None
                        else []
                    )
                    synced.extend(jobs)
                    if not plans and not filtered and not jobs:
                        reason = "no_recipe"
                    for plan in plans:
                        todo.append(
                            (plan, event, self.deliveries.run_id(event.key, plan.name, conn))
                        )
                if reason is not None:
                    self._count(accepted, source, reason)
            # the runs of paused recipes are held with their events, in this transaction
            paused = self.pauses.paused_among({p.name for p, _, _ in todo}, conn)
            for plan, event, run_id in todo:
                if plan.name in paused:
                    self._hold(plan, event, run_id, conn)
        for plan, event, run_id in todo:
            if plan.name in paused:
                accepted.runs.append(run_id)
                accepted.held.append(run_id)
            else:
                accepted.runs.append(self._queue(plan, event, run_id))
        for job, partition in synced:
            accepted.runs.append(self.runtime.enqueue_job(job, partition=partition))
            self.metrics.runs_started.labels(job["pair"]).inc()
        if delivery_id:
            self.deliveries.first(source, delivery_id)
        return accepted

    def enqueue(
        self, plan: Plan, event: Event, run_id: str | None = None, *, paused: bool = True
    ) -> str:
        """Queue ``plan``'s run for ``event``: as ``run_id``, else the event's own (its key),
        else a new one; or, while the recipe is paused, hold the event as that run (``paused``
        False: queue it all the same, as a person's "run now" does)."""
        return self.place(plan, event, run_id, paused=paused)[0]

    def place(
        self, plan: Plan, event: Event, run_id: str | None = None, *, paused: bool = True
    ) -> tuple[str, bool]:
        """:meth:`enqueue`, and whether the event was held (its recipe is paused)."""
        if run_id is None:
            run_id = run_id_for(event, plan.name) if event.key else new_run_id()
        if paused and self.pauses.paused_among([plan.name]):
            self._hold(plan, event, run_id)
            return run_id, True
        return self._queue(plan, event, run_id), False

    def _hold(self, plan: Plan, event: Event, run_id: str, conn: Any = None) -> None:
        self.pauses.hold(
            run_id, plan.name, event.app, event.type, event.key, event.subject, event.payload, conn
        )
        self.metrics.refused.labels(event.app, "held").inc()
        log.info("recipe %s is paused: run %s held until it is resumed", plan.name, run_id)

    def _queue(self, plan: Plan, event: Event, run_id: str) -> str:
        added = self.run_env_of(event)
        env = {**self.runtime.env, **added} if added else None
        self.runtime.enqueue(
            plan, event.payload, run_id=run_id, key=event.key, partition=event.subject, env=env
        )
        self.metrics.runs_started.labels(plan.name).inc()
        return run_id

    def release(self, limit: int = 100) -> list[str]:
        """Queue the events held by the recipes served here that are paused no more (each as the
        run it was given: queued once, whichever process releases it first); the run ids."""
        released = []
        for held in self.pauses.releasable(self.router.plans, limit):
            plan = self.router.plans[held.recipe]
            event = Event(held.app, held.type, held.payload, held.key, held.subject)
            released.append(self._queue(plan, event, held.run_id))
            self.pauses.released(held.run_id)
        if released:
            log.info("released %d held run(s) of resumed recipes", len(released))
        return released

    def run_now(self, name: str, payload: dict[str, Any]) -> str:
        """A person's "run now" of the recipe ``name`` with ``payload`` as its trigger event:
        queued at once, paused or not; the new run's id."""
        plan = self.router.plans.get(name)
        if plan is None:
            raise ConnectorError(f"no recipe named {name!r} is served")
        run_id = new_run_id()
        event = Event(plan.trigger_app, plan.trigger_event, payload, f"now:{run_id}")
        return self.enqueue(plan, event, run_id, paused=False)

    def _env(self, event: Event) -> dict[str, str]:
        """What a sync run for ``event`` sees of the environment (its location included)."""
        return dict(
            template_env(
                {**self.runtime.env, **self.run_env_of(event)},
                self.runtime.registry.template_variables,
            )
        )

    def run_env_of(self, event: Event) -> Mapping[str, str]:
        """What a run for ``event`` adds to the process's environment, as its app declares
        (:attr:`App.run_env <connector.apps.App.run_env>`): the tenant it acts on, with that
        tenant's connection and budget (a GoHighLevel event's location; for a Connecteam event,
        the location its stored connection syncs with)."""
        of = self._run_env.get(event.app)
        return of(event) if of is not None else {}

    def _drop(self, event: Event, conn: Any) -> str | None:
        if self.echoes.consume(event.subject, event.fields, conn):
            return "echo"
        if event.subject is not None:
            skip = self._delivery_fields.get(event.app, frozenset())
            news = {k: v for k, v in event.payload.items() if k not in skip}
            fingerprint = digest_of([event.type, news])
            subject = f"{event.type}:{event.subject}"
            if self.deliveries.repeats(subject, fingerprint, event.key, BURST_SECONDS, conn):
                return "burst"
        return None

    def _count(self, accepted: Accepted, source: str, reason: str, n: int = 1) -> None:
        accepted.dropped[reason] = accepted.dropped.get(reason, 0) + n
        self.metrics.refused.labels(source, reason).inc(n)
