"""The GoHighLevel fake over real HTTP: every contacts operation, auth, Version, validation,
duplicates, pagination and tags. Every response is checked against the official documents."""

from __future__ import annotations

import httpx

from connector.sandbox import RunningSandbox

pytest_plugins = ["sandbox.fixtures"]

JORDAN = "ocQHyuzHvysMo5N5VsXc"
LOC = "ve9EPM428h8vShlRW1KT"


def test_every_contacts_operation_answers_as_documented(ghl: httpx.Client) -> None:
    r = ghl.post(
        "/contacts/",
        json={
            "locationId": LOC,
            "firstName": "Rosa",
            "lastName": "Diaz",
            "email": "rosa@example.com",
        },
    )
    assert r.status_code == 201
    cid = r.json()["contact"]["id"]
    assert len(cid) == 20 and cid.isalnum()
    assert ghl.get(f"/contacts/{cid}").json()["contact"]["email"] == "rosa@example.com"
    r = ghl.put(f"/contacts/{cid}", json={"city": "Austin", "tags": ["New", "vip"]})
    assert r.json()["succeded"] is True and r.json()["contact"]["tags"] == ["new", "vip"]
    assert ghl.get("/contacts/", params={"locationId": LOC}).json()["count"] == 5
    assert (
        ghl.post("/contacts/search", json={"locationId": LOC, "query": "diaz"}).json()["total"] == 1
    )
    dup = ghl.get(
        "/contacts/search/duplicate", params={"locationId": LOC, "email": "ROSA@example.com"}
    )
    assert dup.json()["contact"]["id"] == cid
    r = ghl.post(
        "/contacts/upsert", json={"locationId": LOC, "email": "rosa@example.com", "city": "Austin"}
    )
    assert r.json()["new"] is False and r.json()["contact"]["city"] == "Austin"
    # tasks
    r = ghl.post(
        f"/contacts/{cid}/tasks",
        json={"title": "Call", "dueDate": "2026-01-05T10:00:00Z", "completed": False},
    )
    assert r.status_code == 201
    tid = r.json()["task"]["id"]
    assert [t["id"] for t in ghl.get(f"/contacts/{cid}/tasks").json()["tasks"]] == [tid]
    assert ghl.get(f"/contacts/{cid}/tasks/{tid}").json()["task"]["title"] == "Call"
    assert (
        ghl.put(f"/contacts/{cid}/tasks/{tid}", json={"title": "Call back"}).json()["task"]["title"]
        == "Call back"
    )
    done = ghl.put(f"/contacts/{cid}/tasks/{tid}/completed", json={"completed": True})
    assert done.json()["task"]["completed"] is True
    assert ghl.delete(f"/contacts/{cid}/tasks/{tid}").json() == {"succeded": True}
    # notes
    r = ghl.post(f"/contacts/{cid}/notes", json={"body": "Met at the fair"})
    assert r.status_code == 201
    nid = r.json()["note"]["id"]
    assert len(ghl.get(f"/contacts/{cid}/notes").json()["notes"]) == 1
    assert ghl.get(f"/contacts/{cid}/notes/{nid}").json()["note"]["body"] == "Met at the fair"
    assert (
        ghl.put(f"/contacts/{cid}/notes/{nid}", json={"body": "Met twice"}).json()["note"]["body"]
        == "Met twice"
    )
    assert ghl.delete(f"/contacts/{cid}/notes/{nid}").json()["succeded"] is True
    # tags, followers, campaigns, workflows, appointments, business, bulk
    assert ghl.post(f"/contacts/{cid}/tags", json={"tags": ["VIP", "gold"]}).json()["tags"] == [
        "new",
        "vip",
        "gold",
    ]
    assert ghl.request("DELETE", f"/contacts/{cid}/tags", json={"tags": ["new"]}).json()[
        "tags"
    ] == ["vip", "gold"]
    r = ghl.post(f"/contacts/{cid}/followers", json={"followers": ["u8jzPde0IgxLd6GncfBA"]})
    assert r.status_code == 201 and r.json()["followersAdded"] == ["u8jzPde0IgxLd6GncfBA"]
    r = ghl.request(
        "DELETE", f"/contacts/{cid}/followers", json={"followers": ["u8jzPde0IgxLd6GncfBA"]}
    )
    assert r.json()["followersRemoved"] == ["u8jzPde0IgxLd6GncfBA"]
    assert ghl.post(f"/contacts/{cid}/campaigns/camp1", json={}).status_code == 201
    assert ghl.delete(f"/contacts/{cid}/campaigns/camp1").json()["succeded"] is True
    assert ghl.delete(f"/contacts/{cid}/campaigns/removeAll").json()["succeded"] is True
    assert (
        ghl.post(
            f"/contacts/{cid}/workflow/wf1", json={"eventStartTime": "2026-01-02T10:00:00Z"}
        ).status_code
        == 200
    )
    assert (
        ghl.request("DELETE", f"/contacts/{cid}/workflow/wf1", json={}).json()["succeded"] is True
    )
    assert ghl.get(f"/contacts/{JORDAN}/appointments").json()["events"][0]["title"] == "Checkup"
    r = ghl.post(
        "/contacts/bulk/business", json={"locationId": LOC, "ids": [cid], "businessId": "biz1"}
    )
    assert r.json() == {"success": True, "ids": [cid]}
    assert ghl.get("/contacts/business/biz1", params={"locationId": LOC}).json()["count"] == 1
    r = ghl.post(
        "/contacts/bulk/tags/update/add",
        json={"locationId": LOC, "contacts": [cid, "nope"], "tags": ["bulk"]},
    )
    assert r.status_code == 201 and r.json()["errorCount"] == 1
    assert "bulk" in ghl.get(f"/contacts/{cid}").json()["contact"]["tags"]
    assert ghl.delete(f"/contacts/{cid}").json()["succeded"] is True
    assert ghl.get(f"/contacts/{cid}").status_code == 400


