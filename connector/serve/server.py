"""One serving process: the durable runtime, the intake, the schedules, the HTTP server.

:class:`Service` is what ``connector serve`` runs, and what tests start in a thread. On start it
launches the runtime as a stable executor (``CONNECTOR_EXECUTOR_ID``, default
``connector-serve``), so DBOS finishes the runs an earlier process of the same executor left
unfinished; it then takes runs from the run queue, ``workers`` at a time. On SIGTERM or SIGINT
it stops taking events (uvicorn finishes the requests it has), lets running steps finish for
``grace`` seconds, and exits; a run still going is finished by the next start.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import uvicorn

from connector.apps.registry import Registry
from connector.errors import ConnectorError
from connector.language.plan import Plan
from connector.language.sync_spec import SyncSpec
from connector.persistence.connections import ConnectionStore
from connector.persistence.cursors import Cursors
from connector.persistence.executors import ExecutorLock
from connector.persistence.incidents import IncidentStore
from connector.persistence.runs import RunStore
from connector.persistence.sealing import key_warnings, load_key
from connector.records import RunRecord
from connector.runtime.recovery import Recovery
from connector.serve.alerts import Alerts
from connector.serve.app import ServeSettings, build_app, mark_ready
from connector.serve.guard import uvicorn_limits
from connector.serve.intake import Intake
from connector.serve.levels import Levels
from connector.serve.metrics import Metrics
from connector.serve.polls import poller_for
from connector.serve.reconciles import ReconcileSchedule
from connector.serve.schedules import Scheduler
from connector.serve.syncing import sync_pollers
from connector.serve.targets import alert_routes
from connector.ui import serving
from connector.ui.access import is_loopback

__all__ = ["DEFAULT_EXECUTOR", "Service", "bind"]

log = logging.getLogger("connector.serve")

DEFAULT_EXECUTOR = "connector-serve"
# the addresses of the reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed
FORWARDED_ENV = "CONNECTOR_FORWARDED_ALLOW_IPS"
TICK_SECONDS = 1.0  # how often schedules are looked at
PRUNE_SECONDS = 600.0  # how often expired echo expectations are dropped
RECOVER_SECONDS = 5.0  # how often the runs of dead processes are looked for (PostgreSQL)
ANNOUNCE_SECONDS = 2.0  # how often closed incidents are looked for (their "resolved" message)
LOGINS_SECONDS = 15.0  # how often the connections that need a new login are looked for


class Service:
    def __init__(
        self,
        registry: Registry,
        recipes: Sequence[tuple[Plan, str]],
        env: Mapping[str, str],
        *,
        workers: int = 64,
        grace: float = 10.0,
        sandbox: bool = False,
        clock: Callable[[], float] = time.time,
        transport: Any = None,
        syncs: Sequence[SyncSpec] = (),
    ) -> None:
        from connector.runtime.durable import Runtime, RuntimeOptions

        self.env = dict(env)
        self.grace = grace
        options = RuntimeOptions(
            executor_id=self.env.get("CONNECTOR_EXECUTOR_ID") or DEFAULT_EXECUTOR,
            workers=max(1, workers),
            sandbox=sandbox,
            transport=transport,
        )
        self.runtime = Runtime(registry, self.env, options)
        self.lock = ExecutorLock(self.runtime.db.engine, str(options.executor_id))
        self.only_server = OnlyServer(self.runtime.db.engine.url.database)
        self.recover_dead = Recovery(self.runtime)
        self.plans = [plan for plan, _ in recipes]
        self.metrics = Metrics()
        self.syncs = list(syncs)
        self.intake = Intake(
            self.runtime,
            self.plans,
            metrics=self.metrics,
            clock=clock,
            syncs=self.syncs,
            sandbox=sandbox,
        )
        self.settings = ServeSettings.from_env(registry.apps.values(), self.env, clock=clock)
        self.scheduler = Scheduler(
            self.plans, Cursors(self.runtime.db.engine), self.intake.enqueue, clock=time.time
        )
        cursors = Cursors(self.runtime.db.engine)
        self.reconciles = ReconcileSchedule(self.syncs, cursors, self._reconcile, clock=time.time)
        self.pollers = [
            poller_for(plan, self.runtime, self._accept_polled, cursors)
            for plan in self.plans
            if plan.poll is not None
        ]
        self.pollers += sync_pollers(self.syncs, self.runtime, self._accept_sync_polled, cursors)
        self.app = build_app(self.intake, self.settings)
        self._recipes = list(recipes)
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self.server: uvicorn.Server | None = None
        self.runtime.on_finished.append(self._finished)
        # CONNECTOR_ALERT_URLS and the recipes' own `alerts:`: None when there is no target
        self.alerts = Alerts.from_env(
            self.env,
            alert_routes(self.plans, self.syncs, self.env),
            store=IncidentStore(self.runtime.db.engine),
        )
        self._logins_seen = 0.0
        self.levels = Levels.from_env(self.env, self.runtime) if self.alerts is not None else None

    # lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Launch the runtime (finishing this executor's interrupted runs) and the schedules."""
        if self.runtime.db.engine.dialect.name != "postgresql":
            self.only_server.acquire()
            try:
                self.lock.acquire()  # on PostgreSQL the runtime takes it (and keeps it) itself
            except Exception:
                self.only_server.release()
                raise
        for plan, text in self._recipes:
            self.runtime.keep_recipe(plan, text)
        for spec in self.syncs:
            self.runtime.keep_sync(spec)
        self.runtime.launch()
        self.metrics.watch_queue(self._queue_depth)
        self._ticker = threading.Thread(target=self._tick, name="connector-schedules", daemon=True)
        self._ticker.start()
        mark_ready(self.app)

    def serve(self, sock: socket.socket, *, install_signal_handlers: bool = True) -> None:
        """Serve on ``sock`` until told to stop (SIGTERM, SIGINT, :meth:`stop`); then close."""
        forwarded = (self.env.get(FORWARDED_ENV) or "").strip()
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            log_config=None,  # its lines go through the process's handler (connector.serve.logs)
            access_log=False,  # a Connecteam webhook's path holds its secret
            lifespan="off",
            timeout_graceful_shutdown=int(self.grace) or None,
            # X-Forwarded-For and -Proto only from the proxies named (none unless configured)
            proxy_headers=bool(forwarded),
            forwarded_allow_ips=forwarded or None,
            **uvicorn_limits(),
        )
        self.server = uvicorn.Server(config)
        if self.alerts is not None and not self.alerts.base_url:  # the run pages' address
            host, port = sock.getsockname()[:2]
            host = f"[{host}]" if ":" in host else host
            self.alerts.base_url = f"http://{host}:{port}"
        host = str(sock.getsockname()[0])
        serving(self.app, host, self.server)  # the page's access rule
        self.warn_about_key(public=not is_loopback(host))
        previous = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            # uvicorn handles SIGTERM/SIGINT while serving, then raises the signal again to the
            # handler it found: these, so the process goes on to close (not killed, no
            # KeyboardInterrupt)
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: None)
        try:
            self.server.run(sockets=[sock])
        finally:
            self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def warn_about_key(self, *, public: bool) -> list[str]:
        """Log (and return) what is unsafe about where the sealing key is kept."""
        url = self.runtime.db.url
        try:
            _, source = load_key(self.env, url)
        except ConnectorError:
            return []  # said when something needs the key
        found = key_warnings(source, url, public=public)
        for warning in found:
            log.warning("%s", warning)
        return found

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True

    def close(self) -> None:
        mark_ready(self.app, False)
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self.reconciles.close(timeout=self.grace)
        self.runtime.close(wait=True, grace=self.grace)
        if self.alerts is not None:  # the digest of what was grouped, and what waits for a retry
            self.alerts.close(timeout=10.0)
        self.lock.release()
        self.only_server.release()

    # background ----------------------------------------------------------------------------------

    def _tick(self) -> None:
        last_prune = last_recovery = last_announce = 0.0
        while not self._stop.wait(TICK_SECONDS):
            try:
                for run_id in self.scheduler.tick():
                    self.metrics.received.labels("schedule").inc()
                    log.info("schedule fired run %s", run_id)
                self.intake.release()  # the events held by recipes resumed since
                self.reconciles.tick()
                now = time.time()
                for poller in self.pollers:
                    if poller.due(now):
                        try:
                            poller.poll()
                        except Exception as exc:  # the API is away: the cursor stays
                            log.warning("poll of %s: %s", poller.plan.name, exc)
                if time.monotonic() - last_recovery > RECOVER_SECONDS:
                    last_recovery = time.monotonic()
                    recovered = self.recover_dead()
                    if recovered:
                        log.info("recovered %d run(s) of a process that is gone", len(recovered))
                if time.monotonic() - last_prune > PRUNE_SECONDS:
                    self.runtime.echoes.prune()
                    last_prune = time.monotonic()
            except Exception as exc:  # the database is away: the next tick tries again
                log.warning("schedules: %s", type(exc).__name__)
            if self.alerts is not None and time.monotonic() - last_announce > ANNOUNCE_SECONDS:
                last_announce = time.monotonic()
                self._watch(self.alerts)

    def _watch(self, alerts: Alerts) -> None:
        """Announce the incidents closed since (once each), measure the levels, look at the
        connections that need a new login and the conflicts that wait for a person."""
        try:
            alerts.announce()
            if self.levels is not None:
                self.levels.check(alerts)
            if time.monotonic() - self._logins_seen > LOGINS_SECONDS:
                self._logins_seen = time.monotonic()
                store = ConnectionStore(self.runtime.db.engine, None)  # plain facts only
                needing = {c.id: (c.app, c.needs_login) for c in store.find() if c.needs_login}
                alerts.logins(needing)
                # the conflicts left for a person by any process (a sync run, a reconcile)
                for conflict in self.runtime.sync.conflicts(status="open", limit=200):
                    alerts.conflict(conflict.to_json(), conflict.run_id)
        except Exception as exc:  # the database is away: the next tick tries again
            log.warning("alerts: %s", type(exc).__name__)

    def _reconcile(self, spec: SyncSpec, stop: Callable[[], bool]) -> Any:
        from connector.runtime.reconciling import reconcile

        return reconcile(self.runtime, spec, stop=stop)

    def _accept_polled(self, source: str, events: list[Any], plan: Plan) -> list[str]:
        return self.intake.accept(source, None, events, only=plan).runs

    def _accept_sync_polled(self, source: str, events: list[Any], plan: Any) -> list[str]:
        return self.intake.accept(source, None, events, sync_only=True).runs

    def _queue_depth(self) -> int:
        try:
            return int(self.runtime.queued())
        except Exception:
            return -1

    def keep_history(self, history: RunStore) -> None:
        """Copy every run into ``history`` as it ends (and the recipes it ran): the run history
        under CONNECTOR_HOME, where `connector runs` and a page served from it find the runs of
        `serve --sandbox`, whose own database is a scratch one (the runs stay marked sandbox)."""
        for plan, text in self._recipes:
            history.put_recipe(plan.recipe_hash, plan.name, plan.path, text)

        def copy(record: RunRecord, job: Mapping[str, Any], seconds: float) -> None:
            try:
                history.copy_from(self.runtime.store, record.id)
            except Exception as exc:  # the history is a copy: a run never fails for it
                log.warning("run %s not copied into the run history: %s", record.id, exc)

        self.runtime.on_finished.append(copy)

    def _alert(self, record: RunRecord, job: Mapping[str, Any]) -> None:
        """Queue the alerts a finished run calls for (sent off this thread, never waited for)."""
        alerts = self.alerts
        if alerts is None:
            return
        alerts.run_finished(record)
        if job.get("kind") == "sync":  # the conflicts this run left for a person
            for conflict in self.runtime.sync.conflicts(status="open", limit=50):
                if conflict.run_id == record.id:
                    alerts.conflict(conflict.to_json(), record.id)

    def _finished(self, record: RunRecord, job: Mapping[str, Any], seconds: float) -> None:
        self.metrics.runs.labels(record.recipe, record.status).inc()
        attempts = sum(_attempts(step) for step in record.steps)
        self.metrics.step_attempts.labels(record.recipe).inc(attempts)
        for step in record.steps:
            for wait in _waits(step):
                self.metrics.waits.labels(str(wait.get("reason", "wait"))).inc()
                self.metrics.wait_seconds.inc(float(wait.get("seconds") or 0))
        failed = record.status == "failed"
        log.log(
            logging.WARNING if failed else logging.INFO,
            "run %s recipe=%s event=%s status=%s duration=%.2fs%s",
            record.id,
            record.recipe,
            str(job.get("key") or "-")[:80],
            record.status,
            seconds,
            f" error={(record.error or '')[:300]}" if failed else "",
            extra={"run_id": record.id},
        )
        try:
            self._alert(record, job)
        except Exception as exc:  # an alert never fails a run, nor its listeners
            log.warning("alerts for run %s: %s", record.id, type(exc).__name__)


class OnlyServer:
    """One serving process per SQLite file, whatever its executor id: SQLite takes one writer at
    a time, and its processes cannot tell each other's runs from a dead process's. A file lock
    beside the database, held while serving, gone with the process however it ends."""

    def __init__(self, database: str | None) -> None:
        self.database = database or "connector"
        self._fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        path = f"{self.database}.serving.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConnectorError(
                f"another `connector serve` is already serving the SQLite database "
                f"{self.database}: SQLite serves one process at a time (a second would contend "
                "for its one writer and could not tell the first one's runs from a dead "
                "process's). Stop the other process, or run several processes on PostgreSQL: "
                "set CONNECTOR_DATABASE_URL=postgresql://... for every one of them, each with "
                "its own CONNECTOR_EXECUTOR_ID"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


def _attempts(step: Any) -> int:
    items = getattr(step, "items", None) or []
    return int(getattr(step, "attempts", 0) or 0) + sum(_attempts(i) for i in items)


def _waits(step: Any) -> list[dict[str, Any]]:
    out = [w for w in (getattr(step, "waits", None) or []) if isinstance(w, dict)]
    for item in getattr(step, "items", None) or []:
        out.extend(_waits(item))
    return out


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (0: a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
