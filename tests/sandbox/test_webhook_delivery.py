"""The sandbox's webhooks as the vendors send them, to a real HTTP receiver: Connecteam's
``/settings/v1/webhooks`` API and envelopes, both vendors' retries on the sandbox clock, and the
clock and body limits they rest on. Time is a fake clock moved by ``POST /_sandbox/clock``; waits
are ``flush()``, never sleeps."""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sandbox.webhook_receiver import Receiver, advance, check_schema, flush, register

from connector.builtins.ghl_signatures import WebhookKeys, verify_ghl
from connector.sandbox import RateLimitConfig, RetryPolicy, RunningSandbox, start_in_thread
from connector.sandbox.delivery import CONNECTEAM_RETRY, GHL_RETRY
from tests.runtime.e2e_support import LOCAL

if TYPE_CHECKING:
    from sandbox.fixtures import Conformance, FakeClock

pytest_plugins = ["sandbox.fixtures"]

LOC = "ve9EPM428h8vShlRW1KT"
ROSA = {"firstName": "Rosa", "lastName": "Diaz", "phoneNumber": "+15555550177", "userType": "user"}
SAM = {"firstName": "Sam", "lastName": "Okoro", "phoneNumber": "+15555550178", "userType": "user"}
TASK_KEYS = {"id", "taskBoardId", "title", "userIds", "status", "type", "startTime", "dueDate"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


# -- the clock --------------------------------------------------------------------------------


def test_clock_endpoint_reads_advances_and_refuses_bad_values(
    sandbox: RunningSandbox, clock: FakeClock
) -> None:
    assert LOCAL.get(f"{sandbox.url}/_sandbox/clock").json() == {"now": clock.now, "offset": 0.0}
    assert advance(sandbox, 30) == {"now": clock.now + 30, "offset": 30.0}
    assert advance(sandbox, 0.5)["offset"] == 30.5 and sandbox.state.now() == clock.now + 30.5
    for bad in ({"advance": -1}, {"advance": "10"}, {"advance": True}, {"later": 1}, [1]):
        r = LOCAL.post(f"{sandbox.url}/_sandbox/clock", json=bad)
        assert r.status_code == 400 and isinstance(r.json()["detail"], str), bad
    r = LOCAL.post(f"{sandbox.url}/_sandbox/clock", content=b"{nope")
    assert r.status_code == 400 and "detail" in r.json()
    assert sandbox.clock.offset == 30.5


def test_advancing_the_clock_rolls_rate_limit_windows(make_client: Any, clock: FakeClock) -> None:
    limits = RateLimitConfig(connecteam_minute=2, ghl_burst_max=1)
    with start_in_thread(clock=clock, limits=limits) as sb:
        ct = make_client(sb.env["CONNECTEAM_BASE_URL"], {"X-API-KEY": sb.env["CONNECTEAM_API_KEY"]})
        assert [ct.get("/users/v1/users").status_code for _ in range(3)] == [200, 200, 429]
        advance(sb, 60)
        assert ct.get("/users/v1/users").status_code == 200
        auth = {"Authorization": f"Bearer {sb.env['GHL_TOKEN']}", "Version": "2021-07-28"}
        ghl = make_client(sb.env["GHL_BASE_URL"], auth)
        assert [ghl.get("/contacts/", params={"locationId": LOC}).status_code for _ in "ab"] == [
            200,
            429,
        ]
        advance(sb, 10)
        assert ghl.get("/contacts/", params={"locationId": LOC}).status_code == 200


# -- Connecteam's registration API -------------------------------------------------------------


def test_webhook_registration_api(ct: httpx.Client, sandbox: RunningSandbox) -> None:
    made = register(ct, "https://hooks.example.com/ct", "users", ["user_created"])
    assert made["retryLimit"] == 3 and made["isDisabled"] is False and made["entityId"] is None
    assert made["timeCreated"] == int(sandbox.state.now()) and isinstance(made["id"], int)
    assert "secretKey" not in made
    local = register(ct, "http://127.0.0.1:9/x", "tasks", ["task_published", "task_completed"])
    register(ct, "http://localhost:9/y", "users", ["user_updated"])
    listed = ct.get("/settings/v1/webhooks", params={"featureType": "users", "limit": 1}).json()
    assert [w["id"] for w in listed["data"]["webhooks"]] == [made["id"]]
    assert listed["paging"] == {"offset": 1, "total": 2}
    assert listed["data"]["webhooks"][0]["origin"] == "organic"
    assert ct.get("/settings/v1/webhooks").json()["paging"]["total"] == 3
    assert ct.get(f"/settings/v1/webhooks/{local['id']}").json()["data"] == local
    changed = {"isDisabled": True, "eventTypes": ["task_completed"], "name": None}
    put = ct.put(f"/settings/v1/webhooks/{local['id']}", json=changed).json()["data"]
    assert put["isDisabled"] is True and put["eventTypes"] == ["task_completed"]
    assert put["name"] == local["name"]  # null leaves a field as it is
    assert ct.delete(f"/settings/v1/webhooks/{local['id']}").json()["data"] == {}
    assert ct.get(f"/settings/v1/webhooks/{local['id']}").status_code == 404
    assert ct.delete(f"/settings/v1/webhooks/{local['id']}").status_code == 404
    assert ct.get("/settings/v1/webhooks/abc").status_code == 422


@pytest.mark.parametrize(
    ("change", "loc", "kind"),
    [
        ({"name": None}, ["body", "name"], "value_error.missing"),
        ({"eventTypes": None}, ["body", "eventTypes"], "value_error.missing"),
        ({"url": "http://hooks.example.com/ct"}, ["body", "url"], "value_error.url.scheme"),
        ({"url": "hooks.example.com"}, ["body", "url"], "value_error.url.scheme"),
        ({"featureType": "payroll"}, ["body", "featureType"], "type_error.enum"),
        ({"eventTypes": []}, ["body", "eventTypes"], "value_error"),
    ],
)
def test_webhook_registration_is_validated(
    ct: httpx.Client, change: dict[str, Any], loc: list[str], kind: str
) -> None:
    spec = {"name": "n", "url": "https://h.example.com", "featureType": "users"}
    spec = {
        k: v for k, v in {**spec, "eventTypes": ["user_created"], **change}.items() if v is not None
    }
    r = ct.post("/settings/v1/webhooks", json=spec)
    assert r.status_code == 422
    assert {(tuple(d["loc"]), d["type"]) for d in r.json()["detail"]} == {(tuple(loc), kind)}
    assert ct.get("/settings/v1/webhooks").json()["paging"]["total"] == 0


def test_python_registration(sandbox: RunningSandbox, receiver: Receiver) -> None:
    hooks = sandbox.app.connecteam_webhooks
    made = hooks.register(receiver.url, "users", ["user_created"])
    assert hooks.registered() == [made]
    with pytest.raises(ValueError, match="url"):
        hooks.register("http://hooks.example.com/", "users", ["user_created"])
    with pytest.raises(ValueError, match="eventTypes"):
        hooks.register(receiver.url, "users", [])
    listed = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks").json()["connecteam"]
    assert [w["id"] for w in listed] == [made["id"]]
    assert hooks.unregister(made["id"]) and not hooks.unregister(made["id"])


# -- Connecteam's deliveries ------------------------------------------------------------------


def test_user_webhooks_in_connecteams_envelope(
    ct: httpx.Client, sandbox: RunningSandbox, receiver: Receiver, conformance: Conformance
) -> None:
    register(ct, receiver.url, "users", ["user_created", "user_updated", "user_archived"])
    register(ct, receiver.url, "users", ["user_restored", "user_deleted"])
    disabled = register(ct, receiver.url, "users", ["user_created"])
    ct.put(f"/settings/v1/webhooks/{disabled['id']}", json={"isDisabled": True})
    register(ct, receiver.url, "tasks", ["task_published"])
    created = ct.post("/users/v1/users", json=[ROSA, SAM]).json()["data"]["results"]
    flush(sandbox)
    [envelope] = receiver.bodies()  # one webhook for the whole call, to the one matching hook
    check_schema(conformance, "UsersChangedWebhookResponse", envelope)
    now = int(sandbox.state.now())
    assert envelope["company"] == "5e2b8c0d-sandbox-company" and envelope["activityType"] == "User"
    assert envelope["eventType"] == "user_created"
    assert envelope["eventTimestamp"] == envelope["evnetTimestamp"] == now
    assert envelope["data"] == created and created[0]["createdAt"] == now
    assert receiver.got[0][0]["content-type"] == "application/json"

    advance(sandbox, 5)
    rosa, sam = created[0]["userId"], created[1]["userId"]
    edits = [{"userId": rosa, "lastName": "Díaz"}, {"userId": sam, "lastName": "Okoro"}]
    shown = ct.put("/users/v1/users", json=edits).json()["data"]["users"]
    assert shown[1]["modifiedAt"] == now  # nothing changed: not modified
    ct.put("/users/v1/users", json=[{"userId": sam, "firstName": "Sam"}])  # changes nothing
    flush(sandbox)
    updated = receiver.bodies()[1:]
    assert [e["eventType"] for e in updated] == ["user_updated"]
    assert updated[0]["data"] == [shown[0]] and shown[0]["modifiedAt"] == now + 5
    assert updated[0]["requestId"] != envelope["requestId"]

    ct.request("DELETE", "/users/v1/users", json=[rosa, sam])
    ct.request("DELETE", "/users/v1/users", json=[rosa])  # already archived: nothing
    ct.put("/users/v1/users", json=[{"userId": sam, "isArchived": False}])
    ct.delete(f"/users/v1/users/{rosa}", params={"deletionType": "delete"})
    flush(sandbox)
    later = receiver.bodies()[2:]
    assert [(e["eventType"], e["data"]) for e in later] == [
        ("user_archived", [{"userId": rosa}, {"userId": sam}]),
        ("user_restored", [{"userId": sam}]),
        ("user_deleted", [{"userId": rosa}]),
    ]
    for e in later:
        check_schema(conformance, "UserIdWebhookResponse", e)


def test_task_webhooks(
    ct: httpx.Client, sandbox: RunningSandbox, receiver: Receiver, conformance: Conformance
) -> None:
    register(ct, receiver.url, "tasks", ["task_published", "task_completed"])
    other = {"name": "b", "url": receiver.url, "featureType": "tasks", "entityId": "7002"}
    ct.post("/settings/v1/webhooks", json={**other, "eventTypes": ["task_published"]})
    task = {
        "userIds": [9001],
        "status": "published",
        "title": "Bring samples",
        "startTime": 1767225600,
        "dueDate": 1767312000,
        "description": {"content": "Two boxes"},
    }
    made = ct.post("/tasks/v1/taskboards/7001/tasks", json=task).json()["data"]
    draft = ct.post("/tasks/v1/taskboards/7001/tasks", json={**task, "status": "draft"}).json()
    flush(sandbox)
    [published] = receiver.bodies()
    check_schema(conformance, "TaskChangedWebhookResponse", published)
    assert published["activityType"] == "Task" and published["eventType"] == "task_published"
    [item] = published["data"]
    assert set(item) == TASK_KEYS | {"labelIds", "isArchived"}  # no description
    assert item["id"] == made["id"] and item["taskBoardId"] == 7001
    assert (item["title"], item["userIds"], item["status"]) == (
        "Bring samples",
        [9001],
        "published",
    )
    assert (item["startTime"], item["dueDate"], item["type"]) == (1767225600, 1767312000, "oneTime")
    assert item["labelIds"] == [] and item["isArchived"] is False

    tid = draft["data"]["id"]
    ct.put(f"/tasks/v1/taskboards/7001/tasks/{tid}", json=task)  # draft -> published
    ct.put(f"/tasks/v1/taskboards/7001/tasks/{tid}", json={**task, "status": "completed"})
    ct.put(f"/tasks/v1/taskboards/7001/tasks/{tid}", json={**task, "status": "completed"})
    ct.put(f"/tasks/v1/taskboards/7001/tasks/{made['id']}", json={**task, "title": "Renamed"})
    flush(sandbox)
    events = receiver.bodies()[1:]
    assert [(e["eventType"], e["data"][0]["id"]) for e in events] == [
        ("task_published", tid),
        ("task_completed", tid),
    ]
    assert events[1]["data"][0]["status"] == "completed"


def test_connecteam_retries_three_times_60_seconds_apart(
    ct: httpx.Client, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.fail_first = 99
    register(ct, receiver.url, "users", ["user_created"])
    ct.post("/users/v1/users", json=[ROSA])
    flush(sandbox)
    start = sandbox.state.now()
    assert len(receiver.got) == 1
    [pending] = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks").json()["pending"]
    assert pending["due"] == start + 60 and pending["attempt"] == 2
    advance(sandbox, 59)
    flush(sandbox)
    assert len(receiver.got) == 1  # not before the clock says so
    for n in (2, 3, 4, 4):
        advance(sandbox, 60 if n > 2 else 1)
        flush(sandbox)
        assert len(receiver.got) == n
    raws = {raw for _, raw in receiver.got}
    assert len(raws) == 1  # the same body, so the same requestId, on every attempt
    request_id = receiver.bodies()[0]["requestId"]
    log = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks").json()
    sent = [e for e in log["sent"] if e["vendor"] == "connecteam"]
    assert [(e["attempt"], e["status"], e["deliveryId"]) for e in sent] == [
        (n, 500, request_id) for n in (1, 2, 3, 4)
    ]
    assert [e["time"] - start for e in sent] == [0, 60, 120, 180]
    assert sent[0]["event"] == "user_created" and sent[0]["url"] == receiver.url
    assert "nextAttemptAt" not in sent[-1] and log["pending"] == []
    assert CONNECTEAM_RETRY.retries == 3


def test_connecteam_delivery_stops_at_the_first_success(
    ct: httpx.Client, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.fail_first = 1
    register(ct, receiver.url, "users", ["user_created"])
    ct.post("/users/v1/users", json=[ROSA])
    for _ in range(3):
        flush(sandbox)
        advance(sandbox, 60)
    flush(sandbox)
    assert len(receiver.got) == 2
    assert LOCAL.get(f"{sandbox.url}/_sandbox/webhooks").json()["pending"] == []


# -- GoHighLevel's retries ---------------------------------------------------------------------


def _keys(sb: RunningSandbox) -> WebhookKeys:
    both = LOCAL.get(f"{sb.url}/_sandbox/webhooks/public-keys").json()
    env = {"GHL_WEBHOOK_PUBLIC_KEY": both["ed25519"], "GHL_WEBHOOK_RSA_PUBLIC_KEY": both["rsa"]}
    return WebhookKeys.from_env(env)


def _contact(make_client: Any, sb: RunningSandbox) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {sb.env['GHL_TOKEN']}", "Version": "2021-07-28"}
    with make_client(sb.env["GHL_BASE_URL"], auth) as ghl:
        r = ghl.post("/contacts/", json={"locationId": LOC, "firstName": "Hooked"})
        assert r.status_code == 201
        contact: dict[str, Any] = r.json()["contact"]
        return contact


def test_ghl_retries_with_backoff_on_500(
    ghl: httpx.Client, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    receiver.fail_first = 3
    LOCAL.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": receiver.url})
    made = ghl.post("/contacts/", json={"locationId": LOC, "firstName": "Hooked"}).json()
    flush(sandbox)
    for _ in range(3):
        [pending] = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks").json()["pending"]
        advance(sandbox, pending["due"] - sandbox.state.now())
        flush(sandbox)
    assert len(receiver.got) == 4
    sent = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks").json()["sent"]
    assert [(e["vendor"], e["event"], e["status"]) for e in sent] == [
        ("ghl", "ContactCreate", s) for s in (500, 500, 500, 200)
    ]
    waits = [e["nextAttemptAt"] - e["time"] for e in sent[:3]]
    for n, wait in enumerate(waits, 1):  # 5 s doubling, up to half of it off at random
        assert 5 * 2 ** (n - 1) * 0.5 <= wait <= 5 * 2 ** (n - 1)
    assert len({raw for _, raw in receiver.got}) == 1
    body = receiver.bodies()[0]
    assert body["id"] == made["contact"]["id"]
    assert {e["deliveryId"] for e in sent} == {body["webhookId"]}
    keys = _keys(sandbox)
    signatures = {(h["x-ghl-signature"], h["x-wh-signature"]) for h, _ in receiver.got}
    assert len(signatures) == 1
    for headers, raw in receiver.got:
        assert verify_ghl(raw, headers, keys) == "ed25519"
        assert verify_ghl(raw, {"x-wh-signature": headers["x-wh-signature"]}, keys) == "rsa"


def test_ghl_retries_a_refused_connection_until_the_receiver_is_up(
    make_client: Any, clock: FakeClock
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = RetryPolicy(retries=2, base=1.0, cap=1.0)
    url = f"http://127.0.0.1:{port}/hook"
    with start_in_thread(clock=clock, webhook_url=url, ghl_retry=policy) as sb:
        _contact(make_client, sb)
        flush(sb)
        [first] = sb.app.webhooks.log()
        assert first["error"] == "ConnectError" and first["nextAttemptAt"] == first["time"] + 1
        receiver = Receiver(port=port)
        try:
            advance(sb, 1)
            flush(sb)
            [(headers, raw)] = receiver.got
            assert verify_ghl(raw, headers, _keys(sb)) == "ed25519"
            assert json.loads(raw)["webhookId"] == first["deliveryId"]
        finally:
            receiver.close()


def test_ghl_gives_up_after_its_retries(make_client: Any, clock: FakeClock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    with start_in_thread(
        clock=clock, webhook_url=url, ghl_retry=RetryPolicy(retries=2, base=1.0, cap=2.0)
    ) as sb:
        _contact(make_client, sb)
        for _ in range(4):
            flush(sb)
            advance(sb, 2)
        flush(sb)
        log = sb.app.webhooks.log()
        assert [e["attempt"] for e in log] == [1, 2, 3] and len({e["deliveryId"] for e in log}) == 1
        assert [e["nextAttemptAt"] - e["time"] for e in log[:2]] == [1.0, 2.0]
    delays = [GHL_RETRY.delay(n, random.Random(1)) for n in range(1, 13)]
    assert GHL_RETRY.retries == 12 and all(300 <= d <= 600 for d in delays[7:])


# -- bounded bodies ----------------------------------------------------------------------------


def _chunks(raw: bytes) -> Iterator[bytes]:
    for i in range(0, len(raw), 65536):
        yield raw[i : i + 65536]


def test_bodies_over_1_mib_are_413_on_both_vendors(ghl: httpx.Client, ct: httpx.Client) -> None:
    big = json.dumps({"locationId": LOC, "firstName": "x" * (1024 * 1024)}).encode()
    for body in (big, _chunks(big)):
        r = ghl.post("/contacts/", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["statusCode"] == 413
        assert r.json()["error"] == "Payload Too Large"
    for body in (big, _chunks(big)):
        r = ct.post("/users/v1/users", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "too large" in r.json()["detail"]
    assert ghl.get("/contacts/", params={"locationId": LOC}).status_code == 200


def test_json_nested_past_32_levels_is_400_on_both_vendors(
    ghl: httpx.Client, ct: httpx.Client, sandbox: RunningSandbox
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = ghl.post("/contacts/", content=deep, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "nested" in r.json()["message"]
    r = ct.post("/users/v1/users", content=deep)
    assert r.status_code == 400 and "nested" in r.json()["detail"]
    r = LOCAL.post(f"{sandbox.url}/_sandbox/clock", content=deep)
    assert r.status_code == 400
    shallow = json.dumps({"locationId": LOC, "firstName": "[[[[" * 20, "x": [[[[[]]]]]})
    r = ghl.post("/contacts/", content=shallow)  # brackets in strings do not count
    assert r.status_code == 422 and "property x should not exist" in r.json()["message"]


def test_held_deliveries_wait_then_come_some_twice_and_late(
    ghl: httpx.Client, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    LOCAL.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": receiver.url})
    dispatcher = sandbox.app.webhooks.dispatcher
    dispatcher.disorder(twice=0.5, late=0.5, spread=10.0, seed=3)
    dispatcher.hold()
    made = [
        ghl.post("/contacts/", json={"locationId": LOC, "firstName": f"Held{n}"}).json()
        for n in range(12)
    ]
    assert not dispatcher.flush(0.3)  # held: due, and not sent
    assert receiver.got == []
    dispatcher.hold(False)
    advance(sandbox, 10)
    flush(sandbox)
    got = [b["id"] for b in receiver.bodies()]
    ids = [m["contact"]["id"] for m in made]
    assert set(got) == set(ids)  # every one came
    assert len(got) > len(ids)  # some twice, with the same webhookId
    assert got != sorted(got, key=ids.index)  # and not in the order they were made
    bodies = receiver.bodies()
    for twice in {i for i in got if got.count(i) > 1}:  # a copy: the same delivery again
        assert len({b["webhookId"] for b in bodies if b["id"] == twice}) == 1
    dispatcher.disorder()


def test_a_fresh_copy_is_the_same_news_under_a_new_webhook_id(
    ghl: httpx.Client, sandbox: RunningSandbox, receiver: Receiver
) -> None:
    LOCAL.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": receiver.url})
    dispatcher = sandbox.app.webhooks.dispatcher
    dispatcher.disorder(twice=1.0, fresh=True)
    made = ghl.post("/contacts/", json={"locationId": LOC, "firstName": "Twice"}).json()
    flush(sandbox)
    dispatcher.disorder()
    first, second = receiver.bodies()
    assert first["id"] == second["id"] == made["contact"]["id"]
    assert first["webhookId"] != second["webhookId"]
    keys = _keys(sandbox)
    for headers, raw in receiver.got:  # each signed as it is
        assert verify_ghl(raw, headers, keys) == "ed25519"
