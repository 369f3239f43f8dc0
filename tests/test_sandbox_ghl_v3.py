"""The GoHighLevel fake speaks the Contacts API v3 (``Version: v3``) beside 2021-07-28: the same
state behind both, each answered in its own document's shapes. Every response here is checked
against the v3 document (``apps/v3/contacts-v3.json``) by the conformance hook, because the
requests say ``Version: v3``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from connector.sandbox import RunningSandbox

if TYPE_CHECKING:
    from sandbox.fixtures import Conformance

pytest_plugins = ["sandbox.fixtures"]

JORDAN = "ocQHyuzHvysMo5N5VsXc"
LOC = "ve9EPM428h8vShlRW1KT"
V2 = {"Version": "2021-07-28"}


@pytest.fixture
def v3(sandbox: RunningSandbox, make_client: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sandbox.env['GHL_TOKEN']}", "Version": "v3"}
    with make_client(sandbox.env["GHL_BASE_URL"], headers) as client:
        yield client


def test_every_v3_contacts_operation_answers_as_the_v3_document_says(
    v3: httpx.Client, sandbox: RunningSandbox
) -> None:
    r = v3.post(
        "/contacts/",
        json={
            "locationId": LOC,
            "firstName": "Rosa",
            "email": "rosa@example.com",
            "dndSettings": {"email": {"status": "active"}},
            "customFields": [{"id": "cf1", "fieldValue": "blue"}],
        },
    )
    assert r.status_code == 201
    cid = r.json()["contact"]["id"]
    assert r.json()["contact"]["dndSettings"] == {"email": {"status": "active"}}
    stored = sandbox.state.ghl.contacts[cid]
    assert stored["dndSettings"] == {"Email": {"status": "active"}}  # one way of storing it
    assert stored["customFields"] == [{"id": "cf1", "value": "blue"}]
    assert v3.get(f"/contacts/{cid}").json()["contact"]["firstName"] == "Rosa"
    updated = v3.put(f"/contacts/{cid}", json={"city": "Austin"}).json()
    assert updated["succeeded"] is True and "succeded" not in updated  # v3 spells it right
    assert v3.post("/contacts/search", json={"locationId": LOC, "query": "rosa"}).json()["total"]
    dup = v3.get(
        "/contacts/search/duplicate", params={"locationId": LOC, "email": "rosa@example.com"}
    )
    assert dup.json()["contact"]["id"] == cid
    r = v3.post("/contacts/upsert", json={"locationId": LOC, "email": "rosa@example.com"})
    assert r.json()["new"] is False
    tid = v3.post(
        f"/contacts/{cid}/tasks",
        json={"title": "Call", "dueDate": "2026-01-05T10:00:00Z", "completed": False},
    ).json()["task"]["id"]
    assert [t["id"] for t in v3.get(f"/contacts/{cid}/tasks").json()["tasks"]] == [tid]
    assert v3.get(f"/contacts/{cid}/tasks/{tid}").json()["task"]["title"] == "Call"
    assert v3.put(f"/contacts/{cid}/tasks/{tid}", json={"title": "Call back"}).status_code == 200
    done = v3.put(f"/contacts/{cid}/tasks/{tid}/completed", json={"completed": True})
    assert done.json()["task"]["completed"] is True
    deleted = v3.delete(f"/contacts/{cid}/tasks/{tid}").json()
    assert deleted == {"succeded": True, "succeeded": True}  # v3 keeps the old one, deprecated
    nid = v3.post(f"/contacts/{cid}/notes", json={"body": "Met"}).json()["note"]["id"]
    assert v3.get(f"/contacts/{cid}/notes/{nid}").json()["note"]["body"] == "Met"
    assert v3.put(f"/contacts/{cid}/notes/{nid}", json={"body": "Met twice"}).status_code == 200
    assert len(v3.get(f"/contacts/{cid}/notes").json()["notes"]) == 1
    assert v3.delete(f"/contacts/{cid}/notes/{nid}").json()["succeeded"] is True
    assert v3.post(f"/contacts/{cid}/tags", json={"tags": ["VIP"]}).json()["tags"] == ["vip"]
    assert v3.request("DELETE", f"/contacts/{cid}/tags", json={"tags": ["vip"]}).json() == {
        "tags": []
    }
    assert v3.post(f"/contacts/{cid}/campaigns/camp1", json={}).json()["succeeded"] is True
    assert v3.delete(f"/contacts/{cid}/campaigns/remove-all").json()["succeeded"] is True
    r = v3.post(
        "/contacts/bulk/tags/update/add",
        json={"locationId": LOC, "contacts": [cid], "tags": ["bulk"]},
    )
    assert r.json()["succeeded"] is True and r.json()["succeded"] is True
    assert v3.get(f"/contacts/{JORDAN}/appointments").json()["events"]
    r = v3.post(
        "/contacts/bulk/business", json={"locationId": LOC, "ids": [cid], "businessId": "biz1"}
    )
    assert r.json() == {"success": True, "ids": [cid]}
    listed = v3.get("/contacts/business/biz1", params={"locationId": LOC}).json()["contacts"]
    assert [c["id"] for c in listed] == [cid]
    assert "firstName" not in listed[0]  # v3's ContactsSearchSchema has no firstName
    assert v3.delete(f"/contacts/{cid}").json()["succeeded"] is True
    assert cid not in sandbox.state.ghl.contacts


def test_both_versions_see_the_same_state(v3: httpx.Client, ghl: httpx.Client) -> None:
    cid = v3.post(
        "/contacts/",
        json={"locationId": LOC, "firstName": "Ana", "dndSettings": {"sms": {"status": "active"}}},
    ).json()["contact"]["id"]
    # written in v3, read in 2021-07-28: its own names for the DND channels
    assert ghl.get(f"/contacts/{cid}").json()["contact"]["dndSettings"] == {
        "SMS": {"status": "active"}
    }
    ghl.put(f"/contacts/{cid}", json={"dndSettings": {"Call": {"status": "inactive"}}})
    assert v3.get(f"/contacts/{cid}").json()["contact"]["dndSettings"] == {
        "call": {"status": "inactive"}
    }
    assert ghl.put(f"/contacts/{cid}", json={"city": "Reno"}).json()["succeded"] is True


def test_other_versions_are_refused_and_each_route_takes_the_versions_it_has(
    v3: httpx.Client,
) -> None:
    r = v3.get(f"/contacts/{JORDAN}", headers={"Version": "v2"})
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid Version header 'v2': use 2021-07-28 or v3"
    # v3 drops GET /contacts/ and renames removeAll
    r = v3.get("/contacts/", params={"locationId": LOC})
    assert r.status_code == 400 and r.json()["message"].endswith("use 2021-07-28")
    r = v3.delete(f"/contacts/{JORDAN}/campaigns/removeAll")
    assert r.status_code == 400 and r.json()["message"].endswith("use 2021-07-28")
    r = v3.delete(f"/contacts/{JORDAN}/campaigns/remove-all", headers=V2)
    assert r.status_code == 400 and r.json()["message"].endswith("use v3")
    # routes outside the contacts document have no v3
    r = v3.get("/users/", params={"locationId": LOC})
    assert r.status_code == 400 and "2021-07-28" in r.json()["message"]


def test_a_v3_request_is_validated_against_the_v3_document(v3: httpx.Client) -> None:
    r = v3.put(f"/contacts/{JORDAN}", json={"dndSettings": {"email": {"status": "asleep"}}})
    assert r.status_code == 422
    assert any("status" in m for m in r.json()["message"])


def test_the_conformance_check_reads_v3_answers_against_the_v3_document(
    conformance: Conformance,
) -> None:
    """A body that fits 2021-07-28 but not v3 (v3's UpdateTagsResponseDTO requires
    `succeeded`) fails only when the request said Version: v3."""
    url = "http://sandbox/ghl/contacts/bulk/tags/update/add"
    old = {"succeded": True, "errorCount": 0, "responses": []}
    as_v2 = httpx.Request("POST", url, headers=V2)
    conformance.check(httpx.Response(201, json=old, request=as_v2))
    as_v3 = httpx.Request("POST", url, headers={"Version": "v3"})
    with pytest.raises(AssertionError, match="breaks"):
        conformance.check(httpx.Response(201, json=old, request=as_v3))
    conformance.check(httpx.Response(201, json={**old, "succeeded": True}, request=as_v3))
