"""The worker side of the durable runtime: DBOS's lifecycle, and executing runs.

A run is a DBOS workflow whose id is the run id (:func:`run_workflow`, the one workflow). Its
input is small and JSON: the run id, the hash of the recipe it started with (the text is in the
``recipes`` table), the trigger event, the template environment (``GHL_LOCATION_ID``,
``CONNECTOR_VAR_*``; never a secret) and the run it retries or replays. Every unit the engine
checkpoints (each request attempt, each action, each wait) is a DBOS step
(:class:`DurableCheckpoints`), so a run that is resumed after a crash replays what it did and goes
on from there.

Everything is in the one database: DBOS's system tables beside ours. DBOS serializes with JSON
here (:class:`JSONSerializer`), so checkpoints are readable, and steps never raise: an error
raised inside a unit is recorded as ``{"raised": ...}`` and raised again outside, as a
:class:`~connector.errors.StepError` with the same message.

DBOS is imported only by the runtime, and the runtime only by commands that run something:
``validate``, ``catalog``, ``--dry-run`` and ``--help`` never pay for it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from dbos import DBOS, DBOSConfig, SetWorkflowID
from dbos._serialization import Serializer

from connector.errors import ConnectorError, StepError, StoreError
from connector.language.plan import Plan
from connector.language.sync_spec import SyncSpec, load_sync_text
from connector.persistence.database import make_system_engine, pool_size_for, retrying
from connector.persistence.executors import ExecutorLock, held
from connector.persistence.sealing import Vault
from connector.records import RunRecord
from connector.runtime.parts import Parts
from connector.runtime.prepare import prepare_text

__all__ = ["RUN_QUEUE", "DurableCheckpoints", "JSONSerializer", "Worker", "run_workflow"]

# the units a run checkpoints, by name and order: a run is resumed by the version that began it
# (2: a write's claim and its done are in its attempt's unit, no longer units of their own)
APPLICATION_VERSION = "connector-runs-2"
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
# How often a serving process looks for queued runs while runs are queued or going (DBOS's
# default, 1 s, would be the latency from a webhook's answer to its run's start); a look takes
# every run it has room for at once, and costs about 3 ms of CPU: at 20 ms, a quarter of what a
# busy server spent...
QUEUE_POLL_SECONDS = 0.1
# ... and when none has been for IDLE_AFTER_SECONDS: an idle server sleeps (at 20 ms, polling
# cost a seventh of a core; a look at the partitioned queue costs DBOS about 5 ms of CPU, twice
# a look at a plain one: at 1 s, DBOS's own default, an idle server used 2.1 % of a core, at
# 2 s 1.7 %, DBOS alone with a plain queue 1.3 %: bench/idle.py). DBOS's queue thread cannot be
# woken, so the first run after a quiet spell starts within this; the interval is the queue's
# (in the database), so the process that queues a run makes every serving process poll often
# again (Pace).
IDLE_POLL_SECONDS = 2.0
IDLE_AFTER_SECONDS = 2.0
PACE_SECONDS = 0.5  # how often the pace is looked at
# A serving process's notification listener (on SQLite it polls): nothing of ours waits on
# notifications, and at LISTENER_POLL_SECONDS it woke a hundred times a second for nothing.
SERVE_LISTENER_POLL_SECONDS = 0.25
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


class DurableCheckpoints:
    """Each unit a DBOS step; each wait a durable DBOS sleep, or ``sleep`` when one is given
    (:class:`~connector.runtime.parts.RuntimeOptions`)."""

    def __init__(
        self, sleep: Callable[[float], None] | None = None, vault: Vault | None = None
    ) -> None:
        self._sleep = sleep
        # a unit's output with a secret in it is checkpointed sealed (as the run record shows it,
        # the real value sealed beside), and opened again for the run when it is replayed
        self._vault = vault

    def step(self, name: str, func: Callable[[], T]) -> T:
        vault = self._vault

        def unit() -> Any:
            try:
                # a unit is done again after a crash anyway: so it is while the database is gone
                # (PostgreSQL restarting), and the run waits instead of failing
                value = retrying(func)
                return {"ok": vault.seal(value) if vault is not None else value}
            except ConnectorError as exc:
                return {"raised": type(exc).__name__, "message": _shown(vault, _message(exc))}
            except Exception as exc:  # an action's own bug: recorded, the run decides
                message = f"{type(exc).__name__}: {exc}"
                return {"raised": type(exc).__name__, "message": _shown(vault, message)}

        outcome = DBOS.run_step({"name": name}, unit)
        if "raised" in outcome:
            raise _Replayed(outcome["message"])
        return vault.open(outcome["ok"]) if vault is not None else outcome["ok"]

    def sleep(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        DBOS.sleep(seconds)


class _Replayed(ConnectorError):
    """An error a checkpointed unit raised (now, or in the run's first pass)."""


def _shown(vault: Vault | None, message: str) -> str:
    return str(vault.redact(message)) if vault is not None else message


def _message(exc: ConnectorError) -> str:
    text = str(exc)
    step_id = getattr(exc, "step_id", None)
    return text.removeprefix(f"step {step_id!r}: ") if step_id else text


# DBOS calls workflows as plain functions: the worker of this process, while it is launched
_current: Worker | None = None
_launch_lock = threading.Lock()


@DBOS.workflow(name="connector.run")
def run_workflow(job: dict[str, Any]) -> dict[str, Any]:
    """The one workflow: run the plan ``job`` names for its event (see the module docstring)."""
    worker = _current
    if worker is None:  # pragma: no cover - DBOS only runs workflows after launch()
        raise ConnectorError("the runtime is not started")
    this = DBOS.workflow_id
    if this and this != job["run_id"]:  # a fork (retry, replay): a new run of the old one's job
        job = {**job, "run_id": this, "parent": job["run_id"]}
    return worker.execute(job).to_json()


class Pace:
    """How often this process's DBOS polls the run queue: every :data:`QUEUE_POLL_SECONDS` while
    runs are queued or going anywhere, every :data:`IDLE_POLL_SECONDS` once none has been for
    :data:`IDLE_AFTER_SECONDS`.

    The interval is the queue's, in the database, read by every serving process's queue thread
    before each poll: :meth:`wake` (a run was queued here) and a run executing here set it short
    at once; a thread of its own sets it long when this process has been quiet and nothing is
    queued or going on the queue. While quiet it reads nothing from the database.
    """

    def __init__(self, queue: Any, worker: Worker) -> None:
        self.queue = queue
        self.worker = worker
        self.fast = True  # the interval this process last set (or registered the queue with)
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="connector-pace", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def wake(self) -> None:
        """A run was queued: poll often, from the queue thread's next look on."""
        self._woken.set()
        if not self.fast:
            self._set(fast=True)

    def _set(self, *, fast: bool) -> None:
        with self._lock, contextlib.suppress(Exception):  # the next look tries again
            self.queue.set_polling_interval_sec(QUEUE_POLL_SECONDS if fast else IDLE_POLL_SECONDS)
            self.fast = fast

    def _run(self) -> None:
        quiet_since = time.monotonic()
        while not self._stopping.wait(PACE_SECONDS):
            now = time.monotonic()
            busy = self.worker.active > 0 or self._woken.is_set()
            self._woken.clear()
            if busy:
                quiet_since = now
                # another process may have set it long in the meantime
                if not self.fast or self._interval() > QUEUE_POLL_SECONDS:
                    self._set(fast=True)
            elif self.fast and now - quiet_since >= IDLE_AFTER_SECONDS and self._queue_empty():
                self._set(fast=False)

    def _interval(self) -> float:
        try:
            return float(self.queue.polling_interval_sec)
        except Exception:
            return QUEUE_POLL_SECONDS

    def _queue_empty(self) -> bool:
        try:
            going = DBOS.list_workflows(
                status=["ENQUEUED", "PENDING"],
                queue_name=RUN_QUEUE,
                limit=1,
                load_input=False,
                load_output=False,
            )
        except Exception:
            return False
        return not going


class Worker:
    """Executes runs: starts and stops DBOS on the one database, runs a job's plan inside its
    workflow, and finishes interrupted runs."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.checkpoints = DurableCheckpoints(parts.options.sleep, parts.vault)
        self.plans: dict[str, Plan] = {}  # by recipe hash: the plans this process has made
        self.names: dict[str, str] = {}  # recipe name -> hash of the kept one (error routes)
        self.syncs: dict[str, SyncSpec] = {}  # by text hash: the sync declarations it has loaded
        self.launched = False
        self._system_engine: Any = None  # DBOS's engine on SQLite (connector.persistence.database)
        self._lock: ExecutorLock | None = None  # this executor's liveness lock on PostgreSQL
        self._running: set[concurrent.futures.Future[Any]] = set()  # runs started here
        self._running_lock = threading.Lock()
        self.left_to_servers = 0  # runs `resume` left to a live serving process
        self.active = 0  # runs executing in this process now
        self.pace: Pace | None = None  # how often the run queue is polled (serving processes)
        # called with each run's record, its job and its duration (seconds) when it ends here
        self.on_finished: list[Callable[[RunRecord, Mapping[str, Any], float], None]] = []

    # lifecycle -----------------------------------------------------------------------------------

    def launch(self) -> None:
        """Start DBOS on the one database. Recovers this executor's interrupted runs."""
        global _current
        options = self.parts.options
        with _launch_lock:
            if self.launched:
                return
            _current = self
            logging.getLogger("dbos").setLevel(logging.WARNING)
            url = self.parts.db.url.replace("+psycopg", "")
            config: DBOSConfig = {
                "name": "connector",
                "system_database_url": url,
                "application_version": APPLICATION_VERSION,
                "executor_id": options.executor_id or f"connector-{uuid.uuid4().hex[:12]}",
                "serializer": JSONSerializer(),
                "log_level": "WARNING",
                "notification_listener_polling_interval_sec": (
                    SERVE_LISTENER_POLL_SECONDS if options.workers else LISTENER_POLL_SECONDS
                ),
                # a thread per run going: DBOS's default (the CPUs + 4) would run six of a
                # serving process's runs at once however many its queue hands it
                "max_executor_threads": options.workers + 8 if options.workers else None,
                "run_migrations": True,
                # DBOS's own pool on PostgreSQL: each running run checkpoints through it
                "sys_db_pool_size": 2 * pool_size_for(options.workers),
            }
            if self.parts.db.engine.dialect.name == "postgresql":
                # every process on a shared database says it is alive, so that the serving
                # processes recover only the runs of executors that are gone
                # (connector.persistence.executors); a second process under the same executor id
                # is refused here
                lock = ExecutorLock(self.parts.db.engine, str(config["executor_id"]))
                lock.acquire()
                self._lock = lock
            system_engine = make_system_engine(url, pool_size=2 * pool_size_for(options.workers))
            if system_engine is not None:
                config["system_database_engine"] = system_engine
            try:
                DBOS(config=config)
                DBOS.listen_queues([RUN_QUEUE] if options.workers else [])
                DBOS.launch()
                if options.workers:
                    # partitioned by the record an event is about: one run at a time per record,
                    # across every process, oldest first (updates to one contact in order)
                    queue = DBOS.register_queue(
                        RUN_QUEUE,
                        worker_concurrency=options.workers,
                        partition_concurrency=1,
                        polling_interval_sec=QUEUE_POLL_SECONDS,
                    )
                    self.pace = Pace(queue, self)
                    self.pace.start()
            except Exception as exc:
                if system_engine is not None:
                    system_engine.dispose()
                if self._lock is not None:
                    self._lock.release()
                    self._lock = None
                raise StoreError(f"cannot start the durable runtime: {exc}") from None
            self._system_engine = system_engine
            self.launched = True

    def close(self, *, wait: bool = True, grace: float = 0.0) -> None:
        """Stop DBOS, first waiting (``wait``) for every run started in this process to end, so
        each is finished and recorded when this returns.

        ``wait=False`` (leaving on Ctrl-C) leaves a run still going as DBOS leaves it: pending,
        finished by ``connector runs resume``. ``grace``: how long DBOS lets the runs it took
        from the run queue go on (`connector serve`); those still going are pending, and the
        next start of the same executor finishes them.
        """
        global _current
        if wait:
            self.wait()
        with contextlib.suppress(Exception):  # what runs still going recorded (resumed anyway)
            self.parts.recorder.flush_all()
        if self.pace is not None:
            self.pace.stop()
            self.pace = None
        if self.launched:
            # Nothing of ours is running now, so DBOS is not asked to wait for workflows (it would
            # poll for them in whole seconds); it stops its threads, each woken by an event but
            # the notification listener (LISTENER_POLL_SECONDS).
            DBOS.destroy(workflow_completion_timeout_sec=int(grace))
            self.launched = False
            if self._system_engine is not None:  # DBOS disposes only of engines it made
                self._system_engine.dispose()
                self._system_engine = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None
        if _current is self:
            _current = None

    def wait(self) -> None:
        """Block until every run started in this process has ended."""
        with self._running_lock:
            running = list(self._running)
        concurrent.futures.wait(running)

    def track(self, handle: Any) -> None:
        """Wait for the run of ``handle`` in :meth:`wait` (when it executes in this process)."""
        future = getattr(handle, "future", None)  # None: the run executes elsewhere
        if not isinstance(future, concurrent.futures.Future):
            return
        with self._running_lock:
            self._running.add(future)
        future.add_done_callback(self._untrack)

    def _untrack(self, future: concurrent.futures.Future[Any]) -> None:
        with self._running_lock:
            self._running.discard(future)

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

    # executing -----------------------------------------------------------------------------------

    def execute(self, job: Mapping[str, Any]) -> RunRecord:
        """Inside the workflow: run the job, a recipe's (planned from its stored text) or a
        sync's (:func:`connector.sync.engine.sync_job`)."""
        with self._running_lock:
            self.active += 1
        try:
            return self._execute(job)
        finally:
            with self._running_lock:
                self.active -= 1

    def _execute(self, job: Mapping[str, Any]) -> RunRecord:
        started = time.perf_counter()
        if job.get("kind") == "sync":
            spec = self._sync_spec(job["recipe_hash"])
            sync = self.parts.sync_run(spec, job, self.checkpoints)
            record = sync.execute()
            caller = sync.caller
        else:
            plan = self._plan(job["recipe_hash"])
            engine = self.parts.engine(self.checkpoints)
            record = engine.run(
                plan,
                job["event"],
                run_id=job["run_id"],
                env=job.get("env") or {},
                parent=job.get("parent"),
                sandbox=bool(job.get("sandbox")),
                claims_of=self.parts.store.claims_of(job["run_id"]) if job.get("parent") else None,
            )
            caller = engine.caller
        if record.status == "failed" and job.get("on_failure") and not job.get("route_of"):
            self._route(record, job)
        if caller.unsettled or job.get("parent"):  # claims that may be left to release
            retrying(lambda: self.parts.effects.release_run(record.id))
        for listener in self.on_finished:
            with contextlib.suppress(
                Exception
            ):  # a listener (metrics, a log line) never fails a run
                listener(record, job, time.perf_counter() - started)
        return record

    def _route(self, record: RunRecord, job: Mapping[str, Any]) -> None:
        """Run the error route (``on_failure``) of a run that failed for good, with the failure
        as its event: a child workflow whose id is made from the failed run's, so it runs once,
        and a resumed run finds it done instead of starting it again."""
        failed = next((s for s in record.steps if s.status == "failed"), None)
        route_id = "run_" + hashlib.sha256(f"{record.id}\x00on_failure".encode()).hexdigest()[:20]
        event = {
            "run_id": record.id,
            "recipe": record.recipe,
            "error": record.error,
            "step": failed.id if failed is not None else None,
            "status_code": failed.status_code if failed is not None else None,
            "event": record.trigger,
        }
        route = {
            "run_id": route_id,
            "recipe_hash": job["on_failure"],
            "event": event,
            "env": dict(job.get("env") or {}),
            "parent": None,
            "sandbox": bool(job.get("sandbox")),
            "route_of": record.id,
        }
        with SetWorkflowID(route_id):
            run_workflow(route)

    def _plan(self, recipe_hash: str) -> Plan:
        plan = self.plans.get(recipe_hash)
        if plan is not None:
            return plan
        stored = self.parts.store.get_recipe(recipe_hash)
        if stored is None:
            raise ConnectorError(f"the recipe {recipe_hash[:12]} of this run is not stored")
        path, text = stored
        prepared = prepare_text(path, text, self.parts.registry)
        if prepared.plan is None:
            problems = "; ".join(str(p) for p in prepared.problems[:3])
            raise StepError("plan", f"the recipe this run started with no longer plans: {problems}")
        self.plans[recipe_hash] = prepared.plan
        return prepared.plan

    def _sync_spec(self, text_hash: str) -> SyncSpec:
        spec = self.syncs.get(text_hash)
        if spec is not None:
            return spec
        stored = self.parts.store.get_recipe(text_hash)
        if stored is None:
            raise ConnectorError(f"the sync declaration {text_hash[:12]} of this run is not stored")
        path, text = stored
        spec, problems = load_sync_text(text, path, self.parts.registry)
        if spec is None:
            shown = "; ".join(str(p) for p in problems[:3])
            raise StepError(
                "sync", f"the sync declaration this run started with no longer loads: {shown}"
            )
        self.syncs[text_hash] = spec
        return spec

    def resume(self) -> list[str]:
        """Finish every interrupted run (status ``running`` in the store); returns their ids.

        A run that a live `connector serve` process began is left to it (see
        :mod:`connector.persistence.executors`): it is still being run, or will be on that
        server's next start; :attr:`left_to_servers` counts them.
        """
        self.launch()
        store, engine = self.parts.store, self.parts.db.engine
        ids = list(store.ids(status="running"))
        owners: dict[str, str] = {}
        if ids:
            for status in DBOS.list_workflows(
                workflow_ids=ids, load_input=False, load_output=False
            ):
                owners[status.workflow_id] = str(status.executor_id or "")
        # a run whose record had not reached the store yet (connector.persistence.recorder)
        for status in DBOS.list_workflows(
            status="PENDING", name="connector.run", load_input=False, load_output=False
        ):
            if status.workflow_id not in owners:
                ids.append(status.workflow_id)
                owners[status.workflow_id] = str(status.executor_id or "")
        live: dict[str, bool] = {}
        handles = []
        self.left_to_servers = 0
        for run_id in ids:
            owner = owners.get(run_id, "")
            if owner and owner != self.parts.options.executor_id:
                if owner not in live:
                    live[owner] = held(engine, owner)
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
