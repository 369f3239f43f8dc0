"""A served process for the end-to-end tests: the sandbox on a real port, a
:class:`~connector.serve.server.Service` with the shipped recipes on another, wired both ways as
``connector serve --sandbox`` wires them, and helpers that wait for what the server does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.config import tls_context
from connector.persistence.database import close_all
from connector.persistence.runs import RunStore
from connector.runtime.prepare import prepare
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.server import Service, bind
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests import workloads
from tests.runtime.e2e_support import LOCAL

ROOT = Path(__file__).resolve().parents[2]
HOOK_TOKEN = "test-hook-token-5b1f"


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _ = default_registry([], home=Path("/nonexistent"))
    return reg


def wait_for(what: Callable[[], Any], timeout: float = 60.0, every: float = 0.05) -> Any:
    """``what()`` once it is truthy; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout} s")
        time.sleep(every)


@dataclass
class Served:
    sandbox: RunningSandbox
    service: Service
    url: str
    env: dict[str, str]
    thread: threading.Thread

    @property
    def secret(self) -> str:
        return self.env["CONNECTEAM_WEBHOOK_SECRET"]

    def runs(self, recipe: str | None = None) -> list[Any]:
        store = RunStore(self.service.runtime.db.engine)
        return [r for r in store.list(limit=10_000) if recipe is None or r.recipe == recipe]

    def settled(self, timeout: float = 60.0) -> list[Any]:
        """Every webhook delivered, the queue empty and every run ended; the runs."""

        store = RunStore(self.service.runtime.db.engine)

        def quiet() -> bool:  # looked at every 50 ms: the running runs' ids, not every record
            self.sandbox.app.flush()
            return (
                self.service.runtime.unfinished() == 0
                and not store.ids(status="running")
                and self.sandbox.app.flush(0.01)
            )

        wait_for(quiet, timeout)
        time.sleep(0.3)  # an echo in flight after the last run
        wait_for(quiet, timeout)
        return self.runs()

    def ghl(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.sandbox.env["GHL_BASE_URL"] + "/",
            headers={
                "Authorization": f"Bearer {self.sandbox.env['GHL_TOKEN']}",
                "Version": "2021-07-28",
            },
            verify=tls_context(),
        )

    def connecteam(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.sandbox.env["CONNECTEAM_BASE_URL"] + "/",
            headers={"X-API-KEY": self.sandbox.env["CONNECTEAM_API_KEY"]},
            verify=tls_context(),
        )


def planned(registry: Registry, path: Path) -> tuple[Any, str]:
    """The plan of the recipe at ``path`` and its text, as a Service takes them."""
    prepared = prepare(path, registry)
    assert prepared.plan is not None, prepared.problems
    return prepared.plan, prepared.text


def shipped(registry: Registry, *extra: Path) -> list[tuple[Any, str]]:
    return [planned(registry, p) for p in [*workloads.ALL, *extra]]


def start_service(
    registry: Registry,
    plans: list[tuple[Any, str]],
    env: dict[str, str],
    sandbox: RunningSandbox,
    *,
    workers: int = 4,
    **service: Any,
) -> tuple[Service, str, threading.Thread]:
    """A Service for ``plans`` on a real socket, on a thread, on the sandbox's clock, once it
    answers /healthz: the service, its base URL and the thread (for :func:`stop_service`)."""
    svc = Service(registry, plans, env, workers=workers, clock=sandbox.app.clock, **service)
    svc.start()
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(
        target=svc.serve, args=(sock,), kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    wait_for(lambda: _healthy(url), 30)
    return svc, url, thread


def stop_service(service: Service, thread: threading.Thread, sandbox: RunningSandbox) -> None:
    """Stop what :func:`start_service` started, and the sandbox it served."""
    service.stop()
    thread.join(timeout=30)
    sandbox.app.close()
    sandbox.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where a served process keeps everything: SQLite under a temporary home, or a fresh
    PostgreSQL database (the scale-out one)."""
    env = {"CONNECTOR_HOME": str(tmp_path / "home")}
    if request.param == "postgresql":
        env["CONNECTOR_DATABASE_URL"] = request.getfixturevalue("postgres_database")()
    return env


@pytest.fixture()
def serve_with(database: dict[str, str], registry: Registry) -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*extra: Path, wire: bool = True, **service: Any) -> Served:
        sandbox = start_in_thread()
        env = {**sandbox_env(sandbox), **database, "CONNECTOR_HOOK_TOKEN": HOOK_TOKEN}
        svc, url, thread = start_service(
            registry, shipped(registry, *extra), env, sandbox, **service
        )
        if wire:
            wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
        served = Served(sandbox, svc, url, env, thread)
        started.append(served)
        return served

    yield start
    for served in started:
        stop_service(served.service, served.thread, served.sandbox)
    close_all()


def _healthy(url: str) -> bool:
    try:
        return LOCAL.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
