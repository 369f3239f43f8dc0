"""`connector serve` end to end, over real HTTP: the sandbox's own webhooks (signed, in each
vendor's envelope) reach a served process, which runs the shipped recipes on the durable queue.
Every claim is checked by the state of both systems afterwards, not by the runs' reports."""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.runtime.e2e_support import LOCAL
from tests.serve.conftest import HOOK_TOKEN, Served, wait_for

CONTACT = "ocQHyuzHvysMo5N5VsXc"  # the seed's contact paired (custom field 501) with user 9001
USER = 9001


def _state(served: Served) -> dict[str, Any]:
    return dict(LOCAL.get(f"{served.sandbox.url}/_sandbox/state").json())


def _ct_user(served: Served, user_id: int = USER) -> dict[str, Any]:
    [user] = [u for u in _state(served)["connecteam"]["users"] if u["userId"] == user_id]
    return dict(user)


def _contact(served: Served, contact_id: str = CONTACT) -> dict[str, Any]:
    [contact] = [c for c in _state(served)["ghl"]["contacts"] if c["id"] == contact_id]
    return dict(contact)


def _ghl_tasks(served: Served) -> list[dict[str, Any]]:
    return [t for tasks in _state(served)["ghl"]["tasks"].values() for t in tasks]


def _sign(served: Served, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    key = served.sandbox.app.webhooks._ed25519  # the sandbox's signing key, to make test bodies
    return raw, {
        "content-type": "application/json",
        "x-ghl-signature": base64.b64encode(key.sign(raw)).decode(),
    }


def _ghl_body(served: Served, **fields: Any) -> dict[str, Any]:
    now = datetime.fromtimestamp(served.sandbox.app.clock(), UTC)
    return {
        "type": "ContactDelete",
        "locationId": served.sandbox.env["GHL_LOCATION_ID"],
        "id": "nmFmQEsNgz6AVpgLVUJ0",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "webhookId": str(uuid.uuid4()),
        **fields,
    }


def _metric(served: Served, line_start: str) -> float:
    text = LOCAL.get(f"{served.url}/metrics").text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(line_start):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- GoHighLevel ----------------------------------------------------------------------------------


def test_a_signed_contact_delete_archives_the_user(serve_with: Any) -> None:
    served = serve_with()
    with served.ghl() as ghl:
        assert ghl.delete(f"contacts/{CONTACT}").status_code == 200
    wait_for(lambda: served.runs("archive-user-on-contact-delete"))
    runs = served.settled()
    [run] = [r for r in runs if r.recipe == "archive-user-on-contact-delete"]
    assert run.status == "succeeded", run.error
    user = _ct_user(served)
    assert user["isArchived"] is True


def test_forged_unsigned_stale_and_replayed_webhooks_run_nothing(serve_with: Any) -> None:
    served = serve_with(wire=False)
    url = f"{served.url}/webhooks/ghl"
    body = _ghl_body(served)
    raw, headers = _sign(served, body)
    # forged: the signature of other bytes
    forged = {
        **headers,
        "x-ghl-signature": _sign(served, {**body, "id": "x"})[1]["x-ghl-signature"],
    }
    assert LOCAL.post(url, content=raw, headers=forged).status_code == 401
    # unsigned (and a legacy header that is not a signature)
    assert (
        LOCAL.post(url, content=raw, headers={"content-type": "application/json"}).status_code
        == 401
    )
    assert LOCAL.post(url, content=raw, headers={"x-wh-signature": "bm9wZQ=="}).status_code == 401
    # stale: signed, but from 10 minutes ago
    old = datetime.fromtimestamp(served.sandbox.app.clock(), UTC) - timedelta(minutes=10)
    stale_raw, stale_headers = _sign(served, {**body, "timestamp": old.isoformat()})
    answer = LOCAL.post(url, content=stale_raw, headers=stale_headers)
    assert answer.status_code == 400 and "timestamp" in answer.json()["error"]
    time.sleep(0.5)
    assert served.runs() == []
    # the genuine one runs once; the same delivery again is acknowledged and runs nothing
    first = LOCAL.post(url, content=raw, headers=headers)
    assert first.status_code == 200 and len(first.json()["runs"]) == 1
    again = LOCAL.post(url, content=raw, headers=headers)
    assert again.status_code == 200 and again.json() == {"runs": [], "duplicate": True}
    runs = served.settled()
    assert [r.recipe for r in runs] == ["archive-user-on-contact-delete"]
    assert _metric(served, 'connector_events_refused_total{reason="signature",source="ghl"}') == 3
    assert _metric(served, 'connector_events_refused_total{reason="stale",source="ghl"}') == 1
    assert _metric(served, 'connector_events_refused_total{reason="duplicate",source="ghl"}') == 1


def test_bad_bodies_get_400_or_413_never_500(serve_with: Any) -> None:
    served = serve_with(wire=False)
    secret = served.secret
    hook = {"authorization": f"Bearer {HOOK_TOKEN}"}
    for path, headers in (
        ("/webhooks/connecteam/" + secret, {}),
        ("/hooks/pull-contact-on-select", hook),
    ):
        big = b'{"a":"' + b"x" * (1024 * 1024 + 1) + b'"}'
        assert LOCAL.post(served.url + path, content=big, headers=headers).status_code == 413
        deep = b"[" * 100_000 + b"]" * 100_000
        assert LOCAL.post(served.url + path, content=deep, headers=headers).status_code == 400
        broken = LOCAL.post(served.url + path, content=b'{"a": ', headers=headers)
        assert broken.status_code == 400 and "line 1" in broken.json()["error"]
        assert LOCAL.post(served.url + path, content=b"[1]", headers=headers).status_code == 400
    # a body too big for GoHighLevel's route is refused before its signature is looked at
    big = b"x" * (1024 * 1024 + 10)
    assert LOCAL.post(served.url + "/webhooks/ghl", content=big).status_code == 413
    assert served.runs() == []


# --- Connecteam -----------------------------------------------------------------------------------


def _new_user(served: Served, email: str) -> int:
    with served.connecteam() as ct:
        answer = ct.post(
            "users/v1/users",
            json=[
                {
                    "firstName": "Mary Ann",
                    "lastName": "van der Berg",
                    "email": email,
                    "phoneNumber": "+15555550144",
                    "userType": "user",
                }
            ],
        )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["results"][0]["userId"])