def test_sample_contact_has_tasks_notes_appointments_and_email(ghl: httpx.Client) -> None:
    contact = ghl.get(f"/contacts/{JORDAN}").json()["contact"]
    assert contact["email"] == "jordan.avery@example.com"
    assert len(ghl.get(f"/contacts/{JORDAN}/tasks").json()["tasks"]) == 2
    assert len(ghl.get(f"/contacts/{JORDAN}/notes").json()["notes"]) == 2
    assert len(ghl.get(f"/contacts/{JORDAN}/appointments").json()["events"]) == 2


def test_auth_is_required_and_checked(anon: httpx.Client, sandbox: RunningSandbox) -> None:
    r = anon.get(f"/ghl/contacts/{JORDAN}", headers={"Version": "2021-07-28"})
    assert r.status_code == 401 and r.json()["statusCode"] == 401
    r = anon.get(
        f"/ghl/contacts/{JORDAN}", headers={"Version": "2021-07-28", "Authorization": "Bearer nope"}
    )
    assert r.status_code == 401 and "invalid" in r.json()["message"]
    other = "pit-sandbox-51b0d7e4-C2QujeCh8ZnC7al2InWR"  # the second location's token
    r = anon.get(
        f"/ghl/contacts/{JORDAN}",
        headers={"Version": "2021-07-28", "Authorization": f"Bearer {other}"},
    )
    assert r.status_code == 403


def test_version_header_is_required_and_must_match(ghl: httpx.Client) -> None:
    r = ghl.get(f"/contacts/{JORDAN}", headers={"Version": ""})
    assert r.status_code == 400
    del ghl.headers["Version"]
    r = ghl.get(f"/contacts/{JORDAN}")
    assert r.status_code == 401 and r.json()["message"] == "Version header was not found"
    r = ghl.get(f"/contacts/{JORDAN}", headers={"Version": "2021-04-15"})
    assert r.status_code == 400 and "2021-07-28" in r.json()["message"]
    r = ghl.get(
        "/calendars/events/appointments/FdnXsiVpzz63FfkCzJr4", headers={"Version": "2021-04-15"}
    )
    assert r.status_code == 200 and r.json()["event"]["contactId"] == JORDAN


def test_validation_errors_are_422_with_every_message(ghl: httpx.Client) -> None:
    r = ghl.post("/contacts/", json={"email": 7, "tags": "vip", "emial": "x"})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "Unprocessable Entity"
    assert set(body["message"]) >= {
        "locationId should not be empty",
        "email must be a string",
        "tags must be an array",
        "property emial should not exist",
    }
    r = ghl.post(f"/contacts/{JORDAN}/tasks", json={"title": "x"})
    assert r.status_code == 422 and "dueDate should not be empty" in r.json()["message"]
    assert ghl.get("/contacts/").status_code == 422  # locationId is required
    assert (
        ghl.post("/contacts/", json={"locationId": LOC, "email": "not-an-email"}).status_code == 422
    )


def test_unknown_ids_are_400(ghl: httpx.Client) -> None:
    assert ghl.get("/contacts/AAAAAAAAAAAAAAAAAAAA").json() == {
        "statusCode": 400,
        "message": "Contact not found",
    }
    assert ghl.get(f"/contacts/{JORDAN}/tasks/nope").status_code == 400
    assert ghl.get(f"/contacts/{JORDAN}/notes/nope").status_code == 400
    r = ghl.get("/nothing/here")
    assert r.status_code == 404 and r.json()["message"] == "Cannot GET /ghl/nothing/here"


def test_a_method_not_served_on_a_served_path_is_ghls_404(ghl: httpx.Client) -> None:
    """GoHighLevel answers a method its route does not take with the 404 of an unknown route
    (``Cannot DELETE ...``), not 405: ``GET /users/ID`` is served, ``DELETE`` is not."""
    r = ghl.delete("/users/someone")
    assert r.status_code == 404
    assert r.json()["message"] == "Cannot DELETE /ghl/users/someone"
    served = ghl.get("/users/someone")  # the route itself is there: its own answer
    assert not str(served.json().get("message", "")).startswith("Cannot GET")


