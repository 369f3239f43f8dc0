"""The Recipes page and who runs were about, in a real browser against a served process (as
``tests/ui/test_ui_browser.py``: the sandbox wired both ways, the shipped recipes served): a run's
row names its person; a paused recipe holds the event a Connecteam webhook brings, and runs it
once when resumed (one contact in the sandbox's GoHighLevel); "run now" starts a run another open
page shows without a reload; times read in the viewer's zone."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from connector.persistence.pauses import Pauses
from connector.persistence.tables import runs_table
from tests.runtime.e2e_support import LOCAL
from tests.serve.conftest import wait_for
from tests.ui import test_ui_browser as browsing
from tests.ui.test_ui_browser import CONTACT, Served, shot

# the served process, the browser and its tab of the page's browser tests
browser_path = browsing.browser_path
served = browsing.served
browser = browsing.browser
page = browsing.page

RECIPE = "create-contact-from-connecteam"


def _state(served: Served) -> dict[str, Any]:
    return dict(LOCAL.get(f"{served.sandbox.url}/_sandbox/state").json())


def _contacts_with(served: Served, email: str) -> list[dict[str, Any]]:
    contacts = _state(served)["ghl"]["contacts"]
    return [c for c in contacts if str(c.get("email") or "").lower() == email.lower()]


def _new_connecteam_user(served: Served, email: str) -> int:
    """A user added in the sandbox's Connecteam: its user_created webhook goes to the server."""
    with httpx.Client(
        base_url=served.sandbox.env["CONNECTEAM_BASE_URL"] + "/",
        headers={"X-API-KEY": served.sandbox.env["CONNECTEAM_API_KEY"]},
    ) as ct:
        answer = ct.post(
            "users/v1/users",
            json=[
                {
                    "firstName": "Nell",
                    "lastName": "Pause",
                    "email": email,
                    "phoneNumber": "+15555550177",
                    "userType": "user",
                }
            ],
        )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["data"]["results"][0]["userId"])


def _runs_for_user(served: Served, user_id: int) -> list[Any]:
    store = served.service.runtime.store
    return [
        r
        for r in store.list(limit=500, recipe=RECIPE)
        if (r.trigger or {}).get("data", {}).get("userId") == user_id
    ]


def test_a_runs_row_names_its_person(served: Served, page: Any) -> None:
    run = served.ended(served.hook())
    assert run.status == "succeeded"
    page.goto(served.url + "/")
    row = page.locator(f'tr[data-run-id="{run.id}"]')
    # the hook's event names only ids; the contact the run read is Jordan Avery (the seed's)
    assert row.locator('td[data-label="about"]').inner_text() == "Jordan Avery"
    page.goto(f"{served.url}/ui/runs/{run.id}")
    assert page.locator("dd.person").inner_text() == "Jordan Avery"
    assert page.locator("details#trigger").get_attribute("open") is None  # collapsed
    shot(page, "run-person")


def test_a_paused_recipe_holds_its_event_and_runs_it_once_when_resumed(
    served: Served, page: Any
) -> None:
    pauses = Pauses(served.service.runtime.db.engine)
    try:
        _pause_hold_resume(served, page, pauses)
    finally:
        pauses.resume(RECIPE)  # the other tests' served process runs it as usual


def _pause_hold_resume(served: Served, page: Any, pauses: Pauses) -> None:
    page.goto(served.url + "/ui/recipes")
    section = page.locator(f"#recipe-{RECIPE}")
    section.locator("button.pause").click()
    page.wait_for_selector(f"#recipe-{RECIPE} .paused-tag")
    assert pauses.paused(RECIPE)  # in the database every serving process reads

    email = f"nell-{uuid.uuid4().hex[:8]}@pause.example"
    user_id = _new_connecteam_user(served, email)
    wait_for(lambda: pauses.counts().get(RECIPE) == 1, 30)
    [held] = pauses.held(RECIPE)
    assert held.payload["data"]["userId"] == user_id
    # held, not run: no contact, no run
    assert _contacts_with(served, email) == []
    assert _runs_for_user(served, user_id) == []
    page.reload()
    assert "1 event held" in section.locator(".held").inner_text()
    shot(page, "recipes-paused")

    section.locator("button.resume").click()
    page.wait_for_selector(f"#recipe-{RECIPE} button.pause")
    wait_for(lambda: _contacts_with(served, email), 60)
    wait_for(lambda: [r for r in _runs_for_user(served, user_id) if r.status != "running"], 60)
    [run] = _runs_for_user(served, user_id)
    assert run.status == "succeeded" and run.id == held.run_id
    assert pauses.counts().get(RECIPE, 0) == 0
    [contact] = _contacts_with(served, email)  # the write happened once
    assert (contact["firstName"], contact["lastName"]) == ("Nell", "Pause")
    page.goto(served.url + "/")
    assert "Nell Pause" in page.locator(f'tr[data-run-id="{run.id}"]').inner_text()
    shot(page, "recipes-resumed")


