"""Incidents on the run history page, in a real browser (Debian's chromium through Playwright,
as tests/ui/test_ui_browser.py): a failed run's alert reaches a local webhook receiver; the
page's "Mark resolved" closes its incident and the receiver gets one "resolved" message; a
retry that succeeds marks the failed run "fixed by" it, and the retry "fixes" the failed run,
on the page and in `connector runs show`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from connector.apps.plugins import default_registry
from connector.cli import cli
from connector.persistence.database import close_all
from connector.persistence.incidents import IncidentStore
from connector.sandbox.server import start_in_thread
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.serve.conftest import HOOK_TOKEN, shipped, start_service, stop_service, wait_for
from tests.serve.receivers import Receiver
from tests.ui.test_ui_browser import TASKS, Served, chromium, shot


@pytest.fixture(scope="module")
def browser_path(skip_or_fail: Callable[[str], NoReturn]) -> str:
    return chromium(skip_or_fail)


@pytest.fixture(scope="module")
def hook() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("incidents-home")


@pytest.fixture(scope="module")
def served(browser_path: str, hook: Receiver, home: Path) -> Iterator[Served]:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    sandbox = start_in_thread()
    env = {
        **sandbox_env(sandbox),
        "CONNECTOR_HOME": str(home),
        "CONNECTOR_HOOK_TOKEN": HOOK_TOKEN,
        "CONNECTOR_RETRY_ATTEMPTS": "2",
        "CONNECTOR_RETRY_BASE_DELAY": "0.05",
        "CONNECTOR_ALERT_URLS": hook.url,
    }
    service, url, thread = start_service(registry, shipped(registry), env, sandbox)
    wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
    # a second failure of the recipe within the alerts' window (a minute) waits for the window's
    # digest (grouping is tests/serve/test_alerts.py's subject): a second's window keeps it short
    assert service.alerts is not None
    service.alerts.window = 1.0
    yield Served(sandbox, service, url)
    stop_service(service, thread, sandbox)
    close_all()


@pytest.fixture(scope="module")
def browser(browser_path: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chrome = p.chromium.launch(
            executable_path=browser_path, headless=True, args=["--no-sandbox"]
        )
        yield chrome
        chrome.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


def _failed(served: Served) -> Any:
    served.faults(f"500:1,path={TASKS},method=GET")
    try:
        record = served.ended(served.hook())
    finally:
        served.faults()
    assert record.status == "failed"
    return record


def _messages(hook: Receiver, run_id: str) -> list[dict[str, Any]]:
    return [b for b in hook.bodies if run_id in b["message"]]


def _incident(served: Served, run_id: str) -> Any:
    found = IncidentStore(served.service.runtime.db.engine).find(limit=1000)
    [incident] = [i for i in found if i.run_id == run_id]
    return incident


def test_marking_a_failed_run_resolved_closes_its_incident(
    served: Served, page: Any, hook: Receiver
) -> None:
    failed = _failed(served)
    [alert] = wait_for(lambda: _messages(hook, failed.id))
    assert "failed" in alert["title"] and f"/ui/runs/{failed.id}" in alert["message"]
    assert _incident(served, failed.id).status == "open"

    page.goto(f"{served.url}/ui/runs/{failed.id}")
    page.fill('input[name="note"]', "contact fixed by hand in GoHighLevel")
    page.click("#resolve")
    page.wait_for_url(f"**/ui/runs/{failed.id}")
    assert "resolved" in page.locator("h1").inner_text()
    shot(page, "incident-resolved")

    incident = _incident(served, failed.id)
    assert incident.status in ("closed", "announced")
    assert incident.closed_by == (
        "marked resolved on the page: contact fixed by hand in GoHighLevel"
    )
    wait_for(lambda: len(_messages(hook, failed.id)) == 2)
    resolved = _messages(hook, failed.id)[1]
    assert resolved["title"] == "connector: pull-contact-on-select: resolved"
    assert "contact fixed by hand" in resolved["message"]
    for _ in range(3):  # looked at again: nothing more is sent
        assert served.service.alerts is not None
        assert served.service.alerts.announce() == 0
    assert len(_messages(hook, failed.id)) == 2
    assert _incident(served, failed.id).status == "announced"


def test_a_retry_that_succeeds_is_linked_both_ways_as_the_fix(
    served: Served, page: Any, hook: Receiver, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = _failed(served)
    wait_for(lambda: _messages(hook, failed.id))
    page.goto(f"{served.url}/ui/runs/{failed.id}")
    assert page.locator("#fixed-by").count() == 0
    page.click("#retry")
    page.wait_for_url(lambda url: "/ui/runs/" in url and failed.id not in url)
    fix = page.url.rsplit("/", 1)[1]
    retried = served.service.runtime.store.get(fix)
    assert retried is not None and (retried.status, retried.parent) == ("succeeded", failed.id)

    link = page.locator(".tag.fixes a")  # the retry's page names the run it fixed
    assert link.inner_text() == failed.id
    shot(page, "incident-fixes")
    link.click()
    page.wait_for_url(f"**/ui/runs/{failed.id}")
    assert page.locator("#fixed-by").inner_text() == f"fixed by {fix}"
    shot(page, "incident-fixed-by")
    page.locator("#fixed-by a").click()
    page.wait_for_url(f"**/ui/runs/{fix}")

    assert _incident(served, failed.id).fixed_by == fix
    wait_for(lambda: len(_messages(hook, fix)) == 1)  # the "resolved" message names the fix
    assert "resolved" in _messages(hook, fix)[0]["title"]

    monkeypatch.setenv("CONNECTOR_HOME", str(home))
    shown = CliRunner().invoke(cli, ["runs", "show", failed.id], catch_exceptions=False)
    assert f"fixed by run {fix}" in shown.output, shown.output
    shown = CliRunner().invoke(cli, ["runs", "show", fix], catch_exceptions=False)
    assert f"fixes run {failed.id}" in shown.output, shown.output
