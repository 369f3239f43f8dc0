"""Alerts through Apprise: a failed run tells a local SMTP server and a local webhook receiver
what failed, what the vendor said and where the run's page is; repeats become a digest; a
target that does not answer never holds a run up; a refused message is tried again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.records import RunRecord, StepRecord
from connector.serve.alerts import Alerts, incident_of
from connector.serve.targets import alert_urls, shown_url
from tests.runtime.e2e_support import LOCAL
from tests.serve.conftest import HOOK_TOKEN, Served, wait_for
from tests.serve.receivers import Mailbox, Receiver

CONTACT = "ocQHyuzHvysMo5N5VsXc"
USER = 9001
TASKS = f"/ghl/contacts/{CONTACT}/tasks"


@pytest.fixture()
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.controller.stop()


@pytest.fixture()
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(held: bool = False) -> Receiver:
        made.append(Receiver(held))
        return made[-1]

    yield make
    for one in made:
        one.close()


def _failing_run(served: Served) -> str:
    """A run of flow 1 whose read of the contact's tasks meets 503s until it gives up."""
    LOCAL.post(
        f"{served.sandbox.url}/_sandbox/faults",
        json={"seed": 1, "specs": [f"503:1,path={TASKS},method=GET"]},
    ).raise_for_status()
    answer = LOCAL.post(
        f"{served.url}/hooks/pull-contact-on-select",
        json={"contactId": CONTACT, "userId": USER},
        headers={"authorization": f"Bearer {HOOK_TOKEN}"},
    )
    return str(answer.json()["run_id"])


def _ended(served: Served, run_id: str) -> RunRecord:
    store = served.service.runtime.store

    def done() -> Any:
        record = store.get(run_id)
        return record if record is not None and record.status != "running" else None

    return wait_for(done)  # type: ignore[no-any-return]


def test_a_failed_run_sends_one_alert_by_email_and_one_to_a_webhook(
    serve_with: Any, database: dict[str, str], mailbox: Mailbox, receiver: Any
) -> None:
    hook = receiver()
    database.update(
        CONNECTOR_RETRY_ATTEMPTS="2",
        CONNECTOR_RETRY_BASE_DELAY="0.05",
        CONNECTOR_ALERT_URLS=f"{mailbox.url}, {hook.url}",
    )
    served = serve_with()
    run_id = _failing_run(served)
    assert _ended(served, run_id).status == "failed"
    wait_for(lambda: mailbox.messages and hook.bodies)
    link = f"{served.url}/ui/runs/{run_id}"
    [mail] = mailbox.messages
    [posted] = hook.bodies
    for text in (mail, posted["title"] + "\n" + posted["message"]):
        assert "pull-contact-on-select" in text
        assert "HTTP 503 from GoHighLevel: Service Unavailable" in text
        assert link in text
        assert served.sandbox.env["GHL_TOKEN"] not in text
    served.service.alerts.close()  # nothing more was waiting: one message each
    assert (len(mailbox.messages), len(hook.bodies)) == (1, 1)


def test_an_alert_target_that_does_not_answer_never_holds_a_run_up(
    serve_with: Any, database: dict[str, str], receiver: Any
) -> None:
    stuck = receiver(held=True)  # takes the connection and never answers until released
    database.update(
        CONNECTOR_RETRY_ATTEMPTS="2",
        CONNECTOR_RETRY_BASE_DELAY="0.05",
        CONNECTOR_ALERT_URLS=stuck.url,
    )
    served = serve_with()
    first = _failing_run(served)
    assert _ended(served, first).status == "failed"
    second = _failing_run(served)  # the alert of the first is still stuck in the target
    assert _ended(served, second).status == "failed"
    assert stuck.bodies == [] and not stuck.hold.is_set()
    stuck.hold.set()
    wait_for(lambda: stuck.bodies)
    assert first in stuck.bodies[0]["message"]


def _failed(n: int, recipe: str = "push-contact-edits") -> RunRecord:
    step = StepRecord("update", "ghl.update-contact", "failed")
    step.error = "HTTP 503 from GoHighLevel: Service Unavailable (gave up after 8 attempts)"
    record = RunRecord(f"run_{n:020d}", recipe, "h", "p.yaml", "connecteam", "user_updated", {})
    record.status, record.error, record.steps = "failed", step.error, [step]
    return record


def test_fifty_failures_in_a_minute_send_a_digest_not_fifty_messages() -> None:
    sent: list[tuple[str, str, str]] = []
    alerts = Alerts(["json://one", "json://two"], send=lambda *m: sent.append(m) or True)
    alerts.base_url = "http://127.0.0.1:8000"
    for n in range(50):
        alerts.run_finished(_failed(n))
    alerts.close()  # the window's digest goes now rather than at its end
    assert [url for url, _, _ in sent] == ["json://one", "json://two"] * 2
    first, digest = sent[0], sent[2]
    assert "run_00000000000000000000" in first[2]
    assert "http://127.0.0.1:8000/ui/runs/run_00000000000000000000" in first[2]
    assert "49 more" in digest[1] + digest[2]
    assert "Service Unavailable" in digest[2]
    assert "and 29 more" in digest[2]  # 20 listed one by one


