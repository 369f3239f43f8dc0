"""A reconcile (:mod:`connector.sync.reconcile`) over a process's runtime: its pages read through
the runtime's caller (rate budgets, retries), the pairs and positions in its database, each
record's sync run made in this process. `connector sync reconcile` and the schedule of
`connector serve` both run it so.

A record's sync run is not a durable workflow: a reconcile stopped half-way is not resumed run
by run but walked again from the page where it stopped, and a record whose counterpart was made
before the stop finds it by the match keys (the journal of writes keeps a write from being sent
twice meanwhile).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.language.sync_spec import SyncSpec
from connector.language.template_env import template_env
from connector.persistence.budgets import app_limits
from connector.persistence.cursors import Cursors
from connector.records import RunRecord
from connector.runtime.durable import Runtime
from connector.sending.checkpoints import NoCheckpoints
from connector.sync.engine import fetch
from connector.sync.progress import Progress
from connector.sync.reconcile import Reconcile, Tally

__all__ = ["reconcile"]


class _Walker:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.parts = runtime.parts
        self.cursors = Cursors(runtime.db.engine)
        self.reads = self.parts.caller(NoCheckpoints())

    def read(self, request: tuple[str, dict[str, Any]], unit: str) -> Any:
        parts = self.parts
        return fetch(parts.registry, parts.clients, self.reads, parts.env, request, unit)

    def bases(self, kind: str, side: str, record_ids: list[str]) -> Any:
        return self.runtime.sync.bases(kind, side, record_ids)

    def cursor(self, name: str) -> str | None:
        return self.cursors.get(name)

    def keep_cursor(self, name: str, value: str) -> None:
        self.cursors.put(name, value)


def reconcile(
    runtime: Runtime,
    spec: SyncSpec,
    *,
    dry_run: bool = False,
    keep_changes: bool = False,
    progress: Callable[[Progress, Tally], None] | None = None,
    restart: bool = False,
    stop: Callable[[], bool] | None = None,
    env: Mapping[str, str] | None = None,
) -> Tally:
    """Reconcile ``spec`` over ``runtime`` (see the module and :class:`Reconcile`)."""
    parts = runtime.parts
    runtime.keep_sync(spec)

    def run(job: Any, dry: bool, planned: set[tuple[str, str, str]]) -> RunRecord:
        one = parts.sync_run(spec, job, NoCheckpoints(), dry_run=dry)
        if dry:
            one.also_paired = lambda kind, side, rid: (kind, side, rid) in planned
        return one.execute()

    limits = {
        app.name: [
            (limit.capacity, limit.window)
            for limit in app_limits(app.rate_limits, parts.limits.get(app.name))
        ]
        for app in parts.registry.apps.values()
    }
    walk = Reconcile(
        spec,
        _Walker(runtime),
        run,
        template_env(env if env is not None else parts.env, parts.registry.template_variables),
        dry_run=dry_run,
        keep_changes=keep_changes,
        progress=progress,
        stop=stop,
        limits=limits,
    )
    return walk(restart=restart)
