"""The Recipes page's actions on a test client: each a POST refused without the page's CSRF
token (nothing paused, nothing started), pause and resume stored in the database, run now with
the recipe's sample or a pasted JSON object (anything else refused, nothing started)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.apps.plugins import default_registry
from connector.persistence.pauses import Pauses
from connector.runtime.prepare import prepare
from tests.ui.conftest import Page

ROOT = Path(__file__).resolve().parents[2]
RECIPE = "pull-contact-on-select"


def served_recipe(page: Page) -> list[tuple[str, dict[str, Any]]]:
    """The page serving one shipped recipe, with a ``start`` that records what it was asked."""
    registry, _ = default_registry([], home=Path("/nonexistent"))
    prepared = prepare(ROOT / "recipes" / f"{RECIPE}.yaml", registry)
    assert prepared.plan is not None
    page.ui.plans = {RECIPE: prepared.plan}
    started: list[tuple[str, dict[str, Any]]] = []

    def start(name: str, event: dict[str, Any]) -> str:
        started.append((name, event))
        return f"run_started{len(started):04d}"

    page.ui.start = start
    return started


def test_recipe_actions_need_the_csrf_token(page: Page) -> None:
    started = served_recipe(page)
    pauses = Pauses(page.runtime.db.engine)
    for action in ("pause", "run"):
        answer = page.client.post(f"/ui/recipes/{RECIPE}/{action}", data={"event": "{}"})
        assert answer.status_code == 403
    assert pauses.all_paused() == {} and started == []


def test_pause_and_resume_from_the_page(page: Page) -> None:
    served_recipe(page)
    pauses = Pauses(page.runtime.db.engine)
    csrf = page.csrf("/ui/recipes")
    answer = page.client.post(
        f"/ui/recipes/{RECIPE}/pause", data={"csrf": csrf}, follow_redirects=False
    )
    assert answer.status_code == 303 and pauses.paused(RECIPE)
    html = page.client.get("/ui/recipes").text
    assert 'class="tag paused-tag">paused<' in html and "/resume" in html
    page.client.post(f"/ui/recipes/{RECIPE}/resume", data={"csrf": csrf})
    assert not pauses.paused(RECIPE)
    unknown = page.client.post("/ui/recipes/no-such/pause", data={"csrf": csrf})
    assert unknown.status_code == 404 and pauses.all_paused() == {}


def test_run_now_with_the_sample_or_a_pasted_event(page: Page) -> None:
    started = served_recipe(page)
    csrf = page.csrf("/ui/recipes")
    answer = page.client.post(
        f"/ui/recipes/{RECIPE}/run", data={"csrf": csrf, "event": ""}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/recipes?started=run_started0001")
    assert started == [(RECIPE, {"contactId": "ocQHyuzHvysMo5N5VsXc", "userId": 9001})]
    page.client.post(f"/ui/recipes/{RECIPE}/run", data={"csrf": csrf, "event": '{"a": 1}'})
    assert started[-1] == (RECIPE, {"a": 1})
    for text, said in (("{nope", "the event is not JSON"), ("[1, 2]", "must be a JSON object")):
        refused = page.client.post(f"/ui/recipes/{RECIPE}/run", data={"csrf": csrf, "event": text})
        assert refused.status_code == 400 and said in refused.text
    assert len(started) == 2


def test_the_page_without_a_way_to_start_runs_shows_no_run_now(page: Page) -> None:
    served_recipe(page)
    page.ui.start = None
    html = page.client.get("/ui/recipes").text
    assert f'id="recipe-{RECIPE}"' in html and "Run now</button>" not in html
