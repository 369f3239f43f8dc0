"""A person's decision of a conflict that waits (rule ``manual``), carried out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from connector.apps.registry import Registry
from connector.errors import ConnectorError
from connector.language.sync_spec import SyncSpec
from connector.language.template_env import template_env
from connector.persistence.runs import RunStore
from connector.persistence.sync import SyncStore
from connector.records import RunRecord, new_run_id
from connector.sync.engine import sync_job

__all__ = ["Runs", "resolve_conflict"]


class Runs(Protocol):
    """What resolving needs of the runtime (:class:`connector.runtime.api.RunClient` has it)."""

    @property
    def env(self) -> dict[str, str]: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def store(self) -> RunStore: ...
    @property
    def sync(self) -> SyncStore: ...

    def run_job(self, job: Mapping[str, Any]) -> RunRecord: ...


def resolve_conflict(
    runs: Runs,
    conflict_id: int,
    winner: str,
    load: Callable[[str, str], SyncSpec | None] | None = None,
) -> RunRecord:
    """Mark conflict ``conflict_id`` resolved for ``winner`` and run the pair's sync from the
    winner's side now: the pair's last synced value of the field becomes the loser's, so the
    winner's value is the change that is written over it. Returns that run's record."""
    store = runs.sync
    conflict = store.conflict(conflict_id)
    if conflict is None:
        raise ConnectorError(f"no conflict #{conflict_id}")
    if conflict.status != "open":
        raise ConnectorError(f"conflict #{conflict_id} is {conflict.status}, not waiting")
    origin = runs.store.get(conflict.run_id)
    stored = runs.store.get_recipe(origin.recipe_hash) if origin is not None else None
    if stored is None:
        raise ConnectorError(
            f"the sync declaration conflict #{conflict_id} came from is not stored"
        )
    path, text = stored
    spec = load(text, path) if load is not None else None
    if spec is None:
        raise ConnectorError(f"the sync declaration {path} no longer loads")
    state = store.state(conflict.kind, "ghl", conflict.ghl_id)
    if state is None:
        raise ConnectorError(f"the pair of conflict #{conflict_id} is no longer kept")
    loser_value = conflict.connecteam if winner == "ghl" else conflict.ghl
    state.base[conflict.field] = loser_value
    state.superseded = {}
    with store.engine.begin() as conn:
        store.put_in(conn, state)
        store.resolve_in(conn, conflict_id, winner)
    pair = spec.pair(conflict.kind)
    record_id = conflict.ghl_id if winner == "ghl" else conflict.connecteam_id
    job = sync_job(
        spec,
        pair,
        winner,
        record_id,
        "resolve",
        None,
        run_id=new_run_id(),
        env=template_env(runs.env, runs.registry.template_variables),
    )
    return runs.run_job(job)