def test_run_now_starts_a_run_another_page_shows_live(
    served: Served, page: Any, browser: Any
) -> None:
    watcher_context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        watcher = watcher_context.new_page()
        watcher.goto(served.url + "/ui/recipes")
        watcher.wait_for_selector("#live.on")
        watcher.evaluate("window.__notReloaded = true")

        page.goto(served.url + "/ui/recipes")
        page.locator("#recipe-pull-contact-on-select button:has-text('Run now')").click()
        page.wait_for_url("**/ui/recipes?started=*")
        run_id = page.url.split("started=", 1)[1].split("#", 1)[0]
        assert page.locator("#started").is_visible()

        watcher.wait_for_selector(f'#runs tr[data-run-id="{run_id}"]')
        record = served.ended(run_id)
        assert record.recipe == "pull-contact-on-select"
        assert record.trigger == {"contactId": CONTACT, "userId": 9001}  # the recipe's sample
        assert record.status == "succeeded"
        watcher.wait_for_selector(f'#runs tr[data-run-id="{run_id}"][data-status="succeeded"]')
        assert watcher.evaluate("window.__notReloaded") is True
        shot(watcher, "recipes-run-now")
    finally:
        watcher_context.close()


def test_run_now_with_a_pasted_event(served: Served, page: Any) -> None:
    page.goto(served.url + "/ui/recipes")
    section = page.locator("#recipe-pull-contact-on-select")
    section.locator("summary").click()
    section.locator("textarea").fill('{"contactId": "noSuchContact00000000", "userId": 9001}')
    section.locator("button:has-text('Run now')").click()
    page.wait_for_url("**/ui/recipes?started=*")
    run_id = page.url.split("started=", 1)[1].split("#", 1)[0]
    record = served.ended(run_id)
    assert record.trigger == {"contactId": "noSuchContact00000000", "userId": 9001}
    # not JSON: said, with the text kept, and nothing started
    before = _count_runs(served)
    page.goto(served.url + "/ui/recipes")
    section.locator("summary").click()
    section.locator("textarea").fill("{not json")
    section.locator("button:has-text('Run now')").click()
    assert "the event is not JSON" in section.locator("p.error").inner_text()
    assert section.locator("textarea").input_value() == "{not json"
    assert _count_runs(served) == before


def _count_runs(served: Served) -> int:
    with served.service.runtime.db.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(runs_table)).scalar() or 0)


def test_times_read_in_the_viewers_zone_with_utc_on_hover(served: Served, browser: Any) -> None:
    run = served.ended(served.hook())
    context = browser.new_context(timezone_id="Asia/Kolkata")  # UTC+05:30, no summer time
    try:
        tab = context.new_page()
        tab.goto(served.url + "/")
        cell = tab.locator(f'tr[data-run-id="{run.id}"] time')
        stamp = run.started_at  # 2026-...T10:00:03.123Z
        hours, minutes = int(stamp[11:13]), int(stamp[14:16])
        total = (hours * 60 + minutes + 330) % (24 * 60)
        assert cell.inner_text()[11:16] == f"{total // 60:02d}:{total % 60:02d}"
        assert "UTC" not in cell.inner_text()
        assert cell.get_attribute("title") == stamp[:19].replace("T", " ") + " UTC"
    finally:
        context.close()
