"""Connecteam custom-field settings, task boards and quick tasks.

Quick tasks: ``GET``/``POST /tasks/v1/taskboards/{taskBoardId}/tasks``, ``PUT``/``DELETE
.../tasks/{taskId}``. ``PUT`` takes the whole task (``userIds``, ``status`` and ``title`` are
required, as in the document); completing a task is ``PUT`` with ``status: completed``. A task
with no ``userIds`` must be a ``draft``. List answers show ``description`` as the document's
``HTMLDescription`` list; create and update answers show it as ``TaskDescription``.

For Connecteam's webhooks, a quick task created as ``published`` or moved from ``draft`` to
``published`` is reported as ``task_published``, one whose status becomes ``completed`` as
``task_completed``, shaped as the Tasks webhook page shows (:func:`webhook_item`: no description,
which Connecteam's webhooks leave out).
"""

from __future__ import annotations

from typing import Any

from connector.sandbox.common import ApiError, Call, Reply, Routes
from connector.sandbox.connecteam import envelope

__all__ = ["routes"]

routes = Routes()
SETTING_KEYS = (
    "name",
    "isRequired",
    "categoryId",
    "isVisibleToAllAdmins",
    "viewAccessAdminIds",
    "isEditableForAllAdmins",
    "editAccessAdminIds",
    "isVisibleToUsers",
    "isEditableForUsers",
    "isMultiSelect",
)


def _setting(state: Any, raw: dict[str, Any], fid: int) -> dict[str, Any]:
    rec = {k: raw[k] for k in SETTING_KEYS if k in raw}
    rec["id"] = fid
    rec["type"] = raw.get("type", "dropdown" if "dropdownOptions" in raw else "str")
    if rec["type"] == "dropdown":
        rec.setdefault("isMultiSelect", False)
        rec["dropdownOptions"] = [
            {
                "id": int(o.get("id") or state.ct_id()),
                "value": o["value"],
                "isDisabled": bool(o.get("isDisabled", False)),
                "isDeleted": bool(o.get("isDeleted", False)),
            }
            for o in raw.get("dropdownOptions", [])
        ]
    return rec


@routes("GET", "/users/v1/custom-fields")
def list_custom_fields(call: Call) -> Reply:
    q = call.query
    fields = sorted(call.state.ct.custom_fields.values(), key=lambda f: f["id"])
    if q.get("customFieldIds"):
        fields = [f for f in fields if f["id"] in q["customFieldIds"]]
    if q.get("categoryIds"):
        fields = [f for f in fields if f["categoryId"] in q["categoryIds"]]
    if q.get("customFieldTypes"):
        fields = [f for f in fields if f["type"] in q["customFieldTypes"]]
    if q.get("customFieldNames"):
        names = {n.lower() for n in q["customFieldNames"]}
        fields = [f for f in fields if f["name"].lower() in names]
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
    page = fields[offset : offset + limit]
    return 200, envelope(
        {"customFields": page}, {"offset": offset + len(page), "total": len(fields)}
    )


@routes("POST", "/users/v1/custom-fields")
def create_custom_fields(call: Call) -> Reply:
    created = []
    for raw in call.body["customFields"]:
        if raw["categoryId"] not in call.state.ct.categories:
            raise ApiError(400, f"Custom field category {raw['categoryId']} does not exist")
        rec = _setting(call.state, raw, call.state.ct_id())
        call.state.ct.custom_fields[rec["id"]] = rec
        created.append(rec)
    return 200, envelope({"customFields": created})


@routes("PUT", "/users/v1/custom-fields")
def update_custom_fields(call: Call) -> Reply:
    updated = []
    for raw in call.body["customFields"]:
        rec = call.state.ct.custom_fields.get(int(raw["id"]))
        if rec is None:
            raise ApiError(404, f"Custom field {raw['id']} not found")
        rec.update({k: raw[k] for k in SETTING_KEYS if k in raw})
        if "dropdownOptions" in raw and rec["type"] == "dropdown":
            rec["dropdownOptions"] = _setting(call.state, {**rec, **raw}, rec["id"])[
                "dropdownOptions"
            ]
        updated.append(rec)
    return 200, envelope({"customFields": updated})


@routes("DELETE", "/users/v1/custom-fields")
def delete_custom_fields(call: Call) -> Reply:
    ids = [int(i) for i in call.body["customFieldIds"]]
    for fid in ids:
        if fid not in call.state.ct.custom_fields:
            raise ApiError(404, f"Custom field {fid} not found")
    for fid in ids:
        del call.state.ct.custom_fields[fid]
        for user in call.state.ct.users.values():
            user["customFields"] = [
                f for f in user["customFields"] if int(f["customFieldId"]) != fid
            ]
    return 200, envelope({"customFieldIds": ids, "success": True})


# -- task boards and quick tasks --------------------------------------------------------------


