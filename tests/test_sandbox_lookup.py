"""Look-ups by email and phone in the sandbox (connector.sandbox.lookup): what a contact search,
GoHighLevel's duplicate check and Connecteam's user list by email or phone answer is what a
walk over every record would, after creates, edits, deletes, records put straight into the state,
a record changed behind the index's back and a reset. Judged through the vendors' APIs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import add_contact, add_user
from connector.sandbox.server import RunningSandbox, start_in_thread


@pytest.fixture()
def apps() -> Iterator[tuple[RunningSandbox, httpx.Client, httpx.Client]]:
    with start_in_thread(limits=RateLimitConfig(enabled=False)) as sandbox:
        state = sandbox.state
        ghl = httpx.Client(
            base_url=f"{sandbox.url}/ghl",
            headers={"Authorization": f"Bearer {state.default_token}", "Version": "2021-07-28"},
        )
        ct = httpx.Client(
            base_url=f"{sandbox.url}/connecteam", headers={"X-API-KEY": state.default_api_key}
        )
        with ghl, ct:
            yield sandbox, ghl, ct


def _search(sandbox: RunningSandbox, ghl: httpx.Client, field: str, value: str) -> list[str]:
    body = {
        "locationId": sandbox.state.default_location_id,
        "pageLimit": 10,
        "filters": [{"field": field, "operator": "eq", "value": value}],
    }
    answer = ghl.post("/contacts/search", json=body)
    assert answer.status_code == 200, answer.text
    return [c["id"] for c in answer.json()["contacts"]]


def _users(ct: httpx.Client, **query: Any) -> list[int]:
    answer = ct.get("/users/v1/users", params={"userStatus": "all", **query})
    assert answer.status_code == 200, answer.text
    return [u["userId"] for u in answer.json()["data"]["users"]]


def test_contacts_are_found_by_their_email_and_phone_as_they_are_now(
    apps: tuple[RunningSandbox, httpx.Client, httpx.Client],
) -> None:
    sandbox, ghl, _ = apps
    state = sandbox.state
    location = state.default_location_id
    made = ghl.post(
        "/contacts/",
        json={"locationId": location, "firstName": "Ida", "email": "Ida@Example.org",
              "phone": "+1 555-010-0001"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    ida = made.json()["contact"]["id"]
    assert _search(sandbox, ghl, "email", "ida@example.ORG") == [ida]  # case-insensitive
    assert _search(sandbox, ghl, "phone", "+15550100001") == [ida]
    # a second contact with her email is refused as a duplicate, by email first
    again = ghl.post("/contacts/", json={"locationId": location, "email": "ida@example.org"})
    assert again.status_code == 400 and again.json()["meta"]["contactId"] == ida

    edited = ghl.put(f"/contacts/{ida}", json={"email": "ida.new@example.org"})
    assert edited.status_code == 200, edited.text
    assert _search(sandbox, ghl, "email", "ida@example.org") == []
    assert _search(sandbox, ghl, "email", "ida.new@example.org") == [ida]

    # put straight into the state, with no request: found all the same
    jo = add_contact(state, location, {"firstName": "Jo", "email": "jo@example.org"}, at=1e9)
    assert _search(sandbox, ghl, "email", "jo@example.org") == [jo]
    # changed behind the index's back: never found by the value it no longer has
    with state.lock:
        state.ghl.contacts[jo]["email"] = "someone.else@example.org"
    assert _search(sandbox, ghl, "email", "jo@example.org") == []

    assert ghl.delete(f"/contacts/{ida}").status_code == 200
    assert _search(sandbox, ghl, "phone", "+15550100001") == []
    free = ghl.post("/contacts/", json={"locationId": location, "phone": "+15550100001"})
    assert free.status_code == 201, free.text  # her phone is free again

    sandbox.state.reset()
    assert _search(sandbox, ghl, "phone", "+15550100001") == []


def test_users_are_found_by_their_email_and_phone_as_they_are_now(
    apps: tuple[RunningSandbox, httpx.Client, httpx.Client],
) -> None:
    sandbox, _, ct = apps
    state = sandbox.state
    made = ct.post(
        "/users/v1/users",
        json=[{"firstName": "Uma", "lastName": "Lu", "email": "Uma@Example.org",
               "phoneNumber": "+15550100002", "userType": "user"}],
    )  # fmt: skip
    assert made.status_code == 200, made.text
    uma = made.json()["data"]["results"][0]["userId"]
    assert _users(ct, emailAddresses=["uma@example.org"]) == [uma]
    assert _users(ct, phoneNumbers=["+1 555-010-0002"]) == [uma]
    taken = ct.post(
        "/users/v1/users",
        json=[{"firstName": "Al", "lastName": "Lu", "phoneNumber": "+15550100002",
               "userType": "user"}],
    )  # fmt: skip
    assert taken.status_code == 400  # her phone number is hers

    moved = ct.put("/users/v1/users", json=[{"userId": uma, "phoneNumber": "+15550100003"}])
    assert moved.status_code == 200, moved.text
    assert _users(ct, phoneNumbers=["+15550100002"]) == []
    assert _users(ct, phoneNumbers=["+15550100003"]) == [uma]
    # both filters: the users that have both
    assert _users(ct, emailAddresses=["uma@example.org"], phoneNumbers=["+15550100003"]) == [uma]
    assert _users(ct, emailAddresses=["uma@example.org"], phoneNumbers=["+15550100002"]) == []

    tom = add_user(state, {"firstName": "Tom", "lastName": "T", "phoneNumber": "+15550100004",
                           "email": "tom@example.org"}, at=1e9)  # fmt: skip
    assert _users(ct, emailAddresses=["tom@example.org", "uma@example.org"]) == [uma, tom]
    archived = ct.request(
        "DELETE", "/users/v1/users", params={"deletionType": "archive"}, json=[tom]
    )
    assert archived.status_code == 200, archived.text
    assert _users(ct, emailAddresses=["tom@example.org"], userStatus="active") == []
    assert _users(ct, emailAddresses=["tom@example.org"], userStatus="archived") == [tom]
    deleted = ct.request("DELETE", "/users/v1/users", params={"deletionType": "delete"}, json=[uma])
    assert deleted.status_code == 200, deleted.text
    assert _users(ct, emailAddresses=["uma@example.org"]) == []
