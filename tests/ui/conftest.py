"""The run history page on a test client: a runtime on a fresh database (not launched: the pages
only read), the page mounted on an app of its own, and a helper that records runs as the engine
does (through the run store's recorder methods), so what the page finds is what a run leaves."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from connector.apps.plugins import default_registry
from connector.persistence.database import close_all
from connector.records import RunRecord, StepRecord
from connector.runtime.durable import Runtime
from connector.ui import UI, mount

with warnings.catch_warnings():  # Starlette would rather have httpx2; httpx is what we have
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SECRET_TOKEN = "pit-7d0c2b55-secret-token-e8f1"


@dataclass
class Page:
    ui: UI
    runtime: Runtime
    client: TestClient

    def csrf(self, path: str = "/") -> str:
        """The CSRF token of the forms on ``path`` (and the cookie it belongs to, kept by the
        client)."""
        import re

        html = self.client.get(path).text
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, "no CSRF token on the page"
        return found.group(1)


_seq = itertools.count()


def record_run(
    runtime: Runtime,
    *,
    recipe: str = "sync-contact-to-connecteam",
    status: str = "succeeded",
    trigger: Any = None,
    steps: list[StepRecord] | None = None,
    started_at: str | None = None,
    trigger_app: str = "ghl",
    trigger_event: str = "ContactUpdate",
    parent: str | None = None,
    error: str | None = None,
) -> RunRecord:
    """A run recorded as the engine records one: started, each step, finished."""
    n = next(_seq)
    run = RunRecord(
        id=f"run_{n:06d}{'x' * 10}",
        recipe=recipe,
        recipe_hash="ab" * 32,
        recipe_path=f"recipes/{recipe}.yaml",
        trigger_app=trigger_app,
        trigger_event=trigger_event,
        trigger=trigger if trigger is not None else {"contactId": f"c{n}"},
        started_at=started_at or f"2026-07-01T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
        parent=parent,
    )
    store = runtime.store
    store.run_started(run)
    for step in steps or []:
        run.steps.append(step)
        store.step_finished(run, step)
    run.status = status  # type: ignore[assignment]
    run.error = error
    run.finished_at = run.started_at
    run.duration_ms = 12.5
    store.run_finished(run)
    return run


@pytest.fixture()
def page(tmp_path: Path) -> Iterator[Page]:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    env = {"CONNECTOR_HOME": str(tmp_path / "home"), "GHL_TOKEN": SECRET_TOKEN}
    runtime = Runtime(registry, env)
    app = Starlette()
    ui = mount(app, runtime, {})
    ui.access.host = "127.0.0.1"
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        yield Page(ui, runtime, client)
    runtime.close()
    close_all()


@pytest.fixture()
def record(page: Page) -> Callable[..., RunRecord]:
    def make(**kwargs: Any) -> RunRecord:
        return record_run(page.runtime, **kwargs)

    return make
