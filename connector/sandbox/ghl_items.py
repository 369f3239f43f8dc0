"""What hangs off a GoHighLevel contact: tasks, notes, tags, appointments, followers, campaigns
and workflows (the rest of the contacts document).

Unknown task and note ids are 400 (``Task not found``, ``Note not found``), as for contacts.
Tasks: a new task's ``TaskCreate`` event leaves out ``contactId`` and ``body``, as GoHighLevel's
real ones do (highlevel-api-docs#332); ``POST /locations/{locationId}/tasks/search`` finds the
location's tasks with them (``contactId``, ``completed``, ``assignedTo``, ``query`` over the
title, ``limit`` (default 25), ``skip``; oldest first; no date filter).
Tags: ``POST /contacts/{id}/tags`` adds (lower-cased, no duplicates) and answers every tag of the
contact; ``DELETE`` removes; ``PUT /contacts/{id}`` with ``tags`` replaces them all.
"""

from __future__ import annotations

from typing import Any

from connector.sandbox.common import ApiError, Call, Reply, Routes
from connector.sandbox.ghl_contacts import get_contact
from connector.sandbox.ghl_model import (
    merge_tags,
    render_contact,
    render_event,
    render_note,
    render_task,
)

__all__ = ["routes"]

routes = Routes()
TASK_FIELDS = ("title", "body", "dueDate", "completed", "assignedTo")
NOTE_FIELDS = ("userId", "body", "title", "color", "pinned")


def _task(call: Call) -> dict[str, Any]:
    contact = get_contact(call, call.path["contactId"])
    task = call.state.ghl.tasks.get(contact["id"], {}).get(call.path["taskId"])
    if task is None:
        raise ApiError(400, "Task not found")
    return task


def _note(call: Call) -> dict[str, Any]:
    contact = get_contact(call, call.path["contactId"])
    note = call.state.ghl.notes.get(contact["id"], {}).get(call.path["id"])
    if note is None:
        raise ApiError(400, "Note not found")
    return note


def _touch(call: Call, contact: dict[str, Any]) -> None:
    contact["dateUpdated"] = call.state.now_iso()


# -- tasks ------------------------------------------------------------------------------------