def _contacts_with(served: Served, email: str) -> list[dict[str, Any]]:
    contacts = _state(served)["ghl"]["contacts"]
    return [c for c in contacts if str(c.get("email") or "").lower() == email.lower()]


def test_a_new_connecteam_user_becomes_a_contact(serve_with: Any) -> None:
    served = serve_with()
    user_id = _new_user(served, "maryann@bakery.example")
    wait_for(lambda: _contacts_with(served, "maryann@bakery.example"))
    runs = served.settled()
    [contact] = _contacts_with(served, "maryann@bakery.example")
    assert (contact["firstName"], contact["lastName"]) == ("Mary Ann", "van der Berg")
    created = [r for r in runs if r.recipe == "create-contact-from-connecteam"]
    assert [r.status for r in created] == ["succeeded"]
    assert created[0].trigger["data"]["userId"] == user_id


def test_a_published_task_becomes_a_ghl_task(serve_with: Any) -> None:
    served = serve_with()
    with served.connecteam() as ct:
        answer = ct.post(
            "tasks/v1/taskboards/7001/tasks",
            json={"title": "Fix the gate", "status": "published", "userIds": [USER]},
        )
    assert answer.status_code in (200, 201), answer.text

    def made() -> list[dict[str, Any]]:
        return [t for t in _ghl_tasks(served) if t.get("title") == "Fix the gate"]

    wait_for(made)
    served.settled()
    [task] = made()
    assert task["contactId"] == CONTACT


def test_a_connecteam_delivery_twice_has_one_effect(serve_with: Any) -> None:
    served = serve_with(wire=False)
    envelope = {
        "requestId": str(uuid.uuid4()),
        "company": "sunrise-dental",
        "activityType": "User",
        "eventType": "user_created",
        "eventTimestamp": int(time.time()),
        "data": [
            {
                "userId": 777001,
                "firstName": "Ada",
                "lastName": "Lovelace",
                "email": "ada@x.example",
            },
            {
                "userId": 777002,
                "firstName": "Alan",
                "lastName": "Turing",
                "email": "alan@x.example",
            },
        ],
    }
    url = f"{served.url}/webhooks/connecteam/{served.secret}"
    first = LOCAL.post(url, json=envelope)
    assert first.status_code == 200 and len(first.json()["runs"]) == 2
    assert LOCAL.post(url, json=envelope).json() == {"runs": [], "duplicate": True}
    # a wrong secret is a 404 and runs nothing
    assert LOCAL.post(f"{served.url}/webhooks/connecteam/nope", json=envelope).status_code == 404
    served.settled()
    assert len(_contacts_with(served, "ada@x.example")) == 1
    assert len(_contacts_with(served, "alan@x.example")) == 1
    assert len(served.runs("create-contact-from-connecteam")) == 2