def test_a_refused_alert_is_tried_again() -> None:
    tries: list[str] = []
    alerts = Alerts(["json://flaky"], send=lambda url, t, b: tries.append(t) or len(tries) > 2)
    alerts.retry_base = 0.01
    alerts.run_finished(_failed(1))
    wait_for(lambda: len(tries) >= 3)
    alerts.close()
    assert len(tries) == 3 and len(set(tries)) == 1


def test_what_kind_of_incident_a_run_is() -> None:
    login = _failed(1)
    login.steps[0].error = (
        "the GoHighLevel connection ghl:loc1 needs a new login (refresh refused): run"
        " `connector auth login ghl`"
    )
    unknown = _failed(2)
    unknown.steps[0].error = "outcome unknown: HTTP 503 after the request was sent; check ..."
    assert incident_of(login) is not None and incident_of(login).kind == "needs login"  # type: ignore[union-attr]
    assert incident_of(unknown).kind == "outcome unknown"  # type: ignore[union-attr]
    assert incident_of(_failed(3)).kind == "failed"  # type: ignore[union-attr]
    ok = _failed(4)
    ok.status = "succeeded"
    assert incident_of(ok) is None


def test_alert_urls_split_on_spaces_and_commas_and_are_shown_without_secrets() -> None:
    text = "json://a.example/x, mailto://u:pw@mail.example?to=a@x.org,b@x.org slack://T/B/C"
    assert alert_urls(text) == [
        "json://a.example/x",
        "mailto://u:pw@mail.example?to=a@x.org,b@x.org",
        "slack://T/B/C",
    ]
    assert shown_url("mailto://u:pw@mail.example?to=a@x.org") == "mailto://mail.example/..."
    assert shown_url("slack://T0KEN1/B0KEN2/C0KEN3") == "slack://***/..."
    assert shown_url("json://127.0.0.1:8080/hook") == "json://127.0.0.1:8080/..."


