"""What one durable run costs the database, counted by SQLite itself (its trace callback sees
every statement any connection runs: ours and DBOS's, ``BEGIN`` and ``COMMIT`` included).

A run of two reads and a write (``recipes/three_steps.yaml``, the recipe of
``bench/durable.py``) with the rate budget on: at most :data:`COMMITS` commits and
:data:`STATEMENTS` other statements (``BEGIN`` not counted), on average over a few runs after
one that warms up (the budget is granted in batches, so one run may reserve for the next).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from connector.apps.registry import Registry
from connector.runtime.durable import Runtime, RuntimeOptions
from connector.runtime.prepare import prepare
from tests.sqlite_trace import Trace

HERE = Path(__file__).parent / "recipes"
COMMITS = 8
STATEMENTS = 30
RUNS = 6


def _answer(request: httpx.Request) -> httpx.Response:
    if request.method == "POST":
        return httpx.Response(201, json={"task": {"id": "task123"}})
    if request.url.path.endswith("/tasks"):
        return httpx.Response(200, json={"tasks": []})
    return httpx.Response(200, json={"contact": {"id": "c1", "firstName": "Ada"}})


def test_a_three_request_run_takes_few_commits_and_statements(
    registry: Registry, tmp_path: Path, trace: Trace
) -> None:
    prepared = prepare(HERE / "three_steps.yaml", registry)
    assert prepared.plan is not None, prepared.problems
    env = {"GHL_TOKEN": "t0ken-for-counting", "CONNECTOR_HOME": str(tmp_path / "home")}
    options = RuntimeOptions(transport=httpx.MockTransport(_answer))
    with Runtime(registry, env, options) as runtime:
        runtime.keep_recipe(prepared.plan, prepared.text)
        event = dict(prepared.plan.sample or {})
        assert runtime.run(prepared.plan, event).status == "succeeded"
        trace.on = True
        for _ in range(RUNS):
            record = runtime.run(prepared.plan, event)
            assert record.status == "succeeded", record.error
            assert record.output == {"task": "task123"}
        trace.on = False
    per_run = {word: round(n / RUNS, 1) for word, n in sorted(trace.seen.items())}
    assert trace.commits >= 4 * RUNS, per_run  # the trace saw the runs' own (DBOS's and ours)
    assert trace.commits / RUNS <= COMMITS, per_run
    assert trace.statements / RUNS <= STATEMENTS, per_run
