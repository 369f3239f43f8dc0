"""`connector serve` with an agency connection: each run acts on the location its webhook names,
with that location's own token (the sandbox refuses a token of one location on another's
records), obtained through the agency once per location."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.apps.registry import Registry
from connector.connections import forget_tokens, open_store
from connector.persistence.database import close_all
from connector.persistence.runs import RunStore
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.server import Service
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.runtime.e2e_support import login
from tests.serve.conftest import planned, start_service, stop_service, wait_for

RECIPE = Path(__file__).parent / "recipes" / "tag_new_contact.yaml"
LOCATIONS = ("ve9EPM428h8vShlRW1KT", "C2QujeCh8ZnC7al2InWR")
TAG = "served-in-its-location"


@pytest.fixture()
def world(
    tmp_path: Path, registry: Registry
) -> Iterator[tuple[RunningSandbox, Service, dict[str, str]]]:
    sandbox = start_in_thread()
    env = {
        **sandbox_env(sandbox),
        "GHL_TOKEN": "",  # the stored agency connection, not a Private Integration token
        "GHL_CLIENT_ID": "sandbox-client-id",
        "GHL_CLIENT_SECRET": "sandbox-client-secret",
        "GHL_AUTH_URL": f"{sandbox.url}/ghl/oauth/chooselocation",
        "CONNECTOR_HOME": str(tmp_path / "home"),
    }
    done = login(env, "--user-type", "Company")
    assert done.returncode == 0, done.stderr
    service, url, thread = start_service(
        registry, [planned(registry, RECIPE)], env, sandbox, workers=2
    )
    wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
    yield sandbox, service, env
    stop_service(service, thread, sandbox)
    forget_tokens()
    close_all()


def pit(sandbox: RunningSandbox, location: str) -> str:
    """The seeded Private Integration token of ``location`` (to make contacts as a person would)."""
    return next(
        t
        for t, info in sandbox.state.ghl.tokens.items()
        if info.kind == "private" and info.location_id == location
    )


def test_each_webhook_runs_on_its_own_location_with_that_locations_token(
    world: tuple[RunningSandbox, Service, dict[str, str]],
) -> None:
    sandbox, service, env = world
    made: dict[str, str] = {}
    for location in LOCATIONS:
        answer = httpx.post(
            f"{sandbox.url}/ghl/contacts/",
            json={
                "locationId": location,
                "firstName": "Served",
                "email": f"served-{location}@example.com",
            },
            headers={"Authorization": f"Bearer {pit(sandbox, location)}", "Version": "2021-07-28"},
        )
        assert answer.status_code in (200, 201), answer.text
        made[location] = answer.json()["contact"]["id"]
    store = RunStore(service.runtime.db.engine)

    def ended() -> list[Any]:
        sandbox.app.flush()
        runs = [r for r in store.list(limit=100) if r.recipe == "tag-new-contact"]
        return runs if len(runs) == 2 and all(r.status != "running" for r in runs) else []

    runs = wait_for(ended, 60)
    assert [r.status for r in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    state = httpx.get(f"{sandbox.url}/_sandbox/state").json()
    contacts = {c["id"]: c for c in state["ghl"]["contacts"]}
    for location, contact in made.items():
        assert contacts[contact]["locationId"] == location
        assert TAG in contacts[contact]["tags"]
    grants = httpx.get(f"{sandbox.url}/_sandbox/oauth").json()["grants"]
    exchanged = sorted(g["location_id"] for g in grants if g["grant_type"] == "location_token")
    assert exchanged == sorted(LOCATIONS)
    # each location's connection holds a token the sandbox issued for that location
    connections = open_store(env)
    for location in LOCATIONS:
        [conn] = [c for c in connections.find("ghl") if c.account == location]
        token = connections.secret(conn)["access_token"]
        assert sandbox.state.ghl.tokens[token].location_id == location