def test_alerts_test_sends_one_to_every_target(
    mailbox: Mailbox, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = receiver()
    monkeypatch.setenv("CONNECTOR_ALERT_URLS", f"{mailbox.url} {hook.url}")
    result = CliRunner().invoke(cli, ["alerts", "test"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert len(mailbox.messages) == 1 and len(hook.bodies) == 1
    assert "test alert" in hook.bodies[0]["title"]
    monkeypatch.setenv("CONNECTOR_ALERT_URLS", "json://127.0.0.1:1/nothing-listens")
    result = CliRunner().invoke(cli, ["alerts", "test"], catch_exceptions=False)
    assert result.exit_code == 1
    monkeypatch.delenv("CONNECTOR_ALERT_URLS")
    assert CliRunner().invoke(cli, ["alerts", "test"]).exit_code == 2


def test_a_sync_conflict_left_for_a_person_is_an_alert() -> None:
    from types import SimpleNamespace

    from connector.persistence.sync import Conflict
    from connector.serve.server import Service

    mine = Conflict(
        "people", "contact", "C1", "501", "email", "a@x.org", "b@x.org", "c@x.org", 1.0, 2.0,
        "manual", None, run_id="run_00000000000000000007", id=3, status="open",
    )  # fmt: skip
    other = Conflict(
        "people", "contact", "C2", "502", "phone", "1", "2", "3", 1.0, 2.0, "manual", None,
        run_id="run_another", id=4, status="open",
    )  # fmt: skip
    sent: list[tuple[str, str, str]] = []
    alerts = Alerts(["json://one"], send=lambda *m: sent.append(m) or True)
    alerts.base_url = "http://127.0.0.1:8000"
    sync = SimpleNamespace(
        conflicts=lambda status, limit: [mine, other] if status == "open" else []
    )
    service = SimpleNamespace(alerts=alerts, runtime=SimpleNamespace(sync=sync))
    record = RunRecord(mine.run_id, "people", "h", "p.sync.yaml", "ghl", "ContactUpdate", {})
    record.status = "succeeded"
    Service._alert(service, record, {"kind": "sync"})  # type: ignore[arg-type]
    alerts.close()
    [(_, title, body)] = sent
    assert "a sync conflict waits for a person" in title
    assert "contact C1 <-> 501: email changed on both sides" in body
    assert "connector sync resolve 3" in body
    assert f"http://127.0.0.1:8000/ui/runs/{mine.run_id}" in body


def _incidents(served: Served) -> list[Any]:
    from connector.persistence.incidents import IncidentStore

    return IncidentStore(served.service.runtime.db.engine).find()


def test_a_replay_that_succeeds_closes_the_incident_and_says_so_once(
    serve_with: Any, database: dict[str, str], mailbox: Mailbox, receiver: Any
) -> None:
    hook = receiver()
    database.update(
        CONNECTOR_RETRY_ATTEMPTS="2",
        CONNECTOR_RETRY_BASE_DELAY="0.05",
        CONNECTOR_ALERT_URLS=f"{mailbox.url}, {hook.url}",
    )
    served = serve_with()
    failed = _ended(served, _failing_run(served))
    assert failed.status == "failed"
    wait_for(lambda: mailbox.messages and hook.bodies)
    [incident] = _incidents(served)
    assert (incident.status, incident.run_id, incident.kind) == ("open", failed.id, "failed")

    # a retry that fails again is the same incident: counted, no second alert
    again = served.service.runtime.rerun(failed, None)
    assert again.status == "failed" and again.parent == failed.id
    [incident] = _incidents(served)
    assert (incident.status, incident.repeats, incident.last_run_id) == ("open", 1, again.id)

    httpx.delete(f"{served.sandbox.url}/_sandbox/faults").raise_for_status()
    fixed = served.service.runtime.rerun(again, "")  # a replay of the retry succeeds
    assert fixed.status == "succeeded"
    [incident] = _incidents(served)  # closed in the transaction that recorded the retry's end
    assert incident.status in ("closed", "announced") and incident.fixed_by == fixed.id

    wait_for(lambda: len(mailbox.messages) >= 2 and len(hook.bodies) >= 2)
    for _ in range(3):  # whoever looks again finds nothing more to announce
        assert served.service.alerts.announce() == 0
    served.service.alerts.close()
    assert (len(mailbox.messages), len(hook.bodies)) == (2, 2)
    mail, posted = mailbox.messages[1], hook.bodies[1]
    for text in (mail, posted["title"] + "\n" + posted["message"]):
        assert "pull-contact-on-select: resolved" in text
        assert f"run {fixed.id} succeeded" in text
        assert f"{served.url}/ui/runs/{fixed.id}" in text
        assert "1 more time" in text
    assert _incidents(served)[0].status == "announced"


def test_the_secrets_of_alert_urls_stay_out_of_the_log(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    urls = [
        "json://alerter:pa55-w0rd-9@127.0.0.1:1/hooks/T0KEN-in-the-path-77?token=qu3ry-t0ken",
        "mailto://ops:mail-pa55word@127.0.0.1:1?from=a@example.com&to=b@example.com&mode=insecure",
    ]
    secrets = ["pa55-w0rd-9", "T0KEN-in-the-path-77", "qu3ry-t0ken", "mail-pa55word"]
    caplog.set_level(logging.DEBUG)
    alerts = Alerts(urls, attempts=1)  # Apprise for real, to targets where nothing listens
    alerts.run_finished(_failed(1))
    alerts.close()
    sending = [r for r in caplog.records if r.name in ("apprise", "urllib3.connectionpool")]
    assert sending, "the sending libraries logged nothing: the test would prove nothing"
    assert "127.0.0.1" in caplog.text  # their lines are there, cleaned
    for secret in secrets:
        assert secret not in caplog.text
    assert "json://127.0.0.1:1/..." in caplog.text  # our own line names the target safely


def test_a_recipe_with_its_own_targets_alerts_them_and_not_the_deployments(
    serve_with: Any, database: dict[str, str], receiver: Any
) -> None:
    deployment, team = receiver(), receiver()
    database.update(
        CONNECTOR_RETRY_ATTEMPTS="2",
        CONNECTOR_RETRY_BASE_DELAY="0.05",
        CONNECTOR_ALERT_URLS=deployment.url,
        TEAM_ALERTS_URL=team.url,  # the recipe names the variable: `to: [TEAM_ALERTS_URL]`
    )
    own = Path(__file__).parents[1] / "recipe" / "alerts" / "only-own.yaml"
    served = serve_with(own)
    httpx.post(
        f"{served.sandbox.url}/_sandbox/faults",
        json={"seed": 1, "specs": [f"503:1,path=/ghl/contacts/{CONTACT},method=GET"]},
    ).raise_for_status()
    runs = []
    for recipe, event in (
        ("contact-with-own-alerts", {"contactId": CONTACT}),
        ("pull-contact-on-select", {"contactId": CONTACT, "userId": USER}),
    ):
        answer = httpx.post(
            f"{served.url}/hooks/{recipe}",
            json=event,
            headers={"authorization": f"Bearer {HOOK_TOKEN}"},
        )
        runs.append(_ended(served, str(answer.json()["run_id"])))
    assert [r.status for r in runs] == ["failed", "failed"]
    wait_for(lambda: team.bodies and deployment.bodies)
    served.service.alerts.close()
    [to_team] = team.bodies
    [to_deployment] = deployment.bodies
    assert "contact-with-own-alerts" in to_team["title"] and runs[0].id in to_team["message"]
    assert "pull-contact-on-select" in to_deployment["title"]
    assert runs[1].id in to_deployment["message"]
