"""What the last reconcile found and did, shown by `connector sync status` and by the page's sync
view (in a real browser, as tests/ui drive it): when it ran, its counts, the ambiguous and the
unmatched records by id. The records are the test's own, made ambiguous and unmatchable on
purpose."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from connector.apps.registry import Registry
from connector.cli import cli
from connector.language.sync_spec import load_sync
from connector.persistence.database import close_all
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import add_contact, add_user
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.sandbox.state import load_seed
from connector.serve.wiring import sandbox_env
from tests.serve.conftest import start_service, stop_service
from tests.sync.population import T0
from tests.sync.test_sync_initial import NO_BUDGET
from tests.ui.test_ui_browser import artifacts, chromium

DECLARATION = str(Path(__file__).with_name("people.sync.yaml"))


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[RunningSandbox, dict[str, str], dict[str, Any]]]:
    seed = load_seed()
    seed["ghl"]["contacts"] = []
    seed["connecteam"]["users"] = []
    seed["connecteam"]["task_boards"] = []
    with start_in_thread(seed=seed, limits=RateLimitConfig(enabled=False)) as sandbox:
        state, location = sandbox.state, sandbox.state.default_location_id
        ids: dict[str, Any] = {}
        # one contact, two users with its email: ambiguous
        ids["twin"] = add_contact(
            state, location, {"firstName": "Tw", "lastName": "In", "email": "twin@e.org"}, at=T0
        )
        ids["twins"] = [
            add_user(
                state,
                {
                    "firstName": "Tw",
                    "lastName": f"In{k}",
                    "email": "twin@e.org",
                    "phoneNumber": f"+1444666000{k}",
                },
                at=T0,
            )
            for k in range(2)
        ]
        # a contact with no phone: Connecteam takes no user without one, so it stays unmatched
        ids["lone"] = add_contact(
            state, location, {"firstName": "Lo", "lastName": "Ne", "email": "lone@e.org"}, at=T0
        )
        # and one that gets its user
        add_contact(
            state,
            location,
            {"firstName": "Ok", "lastName": "Ay", "email": "ok@e.org", "phone": "+14446660009"},
            at=T0,
        )
        env = {
            **sandbox_env(sandbox),
            "CONNECTOR_HOME": str(tmp_path / "home"),
            "CONNECTOR_RATE_LIMITS": NO_BUDGET,
        }
        done = CliRunner().invoke(cli, ["sync", "reconcile", DECLARATION], env=env)
        assert done.exit_code == 1, done.output  # the ambiguous need a person
        yield sandbox, env, ids
    close_all()


def test_status_says_when_the_last_reconcile_ran_and_what_it_met(
    world: tuple[RunningSandbox, dict[str, str], dict[str, Any]],
) -> None:
    _, env, ids = world
    done = CliRunner().invoke(cli, ["sync", "status"], env=env)
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert "contact: 1 pairs; conflicts: none" in lines
    (when,) = [line for line in lines if line.startswith("last reconcile of people: ")]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC \(\d+ s ago\)$", when)
    assert (
        "  5 records: 0 in sync, 0 paired, created 0 in GoHighLevel and 1 in Connecteam, "
        "updated 0 in GoHighLevel and 0 in Connecteam, 0 conflicts, 3 ambiguous, 1 unmatched, "
        "0 failed"
    ) in lines
    twins = ", ".join(str(u) for u in ids["twins"])
    assert (
        f"  ambiguous: GoHighLevel contact {ids['twin']}: 2 candidates by email ({twins})" in lines
    )
    for user in ids["twins"]:
        assert any(
            line.startswith(f"  ambiguous: Connecteam user {user}: 2 candidates by email")
            for line in lines
        ), lines
    assert any(
        line.startswith(f"  unmatched: GoHighLevel contact {ids['lone']}: ") for line in lines
    ), lines


def test_the_sync_view_shows_the_same(
    world: tuple[RunningSandbox, dict[str, str], dict[str, Any]],
    registry: Registry,
    skip_or_fail: Callable[[str], NoReturn],
) -> None:
    sandbox, env, ids = world
    path = chromium(skip_or_fail)
    spec, problems = load_sync(DECLARATION, registry)
    assert spec is not None, problems
    # the server first: Playwright's sync API runs an event loop on this thread
    service, url, thread = start_service(registry, [], env, sandbox, syncs=[spec])
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            _look(chrome, url, ids)
        finally:
            chrome.close()
            stop_service(service, thread, sandbox)


def _look(browser: Any, url: str, ids: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        tab.set_default_timeout(20_000)
        tab.goto(url + "/ui/conflicts")
        shown = tab.locator("#reconcile-people")
        text = shown.inner_text()
        assert "people: last reconcile" in text
        assert (
            "5 records: 0 in sync, 0 paired, created 0 in GoHighLevel and 1 in Connecteam" in text
        )
        assert "3 ambiguous, 1 unmatched, 0 failed" in text
        ambiguous = shown.locator("ul.ambiguous li").all_inner_texts()
        assert len(ambiguous) == 3 and any(
            a.startswith(f"GoHighLevel contact {ids['twin']}") for a in ambiguous
        )
        unmatched = shown.locator("ul.unmatched li").all_inner_texts()
        assert len(unmatched) == 1 and unmatched[0].startswith(f"GoHighLevel contact {ids['lone']}")
        tab.screenshot(path=str(artifacts() / "sync-view.png"), full_page=True)
    finally:
        context.close()
