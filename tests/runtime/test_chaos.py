"""The chaos test: the six shipped flows through faults of every kind, checked by both systems' state.

The sandbox answers 20 % of requests with a fault (429 with ``Retry-After``, 500, 502, 503, a slow
answer, a connection dropped before the request reaches it, and one dropped after it applied the
request) and enforces the vendors' rate limits. CHAOS_EVENTS (default 100; more for a longer
soak) distinct events go through each flow, many at once. Afterwards every event's full effect
must be in the sandbox's state exactly once: no task, note, tag, contact or user lost or
duplicated.

Every run must end ``succeeded``, except two kinds, asserted one by one:

- input invalid for good (a task for a contact that does not exist): ``failed`` with the API's
  message, and nothing written;
- a note whose answer was lost: Connecteam cannot list a user's notes, so nobody can tell whether
  it was written. The run stops ``failed`` with "outcome unknown" and says what to check; a person
  looks (here: the test, at the sandbox), says so with ``runs settle``, and ``runs retry``
  finishes the run. Then the note is there exactly once.

The rate limits keep the vendors' shape with a shorter window or a higher count (GoHighLevel 100
requests per second per location instead of per 10 s; Connecteam 6,000 a minute instead of 100),
so that 600 runs fit in a CI job; the runtime's budgets are set to the same numbers, and the
sandbox's own count of rate-limited answers shows whether they held.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.persistence.database import close_all
from connector.runtime.durable import Runtime
from connector.runtime.prepare import prepare
from connector.sandbox.server import RunningSandbox, start_in_thread
from tests.runtime.e2e_support import CHAOS_FAULTS as FAULTS
from tests.runtime.e2e_support import CHAOS_LIMITS as LIMITS
from tests.runtime.e2e_support import LOCAL

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "tests" / "workloads"
SEED = ROOT / "connector" / "sandbox" / "seed.yaml"
N = int(os.environ.get("CHAOS_EVENTS", "100"))
AT_ONCE = 24  # runs in flight at a time
BOARD = "7001"
CALENDAR = "ocJ2isAjIhKtJ0RlgLKO"
INVALID_EVERY = 40  # one create-task event in 40 names a contact that does not exist

pytestmark = pytest.mark.needs_modules("dbos", "connector.sandbox.server")


# --- the world: the shipped seed plus N people per flow ------------------------------------------


LOCATION = "ve9EPM428h8vShlRW1KT"  # the seed's first location, GHL_LOCATION_ID of these runs


def _gid(prefix: str, i: int) -> str:
    """A GoHighLevel-style 20-character id."""
    return f"{prefix}{i:04d}".ljust(20, "x")


def _seed() -> dict[str, Any]:
    seed = yaml.safe_load(SEED.read_text())
    location = seed["ghl"]["locations"][0]["id"]
    contacts, users = seed["ghl"]["contacts"], seed["connecteam"]["users"]

    def contact(cid: str, i: int, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": cid,
            "locationId": location,
            "firstName": f"{kind.title()}{i}",
            "lastName": "Chaos",
            "email": f"{kind}{i}@chaos.example",
            "companyName": f"{kind.title()} Co {i}",
            "tags": ["seeded"],
            "dateAdded": "2024-03-01T15:04:05.000Z",
            **extra,
        }

    def user(uid: int, i: int, kind: str, **extra: Any) -> dict[str, Any]:
        return {
            "userId": uid,
            "firstName": f"{kind.title()}{i}",
            "lastName": "Chaos",
            "email": f"{kind}{i}@chaos.example",
            "phoneNumber": f"+1555{uid:07d}",
            "userType": "user",
            **extra,
        }

    for i in range(N):
        # 1. pull: a contact with tasks, notes and an appointment, and its user
        contacts.append(
            contact(
                _gid("pull", i),
                i,
                "pull",
                tasks=[
                    {
                        "id": _gid(f"pt{k}", i),
                        "title": f"Pull task {i}.{k}",
                        "dueDate": "2024-03-08T17:00:00.000Z",
                        "completed": k == 1,
                    }
                    for k in range(1 + i % 2)
                ],
                notes=[
                    {"id": _gid(f"pn{k}", i), "title": f"Note {i}.{k}", "body": f"Text {i}.{k}"}
                    for k in range(1 + (i + 1) % 2)
                ],
                appointments=[
                    {
                        "id": _gid("pa", i),
                        "calendarId": CALENDAR,
                        "title": f"Visit {i}",
                        "startTime": "2024-03-12T15:00:00.000Z",
                        "endTime": "2024-03-12T15:30:00.000Z",
                        "status": "booked",
                    }
                ]
                if i % 3 == 0
                else [],
            )
        )
        users.append(user(20000 + i, i, "pull"))
        # 2. push: a contact with a task, edited from Connecteam
        contacts.append(
            contact(
                _gid("push", i),
                i,
                "push",
                tasks=[{"id": _gid("ut", i), "title": f"Old title {i}", "completed": False}],
            )
        )
        users.append(user(30000 + i, i, "push"))
        # 5. tag: a user whose profile names its contact
        contacts.append(contact(_gid("tag", i), i, "tag"))
        users.append(
            user(
                50000 + i, i, "tag", customFields=[{"customFieldId": 501, "value": _gid("tag", i)}]
            )
        )
        # 6. archive: a contact deleted in GoHighLevel, and the active user with its email
        contacts.append(contact(_gid("arch", i), i, "arch"))
        users.append(user(60000 + i, i, "arch"))
    return seed


def _events(flow: str) -> list[dict[str, Any]]:
    if flow == "pull-contact-on-select":
        return [{"contactId": _gid("pull", i), "userId": 20000 + i} for i in range(N)]
    if flow == "push-contact-edits":
        return [
            {
                "userId": 30000 + i,
                "contactId": _gid("push", i),
                "changes": {
                    "fullName": f"Renamed {i} Chaos-Edited",
                    "email": f"renamed{i}@chaos.example",
                    "tags": [f"vip-{i}"],
                },
                "tasks": [
                    {"taskId": _gid("ut", i), "title": f"New title {i}"},
                    {"taskId": _gid("ut", i), "completed": True},
                ],
            }
            for i in range(N)
        ]
    if flow == "create-contact-from-connecteam":
        return [
            {
                "userId": 40000 + i,
                "fullName": f"New{i} Person Chaos",
                **({"email": f"new{i}@chaos.example"} if i % 25 else {}),
                "phoneNumber": f"+1 555 4{i:06d}",
                "tags": [f"new-{i}"],
                "tasks": [{"title": f"Welcome {i}.{k}"} for k in range(i % 3)],
            }
            for i in range(N)
        ]
    if flow == "create-task-from-connecteam":
        return [
            {
                "taskId": f"ct-{i}",
                "taskBoardId": BOARD,
                "userId": 20000 + i,
                "contactId": _gid("nobody", i) if i % INVALID_EVERY == 7 else _gid("pull", i),
                "title": f"Chaos task {i}",
                "dueDate": "2024-03-20T16:00:00Z",
                "status": "published",
            }
            for i in range(N)
        ]
    if flow == "tag-contact-on-activity":
        return [
            {
                "requestId": f"req-{i}",
                "eventType": "task_completed",
                "data": [{"taskId": f"t-{i}", "taskBoardId": BOARD, "userIds": [50000 + i]}],
            }
            for i in range(N)
        ]
    assert flow == "archive-user-on-contact-delete"
    return [
        {
            "type": "ContactDelete",
            "locationId": LOCATION,
            "id": _gid("arch", i),
            "email": f"arch{i}@chaos.example",
        }
        for i in range(N)
    ]


def _invalid(flow: str, i: int) -> bool:
    return flow == "create-task-from-connecteam" and i % INVALID_EVERY == 7


# --- running ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningSandbox, Runtime]]:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    _scale_budgets(registry)
    home = tmp_path_factory.mktemp("chaos-home")
    with start_in_thread(seed=_seed(), limits=LIMITS) as sandbox:
        env = {
            **sandbox.env,
            "CONNECTOR_HOME": str(home),
            "CONNECTOR_RETRY_BASE_DELAY": "0.05",
            # up to 3 s between attempts (8 of them: about 10 s in all), so that a sandbox
            # starved of CPU for a few seconds by a parallel suite is waited for, as a real API
            # would be (the default waits up to 60 s)
            "CONNECTOR_RETRY_MAX_DELAY": "3",
        }
        LOCAL.post(
            f"{sandbox.url}/_sandbox/faults", json={"seed": 20261201, "specs": list(FAULTS)}
        ).raise_for_status()
        runtime = Runtime(registry, env)
        try:
            with runtime:
                yield sandbox, runtime
        finally:
            close_all()


def _scale_budgets(registry: Registry) -> None:
    """The runtime's budgets, at the sandbox's (scaled) limits."""
    scaled = {
        "ghl": ((LIMITS.ghl_burst_max, LIMITS.ghl_burst_interval_ms / 1000, "burst"),),
        "connecteam": ((LIMITS.connecteam_minute, 60.0, "minute"),),
    }
    for name, limits in scaled.items():
        app = registry.apps[name]
        registry.apps[name] = dataclasses.replace(
            app, rate_limits=limits + tuple(x for x in app.rate_limits if x[2] == "day")
        )


def _run_all(runtime: Runtime, flow: str) -> list[Any]:
    prepared = prepare(RECIPES / f"{flow}.yaml", runtime.registry)
    assert prepared.plan is not None, prepared.problems
    runtime.keep_recipe(prepared.plan, prepared.text)
    events = _events(flow)
    records: list[Any] = [None] * len(events)
    for start in range(0, len(events), AT_ONCE):
        handles = [
            (i, runtime.start(prepared.plan, events[i]))
            for i in range(start, min(start + AT_ONCE, len(events)))
        ]
        for i, handle in handles:
            handle.get_result()
            records[i] = runtime.store.get(handle.get_workflow_id())
    return records


def _state(sandbox: RunningSandbox) -> dict[str, Any]:
    return dict(LOCAL.get(f"{sandbox.url}/_sandbox/state", timeout=60).json())


def _settle_unknown_notes(
    runtime: Runtime, sandbox: RunningSandbox, records: list[Any], flow: str
) -> list[Any]:
    """What a person does with a run that stopped on a note of unknown outcome: look at the user's
    notes, say whether it is there (``runs settle``), and retry the run. Returns the final records.
    """
    final = list(records)
    for i, record in enumerate(records):
        if _invalid(flow, i):  # its look-up fails for good too: nothing to settle
            continue
        while record.status == "failed" and "outcome unknown" in (record.error or ""):
            step = next(s for s in record.steps if s.status == "failed")
            assert step.action == "connecteam.create-note", (flow, i, record.error)
            item = next(x for x in step.items or [step] if x.status == "failed")
            assert "check POST /connecteam/users/v1/users/" in item.error, item.error
            user_id = int(item.url.rsplit("/users/", 1)[1].split("/")[0])
            sent = item.request_body
            reply = LOCAL.get(f"{sandbox.url}/_sandbox/connecteam/users/{user_id}/notes")
            notes = reply.json()["notes"]
            there = [n for n in notes if n.get("title") == sent["title"]]
            assert len(there) <= 1, there  # never twice, even before anyone looked
            runtime.settle_writes(record.id, written=bool(there))
            SETTLED[flow] += 1
            record = runtime.rerun(record, None)
        final[i] = record
    return final


SETTLED: Counter[str] = Counter()  # notes settled by a person, per flow (printed with -s)


FLOWS = [
    "pull-contact-on-select",
    "push-contact-edits",
    "create-contact-from-connecteam",
    "create-task-from-connecteam",
    "tag-contact-on-activity",
    "archive-user-on-contact-delete",
]


@pytest.mark.parametrize("flow", FLOWS)
def test_every_event_has_its_full_effect_exactly_once(
    world: tuple[RunningSandbox, Runtime], flow: str
) -> None:
    sandbox, runtime = world
    records = _settle_unknown_notes(runtime, sandbox, _run_all(runtime, flow), flow)
    for i, record in enumerate(records):
        if _invalid(flow, i):
            assert record.status == "failed", (i, record.status)
            assert "Contact not found" in (record.error or "") or "HTTP 4" in (record.error or "")
        else:
            assert record.status == "succeeded", (flow, i, record.error)
    state = _state(sandbox)
    CHECKS[flow](state, runtime, records)
    fired = LOCAL.get(f"{sandbox.url}/_sandbox/faults").json()["fired"]
    assert sum(fired.values()) > 0  # the faults did happen
    # the budgets held: every throttled answer was an injected 429, none the sandbox's limiter
    THROTTLED[flow] = sum(_throttled(r) for r in records)
    assert sum(THROTTLED.values()) <= fired.get("429", 0), (dict(THROTTLED), fired)
    attempts = sum(_attempts(r) for r in records)
    print(
        f"\n{flow}: {len(records)} runs, {attempts} requests, faults so far {fired},"
        f" notes settled {SETTLED[flow]}"
    )


THROTTLED: Counter[str] = Counter()  # answers that said "too many requests", per flow


def _throttled(record: Any) -> int:
    units = [i for s in record.steps for i in (s.items or [s])]
    return sum(1 for u in units for w in u.waits if "429" in w["reason"] or "many" in w["reason"])


def _story(record: Any) -> list[Any]:
    """A run's steps as the record has them, for a failed assertion's message."""
    return [
        (
            s.id,
            s.status,
            s.attempts,
            s.waits,
            s.note,
            s.error,
            [(i.attempts, i.waits, i.note) for i in s.items or []],
        )
        for s in record.steps
    ]


def _attempts(record: Any) -> int:
    return sum(sum(i.attempts for i in s.items) if s.items else s.attempts for s in record.steps)


# --- what each flow must have done, read from the sandbox ----------------------------------------


def _contact(state: dict[str, Any], cid: str) -> dict[str, Any] | None:
    return next((c for c in state["ghl"]["contacts"] if c["id"] == cid), None)


def _user(state: dict[str, Any], uid: int) -> dict[str, Any]:
    return next(u for u in state["connecteam"]["users"] if u["userId"] == uid)


def _field(user: dict[str, Any], field_id: int) -> Any:
    return next(
        (f["value"] for f in user.get("customFields", []) if f["customFieldId"] == field_id), None
    )


def _check_pull(state: dict[str, Any], runtime: Runtime, records: list[Any]) -> None:
    seed = {c["id"]: c for c in _seed()["ghl"]["contacts"]}
    board = state["connecteam"]["tasks"][BOARD]
    for i in range(N):
        cid, uid = _gid("pull", i), 20000 + i
        source = seed[cid]
        user = _user(state, uid)
        assert _field(user, 501) == cid and _field(user, 502) == f"Pull Co {i}"
        notes = Counter(n["title"] for n in state["connecteam"]["notes"].get(str(uid), []))
        expected = Counter(n["title"] for n in source["notes"])
        expected.update(f"Appointment: {a['title']}" for a in source["appointments"])
        assert notes == expected, (i, notes, expected)
        tasks = Counter(t["title"] for t in board if uid in t["userIds"])
        assert tasks == Counter(t["title"] for t in source["tasks"]), (i, tasks)
        for t in source["tasks"]:
            link = runtime.links.get("task", ghl_id=t["id"])
            assert link is not None, (i, t["id"])
        assert runtime.links.get("contact", ghl_id=cid).connecteam_id == uid  # type: ignore[union-attr]


def _check_push(state: dict[str, Any], runtime: Runtime, records: list[Any]) -> None:
    for i in range(N):
        contact = _contact(state, _gid("push", i))
        assert contact is not None
        assert (contact["firstName"], contact["lastName"]) == (f"Renamed {i}", "Chaos-Edited")
        assert contact["email"] == f"renamed{i}@chaos.example"
        assert contact["tags"] == ["seeded", f"vip-{i}"], contact["tags"]
        [task] = state["ghl"]["tasks"][contact["id"]]
        assert (task["title"], task["completed"]) == (f"New title {i}", True)


def _check_create_contact(state: dict[str, Any], runtime: Runtime, records: list[Any]) -> None:
    made = Counter(c["firstName"] for c in state["ghl"]["contacts"] if c["lastName"] == "Chaos")
    for i in range(N):
        # one contact, never two
        assert made[f"New{i} Person"] == 1, (i, made[f"New{i} Person"], _story(records[i]))
        link = runtime.links.get("contact", connecteam_id=40000 + i)
        assert link is not None
        contact = _contact(state, link.ghl_id)
        assert contact is not None and contact["firstName"] == f"New{i} Person"
        assert contact["tags"] == [f"new-{i}", "connecteam"]
        assert contact["phone"] == f"+15554{i:06d}"
        tasks = Counter(t["title"] for t in state["ghl"]["tasks"].get(contact["id"], []))
        assert tasks == Counter(f"Welcome {i}.{k}" for k in range(i % 3)), (i, tasks)
        assert records[i].output["contact_id"] == contact["id"]


def _check_create_task(state: dict[str, Any], runtime: Runtime, records: list[Any]) -> None:
    everywhere = Counter(t["title"] for tasks in state["ghl"]["tasks"].values() for t in tasks)
    for i in range(N):
        title = f"Chaos task {i}"
        if _invalid("create-task-from-connecteam", i):
            assert everywhere[title] == 0
            assert runtime.links.get("task", connecteam_id=f"ct-{i}") is None
            continue
        [task] = [t for t in state["ghl"]["tasks"][_gid("pull", i)] if t["title"] == title]
        assert everywhere[title] == 1
        link = runtime.links.get("task", connecteam_id=f"ct-{i}")
        assert link is not None and link.ghl_id == task["id"]


def _check_tag(state: dict[str, Any], runtime: Runtime, records: list[Any]) -> None:
    for i in range(N):
        contact = _contact(state, _gid("tag", i))
        assert contact is not None
        assert contact["tags"] == ["seeded", "connecteam-task-completed"], contact["tags"]
        link = runtime.links.get("contact", connecteam_id=50000 + i)
        assert link is not None and link.ghl_id == contact["id"]


def _check_archive(state: dict[str, Any], runtime: Runtime, records: list[Any]) -> None:
    archived = {u["userId"] for u in state["connecteam"]["users"] if u.get("isArchived")}
    for i in range(N):
        assert 60000 + i in archived, i
        assert runtime.links.get("contact", connecteam_id=60000 + i) is None
    others = {u for u in archived if not 60000 <= u < 60000 + N}
    assert others == set(), others  # no one else


CHECKS = {
    "pull-contact-on-select": _check_pull,
    "push-contact-edits": _check_push,
    "create-contact-from-connecteam": _check_create_contact,
    "create-task-from-connecteam": _check_create_task,
    "tag-contact-on-activity": _check_tag,
    "archive-user-on-contact-delete": _check_archive,
}


def test_the_seed_has_distinct_people_for_every_flow() -> None:
    """The seed itself is sane: N distinct people per flow (a guard for the checks above)."""
    seed = _seed()
    ids = [c["id"] for c in seed["ghl"]["contacts"]]
    assert len(ids) == len(set(ids)) == 5 + 4 * N
    assert copy.deepcopy(seed) == _seed()  # reproducible
