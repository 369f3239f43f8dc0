"""Fixtures the durable-runtime tests share: the plugin registry, a fresh sandbox, an
environment pointed at both with a CONNECTOR_HOME of the test's own, and a fork server of
``connector`` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox, start_in_thread
from tests.runtime.e2e_support import Launcher


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _ = default_registry([], home=Path("/nonexistent"))
    return reg


@pytest.fixture()
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread() as running:
        yield running
    close_all()


@pytest.fixture()
def env(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[dict[str, str]]:
    yield {**sandbox.env, "CONNECTOR_HOME": str(tmp_path / "home")}
    close_all()


@pytest.fixture(scope="module")
def launcher() -> Iterator[Launcher]:
    """A fork server (crash_worker.py), one for the module: each command a new process that
    starts after the imports, as ``python -m connector`` would but without paying for them."""
    made = Launcher()
    try:
        yield made.ready()
    finally:
        made.close()
