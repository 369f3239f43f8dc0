"""The two-way sync under a real `connector serve`: the sandbox's own webhooks (signed
GoHighLevel ones, Connecteam's) start sync runs, on SQLite and on PostgreSQL. What is asserted
is read back from both apps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.apps.registry import Registry
from connector.language.sync_spec import SyncSpec, load_sync
from connector.persistence.database import close_all
from connector.persistence.links import LinkStore
from connector.sandbox.server import start_in_thread
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.serve.conftest import Served, start_service, stop_service, wait_for

DECLARATION = Path(__file__).resolve().parents[1] / "sync" / "people.sync.yaml"


@pytest.fixture()
def spec(registry: Registry) -> SyncSpec:
    loaded, problems = load_sync(DECLARATION, registry)
    assert loaded is not None, problems
    return loaded


@pytest.fixture()
def served(database: dict[str, str], registry: Registry, spec: SyncSpec) -> Iterator[Served]:
    sandbox = start_in_thread()
    env = {**sandbox_env(sandbox), **database}
    svc, url, thread = start_service(registry, [], env, sandbox, syncs=[spec])
    wire_sandbox(sandbox, url, env["CONNECTEAM_WEBHOOK_SECRET"])
    yield Served(sandbox, svc, url, env, thread)
    stop_service(svc, thread, sandbox)
    close_all()


def _user(served: Served, user_id: int) -> dict[str, Any]:
    with served.connecteam() as ct:
        users = ct.get("users/v1/users", params={"userIds": [user_id], "userStatus": "all"})
    found: dict[str, Any] = users.json()["data"]["users"][0]
    return found


def _contact(served: Served, contact_id: str) -> dict[str, Any]:
    with served.ghl() as ghl:
        found: dict[str, Any] = ghl.get(f"contacts/{contact_id}").json()["contact"]
    return found


def test_served_sync_pairs_and_keeps_edits_from_both_sides(served: Served) -> None:
    location = served.sandbox.state.default_location_id
    with served.connecteam() as ct:
        made = ct.post(
            "users/v1/users",
            json=[
                {
                    "userType": "user",
                    "firstName": "Mary",
                    "lastName": "Somerville",
                    "email": "mary@example.com",
                    "phoneNumber": "+15555550133",
                }
            ],
        )
        user_id = int(made.json()["data"]["results"][0]["userId"])
    links = LinkStore(served.service.runtime.db.engine)
    # the new user gets a contact, once, and the two are paired
    link = wait_for(lambda: links.get("contact", connecteam_id=user_id))
    contact_id = str(link.ghl_id)
    served.settled()
    contact = _contact(served, contact_id)
    assert (contact["firstName"], contact["lastName"], contact["locationId"]) == (
        "Mary",
        "Somerville",
        location,
    )
    # a person edits the last name in Connecteam, another the first name in GoHighLevel
    served.sandbox.clock.advance(2)
    with served.connecteam() as ct:
        ct.put(
            "users/v1/users", json=[{"userId": user_id, "lastName": "Fairfax"}]
        ).raise_for_status()
    served.sandbox.clock.advance(2)
    with served.ghl() as ghl:
        ghl.put(f"contacts/{contact_id}", json={"firstName": "Marie"}).raise_for_status()
    served.settled()
    for got in (_contact(served, contact_id), _user(served, user_id)):
        assert (got["firstName"], got["lastName"]) == ("Marie", "Fairfax")
    with served.ghl() as ghl:
        found = ghl.post(
            "contacts/search",
            json={
                "locationId": location,
                "pageLimit": 100,
                "filters": [{"field": "email", "operator": "eq", "value": "mary@example.com"}],
            },
        ).json()["contacts"]
    assert len(found) == 1  # no copy came back from the echoes
    runs = served.runs()
    assert runs and all(r.status == "succeeded" for r in runs), [(r.id, r.error) for r in runs]