def test_duplicate_rule_refuses_create_and_upsert_updates_the_match(
    ghl: httpx.Client, sandbox: RunningSandbox
) -> None:
    r = ghl.post("/contacts/", json={"locationId": LOC, "phone": "(555) 555-0101"})
    assert r.status_code == 400
    assert r.json()["meta"] == {
        "contactName": "Jordan Avery",
        "contactId": JORDAN,
        "matchingField": "phone",
    }
    r = ghl.post(
        "/contacts/upsert",
        json={"locationId": LOC, "email": "Jordan.Avery@example.com", "firstName": "Jordy"},
    )
    assert r.status_code == 200 and r.json()["new"] is False and r.json()["contact"]["id"] == JORDAN
    assert ghl.get(f"/contacts/{JORDAN}").json()["contact"]["firstName"] == "Jordy"
    r = ghl.post("/contacts/upsert", json={"locationId": LOC, "email": "new@example.com"})
    assert r.json()["new"] is True
    # the second location allows duplicates
    other = "pit-sandbox-51b0d7e4-C2QujeCh8ZnC7al2InWR"
    headers = {"Authorization": f"Bearer {other}"}
    body = {"locationId": "C2QujeCh8ZnC7al2InWR", "email": "casey.nguyen@example.com"}
    assert ghl.post("/contacts/", json=body, headers=headers).status_code == 201


def test_contacts_list_pages_with_start_after(ghl: httpx.Client) -> None:
    seen: list[str] = []
    params: dict[str, object] = {"locationId": LOC, "limit": 3}
    pages = 0
    while True:
        body = ghl.get("/contacts/", params=params).json()
        seen += [c["id"] for c in body["contacts"]]
        pages += 1
        if "startAfterId" not in body["meta"]:
            break
        params = {
            **params,
            "startAfter": body["meta"]["startAfter"],
            "startAfterId": body["meta"]["startAfterId"],
        }
        assert body["meta"]["nextPageUrl"].startswith("http://127.0.0.1")
    assert pages == 2 and len(seen) == len(set(seen)) == 4 and seen[0] == JORDAN
    assert ghl.get("/contacts/", params={"locationId": LOC, "limit": 101}).status_code == 422


def test_search_pages_and_filters(ghl: httpx.Client) -> None:
    page1 = ghl.post("/contacts/search", json={"locationId": LOC, "pageLimit": 2, "page": 1}).json()
    page2 = ghl.post("/contacts/search", json={"locationId": LOC, "pageLimit": 2, "page": 2}).json()
    assert page1["total"] == 4 and {c["id"] for c in page1["contacts"]}.isdisjoint(
        c["id"] for c in page2["contacts"]
    )
    tagged = ghl.post(
        "/contacts/search",
        json={
            "locationId": LOC,
            "filters": [{"field": "tags", "operator": "eq", "value": "patient"}],
        },
    ).json()
    assert {c["id"] for c in tagged["contacts"]} == {JORDAN, "oaF1LlqsajAIxNKu8iS2"}
    assert ghl.post("/contacts/search", json={}).status_code == 422


def test_put_tags_replaces_and_post_adds_without_duplicates(ghl: httpx.Client) -> None:
    assert ghl.post(
        f"/contacts/{JORDAN}/tags", json={"tags": ["patient", "Patient", "new"]}
    ).json()["tags"] == [
        "patient",
        "connecteam",
        "new",
    ]
    r = ghl.put(f"/contacts/{JORDAN}", json={"tags": ["only"]})
    assert r.json()["contact"]["tags"] == ["only"]


def test_users_and_calendar_events(ghl: httpx.Client) -> None:
    users = ghl.get("/users/", params={"locationId": LOC}).json()["users"]
    assert {u["id"] for u in users} == {"u8jzPde0IgxLd6GncfBA", "epfJBd0Kh8oOOL8dKLzd"}
    found = ghl.get(
        "/users/search", params={"companyId": "5DP4iH6HLkQsiKESj6rh", "query": "morgan"}
    ).json()
    assert found["count"] == 1
    assert ghl.get("/users/u8jzPde0IgxLd6GncfBA").json()["email"] == "morgan.lee@sunrise.example"
    r = ghl.get(
        "/calendars/events",
        params={
            "locationId": LOC,
            "calendarId": "ocJ2isAjIhKtJ0RlgLKO",
            "startTime": "1709251200000",
            "endTime": "1711929600000",
        },
        headers={"Version": "2021-04-15"},
    )
    assert [e["id"] for e in r.json()["events"]] == ["FdnXsiVpzz63FfkCzJr4"]


def test_search_query_matches_a_full_name(ghl: httpx.Client) -> None:
    """A query of first and last name finds the contact, as GoHighLevel's search does."""
    found = ghl.post("/contacts/search", json={"locationId": LOC, "query": "Jordan Avery"}).json()
    assert [c["id"] for c in found["contacts"]] == [JORDAN]
    none = ghl.post("/contacts/search", json={"locationId": LOC, "query": "Jordan Raman"}).json()
    assert none["total"] == 0
