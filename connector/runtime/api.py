"""The runtime as the rest of the program holds it: :class:`RunClient`, a typed interface.

``connector serve`` (intake, polls, schedules), the run history page and the commands hold the
runtime through this protocol, never through its class: what they may do is start, queue, find
and rerun runs, and read the stores. :class:`connector.runtime.durable.Runtime` implements it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import httpx

    from connector.apps.registry import Registry
    from connector.language.plan import Plan
    from connector.language.sync_spec import SyncSpec
    from connector.persistence.database import Database
    from connector.persistence.echoes import Echoes
    from connector.persistence.links import LinkStore
    from connector.persistence.runs import RunStore
    from connector.persistence.sync import SyncStore
    from connector.records import RunRecord
    from connector.sending.http import Redactor

__all__ = ["RunClient", "RunListener"]

# called with each run's record, its job and its duration (seconds) when it ends in this process
RunListener = Callable[["RunRecord", Mapping[str, Any], float], None]


class RunClient(Protocol):
    """Start, queue, find and rerun durable runs; the stores and parts they share."""

    @property
    def registry(self) -> Registry: ...
    @property
    def env(self) -> dict[str, str]: ...
    @property
    def db(self) -> Database: ...
    @property
    def store(self) -> RunStore: ...
    @property
    def links(self) -> LinkStore: ...
    @property
    def echoes(self) -> Echoes: ...
    @property
    def redactor(self) -> Redactor: ...
    @property
    def clients(self) -> Mapping[str, httpx.Client]: ...
    @property
    def on_finished(self) -> list[RunListener]: ...
    @property
    def sync(self) -> SyncStore: ...

    def launch(self) -> None:
        """Start durable execution in this process (done by the first call that needs it)."""

    def close(self, *, wait: bool = True, grace: float = 0.0) -> None:
        """Stop, waiting for the runs started here (``wait``) and letting queued ones go on
        for ``grace`` seconds."""

    def keep_recipe(self, plan: Plan, text: str) -> None:
        """Store a recipe's text, so that its runs finish as they began."""

    def start(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> Any:
        """Start a run in this process; returns its handle."""

    def run(
        self,
        plan: Plan,
        event: Any,
        *,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
    ) -> RunRecord:
        """Run to the end in this thread; returns the record."""

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
        """Put a run on the run queue (one at a time per ``partition``); returns its id."""

    def keep_sync(self, spec: SyncSpec) -> None:
        """Store a sync declaration's text, so that its runs finish as they began."""

    def enqueue_job(self, job: Mapping[str, Any], *, partition: str | None = None) -> str:
        """Put a prepared job (a sync run's) on the run queue; returns its run id."""

    def run_job(self, job: Mapping[str, Any]) -> RunRecord:
        """Run a prepared job (a sync run's) to its end in this thread; returns the record."""

    def queued(self) -> int:
        """Runs waiting on the run queue."""

    def unfinished(self) -> int:
        """Runs queued or going, in any process."""

    def rerun(self, old: RunRecord, step: str | None) -> RunRecord:
        """A retry (``step`` None) or a replay from ``step`` of ``old``, run to its end."""

    def resume(self) -> list[str]:
        """Finish interrupted runs; returns their ids."""

    def keep_lock(self) -> None:
        """Keep this executor known as alive on a shared database."""
