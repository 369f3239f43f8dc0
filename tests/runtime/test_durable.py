"""The durable run path: a run leaves its plan as it found it, computes with what it records
redacted, performs a declared write once, resolves a lost answer before resending, and finishes
after a SIGKILL with `connector runs resume`. Claims are checked by the sandbox's state."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from e2e_support import set_faults

from connector.apps.registry import Registry
from connector.language.plan import plan_recipe
from connector.runtime.durable import Runtime
from connector.runtime.engine import Engine
from connector.runtime.prepare import prepare
from connector.sandbox.server import RunningSandbox
from connector.sending.http import Redactor, make_clients
from tests.runtime.e2e_support import LOCAL

HERE = Path(__file__).parent / "recipes"
CONTACT = "ocQHyuzHvysMo5N5VsXc"


def _plan(name: str, registry: Registry) -> Any:
    data = yaml.safe_load((HERE / name).read_text())
    return plan_recipe(data, registry, path=name)


def _engine(registry: Registry, plan: Any, handler: Any, env: dict[str, str]) -> Engine:
    clients = make_clients(
        [registry.apps[a] for a in plan.apps], env, transport=httpx.MockTransport(handler)
    )
    return Engine(registry=registry, clients=clients, env=env, redactor=Redactor(["tok-1234"]))


def test_a_run_does_not_change_its_plan(registry: Registry) -> None:
    """One plan run for location A, then B, sends A, then B (not A twice)."""
    plan = _plan("located.yaml", registry)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.params["locationId"])
        return httpx.Response(200, json={"contacts": []})

    engine = _engine(registry, plan, handler, {"GHL_TOKEN": "tok-1234"})
    for location in ("A", "B"):
        record = engine.run(plan, {}, env={"GHL_LOCATION_ID": location})
        assert record.status == "succeeded"
    assert seen == ["A", "B"]


def test_later_steps_read_the_real_value_the_record_keeps_it_masked(registry: Registry) -> None:
    plan = _plan("token_then_use.yaml", registry)
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"token": "abc-real-value"})
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"tags": ["x"]})

    record = _engine(registry, plan, handler, {"GHL_TOKEN": "tok-1234"}).run(
        plan, {"contactId": "c1"}
    )
    assert record.status == "succeeded"
    assert sent == [{"tags": ["abc-real-value"]}]
    assert record.steps[0].output == {"token": "***"}
    assert "abc-real-value" not in json.dumps(record.to_json())


def _tasks(sandbox: RunningSandbox, title: str) -> list[dict[str, Any]]:
    response = LOCAL.get(
        f"{sandbox.url}/ghl/contacts/{CONTACT}/tasks",
        headers={"Authorization": f"Bearer {sandbox.env['GHL_TOKEN']}", "Version": "2021-07-28"},
    )
    return [t for t in response.json()["tasks"] if t["title"] == title]


def _runtime(registry: Registry, env: dict[str, str]) -> tuple[Runtime, Any]:
    prepared = prepare(HERE / "task_once.yaml", registry)
    assert prepared.plan is not None, prepared.problems
    runtime = Runtime(registry, env)
    runtime.keep_recipe(prepared.plan, prepared.text)
    return runtime, prepared.plan


EVENT = {"contactId": CONTACT, "taskId": 77, "title": "Call back about the invoice"}


def test_a_declared_write_happens_once_across_runs_and_is_linked(
    registry: Registry, env: dict[str, str], sandbox: RunningSandbox
) -> None:
    runtime, plan = _runtime(registry, env)
    with runtime:
        first = runtime.run(plan, EVENT)
        second = runtime.run(plan, EVENT)  # a rerun: a new run of the same event
    assert first.status == second.status == "succeeded"
    assert first.id != second.id
    tasks = _tasks(sandbox, EVENT["title"])
    assert len(tasks) == 1
    assert first.output == second.output == {"task_id": tasks[0]["id"]}
    assert second.steps[0].note and "not sent again" in second.steps[0].note
    link = runtime.links.get("task", connecteam_id=77)
    assert link is not None and link.ghl_id == tasks[0]["id"]


def test_a_lost_answer_is_resolved_by_the_lookup_not_by_sending_again(
    registry: Registry, env: dict[str, str], sandbox: RunningSandbox
) -> None:
    set_faults(sandbox, "drop-after:1,method=POST,path=/ghl/contacts")
    runtime, plan = _runtime(registry, env)
    with runtime:
        record = runtime.run(plan, EVENT)
    assert record.status == "succeeded", record.error
    step = record.steps[0]
    assert step.note == "the answer was lost; the lookup found the write"
    tasks = _tasks(sandbox, EVENT["title"])
    assert len(tasks) == 1  # the sandbox applied it once; nothing was sent blindly again
    assert record.output == {"task_id": tasks[0]["id"]}


def test_a_run_killed_after_sending_is_finished_by_resume_without_a_duplicate(
    tmp_path: Path, env: dict[str, str], sandbox: RunningSandbox
) -> None:
    """SIGKILL while the write is in flight (applied by the API, answer not yet checkpointed)."""
    set_faults(sandbox, "slow:1,delay=2,method=POST,path=/ghl/contacts")
    event = tmp_path / "event.json"
    event.write_text(json.dumps(EVENT))
    cli = [sys.executable, "-m", "connector"]
    proc_env = {**os.environ, **env}
    proc = subprocess.Popen(
        [*cli, "run", str(HERE / "task_once.yaml"), "--event", str(event), "--json"],
        env=proc_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the request is at the sandbox
            fired = LOCAL.get(f"{sandbox.url}/_sandbox/faults").json()
            if "slow" in json.dumps(fired.get("fired", fired)) and _fired(fired):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never sent its write")
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    set_faults(sandbox)
    # the request died with its process (the sandbox drops it with the connection): the resumed
    # run finds the write in flight, looks it up, finds nothing, and sends it once
    done = subprocess.run(
        [*cli, "runs", "resume", "--json"],
        env=proc_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [r["status"] for r in runs] == ["succeeded"]
    tasks = _tasks(sandbox, EVENT["title"])
    assert len(tasks) == 1
    assert runs[0]["output"] == {"task_id": tasks[0]["id"]}
    # nothing left to resume
    again = subprocess.run(
        [*cli, "runs", "resume"], env=proc_env, capture_output=True, text=True, timeout=120
    )
    assert "no interrupted runs" in again.stdout


def _fired(state: Any) -> bool:
    """Whether the sandbox says the slow rule fired at least once."""
    text = json.dumps(state)
    return '"fired": 0' not in text and "fired" in text


class _DropFirstCreate(httpx.BaseTransport):
    """Sends every request to the sandbox; the first new contact's answer is lost on the way back."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/ghl/contacts/" and not self.dropped:
            response.read()
            self.dropped += 1
            raise httpx.RemoteProtocolError("server disconnected without sending a response")
        return response


