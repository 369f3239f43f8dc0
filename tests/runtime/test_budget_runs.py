"""The shared rate budget at the level of runs: two ``connector run`` processes on one database
spend one GoHighLevel budget, and the sandbox (enforcing the same limit) never refuses them.

To be fast, the limit is 5 requests per second, not 100 per 10 s: the sandbox is started with
that limit, and a drop-in plugin in CONNECTOR_HOME replaces the built-in GoHighLevel app with the
same app whose ``rate_limits`` say so (apps are where the runtime takes its limits from; there is
no environment variable for them). What the API saw is checked on the sandbox's side: the time and
status of every request it received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from e2e_support import CONTACT, RequestLog, finish, start_cli

from connector.persistence.budgets import Budget, Limit
from connector.persistence.database import close_all, make_engine
from connector.persistence.migrations import upgrade
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.server import RunningSandbox, start_in_thread

CAPACITY = 5
WINDOW = 1.0  # seconds
READS = 12  # per run: 24 requests in all, so the two runs must wait for each other
PROCESSES = 2

PLUGIN = f'''"""GoHighLevel with a burst budget of {CAPACITY} requests per {WINDOW} s (a test's)."""

import dataclasses

from connector import hookimpl
from connector.builtins import apps as builtin


@hookimpl
def register_apps(register):
    found = []
    builtin.register_apps(found.append)
    for app in found:
        if app.name == "ghl":
            limits = (({CAPACITY}, {WINDOW}, "burst"), (200_000, 86_400.0, "day"))
            register(dataclasses.replace(app, rate_limits=limits))
'''

READ_MANY = {
    "name": "read-many",
    "description": "Read one contact once per item.",
    "trigger": {"app": "manual", "event": "test", "sample": {"contactId": CONTACT, "n": [1]}},
    "steps": [
        {
            "id": "read",
            "action": "ghl.get-contact",
            "foreach": "{{ trigger.n }}",
            "with": {"contactId": "{{ trigger.contactId }}"},
        }
    ],
}


@pytest.fixture()
def sandbox() -> Iterator[RunningSandbox]:
    limits = RateLimitConfig(ghl_burst_max=CAPACITY, ghl_burst_interval_ms=int(WINDOW * 1000))
    with start_in_thread(limits=limits) as running:
        yield running


@pytest.fixture()
def env(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[dict[str, str]]:
    home = tmp_path / "home"
    (home / "plugins").mkdir(parents=True)
    (home / "plugins" / "small_ghl_budget.py").write_text(PLUGIN)
    yield {**sandbox.env, "CONNECTOR_HOME": str(home)}
    close_all()


def test_two_processes_share_one_budget_and_meet_no_429(
    tmp_path: Path, sandbox: RunningSandbox, env: dict[str, str]
) -> None:
    recipe = tmp_path / "read-many.yaml"
    recipe.write_text(yaml.safe_dump(READ_MANY, sort_keys=False))
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"contactId": CONTACT, "n": list(range(READS))}))
    log = RequestLog(sandbox)

    procs = [
        start_cli(env, ["run", str(recipe), "--event", str(event), "--json"])
        for _ in range(PROCESSES)
    ]
    results = finish(procs)

    records = []
    for code, out, err in results:
        assert code == 0, err
        records.append(json.loads(out))
    for record in records:
        assert record["status"] == "succeeded", record["error"]
        items = record["steps"][0]["items"]
        assert len(items) == READS
        again = [i for i in items if i["attempts"] != 1 or i["status_code"] != 200]
        assert not again, again  # each read was sent once, and answered
        reasons = {w["reason"] for i in items for w in i.get("waits", [])}
        assert reasons <= {"rate budget"}, reasons  # waited for the budget, never for a 429

    # what the API saw: every request once, none refused ...
    requests = log.requests("GET", f"/ghl/contacts/{CONTACT}")
    assert len(requests) == PROCESSES * READS
    assert [r.status for r in requests] == [200] * len(requests)
    assert len(log.requests()) == len(requests)
    # ... and never more than the limit in any window of its length (sliding, so the sandbox's
    # fixed windows too): the two processes spent one budget, not one each
    times = sorted(r.at for r in requests)
    busiest = max(sum(1 for t in times if start <= t < start + WINDOW) for start in times)
    assert busiest <= CAPACITY
    # the budget was full: someone waited for it (else the test proves nothing)
    waits = [w for rec in records for i in rec["steps"][0]["items"] for w in i.get("waits", [])]
    assert waits


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_request_holds_its_place_until_its_answer(tmp_path: Path) -> None:
    """The API counts a request when it arrives, some time between the grant and the answer: the
    place is freed a window after the answer, not after the grant."""
    engine = make_engine(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    upgrade(engine)
    clock = Clock(1_700_000_000.0)
    budget = Budget(engine, clock)
    limit = [Limit(1, 1.0, "burst")]
    try:
        wait, row = budget.reserve_row("k", limit)
        assert wait == 0.0 and row is not None
        clock.now += 0.4  # the answer comes 0.4 s later
        budget.observe("k", limit, {}, answered=row)
        clock.now += 0.7  # a window after the grant, not after the answer
        assert budget.reserve("k", limit) == pytest.approx(0.3, abs=0.01)
        clock.now += 0.31
        assert budget.reserve("k", limit) == 0.0
        # a request never answered (a connection error) keeps its place from its grant
        clock.now += 0.5
        assert budget.reserve("k", limit) > 0
        clock.now += 0.51
        assert budget.reserve_row("k", limit)[0] == 0.0
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT at, expires FROM rate_requests")).all()
        assert all(expires == pytest.approx(at + 1.0) for at, expires in rows)
    finally:
        engine.dispose()