@routes("GET", "/contacts/{contactId}/tasks")
def list_tasks(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        tasks = call.state.ghl.tasks.get(contact["id"], {}).values()
        return 200, {"tasks": [render_task(t) for t in tasks]}


@routes("POST", "/contacts/{contactId}/tasks")
def create_task(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        task = {k: call.body[k] for k in TASK_FIELDS if call.body.get(k) is not None}
        task.update(id=call.state.ghl_id(), contactId=contact["id"])
        call.state.ghl.tasks.setdefault(contact["id"], {})[task["id"]] = task
        shown = render_task(task)
        # GoHighLevel #332: the event omits contactId and body (the location is kept)
        event = {k: v for k, v in shown.items() if k not in ("contactId", "body")}
        event["locationId"] = contact["locationId"]
    call.state.emit("TaskCreate", event)
    return 201, {"task": shown}


@routes("POST", "/locations/{locationId}/tasks/search")
def search_tasks(call: Call) -> Reply:
    body = call.body or {}
    location = call.path["locationId"]
    if location != call.location_id:
        raise ApiError(403, "The token does not have access to this location.")
    contacts = set(body.get("contactId") or [])
    assigned = set(body.get("assignedTo") or [])
    query = str(body.get("query") or "").lower()
    skip, limit = int(body.get("skip") or 0), int(body.get("limit") or 25)
    with call.state.lock:
        found = [
            render_task(task)
            for contact_id, tasks in call.state.ghl.tasks.items()
            if call.state.ghl.contacts.get(contact_id, {}).get("locationId") == location
            and (not contacts or contact_id in contacts)
            for task in tasks.values()
            if ("completed" not in body or bool(task.get("completed")) == bool(body["completed"]))
            and (not assigned or task.get("assignedTo") in assigned)
            and (not query or query in str(task.get("title") or "").lower())
        ]
    return 200, {"tasks": found[skip : skip + limit]}


@routes("GET", "/contacts/{contactId}/tasks/{taskId}")
def get_task(call: Call) -> Reply:
    with call.state.lock:
        return 200, {"task": render_task(_task(call))}


@routes("PUT", "/contacts/{contactId}/tasks/{taskId}")
def update_task(call: Call) -> Reply:
    with call.state.lock:
        task = _task(call)
        was_done = bool(task.get("completed"))
        for key in TASK_FIELDS:
            if key in (call.body or {}):
                task[key] = call.body[key]
        shown = render_task(task)
    if task.get("completed") and not was_done:
        call.state.emit("TaskComplete", shown)
    return 200, {"task": shown}


@routes("PUT", "/contacts/{contactId}/tasks/{taskId}/completed")
def complete_task(call: Call) -> Reply:
    with call.state.lock:
        task = _task(call)
        was_done = bool(task.get("completed"))
        task["completed"] = bool(call.body["completed"])
        shown = render_task(task)
    if task["completed"] and not was_done:
        call.state.emit("TaskComplete", shown)
    return 200, {"task": shown}


@routes("DELETE", "/contacts/{contactId}/tasks/{taskId}")
def delete_task(call: Call) -> Reply:
    with call.state.lock:
        task = _task(call)
        del call.state.ghl.tasks[task["contactId"]][task["id"]]
    call.state.emit("TaskDelete", render_task(task))
    return 200, {"succeded": True}


# -- notes ------------------------------------------------------------------------------------


@routes("GET", "/contacts/{contactId}/notes")
def list_notes(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        notes = call.state.ghl.notes.get(contact["id"], {}).values()
        return 200, {"notes": [render_note(n) for n in notes]}


@routes("POST", "/contacts/{contactId}/notes")
def create_note(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        note = {k: call.body[k] for k in NOTE_FIELDS if call.body.get(k) is not None}
        note.update(id=call.state.ghl_id(), contactId=contact["id"], dateAdded=call.state.now_iso())
        call.state.ghl.notes.setdefault(contact["id"], {})[note["id"]] = note
        shown = render_note(note)
    call.state.emit("NoteCreate", shown)
    return 201, {"note": shown}


@routes("GET", "/contacts/{contactId}/notes/{id}")
def get_note(call: Call) -> Reply:
    with call.state.lock:
        return 200, {"note": render_note(_note(call))}


@routes("PUT", "/contacts/{contactId}/notes/{id}")
def update_note(call: Call) -> Reply:
    with call.state.lock:
        note = _note(call)
        for key in NOTE_FIELDS:
            if key in (call.body or {}):
                note[key] = call.body[key]
        shown = render_note(note)
    call.state.emit("NoteUpdate", shown)
    return 200, {"note": shown}


@routes("DELETE", "/contacts/{contactId}/notes/{id}")
def delete_note(call: Call) -> Reply:
    with call.state.lock:
        note = _note(call)
        del call.state.ghl.notes[note["contactId"]][note["id"]]
    call.state.emit("NoteDelete", render_note(note))
    return 200, {"succeded": True}


# -- tags, appointments, followers ------------------------------------------------------------


@routes("POST", "/contacts/{contactId}/tags")
def add_tags(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        before = list(contact.get("tags", []))
        contact["tags"] = merge_tags(before, call.body["tags"])
        _touch(call, contact)
        shown = render_contact(contact)
    if contact["tags"] != before:
        call.state.emit("ContactTagUpdate", shown)
    return 201, {"tags": list(contact["tags"])}


@routes("DELETE", "/contacts/{contactId}/tags")
def remove_tags(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        gone = set(merge_tags([], call.body["tags"]))
        before = list(contact.get("tags", []))
        contact["tags"] = [t for t in before if t not in gone]
        _touch(call, contact)
        shown = render_contact(contact)
    if contact["tags"] != before:
        call.state.emit("ContactTagUpdate", shown)
    return 200, {"tags": list(contact["tags"])}


@routes("GET", "/contacts/{contactId}/appointments")
def contact_appointments(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        events = [
            render_event(e)
            for e in call.state.ghl.appointments.values()
            if e["contactId"] == contact["id"]
        ]
    events.sort(key=lambda e: str(e.get("startTime", "")))
    return 200, {"events": events}


@routes("POST", "/contacts/{contactId}/followers")
def add_followers(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        have = list(contact.get("followers", []))
        added = [f for f in dict.fromkeys(call.body["followers"]) if f not in have]
        contact["followers"] = have + added
        _touch(call, contact)
    return 201, {"followers": list(contact["followers"]), "followersAdded": added}


@routes("DELETE", "/contacts/{contactId}/followers")
def remove_followers(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        gone = [f for f in contact.get("followers", []) if f in call.body["followers"]]
        contact["followers"] = [f for f in contact.get("followers", []) if f not in gone]
        _touch(call, contact)
    return 200, {"followers": list(contact["followers"]), "followersRemoved": gone}


# -- campaigns and workflows ------------------------------------------------------------------


@routes("POST", "/contacts/{contactId}/campaigns/{campaignId}")
def add_to_campaign(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        if call.path["campaignId"] not in contact["campaigns"]:
            contact["campaigns"].append(call.path["campaignId"])
    return 201, {"succeded": True}


@routes("DELETE", "/contacts/{contactId}/campaigns/removeAll")
@routes("DELETE", "/contacts/{contactId}/campaigns/remove-all")  # v3's name for it
def remove_from_all_campaigns(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        contact["campaigns"] = []
    return 200, {"succeded": True}


@routes("DELETE", "/contacts/{contactId}/campaigns/{campaignId}")
def remove_from_campaign(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        if call.path["campaignId"] in contact["campaigns"]:
            contact["campaigns"].remove(call.path["campaignId"])
    return 200, {"succeded": True}


@routes("POST", "/contacts/{contactId}/workflow/{workflowId}")
def add_to_workflow(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        entry = {
            "workflowId": call.path["workflowId"],
            "eventStartTime": (call.body or {}).get("eventStartTime"),
        }
        contact["workflows"] = [
            w for w in contact["workflows"] if w["workflowId"] != entry["workflowId"]
        ]
        contact["workflows"].append(entry)
    return 200, {"succeded": True}


@routes("DELETE", "/contacts/{contactId}/workflow/{workflowId}")
def remove_from_workflow(call: Call) -> Reply:
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        wid = call.path["workflowId"]
        contact["workflows"] = [w for w in contact["workflows"] if w["workflowId"] != wid]
    return 200, {"succeded": True}
