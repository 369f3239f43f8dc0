"""The crash test: a run SIGKILLed at any of 24 points, then ``connector runs resume``, ends with
both systems and the id-link store as an uninterrupted run leaves them, nothing duplicated.

The kill comes from outside the run's process, deterministically: :class:`KillSwitch`, a test-only
ASGI middleware around the sandbox app, counts the vendor requests (``/ghl``, ``/connecteam``) and
on the Nth one SIGKILLs the process that sent it, either *before* the sandbox applies the request,
or *after* it applied it and before the answer leaves (the API wrote; the run dies before it can
checkpoint the answer). The connection is then closed unanswered. The points are every request of
``recipes/crash_flow.yaml`` (reads, a PUT, three ``foreach`` writes with ``once:`` lookups, a
repeatable POST, a last read), each before and after; then ``connector runs resume --json``
finishes the run, in a process of its own.

The reference is one uninterrupted ``connector run`` on a fresh sandbox. States are read over HTTP
(``GET /_sandbox/state``) and compared normalized: ids the sandbox made during a run become labels
ordered by content, timestamps are dropped, and lists of records are compared as sets, so two runs
that made the same records compare equal and an extra record does not. The id-link store and the
effect journal are read from the run's database.

``recipes/crash_note.yaml`` is the write nothing can read back (Connecteam lists no user notes):
killed between its request and its checkpoint, the resumed run must fail "outcome unknown",
naming what to check, and neither a resume nor a retry may send the note again.

Speed: every command is a real ``connector`` process, forked by ``crash_worker.py`` after it did
the imports (most of a process's start-up CPU). A resume waits about a second for DBOS's queue,
idle, so the points run on :data:`LANES` lanes at once, each a sandbox (reset to its seed before
each point) and a fork server of its own; the ``outcomes`` fixture runs the selected points and
each test checks its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.apps.registry import Registry
from connector.persistence.database import close_all, database_url, make_engine
from connector.persistence.effects import effects_table
from connector.persistence.links import LinkStore
from connector.persistence.runs import RunStore
from connector.records import RunRecord
from connector.runtime.durable import Runtime
from connector.sandbox.faults import _drop
from connector.sandbox.server import RunningSandbox, SandboxApp, start_in_thread
from tests.runtime.e2e_support import LOCAL, Launcher, gone

HERE = Path(__file__).parent
FLOW = HERE / "recipes" / "crash_flow.yaml"
NOTE = HERE / "recipes" / "crash_note.yaml"
LANES = 4  # points run at once: each mostly waits (a resume, on DBOS's queue)
CONTACT = "ocQHyuzHvysMo5N5VsXc"
USER = 9001
EVENT = {"contactId": CONTACT, "userId": USER}
LOST = "the answer was lost; the lookup found the write"

# every vendor request of an uninterrupted crash_flow run, in order: (journal unit, request)
REQUESTS: tuple[tuple[str, str], ...] = (
    ("contact", f"GET /ghl/contacts/{CONTACT}"),
    ("tasks", f"GET /ghl/contacts/{CONTACT}/tasks"),
    ("appointments", f"GET /ghl/contacts/{CONTACT}/appointments"),
    ("update_user", "PUT /connecteam/users/v1/users"),
    ("quick_tasks[0]", "POST /connecteam/tasks/v1/taskboards/7001/tasks"),
    ("quick_tasks[1]", "POST /connecteam/tasks/v1/taskboards/7001/tasks"),
    ("prep_tasks[0]", f"POST /ghl/contacts/{CONTACT}/tasks"),
    ("prep_tasks[1]", f"POST /ghl/contacts/{CONTACT}/tasks"),
    ("task_notes[0]", f"POST /ghl/contacts/{CONTACT}/notes"),
    ("task_notes[1]", f"POST /ghl/contacts/{CONTACT}/notes"),
    ("tag", f"POST /ghl/contacts/{CONTACT}/tags"),
    ("board", "GET /connecteam/tasks/v1/taskboards/7001/tasks"),
)
ONCE_WRITES = {"quick_tasks", "prep_tasks", "task_notes"}  # POSTs resolved by their lookup
POINTS = [
    pytest.param(number, after, id=f"{number:02d}-{'after' if after else 'before'}-{unit}")
    for number, (unit, _) in enumerate(REQUESTS, 1)
    for after in (False, True)
]

# fields that tell when, not what: they differ between any two runs
VOLATILE = frozenset({"dateAdded", "dateUpdated", "createdAt", "modifiedAt", "updatedAt"})


# -- the kill switch -------------------------------------------------------------------------------


class KillSwitch:
    """Test-only ASGI middleware around the sandbox app: counts the vendor requests and, on the
    ``at``-th, SIGKILLs process ``pid`` before the sandbox applies it, or (``after``) once the
    sandbox applied it and before its answer is sent; the connection is closed unanswered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log: list[str] = []
        self.at = 0
        self.after = False
        self.pid = 0
        self.fired = False

    def reset(self) -> None:
        self.log, self.at, self.after, self.pid, self.fired = [], 0, False, 0, False

    def arm(self, at: int, after: bool) -> None:
        """Kill at the ``at``-th request, the process :meth:`aim` names."""
        self.at, self.after, self.pid = at, after, 0

    def aim(self, pid: int) -> None:
        self.pid = pid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(("/ghl/", "/connecteam/")):
            await self.app(scope, receive, send)
            return
        self.log.append(f"{scope['method']} {path}")
        if self.fired or len(self.log) != self.at:
            await self.app(scope, receive, send)
            return
        self.fired = True
        if self.after:

            async def withheld(message: Message) -> None:
                return None

            await self.app(scope, receive, withheld)  # applied; the answer goes nowhere
        for _ in range(2000):  # aimed as soon as the process is forked
            if self.pid:
                break
            await asyncio.sleep(0.005)
        if self.pid <= 0:  # never kill(0): that is this process's whole group
            raise RuntimeError("the kill switch fired before it knew whom to kill")
        os.kill(self.pid, signal.SIGKILL)
        for _ in range(2000):  # dead before anything else happens
            if gone(self.pid):
                break
            await asyncio.sleep(0.005)
        await _drop(send)