def test_a_contact_without_email_whose_answer_was_lost_is_found_by_its_full_name(
    registry: Registry, env: dict[str, str], sandbox: RunningSandbox
) -> None:
    """create-contact-from-connecteam's lookup: the search finds the contact the lost write made."""
    from connector.runtime.durable import RuntimeOptions

    prepared = prepare(
        Path(__file__).parents[2] / "tests/workloads/create-contact-from-connecteam.yaml", registry
    )
    assert prepared.plan is not None
    transport = _DropFirstCreate()
    runtime = Runtime(registry, env, RuntimeOptions(transport=transport))
    runtime.keep_recipe(prepared.plan, prepared.text)
    event = {"userId": 9050, "fullName": "Grace Brewster Hopper", "tasks": []}
    with runtime:
        record = runtime.run(prepared.plan, event)
    assert transport.dropped == 1
    assert record.status == "succeeded", record.error
    step = next(s for s in record.steps if s.id == "create_contact")
    assert step.note == "the answer was lost; the lookup found the write"
    state = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()
    made = [c for c in state["ghl"]["contacts"] if c.get("lastName") == "Hopper"]
    assert len(made) == 1 and made[0]["firstName"] == "Grace Brewster"
    assert record.output["contact_id"] == made[0]["id"]


def test_a_wait_for_the_rate_budget_is_logged_with_the_step_and_the_run(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    from connector.records import current_run
    from connector.sending.caller import Caller

    class SlowBudget:
        def acquire(self, app: Any, credential: str, location: str) -> float:
            return 2.5  # as if it had waited: nothing sleeps here

        def observe(self, *args: Any) -> None:
            pass

    plan = _plan("located.yaml", registry)
    engine = _engine(
        registry,
        plan,
        lambda request: httpx.Response(200, json={"contacts": []}),
        {"GHL_TOKEN": "tok-1234"},
    )
    engine.caller = Caller(throttle=SlowBudget(), redactor=engine.redactor)
    seen: list[str | None] = []

    class RunIds(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(current_run.get())

    handler = RunIds()
    logging.getLogger("connector.run").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="connector.run"):
            record = engine.run(plan, {}, env={"GHL_LOCATION_ID": "A"})
    finally:
        logging.getLogger("connector.run").removeHandler(handler)
    assert record.status == "succeeded"
    lines = [r.getMessage() for r in caplog.records]
    assert any("waited 2.5 s for GoHighLevel's rate budget before attempt 1" in m for m in lines)
    assert any(m.startswith(f"run {record.id} started: recipe=") for m in lines)
    assert seen and set(seen) == {record.id}  # every line is told which run it is about


def test_a_secret_in_an_answer_is_checkpointed_sealed_and_a_replay_still_gets_it(
    registry: Registry, tmp_path: Path
) -> None:
    """No secret in clear in the database (DBOS's checkpoints included), yet a replay from the
    second step reads the first step's real answer from its checkpoint, without sending it again."""
    from connector.persistence.database import close_all
    from connector.runtime.durable import RuntimeOptions

    token = "tok-echoed-5e6f7a8b9c"
    prepared = prepare(HERE / "token_then_use.yaml", registry)
    assert prepared.plan is not None
    gets: list[str] = []
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            gets.append(request.url.path)
            echoed = request.headers["authorization"].removeprefix("Bearer ")
            return httpx.Response(
                200, json={"token": "abc-real-value", "note": f"called with {echoed}"}
            )
        sent.append(json.loads(request.content))
        return httpx.Response(201, json={"tags": ["x"]})

    home = tmp_path / "home"
    env = {"CONNECTOR_HOME": str(home), "GHL_TOKEN": token, "GHL_LOCATION_ID": "loc1"}
    runtime = Runtime(registry, env, RuntimeOptions(transport=httpx.MockTransport(handler)))
    runtime.keep_recipe(prepared.plan, prepared.text)
    try:
        with runtime:
            first = runtime.run(prepared.plan, {"contactId": "c1"})
            assert first.status == "succeeded", first.error
            again = runtime.rerun(first, "second")
            assert again.status == "succeeded", again.error
            stored = b"".join(p.read_bytes() for p in home.rglob("connector.sqlite3*"))
    finally:
        close_all()
    assert gets == ["/contacts/c1"]  # the first step ran once: the replay read its checkpoint
    assert sent == [{"tags": ["abc-real-value"]}, {"tags": ["abc-real-value"]}]
    assert b"__sealed__" in stored
    assert b"abc-real-value" not in stored and token.encode() not in stored
