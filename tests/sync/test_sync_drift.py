"""Drift: `connector serve` keeps a sync while the sandbox loses 30 % of both vendors' webhook
deliveries (the ``lose-webhook`` fault) and 200 edits are made in both apps; some pairs drift
apart. One `connector sync reconcile` brings every pair to what the declared rules make of the
edits, field by field: computed from the test's own log of edits, read back from both apps."""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.apps.registry import Registry
from connector.language.sync_spec import load_sync
from connector.persistence.database import close_all
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import add_contact, add_user
from connector.sandbox.server import start_in_thread
from connector.sandbox.state import load_seed
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.runtime.e2e_support import CLI, set_faults
from tests.serve.conftest import Served, start_service, stop_service
from tests.sync.population import T0, connecteam_view, ghl_view
from tests.sync.test_sync_initial import NO_BUDGET

DECLARATION = Path(__file__).with_name("people.sync.yaml")  # conflict: newest
PAIRS = 40
EDITS = 200
LOST = 0.3


@pytest.fixture()
def served(registry: Registry, tmp_path: Path) -> Iterator[Served]:
    spec, problems = load_sync(DECLARATION, registry)
    assert spec is not None, problems
    seed = load_seed()  # the shipped world without its people
    seed["ghl"]["contacts"] = []
    seed["connecteam"]["users"] = []
    seed["connecteam"]["task_boards"] = []
    sandbox = start_in_thread(seed=seed, limits=RateLimitConfig(enabled=False))
    env = {
        **sandbox_env(sandbox),
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_RATE_LIMITS": NO_BUDGET,
    }
    svc, url, thread = start_service(registry, [], env, sandbox, syncs=[spec])
    wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
    yield Served(sandbox, svc, url, env, thread)
    stop_service(svc, thread, sandbox)
    close_all()


def _reconcile(env: dict[str, str]) -> None:
    done = subprocess.run(
        [*CLI, "sync", "reconcile", str(DECLARATION)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout, done.stderr[-3000:])


def _both(served: Served, people: list[tuple[str, int]]) -> list[tuple[Any, Any]]:
    state = served.sandbox.state
    with state.lock:
        return [
            (ghl_view(state.ghl.contacts[cid]), connecteam_view(state.ct.users[uid]))
            for cid, uid in people
        ]


def test_one_reconcile_repairs_what_lost_webhooks_never_told(served: Served) -> None:
    state = served.sandbox.state
    location = state.default_location_id
    people: list[tuple[str, int]] = []
    expected: list[dict[str, Any]] = []
    for n in range(PAIRS):  # the same people on both sides, paired by the first reconcile
        person = {
            "firstName": f"Dana{n}",
            "lastName": f"Drift{n}",
            "email": f"drift{n}@example.org",
            "phone": f"+1444777{n:04d}",
        }
        contact = add_contact(state, location, person, at=T0 + n)
        user = add_user(state, {**person, "phoneNumber": person["phone"]}, at=T0 + n)
        people.append((contact, user))
        expected.append(dict(person))
    _reconcile(served.env)
    assert all(g == c for g, c in _both(served, people))

    set_faults(served.sandbox, f"lose-webhook:{LOST}", seed=25)
    rng = random.Random(25)
    ghl = served.ghl()
    ct = served.connecteam()
    try:
        for k in range(EDITS):
            # a pair is edited in one app only (the first half in GoHighLevel), so the rules
            # make of its edits the last one of each field, whatever was lost on the way
            index = rng.randrange(PAIRS)
            name = rng.choice(["firstName", "lastName"])
            value = f"{name[:-4].title()}{index}e{k}"
            served.sandbox.clock.advance(2)  # each edit later than the one before, to the second
            contact, user = people[index]
            if index < PAIRS // 2:
                ghl.put(f"contacts/{contact}", json={name: value}).raise_for_status()
            else:
                ct.put("users/v1/users", json=[{"userId": user, name: value}]).raise_for_status()
            expected[index][name] = value
        served.settled(timeout=300)
        fired = httpx.get(f"{served.sandbox.url}/_sandbox/faults").json()["fired"]
        assert fired.get("lose-webhook", 0) > 0.2 * EDITS  # webhooks were lost: edits and echoes
        drifted = [i for i, (g, c) in enumerate(_both(served, people)) if not g == c == expected[i]]
        assert drifted  # the lost deliveries left pairs apart

        set_faults(served.sandbox)  # the reconcile's own writes are reported as they happen
        _reconcile(served.env)
        served.settled(timeout=300)
    finally:
        ghl.close()
        ct.close()
    for i, (g, c) in enumerate(_both(served, people)):
        assert g == expected[i] and c == expected[i], (i, g, c, expected[i])
