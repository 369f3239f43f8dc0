"""``pages:``: a step walks every page of a list operation, in each paging style the sandbox
serves, on a location of 2,500 contacts (and an account of 2,500 Connecteam users).

What is checked is what the systems saw: the ids the ``foreach`` step handed to an action (each
contact exactly once), and the page requests the sandbox answered (counted by a middleware in
front of it: as many as the style needs, none twice), not the run's report.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from paging_support import CountedSandbox, counted_sandbox

from connector.apps import Action, RunContext
from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.language.plan import plan_recipe
from connector.language.validate import validate_paths
from connector.runtime.engine import Engine
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import seed_contacts, seed_users
from connector.sending.http import make_clients

HERE = Path(__file__).parent
CONTACTS = 2_500
BUSINESS = "biz-paging"


@pytest.fixture(scope="module")
def seen() -> list[Any]:
    return []


@pytest.fixture(scope="module")
def registry(seen: list[Any]) -> Registry:
    reg, _ = default_registry([], home=Path("/nonexistent"))
    reg = Registry(**{**reg.__dict__, "actions": dict(reg.actions)})

    def see(params: Mapping[str, Any], context: RunContext) -> Any:
        seen.append(params["id"])
        return {"seen": params["id"]}

    reg.actions["test.see"] = Action("test.see", see, writes=False)
    return reg


@pytest.fixture(scope="module")
def sandbox() -> Iterator[CountedSandbox]:
    # the vendors' rate limits off: a page refused with 429 and asked again is not the subject
    with counted_sandbox(limits=RateLimitConfig(enabled=False)) as running:
        state = running.state
        seed_contacts(state, state.default_location_id, CONTACTS, business_id=BUSINESS)
        seed_users(state, CONTACTS)
        yield running


def _run(registry: Registry, sandbox: CountedSandbox, name: str, seen: list[Any]) -> Any:
    seen.clear()
    sandbox.requests.clear()
    plan = plan_recipe(yaml.safe_load((HERE / name).read_text()), registry, path=name)
    env = dict(sandbox.env)
    clients = make_clients([registry.apps[a] for a in plan.apps], env)
    engine = Engine(registry=registry, clients=clients, env=env)
    try:
        return engine.run(plan, {})
    finally:
        for client in clients.values():
            client.close()


def _location_contacts(sandbox: CountedSandbox) -> list[str]:
    state = sandbox.state
    lid = state.default_location_id
    return [c["id"] for c in state.ghl.contacts.values() if c["locationId"] == lid]


def _assert_once(seen: list[Any], expected: list[Any]) -> None:
    twice = [k for k, n in Counter(seen).items() if n > 1]
    assert twice == []
    assert sorted(map(str, seen)) == sorted(map(str, expected))


def _walk_location(
    registry: Registry, sandbox: CountedSandbox, name: str, seen: list[Any]
) -> tuple[Any, list[str]]:
    """Run ``name``, which walks the contacts of the sandbox's location: its record, once it
    succeeded with every contact seen once, and those contacts."""
    record = _run(registry, sandbox, name, seen)
    assert record.status == "succeeded", record.error
    expected = _location_contacts(sandbox)
    _assert_once(seen, expected)
    return record, expected


def _pages(sandbox: CountedSandbox, method: str, path: str) -> list[tuple[str, bytes]]:
    asked = [(q, b) for m, p, q, b in sandbox.requests if (m, p) == (method, path)]
    assert len(asked) == len(set(asked)), "a page was asked for twice"
    assert len(asked) == len(sandbox.requests), "requests other than the pages were sent"
    return asked


def test_the_recipes_validate(registry: Registry) -> None:
    paths = sorted(str(p) for p in HERE.glob("*.yaml"))
    problems = [p for p in validate_paths(paths, registry) if p.severity == "error"]
    assert problems == []


def test_ghl_cursor_pages_walk_every_contact_once(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    record, expected = _walk_location(registry, sandbox, "walk_contacts.yaml", seen)
    pages = _pages(sandbox, "GET", "/ghl/contacts/")
    assert len(pages) == -(-len(expected) // 100)  # limit 100 (the most), no empty last page
    assert "startAfterId" not in pages[0][0] and all("startAfterId=" in q for q, _ in pages[1:])
    # both steps' outputs are summaries: no list of every item is kept
    contacts, walked = record.steps
    assert contacts.output == {"pages": len(pages), "items": len(expected)}
    assert walked.output["succeeded"] == len(expected) and walked.items == []


def test_search_by_search_after_walks_every_contact_once(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    _, expected = _walk_location(registry, sandbox, "walk_search.yaml", seen)
    pages = _pages(sandbox, "POST", "/ghl/contacts/search")
    bodies = [json.loads(b) for _, b in pages]
    assert len(pages) == len(expected) // 500 + 1  # pageLimit 500; the last page is short
    assert all(b["pageLimit"] == 500 and "page" not in b for b in bodies)
    assert "searchAfter" not in bodies[0] and all(len(b["searchAfter"]) == 2 for b in bodies[1:])


def test_search_by_page_walks_every_contact_once(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    _, expected = _walk_location(registry, sandbox, "walk_search_pages.yaml", seen)
    bodies = [json.loads(b) for _, b in _pages(sandbox, "POST", "/ghl/contacts/search")]
    assert [b["page"] for b in bodies] == list(range(1, len(expected) // 500 + 2))
    assert all("searchAfter" not in b for b in bodies)


def test_skip_and_limit_walk_every_contact_of_a_business_once(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    record = _run(registry, sandbox, "walk_business.yaml", seen)
    assert record.status == "succeeded", record.error
    state = sandbox.state
    expected = [c["id"] for c in state.ghl.contacts.values() if c.get("businessId") == BUSINESS]
    assert len(expected) == CONTACTS
    _assert_once(seen, expected)
    pages = _pages(sandbox, "GET", f"/ghl/contacts/business/{BUSINESS}")
    skips = [int(httpx.QueryParams(q).get("skip", 0)) for q, _ in pages]
    assert skips == list(range(0, CONTACTS + 1, 100))  # 2,500 = 25 full pages and an empty one


def test_connecteam_offset_pages_walk_every_user_once(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    record = _run(registry, sandbox, "walk_users.yaml", seen)
    assert record.status == "succeeded", record.error
    expected = [u["userId"] for u in sandbox.state.ct.users.values() if not u["isArchived"]]
    assert len(expected) >= CONTACTS
    _assert_once(seen, expected)
    pages = _pages(sandbox, "GET", "/connecteam/users/v1/users")
    offsets = [int(httpx.QueryParams(q).get("offset", 0)) for q, _ in pages]
    assert offsets == [500 * n for n in range(len(expected) // 500 + 1)]


def test_a_step_no_foreach_walks_gets_the_items_of_all_pages(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    record = _run(registry, sandbox, "collect_contacts.yaml", seen)
    assert record.status == "succeeded", record.error
    expected = _location_contacts(sandbox)
    assert sorted(record.output) == sorted(expected)
    assert seen == [len(expected)]
    assert len(_pages(sandbox, "GET", "/ghl/contacts/")) == -(-len(expected) // 100)


def test_more_items_than_the_bound_fail_the_step_by_name(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    record = _run(registry, sandbox, "bounded.yaml", seen)
    assert record.status == "failed"
    assert record.error is not None and "'contacts'" in record.error
    assert "more than 1000 items (pages.max_items)" in record.error
    assert len(seen) == 1000  # the items up to the bound, no more
    # ten full pages, and the eleventh, past the bound
    assert len(_pages(sandbox, "GET", "/ghl/contacts/")) == 11, sandbox.requests


def test_validate_says_where_pages_is_wrong(registry: Registry) -> None:
    path = str(HERE / "invalid" / "pages.yaml")
    found = {
        (p.location.line, p.location.column, p.location.path): p.message
        for p in validate_paths([path], registry)
        if p.severity == "error"
    }
    assert found.pop((7, 12, "$.steps[0].pages")) == (
        "pages: ghl.get-contact does not page"
        " (`connector catalog show ghl.get-contact` says pagination: -)"
    )
    assert found.pop((11, 24, "$.steps[1].pages.max_items")) == (
        "pages.max_items: ghl.search-contacts-advanced reaches at most 10000 items by 'page';"
        " page by 'searchAfter' for more"
    )
    assert found.pop((14, 17, "$.steps[2].pages.by")) == (
        "pages.by: connecteam.get-users pages by 'offset', not 'skip'"
    )
    assert found.pop((17, 12, "$.steps[3].pages")) == (
        "pages: write `all` or {max_items: N}, not 'some'"
    )
    assert found.pop((20, 12, "$.steps[4].pages")) == (
        "pages: links.get is not an API operation; only list operations page"
    )
    assert found == {
        (24, 24, "$.steps[5].pages.max_items"): "0 is less than the minimum of 1",
        (24, 27, "$.steps[5].pages.every"): "unknown key 'every' (allowed here: max_items, by)",
    }


def test_a_dry_run_shows_the_first_page_and_sends_nothing(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    sandbox.requests.clear()
    plan = plan_recipe(yaml.safe_load((HERE / "walk_contacts.yaml").read_text()), registry)
    clients = make_clients([registry.apps[a] for a in plan.apps], sandbox.env)
    record = Engine(registry=registry, clients=clients, env=sandbox.env).run(plan, {}, dry_run=True)
    assert sandbox.requests == []
    contacts = record.steps[0]
    assert contacts.status == "planned"
    assert contacts.url is not None and "limit=100" in contacts.url
    assert contacts.note == "pages: every page, up to 100000 items"


def test_a_page_refused_mid_walk_fails_the_paged_step_and_stops_the_walk(
    registry: Registry, sandbox: CountedSandbox, seen: list[Any]
) -> None:
    sandbox.counting.refuse_at = ("/ghl/contacts/", 3)
    try:
        record = _run(registry, sandbox, "walk_contacts.yaml", seen)
    finally:
        sandbox.counting.refuse_at = None
    assert record.status == "failed"
    assert len(seen) == 200  # the two pages before the refused one
    assert len(sandbox.requests) == 3  # a 400 is not asked again
    contacts, walked = record.steps
    assert (contacts.status, contacts.error) == (
        "failed",
        "HTTP 400 from GoHighLevel: startAfterId is not valid",
    )
    assert record.error == contacts.error
    assert walked.status == "failed"
    assert walked.error == "stopped after 200 items: step 'contacts' failed"


def test_the_sandbox_refuses_standard_paging_past_10000_records(sandbox: CountedSandbox) -> None:
    env = sandbox.env
    headers = {"Authorization": f"Bearer {env['GHL_TOKEN']}", "Version": "2021-07-28"}
    body = {"locationId": env["GHL_LOCATION_ID"], "pageLimit": 500}
    with httpx.Client(base_url=env["GHL_BASE_URL"], headers=headers) as client:
        assert client.post("/contacts/search", json={**body, "page": 20}).status_code == 200
        refused = client.post("/contacts/search", json={**body, "page": 21})
    assert refused.status_code == 422
    assert "use searchAfter" in refused.text


def test_the_sandbox_list_order_follows_new_and_removed_contacts(
    sandbox: CountedSandbox,
) -> None:
    env = sandbox.env
    headers = {"Authorization": f"Bearer {env['GHL_TOKEN']}", "Version": "2021-07-28"}
    with httpx.Client(base_url=env["GHL_BASE_URL"], headers=headers) as client:

        def total() -> int:
            answer = client.get("/contacts/", params={"locationId": env["GHL_LOCATION_ID"]})
            return int(answer.json()["meta"]["total"])

        before = total()
        made = client.post(
            "/contacts/",
            json={"locationId": env["GHL_LOCATION_ID"], "email": "late.comer@example.com"},
        ).json()["contact"]["id"]
        assert total() == before + 1
        client.delete(f"/contacts/{made}").raise_for_status()
        assert total() == before
