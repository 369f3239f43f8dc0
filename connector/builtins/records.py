"""The record types the built-in apps offer a two-way sync (:class:`connector.apps.RecordType`):
GoHighLevel contacts and tasks, Connecteam users and quick tasks.

Each says how one record is read, found by a match key, created, changed and removed through the
catalogued operations, and which of its webhook events say what. Times are the vendor's own:
a GoHighLevel contact's ``dateUpdated`` (ISO 8601, milliseconds), a Connecteam user's
``modifiedAt`` (epoch seconds).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connector.apps.events import Poller, PollSetup
from connector.apps.records import RecordType, Request

__all__ = ["CONNECTEAM_RECORDS", "GHL_RECORDS", "iso_seconds"]

log = logging.getLogger("connector.serve")


def iso_seconds(value: Any) -> float | None:
    """An ISO 8601 time (``2024-03-01T15:04:05.123Z``) as epoch seconds; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _epoch(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _count(answer: Any, key: str) -> int | None:
    value = answer.get(key) if isinstance(answer, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# GoHighLevel contacts ---------------------------------------------------------------------------

GHL_CONTACT_FIELDS = (
    "firstName",
    "lastName",
    "email",
    "phone",
    "companyName",
    "address1",
    "city",
    "state",
    "postalCode",
    "country",
    "website",
    "timezone",
    "source",
)
# the search filter a match key is found by
_GHL_FILTER_FIELDS = {"email": "email", "phone": "phone"}


def _ghl_contact(answer: Any) -> Mapping[str, Any] | None:
    contact = answer.get("contact") if isinstance(answer, Mapping) else None
    return contact if isinstance(contact, Mapping) else None


def _ghl_find(field: str, value: Any, env: Mapping[str, str]) -> Request | None:
    name = _GHL_FILTER_FIELDS.get(field)
    if name is None or value in (None, ""):
        return None
    body = {
        "locationId": env.get("GHL_LOCATION_ID", ""),
        "pageLimit": 10,
        "filters": [{"field": name, "operator": "eq", "value": value}],
    }
    return "ghl.search-contacts-advanced", body


def _ghl_found(answer: Any) -> list[Mapping[str, Any]]:
    found = answer.get("contacts") if isinstance(answer, Mapping) else None
    return [c for c in found or [] if isinstance(c, Mapping)]


def _ghl_create(fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None) -> Request:
    return "ghl.create-contact", {**fields, "locationId": env.get("GHL_LOCATION_ID", "")}


WALK_PAGE = 100  # records a reconcile reads a page


def _ghl_walk(cursor: Any, env: Mapping[str, str]) -> Request:
    body: dict[str, Any] = {
        "locationId": env.get("GHL_LOCATION_ID", ""),
        "pageLimit": WALK_PAGE,
        "sort": [{"field": "dateAdded", "direction": "asc"}],
    }
    if cursor:
        body["searchAfter"] = cursor
    return "ghl.search-contacts-advanced", body


def _ghl_page(answer: Any, cursor: Any) -> tuple[list[Mapping[str, Any]], Any]:
    found = _ghl_found(answer)
    last = found[-1].get("searchAfter") if found else None
    return found, (last if len(found) == WALK_PAGE and last else None)


def _ghl_made(
    fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None
) -> Request | None:
    for field in ("email", "phone"):
        if fields.get(field):
            return _ghl_find(field, fields[field], env)
    return None


def _ghl_contact_poller(setup: PollSetup) -> Poller:
    from connector.builtins.ghl import ContactPoller

    return ContactPoller(setup)


GHL_CONTACT = RecordType(
    app="ghl",
    name="contact",
    title="GoHighLevel contact",
    fields=GHL_CONTACT_FIELDS,
    read=lambda rid, address: ("ghl.get-contact", {"contactId": rid}),
    record_of=_ghl_contact,
    id_of=lambda record: str(record.get("id") or ""),
    changed_at=lambda record: iso_seconds(record.get("dateUpdated")),
    update=lambda rid, fields, current, address: (
        "ghl.update-contact",
        {"contactId": rid, **fields},
    ),
    create=_ghl_create,
    created=_ghl_contact,
    made=_ghl_made,
    made_found=_ghl_found,
    as_created=lambda record: {"contact": record},
    find=_ghl_find,
    found=_ghl_found,
    walk=_ghl_walk,
    page=_ghl_page,
    total=lambda answer: _count(answer, "total"),
    remove=lambda rid, address: ("ghl.delete-contact", {"contactId": rid}),
    poll=lambda setup: _ghl_contact_poller(setup),
    poll_event="ContactUpdate",
    events={"ContactCreate": "upsert", "ContactUpdate": "upsert", "ContactDelete": "delete"},
    event_id=lambda payload: str(payload.get("id") or "") or None,
    # GoHighLevel answers an unknown contact id with 400 "Contact not found"
    missing=lambda status, message: (
        status in (404, 410) or (status == 400 and "not found" in message.lower())
    ),
)

GHL_RECORDS: Mapping[str, RecordType] = {"contact": GHL_CONTACT}


# Connecteam users -------------------------------------------------------------------------------

CONNECTEAM_USER_FIELDS = ("firstName", "lastName", "email", "phoneNumber", "userType")
_CT_FILTERS = {"email": "emailAddresses", "phoneNumber": "phoneNumbers"}


def _ct_user(answer: Any) -> Mapping[str, Any] | None:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    users = data.get("users") if isinstance(data, Mapping) else None
    if isinstance(users, list) and users and isinstance(users[0], Mapping):
        return users[0]
    return None


def _ct_created(answer: Any) -> Mapping[str, Any] | None:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    results = data.get("results") if isinstance(data, Mapping) else None
    if isinstance(results, list) and results and isinstance(results[0], Mapping):
        return results[0]
    return None


def _ct_find(field: str, value: Any, env: Mapping[str, str]) -> Request | None:
    name = _CT_FILTERS.get(field)
    if name is None or value in (None, ""):
        return None
    return "connecteam.get-users", {name: [value], "userStatus": "active", "limit": 10}


def _ct_found(answer: Any) -> list[Mapping[str, Any]]:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    users = data.get("users") if isinstance(data, Mapping) else None
    return [u for u in users or [] if isinstance(u, Mapping)]


def _ct_create(fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None) -> Request:
    return "connecteam.create-users", {"body": [{"userType": "user", **fields}]}


def _ct_update(
    rid: str, fields: Mapping[str, Any], current: Mapping[str, Any], address: Mapping[str, Any]
) -> Request:
    return "connecteam.edit-users", {"body": [{"userId": int(rid), **fields}]}


def _ct_event_record(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    data = payload.get("data")  # `connector serve` gives each item of `data` with its envelope
    return data if isinstance(data, Mapping) else payload


def _ct_event_id(payload: Mapping[str, Any]) -> str | None:
    user_id = payload.get("userId")
    return str(user_id) if user_id not in (None, "") else None


def _ct_walk(cursor: Any, env: Mapping[str, str]) -> Request:
    return "connecteam.get-users", {
        "userStatus": "active",
        "limit": WALK_PAGE,
        "offset": cursor or 0,
    }


def _ct_page(answer: Any, cursor: Any) -> tuple[list[Mapping[str, Any]], Any]:
    found = _ct_found(answer)
    start = int(cursor or 0)
    return found, (start + len(found) if len(found) == WALK_PAGE else None)


def _ct_made(
    fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None
) -> Request | None:
    for field in ("email", "phoneNumber"):
        if fields.get(field):
            return _ct_find(field, fields[field], env)
    return None


CONNECTEAM_USER = RecordType(
    app="connecteam",
    name="user",
    title="Connecteam user",
    fields=CONNECTEAM_USER_FIELDS,
    read=lambda rid, address: (
        "connecteam.get-users",
        {"userIds": [int(rid)], "userStatus": "all"},
    ),
    record_of=_ct_user,
    id_of=lambda record: str(record.get("userId") or ""),
    changed_at=lambda record: _epoch(record.get("modifiedAt")),
    update=_ct_update,
    create=_ct_create,
    created=_ct_created,
    made=_ct_made,
    made_found=_ct_found,
    as_created=lambda record: {"data": {"results": [record]}},
    create_needs=("firstName", "lastName", "phoneNumber"),
    find=_ct_find,
    found=_ct_found,
    walk=_ct_walk,
    page=_ct_page,
    total=lambda answer: _count(
        answer.get("paging") if isinstance(answer, Mapping) else None, "total"
    ),
    remove=lambda rid, address: (
        "connecteam.archive-users",
        {"deletionType": "delete", "body": [int(rid)]},
    ),
    archive=lambda rid, address: (
        "connecteam.archive-users",
        {"deletionType": "archive", "body": [int(rid)]},
    ),
    events={
        "user_created": "upsert",
        "user_updated": "upsert",
        "user_archived": "archive",
        "user_deleted": "delete",
    },
    event_record=_ct_event_record,
    event_id=_ct_event_id,
    inactive=lambda record: bool(record.get("isArchived")),
)

# GoHighLevel tasks (on a contact) -------------------------------------------------------------

GHL_TASK_FIELDS = ("title", "body", "dueDate", "completed", "assignedTo")


def iso_utc(value: Any) -> str | None:
    """A time as ISO 8601 UTC to the second (``2024-03-09T17:00:00Z``), from an ISO text or
    epoch seconds; None when it is neither."""
    seconds = _epoch(value) if not isinstance(value, str) else iso_seconds(value)
    if seconds is None:
        return None
    return datetime.fromtimestamp(int(seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ghl_task(answer: Any) -> Mapping[str, Any] | None:
    task = answer.get("task") if isinstance(answer, Mapping) else None
    return task if isinstance(task, Mapping) else None


def _ghl_task_decode(task: Mapping[str, Any]) -> Mapping[str, Any]:
    out = dict(task)
    if "dueDate" in out:
        out["dueDate"] = iso_utc(out["dueDate"])
    if "completed" in out or "title" in out:
        out["completed"] = bool(out.get("completed"))
    return out


def _ghl_task_read(rid: str, address: Mapping[str, Any]) -> Request | None:
    contact = address.get("contactId")
    if not contact:
        return None  # GoHighLevel #332: TaskCreate may not name the contact
    return "ghl.get-task", {"contactId": contact, "taskId": rid}


TASK_SEARCH_PAGE = 100
TASK_SEARCH_PAGES = 50  # 5,000 tasks of a location looked through, at most


def _ghl_task_locate(
    rid: str, hint: Mapping[str, Any], env: Mapping[str, str], page: int
) -> Request | None:
    """The location's task search (GoHighLevel #332: ``TaskCreate`` names no contact; the search
    shows it): first by the event's title, then every task, a page at a time."""
    location = str(hint.get("locationId") or env.get("GHL_LOCATION_ID") or "")
    title = hint.get("title")
    if not location or page > TASK_SEARCH_PAGES:
        return None
    body: dict[str, Any] = {"locationId": location, "limit": TASK_SEARCH_PAGE}
    if page == 0 and title:
        body["query"] = str(title)
    else:  # after the title's page (when there is a title), every task
        body["skip"] = (page - 1 if title else page) * TASK_SEARCH_PAGE
    return "ghl.task-search", body


def _ghl_tasks_found(answer: Any) -> list[Mapping[str, Any]]:
    found = answer.get("tasks") if isinstance(answer, Mapping) else None
    out = []
    for task in found or []:
        if isinstance(task, Mapping):
            if not task.get("id") and task.get("_id"):
                task = {**task, "id": task["_id"]}
            out.append(task)
    return out


def _ghl_task_create(
    fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None
) -> Request:
    return "ghl.create-task", {"contactId": parent, "completed": False, **fields}


def _ghl_task_poller(setup: PollSetup) -> Poller:
    from connector.builtins.ghl import TaskSearchPoller

    return TaskSearchPoller(setup)


GHL_TASK = RecordType(
    app="ghl",
    name="task",
    title="GoHighLevel task",
    fields=GHL_TASK_FIELDS,
    read=_ghl_task_read,
    locate=_ghl_task_locate,
    located=_ghl_tasks_found,
    record_of=_ghl_task,
    id_of=lambda record: str(record.get("id") or ""),
    changed_at=lambda record: iso_seconds(record.get("dateUpdated")),
    update=lambda rid, fields, current, address: (
        "ghl.update-task",
        {"contactId": address.get("contactId"), "taskId": rid, **fields},
    ),
    create=_ghl_task_create,
    created=_ghl_task,
    made=lambda fields, env, parent: (
        ("ghl.get-all-tasks", {"contactId": parent}) if parent else None
    ),
    made_found=_ghl_tasks_found,
    as_created=lambda record: {"task": record},
    remove=lambda rid, address: (
        "ghl.delete-task",
        {"contactId": address.get("contactId"), "taskId": rid},
    ),
    poll=lambda setup: _ghl_task_poller(setup),
    poll_event="task.updated",
    events={
        "TaskCreate": "upsert",
        "TaskComplete": "upsert",
        "TaskDelete": "delete",
        "task.updated": "upsert",  # the sync's poll: GoHighLevel sends no webhook for an edit
    },
    event_id=lambda payload: str(payload.get("id") or "") or None,
    decode=_ghl_task_decode,
    address_of=lambda record: {"contactId": record["contactId"]} if record.get("contactId") else {},
    parent_of=lambda record: str(record.get("contactId") or "") or None,
)

GHL_RECORDS = {**GHL_RECORDS, "task": GHL_TASK}


# Connecteam quick tasks (on a task board) -------------------------------------------------------

CONNECTEAM_TASK_FIELDS = ("title", "description", "dueDate", "completed", "startTime")
TASK_BOARD_VAR = "CONNECTOR_VAR_TASK_BOARD_ID"


def _ct_task(answer: Any) -> Mapping[str, Any] | None:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    if isinstance(data, Mapping) and isinstance(data.get("tasks"), list):
        tasks = data["tasks"]
        return tasks[0] if tasks and isinstance(tasks[0], Mapping) else None
    return data if isinstance(data, Mapping) and data.get("id") else None


def _ct_task_decode(task: Mapping[str, Any]) -> Mapping[str, Any]:
    out = dict(task)
    for key in ("dueDate", "startTime"):
        if key in out:
            out[key] = iso_utc(out[key])
    if "status" in out:
        out["completed"] = out["status"] == "completed"
    description = out.get("description")
    if isinstance(description, Mapping):
        out["description"] = description.get("content") or None
    elif isinstance(description, list):  # the list view: [{type: html, html}]
        parts = [str(d["html"]) for d in description if isinstance(d, Mapping) and d.get("html")]
        out["description"] = "".join(parts) or None
    return out


def _ct_task_encode(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for key in ("dueDate", "startTime"):
        if key in out:
            out[key] = int(iso_seconds(out[key]) or 0) or None
    if "completed" in out:
        out["status"] = "completed" if out.pop("completed") else "published"
    if "description" in out:
        out["description"] = {"content": out["description"]} if out["description"] else None
    return out


def _ct_board(address: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str:
    return str(address.get("taskBoardId") or (env or {}).get(TASK_BOARD_VAR) or "")


def _ct_task_read(rid: str, address: Mapping[str, Any]) -> Request | None:
    board = _ct_board(address)
    if not board:
        return None
    return "connecteam.get-tasks", {"taskBoardId": board, "taskIds": [rid], "status": "all"}


def _ct_task_update(
    rid: str, fields: Mapping[str, Any], current: Mapping[str, Any], address: Mapping[str, Any]
) -> Request:
    # Connecteam replaces a quick task whole: what is not written keeps its current value
    body: dict[str, Any] = {
        "title": current.get("title"),
        "userIds": list(current.get("userIds") or []),
        "status": current.get("status") or "published",
    }
    for key in ("dueDate", "startTime"):
        if current.get(key) is not None:
            body[key] = (
                int(iso_seconds(current[key]) or 0)
                if isinstance(current[key], str)
                else current[key]
            )
    body.update({k: v for k, v in fields.items() if v is not None})
    return "connecteam.update-task", {"taskBoardId": _ct_board(address), "taskId": rid, **body}


def _ct_task_create(
    fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None
) -> Request:
    board = env.get(TASK_BOARD_VAR, "")
    body = {"status": "published", **{k: v for k, v in fields.items() if v is not None}}
    return "connecteam.create-task", {
        "taskBoardId": board,
        "userIds": [int(parent)] if parent else [],
        "type": "oneTime",
        **body,
    }


def _ct_task_made(
    fields: Mapping[str, Any], env: Mapping[str, str], parent: str | None
) -> Request | None:
    board = env.get(TASK_BOARD_VAR, "")
    if not board or not parent:
        return None
    return "connecteam.get-tasks", {
        "taskBoardId": board,
        "userIds": [int(parent)],
        "status": "all",
        "limit": 100,
    }


def _ct_tasks_found(answer: Any) -> list[Mapping[str, Any]]:
    data = answer.get("data") if isinstance(answer, Mapping) else None
    tasks = data.get("tasks") if isinstance(data, Mapping) else None
    return [t for t in tasks or [] if isinstance(t, Mapping)]


def _ct_task_parent(record: Mapping[str, Any]) -> str | None:
    users = record.get("userIds")
    return str(users[0]) if isinstance(users, list) and users else None


def _ct_task_poller(setup: PollSetup) -> Poller | None:
    """The sync's poll of the task board ``CONNECTOR_VAR_TASK_BOARD_ID`` (None: no board)."""
    from dataclasses import replace

    from connector.builtins.connecteam import TaskPoller

    board = setup.runtime.env.get(TASK_BOARD_VAR, "")
    if not board:
        log.warning("Connecteam tasks are not polled: %s names no task board", TASK_BOARD_VAR)
        return None
    plan = replace(setup.plan, poll={**setup.plan.poll, "board": board, "new": True})
    return TaskPoller(replace(setup, plan=plan))


CONNECTEAM_TASK = RecordType(
    app="connecteam",
    name="task",
    title="Connecteam task",
    fields=CONNECTEAM_TASK_FIELDS,
    read=_ct_task_read,
    record_of=_ct_task,
    id_of=lambda record: str(record.get("id") or ""),
    changed_at=lambda record: None,  # Connecteam's tasks carry no change time
    update=_ct_task_update,
    create=_ct_task_create,
    created=_ct_task,
    made=_ct_task_made,
    made_found=_ct_tasks_found,
    as_created=lambda record: {"data": record},
    remove=lambda rid, address: (
        "connecteam.delete-task",
        {"taskBoardId": _ct_board(address), "taskId": rid},
    ),
    poll=lambda setup: _ct_task_poller(setup),
    poll_event="task.updated",
    events={"task_published": "upsert", "task_completed": "upsert", "task.updated": "upsert"},
    event_record=_ct_event_record,
    event_id=lambda record: str(record.get("id") or "") or None,
    decode=_ct_task_decode,
    encode=_ct_task_encode,
    address_of=lambda record: (
        {"taskBoardId": str(record["taskBoardId"])} if record.get("taskBoardId") else {}
    ),
    parent_of=_ct_task_parent,
)

CONNECTEAM_RECORDS: Mapping[str, RecordType] = {"user": CONNECTEAM_USER, "task": CONNECTEAM_TASK}