# --- hooks ----------------------------------------------------------------------------------------


def test_hooks_need_the_token_and_a_known_recipe(serve_with: Any) -> None:
    served = serve_with()
    url = f"{served.url}/hooks/pull-contact-on-select"
    event = {"contactId": CONTACT, "userId": USER}
    assert LOCAL.post(url, json=event).status_code == 401
    assert LOCAL.post(url, json=event, headers={"authorization": "Bearer wrong"}).status_code == 401
    good = {"authorization": f"Bearer {HOOK_TOKEN}", "idempotency-key": "select-1"}
    unknown = LOCAL.post(f"{served.url}/hooks/no-such-recipe", json=event, headers=good)
    assert unknown.status_code == 404
    answer = LOCAL.post(url, json=event, headers=good)
    assert answer.status_code == 202
    run_id = answer.json()["run_id"]
    # the same Idempotency-Key is the same run
    assert LOCAL.post(url, json=event, headers=good).json()["run_id"] == run_id
    runs = served.settled()
    pulled = [r for r in runs if r.recipe == "pull-contact-on-select"]
    assert [(r.id, r.status) for r in pulled] == [(run_id, "succeeded")]
    notes = LOCAL.get(f"{served.sandbox.url}/_sandbox/connecteam/users/{USER}/notes").json()
    assert len(notes) >= 1
    # flow 1 wrote the user's custom fields (as they were: Connecteam reports no change)
    assert served.runs("push-contact-edits") == []


# --- both directions without echoes ---------------------------------------------------------------


def test_flow_2_then_flow_7_does_not_loop(serve_with: Any) -> None:
    served = serve_with()
    # an edit in Connecteam: flow 2 writes it to GoHighLevel, whose ContactUpdate is its echo
    with served.connecteam() as ct:
        answer = ct.put("users/v1/users", json=[{"userId": USER, "lastName": "Avery-Lee"}])
    assert answer.status_code == 200, answer.text
    wait_for(lambda: served.runs("push-contact-edits"))
    runs = served.settled()
    contact = _contact(served)
    assert contact["lastName"] == "Avery-Lee"
    assert [r.status for r in runs if r.recipe == "push-contact-edits"] == ["succeeded"]
    assert served.runs("sync-contact-to-connecteam") == []
    assert _metric(served, 'connector_events_refused_total{reason="echo"') >= 1
    # a person's edit in GoHighLevel afterwards is not an echo: flow 7 takes it to Connecteam,
    # and that write's user_updated does not come back to flow 2
    with served.ghl() as ghl:
        assert ghl.put(f"contacts/{CONTACT}", json={"firstName": "Jordy"}).status_code == 200
    wait_for(lambda: served.runs("sync-contact-to-connecteam"))
    runs = served.settled()
    assert [r.status for r in runs if r.recipe == "sync-contact-to-connecteam"] == ["succeeded"]
    assert len([r for r in runs if r.recipe == "push-contact-edits"]) == 1
    assert _ct_user(served)["firstName"] == "Jordy"


# --- polls and schedules --------------------------------------------------------------------------


def test_a_poll_finds_a_change_that_sent_no_webhook_and_never_repeats_it(serve_with: Any) -> None:
    served = serve_with(wire=False)  # no webhooks at all
    [poller] = [p for p in served.service.pollers if p.plan.name == "sync-contact-to-connecteam"]
    assert poller.poll() == []  # the first poll starts the cursor
    served.sandbox.app.clock.advance(2)
    with served.ghl() as ghl:
        assert ghl.put(f"contacts/{CONTACT}", json={"lastName": "Polled"}).status_code == 200
    first = poller.poll()
    assert len(first) == 1
    served.settled()
    assert _ct_user(served)["lastName"] == "Polled"
    # polled again (the overlap window covers it): the same change is the same run
    assert poller.poll() == first or poller.poll() == []
    served.settled()
    assert len(served.runs("sync-contact-to-connecteam")) == 1


