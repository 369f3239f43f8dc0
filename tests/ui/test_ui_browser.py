"""The run history page in a real browser: Debian's chromium, driven by Playwright through
``executable_path`` (no downloaded browser), against a served process as ``connector serve
--sandbox`` runs it (the sandbox on one port, the shipped recipes served on another, wired both
ways). The runs are made the way a user makes them, through ``POST /hooks/pull-contact-on-select``,
and every page the tests visit is saved as a screenshot in ``$CONNECTOR_TEST_ARTIFACTS/ui``
(default ``tests/artifacts/ui``).

Without chromium or Playwright the tests skip saying so; under CI (``CI=true``) they fail.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

from connector.apps.plugins import default_registry
from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.server import Service
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.runtime.e2e_support import LOCAL
from tests.serve.conftest import HOOK_TOKEN, ROOT, shipped, start_service, stop_service, wait_for

CONTACT = "ocQHyuzHvysMo5N5VsXc"  # the seed's contact, paired with Connecteam user 9001
USER = 9001
TASKS = f"/ghl/contacts/{CONTACT}/tasks"


def chromium(skip_or_fail: Callable[[str], NoReturn]) -> str:
    """The browser to drive: ``$CONNECTOR_TEST_CHROMIUM``, else Debian's ``chromium``."""
    path = os.environ.get("CONNECTOR_TEST_CHROMIUM") or shutil.which("chromium") or ""
    if not path or not Path(path).exists():
        skip_or_fail(
            "chromium is not installed (apt-get install chromium; .ci/run installs it), so the "
            "run history page is not tested in a browser"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("needs playwright (pip install -e '.[test]'), which cannot be imported")
    return path


def artifacts() -> Path:
    base = os.environ.get("CONNECTOR_TEST_ARTIFACTS") or str(ROOT / "tests" / "artifacts")
    folder = Path(base) / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Served:
    sandbox: RunningSandbox
    service: Service
    url: str

    def hook(self, contact: str = CONTACT, user: int = USER) -> str:
        answer = LOCAL.post(
            f"{self.url}/hooks/pull-contact-on-select",
            json={"contactId": contact, "userId": user},
            headers={"Authorization": f"Bearer {HOOK_TOKEN}"},
        )
        assert answer.status_code == 202, answer.text
        return str(answer.json()["run_id"])

    def ended(self, run_id: str) -> Any:
        store = self.service.runtime.store

        def done() -> Any:
            record = store.get(run_id)
            return record if record is not None and record.status != "running" else None

        return wait_for(done, 60)

    def faults(self, *specs: str) -> None:
        url = f"{self.sandbox.url}/_sandbox/faults"
        if specs:
            httpx.post(url, json={"seed": 1, "specs": list(specs)}).raise_for_status()
        else:
            httpx.delete(url).raise_for_status()


@pytest.fixture(scope="module")
def browser_path(skip_or_fail: Callable[[str], NoReturn]) -> str:
    return chromium(skip_or_fail)


@pytest.fixture(scope="module")
def served(browser_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    sandbox = start_in_thread()
    env = {
        **sandbox_env(sandbox),
        "CONNECTOR_HOME": str(tmp_path_factory.mktemp("ui-home")),
        "CONNECTOR_HOOK_TOKEN": HOOK_TOKEN,
        "CONNECTOR_RETRY_ATTEMPTS": "2",
        "CONNECTOR_RETRY_BASE_DELAY": "0.05",
    }
    service, url, thread = start_service(registry, shipped(registry), env, sandbox)
    wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
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


def shot(tab: Any, name: str) -> None:
    tab.screenshot(path=str(artifacts() / f"{name}.png"), full_page=True)


def test_the_list_shows_the_runs_the_test_made(served: Served, page: Any) -> None:
    runs = [served.hook() for _ in range(2)]
    for run_id in runs:
        assert served.ended(run_id).status == "succeeded"
    page.goto(served.url + "/")
    for run_id in runs:
        row = page.locator(f'tr[data-run-id="{run_id}"]')
        assert row.is_visible()
        assert "succeeded" in row.inner_text()
    shot(page, "runs")


def test_a_search_by_contact_id_finds_the_runs_that_touched_it(served: Served, page: Any) -> None:
    touched = served.ended(served.hook())
    other = served.ended(served.hook(contact="noSuchContact00000000"))
    assert other.status == "failed"  # GoHighLevel has no such contact
    page.goto(served.url + "/")
    page.fill('input[name="q"]', CONTACT)
    page.click('form.search button:has-text("Search")')
    page.wait_for_url(f"**/?q={CONTACT}*")
    ids = page.eval_on_selector_all(
        "#runs tr[data-run-id]", "rows => rows.map(r => r.dataset.runId)"
    )
    assert touched.id in ids and other.id not in ids
    # every run found touched the contact: its trigger or a step names it
    store = served.service.runtime.store
    for run_id in ids:
        record = store.get(run_id)
        assert record is not None and CONTACT in str(record.to_json())
    shot(page, "search")


def test_a_runs_page_shows_its_steps(served: Served, page: Any) -> None:
    record = served.ended(served.hook())
    page.goto(f"{served.url}/ui/runs/{record.id}")
    assert page.locator("h1").inner_text().startswith(record.id)
    for step in record.steps:
        assert page.locator(f'[id="step-{step.id}"]').is_visible(), step.id
    assert page.locator("#step-contact").get_by_text("ghl.get-contact").is_visible()
    assert served.sandbox.env["GHL_TOKEN"] not in page.content()
    shot(page, "run")


def test_retry_from_the_page_makes_a_new_run_that_succeeds(
    served: Served, page: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = served.service.runtime
    again = runtime.rerun

    def slow_again(*args: Any) -> Any:  # the new run is seen live before the page is answered
        record = again(*args)
        time.sleep(2.5)
        return record

    monkeypatch.setattr(runtime, "rerun", slow_again)
    served.faults(f"500:1,path={TASKS},method=GET")
    try:
        failed = served.ended(served.hook())
    finally:
        served.faults()
    assert failed.status == "failed"
    page.goto(f"{served.url}/ui/queue")
    assert page.locator(f'tr[data-run-id="{failed.id}"]').is_visible()
    shot(page, "queue")
    page.goto(f"{served.url}/ui/runs/{failed.id}")
    page.click("#retry")
    page.wait_for_url(lambda url: "/ui/runs/" in url and failed.id not in url)
    new_id = page.url.rsplit("/", 1)[1]
    assert "succeeded" in page.locator("h1").inner_text()
    assert page.get_by_role("link", name=failed.id).first.is_visible()  # the run it retried
    retried = served.service.runtime.store.get(new_id)
    assert retried is not None
    assert (retried.status, retried.parent) == ("succeeded", failed.id)
    shot(page, "retried")
    page.goto(f"{served.url}/ui/queue")  # a run whose retry succeeded leaves the queue
    assert page.locator(f'tr[data-run-id="{failed.id}"]').count() == 0


def test_a_new_run_appears_without_a_reload(served: Served, page: Any) -> None:
    page.goto(served.url + "/")
    page.wait_for_selector("#live.on")  # the event stream is open
    page.evaluate("window.__notReloaded = true")
    run_id = served.hook()
    row = page.wait_for_selector(f'tr[data-run-id="{run_id}"]')
    assert row is not None
    served.ended(run_id)
    page.wait_for_selector(f'tr[data-run-id="{run_id}"][data-status="succeeded"]')
    assert page.evaluate("window.__notReloaded") is True
    shot(page, "live")


def test_connections_links_and_a_phone(served: Served, page: Any, browser: Any) -> None:
    page.goto(f"{served.url}/ui/connections")
    assert page.locator("h1").inner_text() == "Connections"
    assert served.sandbox.env["GHL_TOKEN"] not in page.content()
    shot(page, "connections")
    page.goto(f"{served.url}/ui/links")
    assert page.locator("h1").inner_text() == "Id links"
    shot(page, "links")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        tab = phone.new_page()
        tab.goto(served.url + "/")
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the screen
        shot(tab, "runs-phone")
    finally:
        phone.close()


def test_a_refusal_shows_the_vendors_body_and_words(served: Served, page: Any) -> None:
    """A 503 and a 400 with bodies: the run's page shows each body in the step's response box,
    and the error names the vendor and what it said."""
    served.faults(f"503:1,path={TASKS},method=GET")
    try:
        unavailable = served.ended(served.hook())
    finally:
        served.faults()
    missing = served.ended(served.hook(contact="noSuchContact00000000"))
    for record, status, said in (
        (unavailable, 503, "Service Unavailable"),
        (missing, 400, "Contact not found"),
    ):
        assert record.status == "failed"
        page.goto(f"{served.url}/ui/runs/{record.id}")
        step = page.locator("section.step.st-failed").first
        assert f"HTTP {status} from GoHighLevel: {said}" in step.locator("p.error").inner_text()
        response = step.locator("details.response")
        assert response.get_attribute("open") is not None
        assert said in response.locator("pre").inner_text()
        assert f'"statusCode": {status}' in response.locator("pre").inner_text()
        shot(page, f"refused-{status}")
