"""Reconciles on a schedule: ``reconcile: {every: 6h}`` in a sync declaration served by
`connector serve`.

A sync's reconcile is due when its last completed one (``reconcile:<sync>:last`` in the
``cursors`` table, written by `connector sync reconcile` and by this schedule alike) ended
``every`` ago or more: the schedule is durable, as the other scheduled work of a server is, and a
server that was down past a due time starts the reconcile when it comes back. A reconcile
stopped half-way (the server stopped or died) goes on from the page where it stopped.

Nothing is scheduled for a sync no reconcile was ever completed for: the first reconcile of an
install is the initial sync, which a person runs by hand (`connector sync reconcile PATH`, seeing
its dry run first); the log says so once.

One reconcile at a time per sync and process, on a thread of its own; on PostgreSQL the
servers of a deployment take turns by a lease in the ``cursors`` table.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from connector.language.sync_spec import SyncSpec
from connector.persistence.cursors import Cursors
from connector.sync.reconcile import Tally, last_summary

__all__ = ["ReconcileSchedule"]

log = logging.getLogger("connector.serve")
LEASE_SECONDS = 600.0  # a server reconciling renews its lease this often, at least


class ReconcileSchedule:
    """The scheduled reconciles of ``syncs``; :meth:`tick` starts the due ones. ``run`` makes
    one reconcile (``run(spec, stop) -> Tally``)."""

    def __init__(
        self,
        syncs: Sequence[SyncSpec],
        cursors: Cursors,
        run: Callable[[SyncSpec, Callable[[], bool]], Tally],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.syncs = [s for s in syncs if s.reconcile_every]
        self.cursors = cursors
        self.run = run
        self.clock = clock
        self.owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._refused: set[str] = set()
        self._lock = threading.Lock()

    def tick(self) -> list[str]:
        """Start the reconcile of every sync that is due and not going; their names."""
        started = []
        with self._lock:
            for spec in self.syncs:
                if self._start(spec):
                    started.append(spec.name)
        return started

    def _start(self, spec: SyncSpec) -> bool:
        going = self._threads.get(spec.name)
        if going is not None and going.is_alive():
            return False
        if not self.due(spec) or not self._lease(spec.name):
            return False
        thread = threading.Thread(
            target=self._reconcile, args=(spec,), name=f"reconcile-{spec.name}", daemon=True
        )
        self._threads[spec.name] = thread
        thread.start()
        return True

    def due(self, spec: SyncSpec) -> bool:
        """Whether ``spec``'s reconcile is due now (logs once why it is never scheduled)."""
        assert spec.reconcile_every is not None
        last = last_summary(self.cursors.get, spec.name)
        if last is None:
            if spec.name not in self._refused:
                self._refused.add(spec.name)
                log.warning(
                    "reconcile of sync %s is not scheduled: no reconcile of it was ever"
                    " completed; the first is the initial sync, run it by hand:"
                    " connector sync reconcile %s --dry-run, then without --dry-run",
                    spec.name,
                    spec.path,
                )
            return False
        self._refused.discard(spec.name)
        return self.clock() - float(last.get("at") or 0) >= spec.reconcile_every

    def _lease(self, name: str) -> bool:
        key = f"reconcile:{name}:lease"
        held = self.cursors.get(key)
        now = self.clock()
        if held:
            try:
                data: Any = json.loads(held)
                if data["owner"] != self.owner and float(data["until"]) > now:
                    return False
            except (ValueError, KeyError, TypeError):
                pass
        self.cursors.put(key, json.dumps({"owner": self.owner, "until": now + LEASE_SECONDS}))
        return True

    def _reconcile(self, spec: SyncSpec) -> None:
        started = time.monotonic()
        log.info("reconcile of sync %s started (every %s s)", spec.name, spec.reconcile_every)
        renewed = [time.monotonic()]

        def stop() -> bool:
            if time.monotonic() - renewed[0] > LEASE_SECONDS / 2:
                renewed[0] = time.monotonic()
                self._lease(spec.name)
            return self._stop.is_set()

        try:
            tally = self.run(spec, stop)
        except Exception as exc:  # the apps or the database are away: the next tick tries again
            log.warning("reconcile of sync %s stopped: %s", spec.name, exc)
            return
        finally:
            self.cursors.put(f"reconcile:{spec.name}:lease", json.dumps({"until": 0}))
        if self._stop.is_set():
            log.info(
                "reconcile of sync %s stopped with the server; it goes on next time", spec.name
            )
            return
        log.info(
            "reconcile of sync %s done in %.0f s: %d records, %d paired, %d created, %d updated,"
            " %d conflicts, %d ambiguous, %d unmatched, %d failed",
            spec.name,
            time.monotonic() - started,
            tally.records,
            tally.paired,
            sum(tally.created.values()),
            sum(tally.updated.values()),
            tally.conflicts,
            tally.ambiguous,
            tally.unmatched,
            tally.failed,
        )

    def close(self, timeout: float = 10.0) -> None:
        """Stop the reconciles going (at the next record) and wait for them."""
        self._stop.set()
        for thread in self._threads.values():
            thread.join(timeout=timeout)
