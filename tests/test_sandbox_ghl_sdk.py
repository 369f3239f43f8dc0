"""GoHighLevel's official Python SDK (``gohighlevel-api-client`` 3, which sends ``Version: v3``
on every contacts call) against the sandbox, for the 15 seed endpoints the Contacts API v3 still
has (the seed endpoints of tests/test_catalog_generate.py without ``GET /contacts/``, which v3
drops). Each call must be answered 2xx; what it changes is checked in the sandbox's own state,
and every answer against the v3 document (the conformance hook)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from connector.sandbox import RunningSandbox

if TYPE_CHECKING:
    from sandbox.fixtures import Conformance

pytest_plugins = ["sandbox.fixtures"]

JORDAN = "ocQHyuzHvysMo5N5VsXc"  # the seed's sample contact, with tasks, notes and appointments
LOC = "ve9EPM428h8vShlRW1KT"


def _sdk(sandbox: RunningSandbox, conformance: Conformance, seen: list[httpx.Response]) -> Any:
    """The SDK's client, sent to the sandbox (its base URL is the class's ``BASE_URL``) with the
    sandbox location's Private Integration token; every answer is recorded and checked."""
    from highlevel import HighLevel

    sandboxed = type("SandboxHighLevel", (HighLevel,), {"BASE_URL": sandbox.env["GHL_BASE_URL"]})
    client = sandboxed(private_integration_token=sandbox.env["GHL_TOKEN"])

    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(response)
        conformance.check(response)

    client.http_client.event_hooks["response"].append(record)
    return client


@pytest.mark.needs_modules("highlevel")
def test_the_official_sdk_gets_2xx_from_the_15_v3_seed_endpoints_and_changes_the_state(
    sandbox: RunningSandbox, conformance: Conformance
) -> None:
    seen: list[httpx.Response] = []
    ghl = sandbox.state.ghl
    note_id = next(iter(ghl.notes[JORDAN]))

    async def calls() -> dict[str, Any]:
        sdk = _sdk(sandbox, conformance, seen)
        c = sdk.contacts
        out: dict[str, Any] = {}
        made = await c.create_contact(
            {"locationId": LOC, "firstName": "Rosa", "email": "rosa@example.com"}
        )
        cid = out["cid"] = made["contact"]["id"]
        assert ghl.contacts[cid]["email"] == "rosa@example.com"  # created
        out["got"] = await c.get_contact(cid)
        await c.update_contact(
            cid, {"city": "Austin", "dndSettings": {"sms": {"status": "active"}}}
        )
        assert ghl.contacts[cid]["city"] == "Austin"  # updated
        assert ghl.contacts[cid]["dndSettings"] == {"SMS": {"status": "active"}}
        task = await c.create_task(
            cid, {"title": "Call", "dueDate": "2026-01-05T10:00:00Z", "completed": False}
        )
        tid = task["task"]["id"]
        assert ghl.tasks[cid][tid]["title"] == "Call"  # created
        out["tasks"] = await c.get_all_tasks(cid)
        out["task"] = await c.get_task(cid, tid)
        await c.update_task(cid, tid, {"title": "Call back"})
        assert ghl.tasks[cid][tid]["title"] == "Call back"  # updated
        await c.update_task_completed(cid, tid, {"completed": True})
        assert ghl.tasks[cid][tid]["completed"] is True  # completed
        await c.delete_task(cid, tid)
        assert tid not in ghl.tasks[cid]  # deleted
        await c.add_tags(cid, {"tags": ["VIP", "gold"]})
        assert ghl.contacts[cid]["tags"] == ["vip", "gold"]  # tags added
        with sandbox.state.lock:
            ghl.contacts[cid]["businessId"] = "biz1"
        out["business"] = await c.get_contacts_by_business_id("biz1", LOC)
        out["notes"] = await c.get_all_notes(JORDAN)
        out["note"] = await c.get_note(JORDAN, note_id)
        out["appointments"] = await c.get_appointments_for_contact(JORDAN)
        out["deleted"] = await c.delete_contact(cid)
        assert cid not in ghl.contacts  # deleted
        await sdk.http_client.aclose()
        return out

    out = asyncio.run(calls())
    endpoints = {(r.request.method, r.request.url.path.removeprefix("/ghl")) for r in seen}
    assert len(seen) == 15 and len(endpoints) == 15
    assert all(r.request.headers["Version"] == "v3" for r in seen)
    assert [r.status_code for r in seen if not 200 <= r.status_code < 300] == []
    assert out["got"]["contact"]["id"] == out["cid"]
    assert [t["title"] for t in out["tasks"]["tasks"]] == ["Call"]
    assert out["task"]["task"]["title"] == "Call"
    assert [c["id"] for c in out["business"]["contacts"]] == [out["cid"]]
    assert len(out["notes"]["notes"]) == len(ghl.notes[JORDAN])
    assert out["note"]["note"]["id"] == note_id
    assert out["appointments"]["events"]
    assert out["deleted"]["succeeded"] is True
