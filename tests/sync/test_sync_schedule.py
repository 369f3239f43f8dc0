"""The reconcile schedule of `connector serve` (``reconcile: {every: ...}`` in a sync
declaration): refused, with a log line, until a reconcile was run by hand; then run by the server
when the last one is old enough, repairing what no webhook told, and not again before it is due.
What the server did is read back from the sandbox."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.apps.registry import Registry
from connector.language.sync_spec import load_sync
from connector.persistence.cursors import Cursors
from connector.persistence.database import close_all
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import add_contact
from connector.sandbox.server import start_in_thread
from connector.sandbox.state import load_seed
from connector.serve.wiring import sandbox_env
from tests.serve.conftest import Served, start_service, stop_service, wait_for
from tests.sync.population import T0
from tests.sync.test_sync_drift import _reconcile
from tests.sync.test_sync_initial import NO_BUDGET

HERE = Path(__file__).parent


@pytest.fixture()
def declaration(tmp_path: Path) -> Path:
    text = (HERE / "people.sync.yaml").read_text()
    path = tmp_path / "people.sync.yaml"
    path.write_text(text.replace("pairs:\n", "reconcile: {every: 1m}\npairs:\n", 1))
    return path


@pytest.fixture()
def served(registry: Registry, tmp_path: Path, declaration: Path) -> Iterator[Served]:
    spec, problems = load_sync(declaration, registry)
    assert spec is not None and spec.reconcile_every == 60, problems
    seed = load_seed()
    seed["ghl"]["contacts"] = []
    seed["connecteam"]["users"] = []
    seed["connecteam"]["task_boards"] = []
    sandbox = start_in_thread(seed=seed, limits=RateLimitConfig(enabled=False))
    env = {
        **sandbox_env(sandbox),
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_RATE_LIMITS": NO_BUDGET,
    }
    # no webhooks are wired: only a reconcile brings the two apps together
    svc, url, thread = start_service(registry, [], env, sandbox, syncs=[spec])
    yield Served(sandbox, svc, url, env, thread)
    stop_service(svc, thread, sandbox)
    close_all()


def _last(served: Served) -> dict[str, float] | None:
    stored = Cursors(served.service.runtime.db.engine).get("reconcile:people:last")
    return json.loads(stored) if stored else None


def test_the_schedule_waits_for_a_first_reconcile_by_hand_then_keeps_the_apps_together(
    served: Served, declaration: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = served.sandbox.state
    contact = add_contact(
        state,
        state.default_location_id,
        {
            "firstName": "Sky",
            "lastName": "Ghl",
            "email": "sky@example.org",
            "phone": "+14445550001",
        },
        at=T0,
    )
    caplog.set_level(logging.INFO, logger="connector.serve")
    # never reconciled: the server says why it schedules nothing, and does nothing
    wait_for(lambda: "not scheduled: no reconcile of it was ever completed" in caplog.text, 30)
    time.sleep(2)  # a tick or two later
    with state.lock:
        assert not state.ct.users  # no counterpart was made
    assert _last(served) is None

    _reconcile(served.env)  # the initial sync, by hand
    with state.lock:
        (user_id,) = list(state.ct.users)
    first = _last(served)
    assert first is not None

    # a change no webhook tells, and a reconcile that is not due yet: left alone
    with state.lock:
        state.ct.users[user_id].update(lastName="Changed", modifiedAt=int(state.now()) + 5)
    time.sleep(2.5)
    with state.lock:
        assert state.ghl.contacts[contact]["lastName"] == "Ghl"

    # the last reconcile a minute and more ago: the server runs the next one itself
    cursors = Cursors(served.service.runtime.db.engine)
    cursors.put("reconcile:people:last", json.dumps({**first, "at": time.time() - 61}))
    wait_for(lambda: "reconcile of sync people done" in caplog.text, 120)

    with state.lock:
        assert state.ghl.contacts[contact]["lastName"] == "Changed"
    last = _last(served)
    assert last is not None and last["at"] > time.time() - 60 and last["updated"]["ghl"] == 1
    # and not again before it is due
    caplog.clear()
    time.sleep(2.5)
    assert "reconcile of sync people started" not in caplog.text


def test_a_reconcile_more_often_than_a_minute_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    path = tmp_path / "often.sync.yaml"
    text = (HERE / "people.sync.yaml").read_text()
    path.write_text(text.replace("pairs:\n", "reconcile: {every: 30s}\npairs:\n", 1))
    spec, problems = load_sync(path, registry)
    assert spec is None
    assert [str(p) for p in problems] == [
        f"{path}:4:20: error: $.reconcile.every: a reconcile every 30s would never rest: "
        "at least 1m"
    ]