@routes("GET", "/tasks/v1/taskboards")
def list_task_boards(call: Call) -> Reply:
    boards = sorted(call.state.ct.task_boards.values(), key=lambda b: b["id"])
    return 200, envelope({"taskBoards": [dict(b) for b in boards]})


def _board(call: Call) -> dict[str, dict[str, Any]]:
    raw = call.path["taskBoardId"]
    if not raw.isdigit() or int(raw) not in call.state.ct.task_boards:
        raise ApiError(404, f"Task board {raw} not found")
    return call.state.ct.tasks.setdefault(int(raw), {})


def _task(call: Call) -> dict[str, Any]:
    task = _board(call).get(call.path["taskId"])
    if task is None:
        raise ApiError(404, f"Task {call.path['taskId']} not found")
    return task


def _list_view(task: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in task.items() if v is not None and k != "description"}
    content = task.get("description")
    out["description"] = [{"type": "html", "html": content}] if content else []
    return out


def _item_view(task: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in task.items() if v is not None and k != "description"}
    if task.get("description"):
        out["description"] = {"content": task["description"]}
    return out


WEBHOOK_KEYS = ("id", "title", "userIds", "status", "type", "startTime", "dueDate", "labelIds")


def webhook_item(board_id: int, task: dict[str, Any]) -> dict[str, Any]:
    """A quick task as Connecteam's task webhooks carry it."""
    item: dict[str, Any] = {k: task.get(k) for k in WEBHOOK_KEYS}
    item["taskBoardId"] = board_id
    item["isArchived"] = bool(task.get("isArchived", False))
    return item


def _report(call: Call, task: dict[str, Any], before: str | None) -> None:
    """Tell the webhooks about a status change (``before``: the status it had, None if new)."""
    status = task["status"]
    board_id = int(call.path["taskBoardId"])
    if status == "published" and before in (None, "draft") and task.get("type") == "oneTime":
        call.state.emit_connecteam("tasks", "task_published", [webhook_item(board_id, task)])
    elif status == "completed" and before != "completed":
        call.state.emit_connecteam("tasks", "task_completed", [webhook_item(board_id, task)])


def _apply(call: Call, task: dict[str, Any]) -> None:
    body = call.body
    users = [int(u) for u in body["userIds"]]
    unknown = [u for u in users if u not in call.state.ct.users]
    if unknown:
        raise ApiError(400, f"Unknown user ids: {', '.join(map(str, unknown))}")
    if not users and body["status"] != "draft":
        raise ApiError(400, "A task without userIds must have status 'draft'")
    task.update(userIds=users, status=body["status"], title=body["title"])
    for key in ("startTime", "dueDate", "isArchived", "type"):
        if key in body:
            task[key] = body[key]
    task["labelIds"] = list(body.get("labelIds", task.get("labelIds", [])))
    if "subTasks" in body:
        task["subTasks"] = [
            {
                "id": call.state.hex_id(),
                "title": s["title"],
                "isCompleted": bool(s.get("isCompleted", False)),
            }
            for s in body["subTasks"]
        ]
    if isinstance(body.get("description"), dict):
        task["description"] = body["description"].get("content")


@routes("GET", "/tasks/v1/taskboards/{taskBoardId}/tasks")
def list_tasks(call: Call) -> Reply:
    q = call.query
    tasks = list(_board(call).values())
    if q.get("taskIds"):
        tasks = [t for t in tasks if t["id"] in q["taskIds"]]
    if q.get("labelIds"):
        tasks = [t for t in tasks if set(q["labelIds"]) <= set(t["labelIds"])]
    if q.get("userIds"):
        tasks = [t for t in tasks if set(q["userIds"]) & set(t["userIds"])]
    if q.get("status", "all") != "all":
        tasks = [t for t in tasks if t["status"] == q["status"]]
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
    page = tasks[offset : offset + limit]
    paging = {"offset": offset + len(page), "total": len(tasks)}
    return 200, envelope({"tasks": [_list_view(t) for t in page]}, paging)


@routes("POST", "/tasks/v1/taskboards/{taskBoardId}/tasks")
def create_task(call: Call) -> Reply:
    board = _board(call)
    task: dict[str, Any] = {
        "id": call.state.hex_id(),
        "type": "oneTime",
        "isArchived": False,
        "subTasks": [],
        "labelIds": [],
    }
    _apply(call, task)
    board[task["id"]] = task
    _report(call, task, None)
    return 200, envelope(_item_view(task))


@routes("PUT", "/tasks/v1/taskboards/{taskBoardId}/tasks/{taskId}")
def update_task(call: Call) -> Reply:
    task = _task(call)
    before = task["status"]
    _apply(call, task)
    _report(call, task, before)
    return 200, envelope(_item_view(task))


@routes("DELETE", "/tasks/v1/taskboards/{taskBoardId}/tasks/{taskId}")
def delete_task(call: Call) -> Reply:
    task = _task(call)
    del _board(call)[task["id"]]
    return 200, envelope({})
