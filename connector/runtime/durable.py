"""One process's durable runtime: its parts built once, a worker and a client.

- :mod:`connector.runtime.parts`: the database and its stores, the HTTP clients, the redactor,
  the retry policy and the rate limits (:func:`~connector.runtime.parts.build_parts`);
- :mod:`connector.runtime.worker`: DBOS's lifecycle, executing runs, finishing interrupted ones;
- :mod:`connector.runtime.client`: starting, queueing, finding and rerunning runs.

:class:`Runtime` puts the three together for a command or a server; what other packages hold is
its :class:`~connector.runtime.api.RunClient` face.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connector.apps.registry import Registry
from connector.language.plan import Plan
from connector.language.sync_spec import SyncSpec
from connector.records import RunRecord
from connector.runtime.api import RunListener
from connector.runtime.client import Client
from connector.runtime.parts import RuntimeOptions, build_parts
from connector.runtime.worker import Worker

__all__ = ["Runtime", "RuntimeOptions"]


class Runtime:
    """The parts of one process (:attr:`parts`), the :attr:`worker` that executes runs and the
    :attr:`client` that starts and finds them. ``connector run``, ``connector runs`` and
    ``connector serve`` each make one; closing it stops both."""

    def __init__(
        self, registry: Registry, env: Mapping[str, str], options: RuntimeOptions | None = None
    ) -> None:
        parts = self.parts = build_parts(registry, env, options)
        self.worker = Worker(parts)
        self.client = Client(parts, self.worker)
        self.registry = parts.registry
        self.env = parts.env
        self.options = parts.options
        self.db = parts.db
        self.store = parts.store
        self.links = parts.links
        self.effects = parts.effects
        self.budget = parts.budget
        self.echoes = parts.echoes
        self.sync = parts.sync
        self.redactor = parts.redactor
        self.clients = parts.clients
        self.policy = parts.policy
        self.limits = parts.limits

    @property
    def on_finished(self) -> list[RunListener]:
        return self.worker.on_finished

    @property
    def left_to_servers(self) -> int:
        """Runs the last :meth:`resume` left to a live serving process."""
        return self.worker.left_to_servers

    # lifecycle (the worker's)

    def launch(self) -> None:
        self.worker.launch()

    def close(self, *, wait: bool = True, grace: float = 0.0) -> None:
        """See :meth:`Worker.close`; then the HTTP clients are closed."""
        self.worker.close(wait=wait, grace=grace)
        self.parts.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self.close(wait=exc_type is None or issubclass(exc_type, Exception))

    def wait(self) -> None:
        self.worker.wait()

    def execute(self, job: Mapping[str, Any]) -> RunRecord:
        return self.worker.execute(job)

    def resume(self) -> list[str]:
        return self.worker.resume()

    def keep_lock(self) -> None:
        self.worker.keep_lock()

    # runs (the client's)

    def keep_recipe(self, plan: Plan, text: str) -> None:
        self.client.keep_recipe(plan, text)

    def start(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> Any:
        return self.client.start(plan, event, run_id=run_id, env=env, parent=parent)

    def run(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> RunRecord:
        return self.client.run(plan, event, run_id=run_id, env=env, parent=parent)

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
        return self.client.enqueue(
            plan, event, run_id=run_id, key=key, partition=partition, env=env
        )

    def keep_sync(self, spec: SyncSpec) -> None:
        self.client.keep_sync(spec)

    def enqueue_job(self, job: Mapping[str, Any], *, partition: str | None = None) -> str:
        return self.client.enqueue_job(job, partition=partition)

    def run_job(self, job: Mapping[str, Any]) -> RunRecord:
        return self.client.run_job(job)

    def queued(self) -> int:
        return self.client.queued()

    def unfinished(self) -> int:
        return self.client.unfinished()

    def rerun(self, old: RunRecord, step: str | None) -> RunRecord:
        return self.client.rerun(old, step)

    def delete_checkpoints(self, run_ids: Sequence[str]) -> None:
        self.client.delete_checkpoints(run_ids)

    def settle_writes(self, run_id: str, written: bool) -> list[str]:
        return self.client.settle_writes(run_id, written)