def test_a_schedule_fires_once_per_due_time(serve_with: Any, tmp_path: Path) -> None:
    recipe = tmp_path / "tick.yaml"
    recipe.write_text(
        "name: tick\n"
        "trigger: {app: schedule, event: cron, cron: '* * * * * *'}\n"
        "steps:\n"
        "  - id: contact\n"
        "    action: ghl.get-contact\n"
        f"    with: {{contactId: {CONTACT}}}\n"
    )
    served = serve_with(recipe, wire=False)
    wait_for(lambda: len(served.runs("tick")) >= 2, timeout=30)
    served.service.stop()
    served.thread.join(timeout=30)
    runs = served.runs("tick")
    times = [r.trigger["scheduledAt"] for r in runs]
    assert len(times) == len(set(times))
    assert all(r.status == "succeeded" for r in runs)


def test_a_task_edit_in_connecteam_reaches_the_paired_ghl_task_by_polling(serve_with: Any) -> None:
    served = serve_with()
    [poller] = [p for p in served.service.pollers if p.plan.name == "push-task-edits"]
    assert poller.poll() == []  # the first poll only looks
    with served.connecteam() as ct:
        made = ct.post(
            "tasks/v1/taskboards/7001/tasks",
            json={"title": "Paint the fence", "status": "published", "userIds": [USER]},
        )
        task_id = made.json()["data"]["id"]

        def ghl_task() -> list[dict[str, Any]]:
            return [t for t in _ghl_tasks(served) if t.get("title", "").startswith("Paint the")]

        wait_for(ghl_task)  # flow 4 made the GHL task and paired the two
        served.settled()
        assert poller.poll() == []  # a new task is task_published's, not an edit
        edit = {"title": "Paint the fence white", "status": "completed", "userIds": [USER]}
        assert ct.put(f"tasks/v1/taskboards/7001/tasks/{task_id}", json=edit).status_code == 200
    [run_id] = poller.poll()
    served.settled()
    [task] = ghl_task()
    assert (task["title"], task["completed"]) == ("Paint the fence white", True)
    [run] = served.runs("push-task-edits")
    assert run.id == run_id and run.status == "succeeded", run.error
    assert sorted(run.trigger["changed"]) == ["status", "title"]
    assert poller.poll() == []  # seen: never again
    assert len(served.runs("push-task-edits")) == 1


def test_updates_to_one_contact_run_in_the_order_they_arrived(serve_with: Any) -> None:
    served = serve_with(wire=False)
    url = f"{served.url}/webhooks/ghl"
    contact = _contact(served)
    for i in range(12):  # a burst of edits: each must land after the one before it
        body = _ghl_body(
            served,
            type="ContactUpdate",
            id=CONTACT,
            firstName=contact["firstName"],
            lastName=f"Version {i}",
            email=contact["email"],
        )
        raw, headers = _sign(served, body)
        assert LOCAL.post(url, content=raw, headers=headers).status_code == 200
    runs = served.settled()
    synced = sorted(
        (r for r in runs if r.recipe == "sync-contact-to-connecteam"), key=lambda r: r.started_at
    )
    assert [r.trigger["lastName"] for r in synced] == [f"Version {i}" for i in range(12)]
    assert all(r.status == "succeeded" for r in synced)
    for before, after in itertools.pairwise(synced):
        assert before.finished_at is not None and before.finished_at <= after.started_at
    assert _ct_user(served)["lastName"] == "Version 11"


# --- the story in the log -------------------------------------------------------------------------