def _serve() -> tuple[RunningSandbox, KillSwitch]:
    """A sandbox behind a kill switch, on a free port."""
    made: list[KillSwitch] = []

    def wrap(app: SandboxApp) -> KillSwitch:
        made.append(KillSwitch(app))
        return made[0]

    return start_in_thread(wrap=wrap), made[0]


# -- processes and lanes ---------------------------------------------------------------------------


class Lane:
    """A sandbox behind its kill switch, and a fork server: one point at a time."""

    def __init__(self, launcher: Launcher) -> None:
        self.sandbox, self.switch = _serve()
        self.launcher = launcher

    def reset(self) -> None:
        """The sandbox back to its seed (as fresh as a new one), the switch disarmed."""
        LOCAL.post(f"{self.sandbox.url}/_sandbox/reset").raise_for_status()
        self.switch.reset()

    def env(self, home: Path) -> dict[str, str]:
        return {**self.sandbox.env, "CONNECTOR_HOME": str(home)}

    def killed_run(
        self, recipe: Path, env: Mapping[str, str], tmp: Path, at: int, after: bool
    ) -> None:
        """``connector run RECIPE``, killed by the switch at request ``at``."""
        event = tmp / "event.json"
        event.write_text(json.dumps(EVENT))
        self.switch.arm(at, after)
        argv = ["run", str(recipe), "--event", str(event), "--json"]
        code, _, err = self.launcher.run(env, argv, tmp / "run", started=self.switch.aim)
        assert code == -signal.SIGKILL and self.switch.fired, f"not killed (exit {code}): {err}"

    def close(self) -> None:
        self.launcher.close()
        self.sandbox.stop()


