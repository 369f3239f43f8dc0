"""The Connecteam fake over real HTTP: users, custom fields, notes, task boards and quick tasks.
Every response is checked against Connecteam's document."""

from __future__ import annotations

import httpx

from connector.sandbox import RunningSandbox

pytest_plugins = ["sandbox.fixtures"]


def test_api_key_is_required(anon: httpx.Client) -> None:
    assert anon.get("/connecteam/users/v1/users").status_code == 401
    r = anon.get("/connecteam/users/v1/users", headers={"X-API-KEY": "wrong"})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid API key"}


def test_users_list_create_update_archive_delete(ct: httpx.Client) -> None:
    body = ct.get("/users/v1/users", params={"userIds": 9001}).json()
    jordan = body["data"]["users"][0]
    assert jordan["userId"] == 9001 and body["paging"]["offset"] == 1
    fields = {f["name"]: f["value"] for f in jordan["customFields"]}
    assert fields["GHL contact id"] == "ocQHyuzHvysMo5N5VsXc"
    new = [
        {
            "firstName": "Rosa",
            "lastName": "Diaz",
            "phoneNumber": "+1 555 555 0177",
            "userType": "user",
        }
    ]
    created = ct.post("/users/v1/users", json=new).json()["data"]["results"][0]
    uid = created["userId"]
    assert created["phoneNumber"] == "+15555550177"
    again = ct.post("/users/v1/users", json=new)
    assert again.status_code == 400 and "already exists" in again.json()["detail"]
    edit = [
        {
            "userId": uid,
            "lastName": "Díaz",
            "customFields": [{"customFieldId": 501, "value": "abc"}],
        }
    ]
    edited = ct.put("/users/v1/users", json=edit).json()["data"]
    assert edited["count"] == 1 and edited["users"][0]["lastName"] == "Díaz"
    assert ct.request("DELETE", "/users/v1/users", json=[uid]).json()["data"]["success"] is True
    archived = ct.get("/users/v1/users", params={"userStatus": "archived"}).json()["data"]["users"]
    assert [u["userId"] for u in archived] == [uid] and archived[0]["isArchived"] is True
    assert ct.delete(f"/users/v1/users/{uid}", params={"deletionType": "delete"}).status_code == 200
    assert ct.get("/users/v1/users", params={"userStatus": "all"}).json()["paging"]["total"] == 3
    assert ct.delete("/users/v1/users/424242").status_code == 404


def test_validation_errors_are_fastapi_shaped(ct: httpx.Client) -> None:
    r = ct.post("/users/v1/users", json=[{"firstName": "A", "userType": "boss"}])
    assert r.status_code == 422
    locs = {tuple(d["loc"]): d["type"] for d in r.json()["detail"]}
    assert locs[("body", 0, "lastName")] == "value_error.missing"
    assert locs[("body", 0, "userType")] == "type_error.enum"
    assert ct.get("/users/v1/users", params={"limit": 501}).status_code == 422
    assert ct.post("/users/v1/users/9001/notes", json={}).status_code == 422


def test_notes_are_created_and_visible_through_the_inspection_endpoint(
    ct: httpx.Client, sandbox: RunningSandbox
) -> None:
    r = ct.post(
        "/users/v1/users/9001/notes", json={"title": "From GHL", "text": "Prefers mornings"}
    )
    assert r.status_code == 200 and r.json()["data"]["text"] == "Prefers mornings"
    notes = httpx.get(f"{sandbox.url}/_sandbox/connecteam/users/9001/notes").json()["notes"]
    assert [n["text"] for n in notes] == ["Met at the spring open day.", "Prefers mornings"]
    assert ct.post("/users/v1/users/1/notes", json={"text": "x"}).status_code == 404


def test_custom_fields_crud(ct: httpx.Client) -> None:
    listed = ct.get("/users/v1/custom-fields", params={"limit": 50}).json()
    assert [f["id"] for f in listed["data"]["customFields"]] == [501, 502, 503]
    spec = {
        "name": "Source",
        "type": "str",
        "isRequired": False,
        "categoryId": 1,
        "isVisibleToAllAdmins": True,
        "isEditableForAllAdmins": True,
        "isVisibleToUsers": False,
        "isEditableForUsers": False,
    }
    created = ct.post("/users/v1/custom-fields", json={"customFields": [spec]}).json()["data"][
        "customFields"
    ][0]
    fid = created["id"]
    updated = ct.put(
        "/users/v1/custom-fields", json={"customFields": [{"id": fid, "name": "Lead source"}]}
    )
    assert updated.json()["data"]["customFields"][0]["name"] == "Lead source"
    gone = ct.request("DELETE", "/users/v1/custom-fields", json={"customFieldIds": [fid]}).json()[
        "data"
    ]
    assert gone == {"customFieldIds": [fid], "success": True}


def test_quick_tasks_create_update_complete_delete(ct: httpx.Client) -> None:
    boards = ct.get("/tasks/v1/taskboards").json()["data"]["taskBoards"]
    assert boards[0] == {"id": 7001, "name": "Field tasks", "isArchived": False}
    task = {
        "userIds": [9001],
        "status": "published",
        "title": "Bring samples",
        "dueDate": 1767312000,
        "description": {"content": "Two boxes"},
    }
    created = ct.post("/tasks/v1/taskboards/7001/tasks", json=task).json()["data"]
    tid = created["id"]
    assert created["description"] == {"content": "Two boxes"}
    done = ct.put(
        f"/tasks/v1/taskboards/7001/tasks/{tid}", json={**task, "status": "completed"}
    ).json()["data"]
    assert done["status"] == "completed"
    completed = ct.get("/tasks/v1/taskboards/7001/tasks", params={"status": "completed"}).json()[
        "data"
    ]["tasks"]
    assert tid in [t["id"] for t in completed]
    assert ct.delete(f"/tasks/v1/taskboards/7001/tasks/{tid}").json()["data"] == {}
    assert ct.delete(f"/tasks/v1/taskboards/7001/tasks/{tid}").status_code == 404
    assert (
        ct.post("/tasks/v1/taskboards/7001/tasks", json={**task, "userIds": []}).status_code == 400
    )
    assert ct.post("/tasks/v1/taskboards/7001/tasks", json={"title": "x"}).status_code == 422
    assert ct.get("/tasks/v1/taskboards/999/tasks").status_code == 404
