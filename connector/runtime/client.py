"""The client side of the durable runtime: what starts, queues, finds and reruns runs.

``connector run``, ``connector runs``, ``connector serve`` (intake) and the run history page use
it through :class:`~connector.runtime.api.RunClient`; the runs themselves execute in a
:class:`~connector.runtime.worker.Worker`, in this process or in a serving one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dbos import DBOS, DBOSClient, SetEnqueueOptions, SetWorkflowID

from connector.errors import ConnectorError, StoreError
from connector.language.plan import Plan
from connector.language.sync_spec import SyncSpec
from connector.language.template_env import template_env
from connector.persistence.database import make_system_engine
from connector.persistence.runs import run_from_json
from connector.records import RunRecord, new_run_id
from connector.runtime.parts import Parts
from connector.runtime.worker import RESULT_POLL_SECONDS, RUN_QUEUE, Worker, run_workflow

__all__ = ["Client"]


class Client:
    """Starts runs (here or on the run queue), finds them, and makes new runs of old ones."""

    def __init__(self, parts: Parts, worker: Worker) -> None:
        self.parts = parts
        self.worker = worker

    def keep_recipe(self, plan: Plan, text: str) -> None:
        """Store the recipe's text by its hash, so its runs can finish as they began."""
        self.parts.store.put_recipe(plan.recipe_hash, plan.name, plan.path, text)
        self.worker.plans[plan.recipe_hash] = plan
        self.worker.names[plan.name] = plan.recipe_hash  # what `on_failure:` names find

    def start(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> Any:
        """Start a durable run of ``plan`` (its recipe already kept) in this process; returns
        its handle. A ``run_id`` that exists already gives that run's handle: an event delivered
        twice with the same id runs once."""
        self.worker.launch()
        job = self._job(plan, event, run_id or new_run_id(), env, parent)
        with SetWorkflowID(job["run_id"]):
            handle = DBOS.start_workflow(run_workflow, job)
        self.worker.track(handle)
        return handle

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
        The record is what the workflow returns, not read back from the store.
        """
        self.worker.launch()
        job = self._job(plan, event, run_id or new_run_id(), env, parent)
        with SetWorkflowID(job["run_id"]):
            result = run_workflow(job)
        return run_from_json(result, job["env"])

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
        self.worker.launch()
        job = self._job(plan, event, run_id, env, None)
        job["key"] = key  # the event's own id (connector.serve.events), for the run's log line
        with SetWorkflowID(run_id), SetEnqueueOptions(queue_partition_key=partition or run_id):
            DBOS.enqueue_workflow(RUN_QUEUE, run_workflow, job)
        if self.worker.pace is not None:
            self.worker.pace.wake()
        return run_id

    def keep_sync(self, spec: SyncSpec) -> None:
        """Store a sync declaration's text by its hash, so its runs finish as they began."""
        self.parts.store.put_recipe(spec.text_hash, spec.name, spec.path, spec.text)
        self.worker.syncs[spec.text_hash] = spec

    def enqueue_job(self, job: Mapping[str, Any], *, partition: str | None = None) -> str:
        """Put a prepared job (a sync run's, :func:`connector.sync.engine.sync_job`) on the run
        queue; runs of one ``partition`` run one at a time, in order. Returns its run id."""
        self.worker.launch()
        run_id = str(job["run_id"])
        with SetWorkflowID(run_id), SetEnqueueOptions(queue_partition_key=partition or run_id):
            DBOS.enqueue_workflow(RUN_QUEUE, run_workflow, dict(job))
        if self.worker.pace is not None:
            self.worker.pace.wake()
        return run_id

    def run_job(self, job: Mapping[str, Any]) -> RunRecord:
        """Run a prepared job to its end in this thread; returns its record."""
        self.worker.launch()
        with SetWorkflowID(str(job["run_id"])):
            result = run_workflow(dict(job))
        return run_from_json(result, dict(job.get("env") or {}))

    def _job(
        self,
        plan: Plan,
        event: Any,
        run_id: str,
        env: Mapping[str, str] | None,
        parent: str | None,
    ) -> dict[str, Any]:
        """The input of a run's workflow (see :mod:`connector.runtime.worker`)."""
        return {
            "run_id": run_id,
            "recipe_hash": plan.recipe_hash,
            "event": event,
            "env": dict(
                template_env(
                    self.parts.env if env is None else env,
                    self.parts.registry.template_variables,
                )
            ),
            "parent": parent,
            "sandbox": self.parts.options.sandbox,
            # the error route's recipe (by hash, so any process finishing the run finds it)
            "on_failure": self.worker.names.get(plan.on_failure) if plan.on_failure else None,
        }

    def queued(self) -> int:
        """How many runs wait on the run queue (not yet taken by a process)."""
        self.worker.launch()
        queued = DBOS.list_queued_workflows(
            queue_name=RUN_QUEUE, status="ENQUEUED", load_input=False, load_output=False
        )
        return len(queued)

    def unfinished(self) -> int:
        """How many runs are queued or going (in any process), by DBOS's record."""
        self.worker.launch()
        going = DBOS.list_workflows(
            status=["ENQUEUED", "PENDING"], load_input=False, load_output=False
        )
        return len(going)

    def rerun(self, old: RunRecord, step: str | None) -> RunRecord:
        """A new run of ``old``'s job from ``step`` (None: the step that failed, a retry; "":
        the first, a replay from the start); returns its record when it has ended.

        The units before that step are copied from the old run's checkpoints (DBOS fork), so
        they are not done again.
        """
        self.worker.launch()
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
        store = self.parts.store
        # a retry goes on with the write claims of the run it retries (what that run wrote is not
        # written again); a replay does its writes again (those with once.key still happen once)
        claims_of = (store.claims_of(old.id) or old.id) if retry else new_id
        store.put_fork(new_id, "retry" if retry else "replay", claims_of)
        with SetWorkflowID(new_id):
            handle = DBOS.fork_workflow(old.id, start)
        handle.get_result(polling_interval_sec=RESULT_POLL_SECONDS)
        record = store.get(handle.get_workflow_id())
        assert record is not None
        return record

    def delete_checkpoints(self, run_ids: Sequence[str]) -> None:
        """Delete DBOS's checkpoints of runs pruned from the run store (they hold the events and
        the response bodies) and the runs' own claims in the journal of writes."""
        if not run_ids:
            return
        self.parts.effects.forget_runs(run_ids)
        url = self.parts.db.url.replace("+psycopg", "")
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

    def settle_writes(self, run_id: str, written: bool) -> list[str]:
        """Record what a person found about the writes of unknown outcome ``run_id`` (or a retry
        of it) left (see :meth:`~connector.persistence.effects.EffectJournal.settle`);
        ``runs retry`` then finishes the run. Returns the keys."""
        return self.parts.effects.settle(list(self.parts.store.lineage(run_id)), written)
