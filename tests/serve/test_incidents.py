"""The incidents besides a run failing for good: a write whose outcome is unknown, a connection
that needs a new login, the backlog and the failure rate over their thresholds. Each is one
alert while it lasts, and one "resolved" (or "back to normal") message when it ends."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from connector.errors import ConnectorError
from connector.persistence.connections import Connection, ConnectionStore
from connector.persistence.database import open_database
from connector.persistence.incidents import IncidentStore
from connector.persistence.runs import RunStore
from connector.persistence.sealing import SecretBox
from connector.persistence.sync import Conflict, SyncStore
from connector.records import RunRecord, new_run_id
from connector.serve.alerts import Alerts
from connector.serve.levels import Levels
from connector.serve.server import Service
from tests.serve.conftest import HOOK_TOKEN, wait_for
from tests.serve.receivers import Receiver

NOTE_ONCE = Path(__file__).parents[1] / "runtime" / "recipes" / "note_once.yaml"
NOTES = "/connecteam/users/v1/users/9001/notes"

Sent = list[tuple[str, str, str]]


def _collecting(store: IncidentStore, sent: Sent) -> Alerts:
    alerts = Alerts(["json://ops"], send=lambda *m: sent.append(m) or True, store=store)
    alerts.base_url = "http://127.0.0.1:8000"
    return alerts


def _notes(sandbox_url: str) -> list[dict[str, Any]]:
    reply = httpx.get(f"{sandbox_url}/_sandbox/connecteam/users/9001/notes")
    return [n for n in reply.json()["notes"] if n.get("title") == "Called back"]


def test_a_write_of_unknown_outcome_is_an_alert_and_its_settled_retry_resolves_it(
    serve_with: Any, database: dict[str, str], receiver: Any
) -> None:
    hook = receiver()
    database.update(CONNECTOR_RETRY_BASE_DELAY="0.01", CONNECTOR_ALERT_URLS=hook.url)
    served = serve_with(NOTE_ONCE)
    httpx.post(
        f"{served.sandbox.url}/_sandbox/faults",
        json={"seed": 1, "specs": [f"drop-after:1,method=POST,path={NOTES}"]},
    ).raise_for_status()
    answer = httpx.post(
        f"{served.url}/hooks/note-once",
        json={"userId": 9001, "noteId": "n-1", "title": "Called back"},
        headers={"authorization": f"Bearer {HOOK_TOKEN}"},
    )
    run_id = str(answer.json()["run_id"])
    store = served.service.runtime.store
    record = wait_for(lambda: (r := store.get(run_id)) and r.status != "running" and r)
    assert record.status == "failed" and "outcome unknown" in (record.error or "")
    assert len(_notes(served.sandbox.url)) == 1  # the note is there: the answer was lost
    [alert] = wait_for(lambda: hook.bodies)
    assert alert["title"] == "connector: note-once: a write's outcome is unknown"
    assert f"connector runs settle {run_id} --written" in alert["message"]
    assert f"{served.url}/ui/runs/{run_id}" in alert["message"]

    httpx.delete(f"{served.sandbox.url}/_sandbox/faults").raise_for_status()
    served.service.runtime.settle_writes(run_id, True)  # a person looked: it was written
    done = served.service.runtime.rerun(record, None)
    assert done.status == "succeeded"
    assert len(_notes(served.sandbox.url)) == 1  # not written twice
    wait_for(lambda: len(hook.bodies) == 2)
    resolved = hook.bodies[1]
    assert resolved["title"] == "connector: note-once: resolved"
    assert f"run {done.id} succeeded" in resolved["message"]
    served.service.alerts.close()
    assert len(hook.bodies) == 2


def _watch(alerts: Alerts, db: Any) -> None:
    """What a serving process's tick does, its clock of the connections' look wound back."""
    runtime = SimpleNamespace(db=db, sync=SyncStore(db.engine))
    service = SimpleNamespace(levels=None, _logins_seen=0.0, runtime=runtime)
    Service._watch(service, alerts)  # type: ignore[arg-type]


def test_a_conflict_left_for_a_person_by_any_process_is_one_alert_until_it_is_decided(
    database: dict[str, str],
) -> None:
    db = open_database(database)
    sync = SyncStore(db.engine)
    left = Conflict(
        "people", "contact", "C1", "501", "email", "a@x.org", "b@x.org", "c@x.org", 1.0, 2.0,
        "manual", None, run_id="run_reconcile0000000001",
    )  # fmt: skip
    with db.engine.begin() as conn:  # as a reconcile in another process records it
        assert sync.conflict_in(conn, left)
    sent: Sent = []
    alerts = _collecting(IncidentStore(db.engine), sent)
    for _ in range(3):
        _watch(alerts, db)
    alerts.close()
    [(_, title, body)] = sent
    assert title == "connector: people: a sync conflict waits for a person"
    [stored] = sync.conflicts(status="open")
    assert f"connector sync resolve {stored.id}" in body
    assert "http://127.0.0.1:8000/ui/runs/run_reconcile0000000001" in body

    with db.engine.begin() as conn:  # a person decides it
        sync.resolve_in(conn, int(stored.id or 0), "ghl")
    for _ in range(3):
        _watch(alerts, db)
    alerts.close()
    assert [t for _, t, _ in sent[1:]] == ["connector: people: resolved"]
    assert "decided: the ghl side's value won" in sent[1][2]
    assert sync.conflicts(status="resolved")[0].id == stored.id


def test_a_connection_that_needs_a_new_login_is_one_alert_until_it_is_logged_in_again(
    database: dict[str, str],
) -> None:
    db = open_database(database)
    connections = ConnectionStore(db.engine, SecretBox(Fernet.generate_key(), "test"))
    made = connections.put(
        Connection("ghl:loc-7", "ghl", "location", "loc-7"), {"access_token": "at-secret-7"}
    )
    sent: Sent = []
    alerts = _collecting(IncidentStore(db.engine), sent)
    _watch(alerts, db)
    assert sent == []  # nothing needs a person yet

    # a refresh refused for good, as the token refresher records it
    assert connections.take_lease(made.id, made.version, "worker-1", 30)
    connections.fail_refresh(made.id, "worker-1", "invalid_grant: the refresh token was revoked")
    for _ in range(3):  # looked at again and again: one alert
        _watch(alerts, db)
    alerts.close()
    [(_, title, body)] = sent
    assert title == "connector: connection ghl:loc-7 needs a new login"
    assert "invalid_grant" in body and "connector auth login ghl" in body
    assert "at-secret-7" not in body

    connections.put(  # a new login
        Connection("ghl:loc-7", "ghl", "location", "loc-7"), {"access_token": "at-secret-8"}
    )
    for _ in range(3):
        _watch(alerts, db)
    alerts.close()
    assert [t for _, t, _ in sent] == [
        "connector: connection ghl:loc-7 needs a new login",
        "connector: connection ghl:loc-7 logged in again",
    ]
    [incident] = IncidentStore(db.engine).find()
    assert (incident.status, incident.closed_by) == ("announced", "logged in again")


def _runs(db: Any, failed: int, succeeded: int) -> None:
    store = RunStore(db.engine)
    for status in ["failed"] * failed + ["succeeded"] * succeeded:
        run = RunRecord(new_run_id(), "push-contact-edits", "h", "p.yaml", "ghl", "X", {})
        store.run_started(run)
        run.status = status  # type: ignore[assignment]
        store.run_finished(run)


def test_the_backlog_and_the_failure_rate_alert_once_over_and_once_back_to_normal(
    database: dict[str, str],
) -> None:
    db = open_database(database)
    queued = [0]
    levels = Levels(
        backlog=100, failure_rate=0.2, queued=lambda: queued[0], engine=db.engine, min_runs=10
    )
    sent: Sent = []
    alerts = _collecting(IncidentStore(db.engine), sent)

    _runs(db, failed=1, succeeded=9)  # 10%, 0 queued: normal
    levels.check(alerts, force=True)
    assert alerts.announce() == 0

    queued[0] = 150
    _runs(db, failed=4, succeeded=0)  # 5 of 14 failed: 36%
    for _ in range(3):
        levels.check(alerts, force=True)
    alerts.close()
    titles = sorted(t for _, t, _ in sent)
    assert titles == [
        "connector: backlog over its threshold",
        "connector: failure rate over its threshold",
    ]
    bodies = "\n".join(b for _, _, b in sent)
    assert "150 runs wait on the queue (threshold 100)" in bodies
    assert "5 of the 14 runs of the last 5 minutes failed (36%; threshold 20%)" in bodies

    queued[0] = 90  # under the threshold but over 80% of it: not yet back to normal
    levels.check(alerts, force=True)
    assert alerts.announce() == 0
    queued[0] = 10
    _runs(db, failed=0, succeeded=30)  # 5 of 44: 11%
    levels.check(alerts, force=True)
    assert alerts.announce() == 2
    assert alerts.announce() == 0
    alerts.close()
    normal = sorted(t for _, t, _ in sent[2:])
    assert normal == [
        "connector: backlog back to normal",
        "connector: failure rate back to normal",
    ]
    assert "back to normal: 10 runs wait on the queue" in "\n".join(b for _, _, b in sent[2:])


def test_the_threshold_variables_are_read_and_checked() -> None:
    runtime = SimpleNamespace(queued=lambda: 0, db=SimpleNamespace(engine=None))
    assert Levels.from_env({}, runtime) is None
    levels = Levels.from_env(
        {"CONNECTOR_ALERT_BACKLOG": "500", "CONNECTOR_ALERT_FAILURE_RATE": "0.2"}, runtime
    )
    assert levels is not None
    assert (levels.backlog, levels.failure_rate, levels.window) == (500, 0.2, 300.0)
    for name, value in (
        ("CONNECTOR_ALERT_BACKLOG", "lots"),
        ("CONNECTOR_ALERT_FAILURE_RATE", "20%"),
        ("CONNECTOR_ALERT_FAILURE_RATE", "1.5"),
        ("CONNECTOR_ALERT_FAILURE_WINDOW", "1"),
    ):
        with pytest.raises(ConnectorError, match=name):
            Levels.from_env({"CONNECTOR_ALERT_BACKLOG": "5", name: value}, runtime)


@pytest.fixture()
def receiver() -> Any:
    made: list[Receiver] = []

    def make(held: bool = False) -> Receiver:
        made.append(Receiver(held))
        return made[-1]

    yield make
    for one in made:
        one.close()


def test_pruning_runs_forgets_the_incidents_announced_resolved_before(
    database: dict[str, str],
) -> None:
    db = open_database(database)
    incidents = IncidentStore(db.engine)
    for key in ("level:backlog", "level:failure rate", "conflict:7"):
        assert incidents.open(kind="level", recipe="", run_id="", what=key, said="", key=key)
    incidents.close("level:backlog", "back to normal")
    [closed] = incidents.find(status="closed")
    assert incidents.claim(closed.id) and not incidents.claim(closed.id)
    incidents.close("level:failure rate", "back to normal")  # closed, its message not sent yet
    RunStore(db.engine).prune("9999-01-01T00:00:00.000Z")
    left = {i.key: i.status for i in incidents.find()}
    assert left == {"level:failure rate": "closed", "conflict:7": "open"}


def test_a_run_told_twice_is_one_incident_and_no_repeat(database: dict[str, str]) -> None:
    db = open_database(database)
    incidents = IncidentStore(db.engine)
    said = {"kind": "failed", "recipe": "r", "what": "w", "said": "s"}
    assert incidents.open(run_id="run_a", **said)
    assert not incidents.open(run_id="run_a", **said)  # finished again after a restart
    [one] = incidents.find()
    assert (one.repeats, one.last_run_id) == (0, "run_a")
