"""Running plans durably on DBOS Transact: one generic workflow runs any plan.

A run is a DBOS workflow whose id is the run id. Its input is small and JSON: the run id, the hash
of the recipe it started with (the text is in the ``recipes`` table), the trigger event, the
template environment (``GHL_LOCATION_ID``, ``CONNECTOR_VAR_*``; never a secret) and the run it
retries or replays. Every unit the engine journals (each request attempt, each action, each wait)
is a DBOS step, so a run that is resumed after a crash replays what it did and goes on from there.

Everything is in the one database: DBOS's system tables beside ours. DBOS serializes with JSON
here (:class:`JSONSerializer`), so checkpoints are readable, and steps never raise: an error
raised inside a unit is recorded as ``{"raised": ...}`` and raised again outside, as a
:class:`~connector.errors.StepError` with the same message.

DBOS is imported only here (and by the recovery of :mod:`connector.persistence.executors`, in serving
processes), and this module only by commands that run something: ``validate``,
``catalog``, ``--dry-run`` and ``--help`` never pay for it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from dbos import DBOS, DBOSClient, DBOSConfig, SetEnqueueOptions, SetWorkflowID
from dbos._serialization import Serializer

from connector.apps.registry import Registry
from connector.errors import ConnectorError, StepError, StoreError
from connector.language.plan import Plan
from connector.language.template_env import template_env
from connector.persistence.budgets import Budget, limit_overrides
from connector.persistence.database import (
    Database,
    make_system_engine,
    open_database,
    pool_size_for,
    retrying,
)
from connector.persistence.echoes import Echoes
from connector.persistence.effects import EffectJournal
from connector.persistence.links import LinkStore
from connector.persistence.runs import RunStore
from connector.records import RunRecord, new_run_id
from connector.runtime.engine import Engine
from connector.runtime.prepare import prepare_text
from connector.sending.caller import Caller, fingerprint
from connector.sending.http import Redactor, make_clients
from connector.sending.retry import RetryPolicy
from connector.sending.throttle import Throttle

__all__ = ["DurableJournal", "Runtime", "RuntimeOptions"]

APPLICATION_VERSION = "connector-runs-1"
# how often a resumed or forked run's result is looked for (DBOS's default, 1 s, made every
# `connector runs resume|retry|replay` wait up to a second after the run had ended)
RESULT_POLL_SECONDS = 0.1
# How often DBOS's notification listener wakes (on SQLite it polls, with time.sleep). DBOS.destroy()
# joins it, so this is how long closing a runtime may wait for it: at DBOS's default (1 s) every
# one-shot command ended up to a second late. Nothing here waits on notifications.
LISTENER_POLL_SECONDS = 0.01
# The queue `connector serve` puts the runs of received events on; every serving process takes
# runs from it (a one-shot command listens to no queue, so it never takes a served run).
RUN_QUEUE = "connector-runs"
# How often a serving process looks for queued runs (DBOS's default, 1 s, would be the latency
# from a webhook's answer to its run's start).
QUEUE_POLL_SECONDS = 0.02
T = TypeVar("T")


class JSONSerializer(Serializer):
    """Checkpoints as JSON: what a person reads, and nothing executable."""

    def serialize(self, data: Any) -> str:
        if isinstance(data, BaseException):
            return json.dumps({"__error__": type(data).__name__, "message": str(data)})
        return json.dumps(data, default=str, separators=(",", ":"))

    def deserialize(cls, serialized_data: str) -> Any:
        data = json.loads(serialized_data)
        if isinstance(data, dict) and "__error__" in data:
            return ConnectorError(f"{data['__error__']}: {data.get('message', '')}")
        return data

    def name(self) -> str:
        return "connector_json"


class DurableJournal:
    """Each unit a DBOS step; each wait a durable DBOS sleep, or ``sleep`` when one is given
    (:class:`RuntimeOptions`)."""

    def __init__(self, sleep: Callable[[float], None] | None = None) -> None:
        self._sleep = sleep

    def step(self, name: str, func: Callable[[], T]) -> T:
        def unit() -> Any:
            try:
                # a unit is done again after a crash anyway: so it is while the database is gone
                # (PostgreSQL restarting), and the run waits instead of failing
                return {"ok": retrying(func)}
            except ConnectorError as exc:
                return {"raised": type(exc).__name__, "message": _message(exc)}
            except Exception as exc:  # an action's own bug: recorded, the run decides
                return {"raised": type(exc).__name__, "message": f"{type(exc).__name__}: {exc}"}

        outcome = DBOS.run_step({"name": name}, unit)
        if "raised" in outcome:
            raise _Replayed(outcome["message"])
        return outcome["ok"]

    def sleep(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        DBOS.sleep(seconds)


class _Replayed(ConnectorError):
    """An error a journaled unit raised (now, or in the run's first pass)."""


def _message(exc: ConnectorError) -> str:
    text = str(exc)
    step_id = getattr(exc, "step_id", None)
    return text.removeprefix(f"step {step_id!r}: ") if step_id else text


@dataclass
class RuntimeOptions:
    """What a process's runtime is made of; tests inject the transport and the clock."""

    transport: httpx.BaseTransport | None = None
    executor_id: str | None = None
    rng: random.Random = field(default_factory=random.Random)
    sandbox: bool = False
    budgets: bool = True
    # `connector serve`: take runs from the run queue, at most this many at once in this process
    # (0: this process only runs what it starts itself, as `connector run` does)
    workers: int = 0
    # how a run waits (retry back-off, Retry-After, busy polls, a lookup's delay): None is a durable
    # DBOS sleep; `connector test` moves its fixed clock instead (connector.clock.advance)
    sleep: Callable[[float], None] | None = None


_current: Runtime | None = None
_launch_lock = threading.Lock()


@DBOS.workflow(name="connector.run")
def run_workflow(job: dict[str, Any]) -> dict[str, Any]:
    """The one workflow: run the plan ``job`` names for its event (see the module docstring)."""
    runtime = _current
    if runtime is None:  # pragma: no cover - DBOS only runs workflows after launch()
        raise ConnectorError("the runtime is not started")
    this = DBOS.workflow_id
    if this and this != job["run_id"]:  # a fork (retry, replay): a new run of the old one's job
        job = {**job, "run_id": this, "parent": job["run_id"]}
    return runtime.execute(job).to_json()


class Runtime:
    """One process's durable runtime: the database, DBOS, the engine's parts, and the run path.

    ``connector run``, ``connector runs resume|retry|replay`` and ``connector serve`` all go
    through :meth:`start` / :meth:`run` and :meth:`resume`.
    """

    def __init__(
        self, registry: Registry, env: Mapping[str, str], options: RuntimeOptions | None = None
    ) -> None:
        self.registry = registry
        self.env = dict(env)
        self.options = options or RuntimeOptions()
        self.db: Database = open_database(self.env, workers=self.options.workers)
        self.store = RunStore(self.db.engine)
        self.links = LinkStore(self.db.engine)
        self.effects = EffectJournal(self.db.engine)
        self.budget = Budget(self.db.engine)
        self.echoes = Echoes(self.db.engine)
        self.journal = DurableJournal(self.options.sleep)
        secrets = [
            self.env[name]
            for app in registry.apps.values()
            for name in app.secret_env
            if self.env.get(name)
        ]
        self.redactor = Redactor(secrets)
        self.credentials = {
            app.name: fingerprint(",".join(self.env.get(n, "") for n in app.secret_env))
            for app in registry.apps.values()
        }
        self.clients = make_clients(
            registry.apps.values(), self.env, transport=self.options.transport
        )
        for client in self.clients.values():  # tokens of stored connections are masked too
            watch = getattr(client.auth, "watch", None)
            if callable(watch):
                watch(self.redactor.learn)
        self._plans: dict[str, Plan] = {}
        self._launched = False
        self._system_engine: Any = None  # DBOS's engine on SQLite (connector.persistence.database)
        self._lock: Any = None  # this executor's liveness lock on PostgreSQL
        self._running: set[concurrent.futures.Future[Any]] = set()  # runs start() began here
        self._running_lock = threading.Lock()
        self.policy = policy_from_env(self.env)
        try:
            self.limits = limit_overrides(self.env.get("CONNECTOR_RATE_LIMITS", ""))
        except ValueError as exc:
            raise ConnectorError(str(exc)) from None
        self.left_to_servers = 0  # runs `resume` left to a live serving process
        # called with each run's record, its job and its duration (seconds) when it ends here
        self.on_finished: list[Callable[[RunRecord, Mapping[str, Any], float], None]] = []

    # lifecycle -----------------------------------------------------------------------------------

    def launch(self) -> None:
        """Start DBOS on the one database. Recovers this executor's interrupted runs."""
        global _current
        with _launch_lock:
            if self._launched:
                return
            _current = self
            logging.getLogger("dbos").setLevel(logging.WARNING)
            url = self.db.url.replace("+psycopg", "")
            config: DBOSConfig = {
                "name": "connector",
                "system_database_url": url,
                "application_version": APPLICATION_VERSION,
                "executor_id": self.options.executor_id or f"connector-{uuid.uuid4().hex[:12]}",
                "serializer": JSONSerializer(),
                "log_level": "WARNING",
                "notification_listener_polling_interval_sec": LISTENER_POLL_SECONDS,
                "run_migrations": True,
                # DBOS's own pool on PostgreSQL: each running run checkpoints through it
                "sys_db_pool_size": 2 * pool_size_for(self.options.workers),
            }
            if self.db.engine.dialect.name == "postgresql":
                # every process on a shared database says it is alive, so that the serving
                # processes recover only the runs of executors that are gone (connector.persistence.executors);
                # a second process under the same executor id is refused here
                from connector.persistence.executors import ExecutorLock

                lock = ExecutorLock(self.db.engine, str(config["executor_id"]))
                lock.acquire()
                self._lock = lock
            system_engine = make_system_engine(url)
            if system_engine is not None:
                config["system_database_engine"] = system_engine
            try:
                DBOS(config=config)
                DBOS.listen_queues([RUN_QUEUE] if self.options.workers else [])
                DBOS.launch()
                if self.options.workers:
                    # partitioned by the record an event is about: one run at a time per record,
                    # across every process, oldest first (updates to one contact in order)
                    DBOS.register_queue(
                        RUN_QUEUE,
                        worker_concurrency=self.options.workers,
                        partition_concurrency=1,
                        polling_interval_sec=QUEUE_POLL_SECONDS,
                    )
            except Exception as exc:
                if system_engine is not None:
                    system_engine.dispose()
                if self._lock is not None:
                    self._lock.release()
                    self._lock = None
                raise StoreError(f"cannot start the durable runtime: {exc}") from None
            self._system_engine = system_engine
            self._launched = True

    def close(self, *, wait: bool = True, grace: float = 0.0) -> None:
        """Stop DBOS and close the clients, first waiting (``wait``) for every run :meth:`start`
        began in this process to end, so each is finished and recorded when this returns.

        ``wait=False`` (leaving on Ctrl-C) leaves a run still going as DBOS leaves it: pending,
        finished by ``connector runs resume``. ``grace``: how long DBOS lets the runs it took
        from the run queue go on (`connector serve`); those still going are pending, and the
        next start of the same executor finishes them.
        """
        global _current
        if wait:
            self.wait()
        for client in self.clients.values():
            client.close()
        if self._launched:
            # Nothing of ours is running now, so DBOS is not asked to wait for workflows (it would
            # poll for them in whole seconds); it stops its threads, each woken by an event but
            # the notification listener (LISTENER_POLL_SECONDS).
            DBOS.destroy(workflow_completion_timeout_sec=int(grace))
            self._launched = False
            if self._system_engine is not None:  # DBOS disposes only of engines it made
                self._system_engine.dispose()
                self._system_engine = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        if _current is self:
            _current = None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(wait=exc_type is None or issubclass(exc_type, Exception))

    def wait(self) -> None:
        """Block until every run :meth:`start` began in this process has ended."""
        with self._running_lock:
            running = list(self._running)
        concurrent.futures.wait(running)

    def _track(self, handle: Any) -> None:
        future = getattr(handle, "future", None)  # None: the run executes elsewhere
        if not isinstance(future, concurrent.futures.Future):
            return
        with self._running_lock:
            self._running.add(future)
        future.add_done_callback(self._untrack)

    def _untrack(self, future: concurrent.futures.Future[Any]) -> None:
        with self._running_lock:
            self._running.discard(future)

    # the run path --------------------------------------------------------------------------------

    def remember(self, plan: Plan, text: str) -> None:
        """Keep the recipe's text by its hash, so its runs can finish as they began."""
        self.store.put_recipe(plan.recipe_hash, plan.name, plan.path, text)
        self._plans[plan.recipe_hash] = plan

    def start(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> Any:
        """Start a durable run of ``plan`` (already :meth:`remember`-ed); returns its handle.

        A ``run_id`` that exists already gives that run's handle: an event delivered twice with
        the same id runs once.
        """
        self.launch()
        job = self._job(plan, event, run_id or new_run_id(), env, parent)
        with SetWorkflowID(job["run_id"]):
            handle = DBOS.start_workflow(run_workflow, job)
        self._track(handle)
        return handle

    def _job(
        self,
        plan: Plan,
        event: Any,
        run_id: str,
        env: Mapping[str, str] | None,
        parent: str | None,
    ) -> dict[str, Any]:
        """The input of a run's workflow (see the module docstring)."""
        return {
            "run_id": run_id,
            "recipe_hash": plan.recipe_hash,
            "event": event,
            "env": dict(template_env(self.env if env is None else env)),
            "parent": parent,
            "sandbox": self.options.sandbox,
        }

    def enqueue(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str,
        key: str = "",
        partition: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> str:
        """Put a run of ``plan`` for ``event`` on the run queue, durably, and return its id; a
        serving process takes it from there. An id already queued (an event delivered twice)
        stays the one run it is. Runs of one ``partition`` (the record the event is about) run
        one at a time, in the order they were queued; without one, the run is its own."""
        self.launch()
        job = self._job(plan, event, run_id, env, None)
        job["key"] = key  # the event's own id (connector.serve.events), for the run's log line
        with SetWorkflowID(run_id), SetEnqueueOptions(queue_partition_key=partition or run_id):
            DBOS.enqueue_workflow(RUN_QUEUE, run_workflow, job)
        return run_id

    def keep_lock(self) -> None:
        """Take this executor's liveness lock again if its database session was lost (the
        database restarted): others would soon take this process for dead."""
        if self._lock is None:
            return
        with contextlib.suppress(Exception):
            if self._lock.alive():
                return
            self._lock.release()
            self._lock.acquire()

    def queued(self) -> int:
        """How many runs wait on the run queue (not yet taken by a process)."""
        self.launch()
        queued = DBOS.list_queued_workflows(
            queue_name=RUN_QUEUE, status="ENQUEUED", load_input=False, load_output=False
        )
        return len(queued)

    def unfinished(self) -> int:
        """How many runs are queued or going (in any process), by DBOS's record."""
        self.launch()
        going = DBOS.list_workflows(
            status=["ENQUEUED", "PENDING"], load_input=False, load_output=False
        )
        return len(going)

    def run(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> RunRecord:
        """Run ``plan`` durably to its end, in this thread, and return its record.

        The workflow is called directly (DBOS runs it here, under its id), not handed to DBOS's
        executor threads: a one-shot run waits for it anyway, and the hand-over cost more than
        a step's checkpoint. A run id that exists already is that run: its recorded result.
        """
        self.launch()
        job = self._job(plan, event, run_id or new_run_id(), env, parent)
        with SetWorkflowID(job["run_id"]):
            run_workflow(job)
        record = self.store.get(job["run_id"])
        assert record is not None
        return record

    def execute(self, job: Mapping[str, Any]) -> RunRecord:
        """Inside the workflow: plan (from the stored recipe) and run the job."""
        started = time.perf_counter()
        plan = self._plan(job["recipe_hash"])
        caller = Caller(
            journal=self.journal,
            policy=self.policy,
            effects=self.effects,
            # the budget is waited for inside the attempt's unit (a DBOS step, where no durable
            # sleep is allowed): a plain sleep, redone with the unit if the process dies
            throttle=(
                Throttle(self.budget, time.sleep, self.limits) if self.options.budgets else None
            ),
            rng=self.options.rng,
            credentials=self.credentials,
            redactor=self.redactor,
            echoes=self.echoes,
        )
        engine = Engine(
            registry=self.registry,
            clients=self.clients,
            env=self.env,
            caller=caller,
            recorder=self.store,
            redactor=self.redactor,
            links=self.links,
            services={"links": self.links},
        )
        record = engine.run(
            plan,
            job["event"],
            run_id=job["run_id"],
            env=job.get("env") or {},
            parent=job.get("parent"),
            sandbox=bool(job.get("sandbox")),
            claims_of=self.store.claims_of(job["run_id"]) if job.get("parent") else None,
        )
        retrying(lambda: self.effects.release_run(record.id))
        for listener in self.on_finished:
            with contextlib.suppress(
                Exception
            ):  # a listener (metrics, a log line) never fails a run
                listener(record, job, time.perf_counter() - started)
        return record

    def _plan(self, recipe_hash: str) -> Plan:
        plan = self._plans.get(recipe_hash)
        if plan is not None:
            return plan
        stored = self.store.get_recipe(recipe_hash)
        if stored is None:
            raise ConnectorError(f"the recipe {recipe_hash[:12]} of this run is not stored")
        path, text = stored
        prepared = prepare_text(path, text, self.registry)
        if prepared.plan is None:
            problems = "; ".join(str(p) for p in prepared.problems[:3])
            raise StepError("plan", f"the recipe this run started with no longer plans: {problems}")
        self._plans[recipe_hash] = prepared.plan
        return prepared.plan

    # recovery ------------------------------------------------------------------------------------

    def again(self, old: RunRecord, step: str | None) -> RunRecord:
        """A new run of ``old``'s job from ``step`` (None: the step that failed; "": the first).

        The units before that step are copied from the old run's journal (DBOS fork), so they
        are not done again.
        """
        self.launch()
        retry = step is None
        if step is None:
            failed = [s.id for s in old.steps if s.status == "failed"]
            step = failed[0] if failed else ""
        elif step and step not in {s.id for s in old.steps}:
            known = ", ".join(s.id for s in old.steps)
            raise ConnectorError(f"run {old.id} has no step {step!r} (its steps: {known})")
        start = 1
        if step:
            units = DBOS.list_workflow_steps(old.id, load_output=False)
            marks = (f"{step}[", f"{step}#", f"{step}:", f"{step}@")  # @pN: a page
            found = [
                u["function_id"]
                for u in units
                if u["function_name"] == step or str(u["function_name"]).startswith(marks)
            ]
            start = found[0] if found else (units[-1]["function_id"] + 1 if units else 1)
        new_id = new_run_id()  # a run id like any other, not DBOS's UUID
        # a retry goes on with the write claims of the run it retries (what that run wrote is not
        # written again); a replay does its writes again (those with once.key still happen once)
        claims_of = (self.store.claims_of(old.id) or old.id) if retry else new_id
        self.store.put_fork(new_id, "retry" if retry else "replay", claims_of)
        with SetWorkflowID(new_id):
            handle = DBOS.fork_workflow(old.id, start)
        handle.get_result(polling_interval_sec=RESULT_POLL_SECONDS)
        record = self.store.get(handle.get_workflow_id())
        assert record is not None
        return record

    def forget(self, run_ids: Sequence[str]) -> None:
        """Delete DBOS's checkpoints of runs pruned from the run store (they hold the events and
        the response bodies) and the runs' own effect claims."""
        if not run_ids:
            return
        self.effects.forget_runs(run_ids)
        url = self.db.url.replace("+psycopg", "")
        engine = make_system_engine(url)
        client = DBOSClient(system_database_url=url, system_database_engine=engine)
        try:
            ids = list(run_ids)
            for start in range(0, len(ids), 500):
                client.delete_workflows(ids[start : start + 500])
        except Exception as exc:
            raise StoreError(f"cannot delete the pruned runs' checkpoints: {exc}") from None
        finally:
            client.destroy()
            if engine is not None:
                engine.dispose()

    def settle(self, run_id: str, written: bool) -> list[str]:
        """Record what a person found about the writes of unknown outcome ``run_id`` (or a retry
        of it) left (see :meth:`EffectJournal.settle`); ``runs retry`` then finishes the run.
        Returns the keys."""
        return self.effects.settle(list(self.store.lineage(run_id)), written)

    def resume(self) -> list[str]:
        """Finish every interrupted run (status ``running`` in the store); returns their ids.

        A run that a live `connector serve` process began is left to it (see
        :mod:`connector.persistence.executors`): it is still being run, or will be on that server's next
        start; :attr:`left_to_servers` counts them.
        """
        from connector.persistence.executors import held

        self.launch()
        ids = list(self.store.ids(status="running"))
        owners: dict[str, str] = {}
        if ids:
            for status in DBOS.list_workflows(
                workflow_ids=ids, load_input=False, load_output=False
            ):
                owners[status.workflow_id] = str(status.executor_id or "")
        live: dict[str, bool] = {}
        handles = []
        self.left_to_servers = 0
        for run_id in ids:
            owner = owners.get(run_id, "")
            if owner and owner != self.options.executor_id:
                if owner not in live:
                    live[owner] = held(self.db.engine, owner)
                if live[owner]:
                    self.left_to_servers += 1
                    continue
            try:
                handles.append(DBOS.resume_workflow(run_id))
            except Exception:
                continue
        for handle in handles:
            with contextlib.suppress(Exception):  # its record says how it ended
                handle.get_result(polling_interval_sec=RESULT_POLL_SECONDS)
        return [h.get_workflow_id() for h in handles]


def policy_from_env(env: Mapping[str, str]) -> RetryPolicy:
    """The default retry policy, adjusted by ``CONNECTOR_RETRY_ATTEMPTS``,
    ``CONNECTOR_RETRY_BASE_DELAY``, ``CONNECTOR_RETRY_MAX_DELAY`` and ``CONNECTOR_RETRY_MAX_WAIT``."""
    given: dict[str, Any] = {}
    for key in ("attempts", "base_delay", "max_delay", "max_wait"):
        text = env.get(f"CONNECTOR_RETRY_{key.upper()}")
        if text:
            try:
                given[key] = int(text) if key == "attempts" else float(text)
            except ValueError:
                raise ConnectorError(f"CONNECTOR_RETRY_{key.upper()} must be a number") from None
    try:
        return RetryPolicy.from_mapping(given)
    except ValueError as exc:
        raise ConnectorError(str(exc)) from None