def test_the_json_log_tells_a_failing_runs_story_with_its_id(
    serve_with: Any, database: dict[str, str]
) -> None:
    """`serve --log-format json`: every line parses; the run's start (recipe, event, subject),
    its wait before the retry (status, what the vendor said, attempt n of m, how long) and its
    end carry the run's id; no token is written."""
    import io
    import logging

    from connector.serve.logs import configure

    root = logging.getLogger()
    kept = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure("INFO", "json", stream)
    database.update(CONNECTOR_RETRY_ATTEMPTS="2", CONNECTOR_RETRY_BASE_DELAY="0.05")
    try:
        served = serve_with()
        LOCAL.post(
            f"{served.sandbox.url}/_sandbox/faults",
            json={"seed": 1, "specs": [f"503:1,path=/ghl/contacts/{CONTACT}/tasks,method=GET"]},
        ).raise_for_status()
        answer = LOCAL.post(
            f"{served.url}/hooks/pull-contact-on-select",
            json={"contactId": CONTACT, "userId": USER},
            headers={"authorization": f"Bearer {HOOK_TOKEN}"},
        )
        run_id = answer.json()["run_id"]
        wait_for(lambda: "status=failed" in stream.getvalue())
    finally:
        root.handlers[:] = kept[0]
        root.setLevel(kept[1])
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    mine = [line["message"] for line in lines if line.get("run_id") == run_id]
    assert any(
        m.startswith(f"run {run_id} started: recipe=pull-contact-on-select")
        and f"subject=contactId={CONTACT}" in m
        for m in mine
    ), mine
    waits = [m for m in mine if " waits " in m]
    assert waits and "HTTP 503 from GoHighLevel: Service Unavailable" in waits[0]
    assert "attempt 2 of 2" in waits[0]
    ended = [m for m in mine if "status=failed" in m]
    assert ended and "HTTP 503 from GoHighLevel: Service Unavailable" in ended[0]
    assert served.sandbox.env["GHL_TOKEN"] not in text


# --- one run history for the sandbox --------------------------------------------------------------


def test_a_sandbox_servers_runs_reach_the_run_history(
    database: dict[str, str], tmp_path: Path, monkeypatch: Any
) -> None:
    """`serve --sandbox` keeps its state in a scratch database; each run is copied, as it ends,
    into the run history under CONNECTOR_HOME, marked sandbox, where `connector runs show ID`
    in another terminal finds it."""
    import threading

    from connector.apps.plugins import default_registry
    from connector.persistence.database import close_all
    from connector.persistence.runs import RunStore
    from connector.sandbox.server import start_in_thread
    from connector.serve.server import Service, bind
    from connector.serve.wiring import sandbox_env, wire_sandbox
    from tests.serve.conftest import _healthy, shipped, stop_service

    home = tmp_path / "the-users-home"
    registry, _ = default_registry([], home=Path("/nonexistent"))
    sandbox = start_in_thread()
    env = {**sandbox_env(sandbox), **database, "CONNECTOR_HOOK_TOKEN": HOOK_TOKEN}
    service = Service(
        registry, shipped(registry), env, workers=2, clock=sandbox.app.clock, sandbox=True
    )
    service.start()
    service.keep_history(RunStore.open(home))
    sock = bind("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    thread = threading.Thread(
        target=service.serve, args=(sock,), kwargs={"install_signal_handlers": False}, daemon=True
    )
    thread.start()
    try:
        wait_for(lambda: _healthy(url), 30)
        wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
        _sandbox_history(url, home, monkeypatch)
    finally:
        stop_service(service, thread, sandbox)
        close_all()


def _sandbox_history(url: str, home: Path, monkeypatch: Any) -> None:
    from click.testing import CliRunner

    from connector.cli import cli
    from connector.persistence.runs import RunStore

    answer = LOCAL.post(
        f"{url}/hooks/pull-contact-on-select",
        json={"contactId": CONTACT, "userId": USER},
        headers={"authorization": f"Bearer {HOOK_TOKEN}"},
    )
    run_id = answer.json()["run_id"]
    history = RunStore.open(home)
    copied = wait_for(lambda: history.get(run_id))
    assert (copied.status, copied.sandbox) == ("succeeded", True)
    assert history.get_recipe(copied.recipe_hash) is not None  # the page can show what ran
    monkeypatch.setenv("CONNECTOR_HOME", str(home))
    monkeypatch.delenv("CONNECTOR_DATABASE_URL", raising=False)
    shown = CliRunner().invoke(cli, ["runs", "show", run_id], catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "pull-contact-on-select" in shown.stdout and "succeeded" in shown.stdout
    missing = CliRunner().invoke(cli, ["runs", "show", "run_nosuchrun"])
    assert missing.exit_code == 1
    assert str(home) in missing.stderr and "--sandbox" in missing.stderr
