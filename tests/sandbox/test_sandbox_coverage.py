"""The sandbox's coverage, read from its routes, against what it really answers: every catalog
operation of both vendors is sent to a running sandbox, and it is covered exactly when the answer
is something other than the sandbox's unknown-route 404 (or Starlette's 405 for a path it serves
with other methods)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from connector.catalog import load_operations
from connector.catalog.model import Operation
from connector.sandbox import RunningSandbox, start_in_thread
from connector.sandbox.coverage import SANDBOXED_APPS, coverage_json, covered_routes, covers


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread() as running:
        yield running


def _send(client: httpx.Client, running: RunningSandbox, op: Operation) -> httpx.Response:
    path = re.sub(r"\{[^}]*\}", "1", op.path)
    headers = {}
    if op.app == "ghl":
        headers["Authorization"] = f"Bearer {running.state.default_token}"
        if op.version:
            headers["Version"] = op.version
    else:
        headers["X-API-KEY"] = running.state.default_api_key
    return client.request(op.method, f"{running.url}/{op.app}{path}", headers=headers)


def _unanswered(response: httpx.Response, op: Operation) -> bool:
    """The sandbox's answer to a route it does not serve."""
    if response.status_code == 405:
        return response.text == "Method Not Allowed"
    if response.status_code != 404:
        return False
    body = response.json()
    if op.app == "ghl":
        path = re.sub(r"\{[^}]*\}", "1", op.path)
        return body.get("message") == f"Cannot {op.method} /ghl{path}"
    return body == {"detail": "Not Found"}


def test_covered_exactly_when_the_sandbox_answers(sandbox: RunningSandbox) -> None:
    wrong: list[tuple[str, bool | None, int]] = []
    covered = 0
    with httpx.Client(timeout=10) as client:
        for app in SANDBOXED_APPS:
            for op in load_operations(app).values():
                response = _send(client, sandbox, op)
                said = covers(op)
                covered += bool(said)
                if said is (_unanswered(response, op)):
                    wrong.append((op.name, said, response.status_code))
    assert wrong == []
    assert covered > 50  # contacts, users, calendars, tasks, notes, webhooks, OAuth


def test_known_operations_on_either_side() -> None:
    ghl = load_operations("ghl")
    connecteam = load_operations("connecteam")
    assert covers(ghl["ghl.get-contact"]) is True
    assert covers(connecteam["connecteam.create-users"]) is True
    assert covers(ghl["ghl.create-opportunity"]) is False
    plugin_op = Operation(name="csv.read", app="csv", method="GET", path="/rows")
    assert covers(plugin_op) is None  # not an app the sandbox stands in for


def test_the_catalog_file_matches_the_routes() -> None:
    """``catalog`` reads data/sandbox.json: it must be what the routes say, to the byte."""
    from connector.catalog.sandbox import SANDBOX_FILE, sandbox_covers

    assert SANDBOX_FILE.read_text(encoding="utf-8") == coverage_json(), (
        "connector/catalog/data/sandbox.json is out of date: run `python -m connector.sandbox.coverage`"
    )
    for app in SANDBOXED_APPS:
        for op in load_operations(app).values():
            assert sandbox_covers(op) is covers(op), op.name


def test_coverage_follows_the_routes_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """A route added to the sandbox is covered without anything else changing."""
    from connector.sandbox import ghl_other

    opportunity = load_operations("ghl")["ghl.create-opportunity"]
    assert covers(opportunity) is False
    routes = ghl_other.routes
    monkeypatch.setattr(routes, "items", [*routes.items, ("POST", "/opportunities/", _answer)])
    covered_routes.cache_clear()
    try:
        assert covers(opportunity) is True
    finally:
        monkeypatch.undo()
        covered_routes.cache_clear()
    assert covers(opportunity) is False


def _answer(call: object) -> tuple[int, dict[str, str]]:
    return 201, {"id": "opp1"}