@pytest.fixture(scope="module")
def lanes() -> Iterator[list[Lane]]:
    made: list[Lane] = []
    try:
        launchers = [Launcher() for _ in range(LANES)]  # importing side by side
        made.extend(Lane(launcher.ready()) for launcher in launchers)
        yield made
    finally:
        for lane in made:  # all told to stop first, then waited for
            lane.sandbox.server.should_exit = True
            assert lane.launcher.proc.stdin is not None
            lane.launcher.proc.stdin.close()
        for lane in made:
            lane.close()


# -- the state of both systems, normalized ---------------------------------------------------------


def _state(sandbox: RunningSandbox) -> dict[str, Any]:
    response = LOCAL.get(f"{sandbox.url}/_sandbox/state")
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def _records(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every record (an object with an ``id``) in ``node``, with the path of keys to it."""
    if isinstance(node, dict):
        if "id" in node:
            yield where, node
        for key, value in node.items():
            yield from _records(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for value in node:
            yield from _records(value, where)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _swap(value: Any, names: Mapping[str, str], pattern: re.Pattern[str] | None) -> Any:
    """``value`` with new ids replaced by ``names``, no timestamps, lists of records sorted."""
    if isinstance(value, dict):
        return {k: _swap(v, names, pattern) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        items = [_swap(v, names, pattern) for v in value]
        return sorted(items, key=_canon) if all(isinstance(i, dict) for i in items) else items
    if isinstance(value, bool) or not isinstance(value, int | str):
        return value
    if str(value) in names:
        return names[str(value)]
    if isinstance(value, str) and pattern is not None:
        return pattern.sub(lambda m: names[m.group(0)], value)
    return value


def normalized(
    state: Mapping[str, Any], links: list[dict[str, Any]], seed_ids: set[str]
) -> dict[str, Any]:
    """Both systems and the links, comparable across sandboxes (see the module docstring)."""
    world = {"state": state, "links": links}
    created = [(w, r) for w, r in _records(state) if str(r["id"]) not in seed_ids]
    new = sorted({str(r["id"]) for _, r in created}, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, new))) if new else None
    masked = dict.fromkeys(new, "?")
    order = sorted(
        created,
        key=lambda wr: (wr[0], _canon(_swap({**wr[1], "id": "?"}, masked, pattern))),
    )
    names = {str(r["id"]): f"<new {w} #{i}>" for i, (w, r) in enumerate(order)}
    out: dict[str, Any] = _swap(world, names, pattern)
    out["created"] = sorted(w for w, _ in created)
    return out


@dataclass
class Stored:
    """What a run's database holds: the run records, the id links, the effect journal."""

    records: list[RunRecord]
    links: list[dict[str, Any]]
    effects: list[tuple[str, str]]  # (key, state), the run's own id in a key made RUN
    running: list[str]


def _stored(env: Mapping[str, str]) -> Stored:
    engine = make_engine(database_url(env))
    try:
        store = RunStore(engine)
        records = [r for r in (store.get(x.id) for x in store.list(limit=10)) if r is not None]
        links = [
            {"kind": k.kind, "ghl_id": k.ghl_id, "connecteam_id": k.connecteam_id, "meta": k.meta}
            for k in LinkStore(engine).list_links()
        ]
        with engine.connect() as conn:
            rows = conn.execute(sa.select(effects_table.c.key, effects_table.c.state)).all()
        running = list(store.ids(status="running"))
    finally:
        engine.dispose()
    ids = [r.id for r in records]
    effects = []
    for key, state in rows:
        for run_id in ids:
            key = str(key).replace(run_id, "RUN")
        effects.append((key, str(state)))
    return Stored(records, links, sorted(effects), running)


@dataclass
class Reference:
    log: list[str]
    seed_ids: set[str]
    state: dict[str, Any]
    stored: Stored
    world: dict[str, Any]  # state and links, normalized


@pytest.fixture(scope="module")
def reference(lanes: list[Lane], tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted ``connector run`` of crash_flow on a fresh sandbox."""
    lane, tmp = lanes[0], tmp_path_factory.mktemp("reference")
    lane.reset()
    env = lane.env(tmp / "home")
    seed_ids = {str(r["id"]) for _, r in _records(_state(lane.sandbox))}
    (tmp / "event.json").write_text(json.dumps(EVENT))
    argv = ["run", str(FLOW), "--event", str(tmp / "event.json"), "--json"]
    code, _, err = lane.launcher.run(env, argv, tmp / "run")
    assert code == 0, err
    assert lane.switch.log == [request for _, request in REQUESTS]
    stored, state = _stored(env), _state(lane.sandbox)
    assert [r.status for r in stored.records] == ["succeeded"]
    world = normalized(state, stored.links, seed_ids)
    # what the flow makes: 2 quick tasks, 2 GoHighLevel tasks, 2 notes; 4 links
    assert len(world["created"]) == 6 and len(stored.links) == 4, world["created"]
    return Reference(list(lane.switch.log), seed_ids, state, stored, world)


@dataclass
class Outcome:
    """One point: the requests up to the kill, what ``runs resume`` said, and the end state."""

    log: list[str]
    resume: tuple[int, str, str]  # exit status, stdout, stderr
    stored: Stored
    state: dict[str, Any]


def _crash(lane: Lane, number: int, after: bool, tmp: Path) -> Outcome:
    lane.reset()
    env = lane.env(tmp / "home")
    lane.killed_run(FLOW, env, tmp, number, after)
    log = list(lane.switch.log)
    resume = lane.launcher.run(env, ["runs", "resume", "--json"], tmp / "resume")
    return Outcome(log, resume, _stored(env), _state(lane.sandbox))


TEST_POINT = "test_a_run_killed_at_any_point_is_finished_by_resume_as_if_never_killed"


@pytest.fixture(scope="module")
def outcomes(
    request: pytest.FixtureRequest,
    lanes: list[Lane],
    reference: Reference,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[int, bool], Outcome | BaseException]:
    """Every selected point, run on the lanes at once (a failure is kept for its own test)."""
    wanted = [
        (item.callspec.params["number"], item.callspec.params["after"])
        for item in request.session.items
        if getattr(item, "originalname", "") == TEST_POINT and hasattr(item, "callspec")
    ]
    jobs: queue.Queue[tuple[int, bool, Path]] = queue.Queue()
    for number, after in wanted:
        name = f"point{number:02d}{'after' if after else 'before'}"
        jobs.put((number, after, tmp_path_factory.mktemp(name)))
    done: dict[tuple[int, bool], Outcome | BaseException] = {}

    def work(lane: Lane) -> None:
        while True:
            try:
                number, after, tmp = jobs.get_nowait()
            except queue.Empty:
                return
            try:
                done[number, after] = _crash(lane, number, after, tmp)
            except BaseException as exc:  # reported by the point's own test
                done[number, after] = exc

    with ThreadPoolExecutor(len(lanes)) as pool:
        list(pool.map(work, lanes))
    return done


# -- the tests -------------------------------------------------------------------------------------


def test_the_comparison_ignores_which_ids_were_made_but_sees_a_duplicate(
    reference: Reference,
) -> None:
    made = {str(r["id"]) for _, r in _records(reference.state)} - reference.seed_ids
    text = json.dumps({"state": reference.state, "links": reference.stored.links})
    for old in made:  # the same records, made under other ids (another sandbox's)
        text = text.replace(old, old[::-1].upper())
    other = json.loads(text)
    assert normalized(other["state"], other["links"], reference.seed_ids) == reference.world
    tasks = other["state"]["ghl"]["tasks"][CONTACT]
    tasks.append({**tasks[-1], "id": "DuplicateOfTheLast01"})  # one write made twice
    twice = normalized(other["state"], other["links"], reference.seed_ids)
    assert twice["created"] != reference.world["created"]
    assert twice["state"] != reference.world["state"]


def _unit(record: RunRecord, unit: str) -> Any:
    step_id, _, index = unit.partition("[")
    step = next(s for s in record.steps if s.id == step_id)
    return step.items[int(index.rstrip("]"))] if index and step.items else step


@pytest.mark.parametrize(("number", "after"), POINTS)
def test_a_run_killed_at_any_point_is_finished_by_resume_as_if_never_killed(
    number: int,
    after: bool,
    reference: Reference,
    outcomes: dict[tuple[int, bool], Outcome | BaseException],
) -> None:
    outcome = outcomes[number, after]
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome.log == reference.log[:number]  # the same requests, up to the kill
    code, out, err = outcome.resume
    assert code == 0, err or out
    resumed = json.loads(out)["runs"]
    assert [r["status"] for r in resumed] == ["succeeded"]
    [record] = outcome.stored.records
    assert record.id == resumed[0]["id"] and record.status == "succeeded", record.error
    assert outcome.stored.running == []  # nothing left to resume
    unit = REQUESTS[number - 1][0]
    if unit.partition("[")[0] in ONCE_WRITES:
        # applied and unanswered: the lookup finds it; never applied: the lookup finds nothing
        # and the write is sent (once) again
        killed = _unit(record, unit)
        assert (killed.note == LOST) is after, killed.note
    world = normalized(outcome.state, outcome.stored.links, reference.seed_ids)
    ref = reference.world
    assert world["created"] == ref["created"]  # nothing duplicated, nothing missing
    assert world["state"]["ghl"] == ref["state"]["ghl"]
    assert world["state"]["connecteam"] == ref["state"]["connecteam"]
    assert world["links"] == ref["links"]
    assert outcome.stored.effects == reference.stored.effects
    assert record.output == reference.stored.records[0].output


def test_a_write_nothing_can_read_back_fails_outcome_unknown_and_is_never_sent_again(
    registry: Registry, lanes: list[Lane], tmp_path: Path
) -> None:
    """Killed after Connecteam made the note, before its answer was checkpointed."""
    notes = f"POST /connecteam/users/v1/users/{USER}/notes"
    lane = lanes[0]
    lane.reset()
    env = lane.env(tmp_path / "home")
    try:
        with Runtime(registry, env) as runtime:
            runtime.launch()  # `connector runs resume`'s start-up, while the run runs
            lane.killed_run(NOTE, env, tmp_path, 2, True)
            assert lane.switch.log == [f"GET /ghl/contacts/{CONTACT}", notes]
            [run_id] = runtime.resume()
            record = runtime.store.get(run_id)
            assert record is not None
            assert record.status == "failed"
            assert record.error and "outcome unknown" in record.error, record.error
            assert f"check POST /connecteam/users/v1/users/{USER}/notes in Connecteam" in (
                record.error
            )
            assert [s.status for s in record.steps] == ["succeeded", "failed", "skipped"]
            assert runtime.resume() == []  # a failed run is not resumed
            retried = runtime.rerun(record, None)  # `connector runs retry`
            assert retried.parent == record.id
            assert retried.status == "failed"
            assert retried.error and "outcome unknown" in retried.error, retried.error
            assert "/notes in Connecteam" in retried.error
            once_more = runtime.rerun(retried, None)  # the retry's takeover is no more sendable
            assert once_more.status == "failed"
    finally:
        close_all()
    sandbox = lane.sandbox
    made = LOCAL.get(f"{sandbox.url}/_sandbox/connecteam/users/{USER}/notes").json()["notes"]
    contact = LOCAL.get(
        f"{sandbox.url}/ghl/contacts/{CONTACT}",
        headers={"Authorization": f"Bearer {sandbox.env['GHL_TOKEN']}", "Version": "2021-07-28"},
    ).json()["contact"]
    assert [n.get("title") for n in made].count("From GoHighLevel") == 1  # made once
    assert lane.switch.log.count(notes) == 1  # and sent once, by the killed run only
    assert "noted" not in contact["tags"]  # the step after it never ran
