"""Recovering the runs of serving processes that are gone (PostgreSQL, several processes on one
database): what :mod:`connector.persistence.executors`' liveness locks say, acted on through
DBOS."""

from __future__ import annotations

import time

from connector.persistence.executors import RECOVERY_GRACE_SECONDS, held
from connector.runtime.durable import Runtime

__all__ = ["Recovery"]


class Recovery:
    """Recover the runs of executors that are gone: PENDING runs whose executor has held no
    liveness lock for ``RECOVERY_GRACE_SECONDS`` (its process died, on any machine). Only on
    PostgreSQL, where several processes share the work. The recovery is DBOS's own (what its
    admin API's ``/dbos-workflow-recovery`` does): it puts each run back on its queue only while
    it is still PENDING under the dead executor, so two processes recovering it make one run."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._unlocked_since: dict[str, float] = {}  # executors seen without their lock

    def __call__(self) -> list[str]:
        from dbos import DBOS

        runtime = self.runtime
        engine = runtime.db.engine
        if engine.dialect.name != "postgresql":
            return []
        runtime.launch()
        runtime.keep_lock()
        pending = DBOS.list_workflows(status="PENDING", load_input=False, load_output=False)
        mine = runtime.options.executor_id
        owners = {str(w.executor_id) for w in pending if w.executor_id and w.executor_id != mine}
        now = time.monotonic()
        recovered: list[str] = []
        for executor in sorted(owners):
            if held(engine, executor):
                self._unlocked_since.pop(executor, None)
                continue
            # gone for RECOVERY_GRACE_SECONDS, not just between two of its reconnects
            since = self._unlocked_since.setdefault(executor, now)
            if now - since >= RECOVERY_GRACE_SECONDS:
                handles = DBOS._recover_pending_workflows([executor])
                recovered += [h.get_workflow_id() for h in handles]
                self._unlocked_since.pop(executor, None)
        for executor in set(self._unlocked_since) - owners:
            del self._unlocked_since[executor]
        return recovered
