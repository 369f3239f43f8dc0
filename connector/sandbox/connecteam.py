"""The Connecteam fake, served under ``/connecteam``: the request pipeline, users and user notes.

Pipeline: ``X-API-KEY`` or ``Authorization: Bearer`` with an OAuth access token from
``POST /oauth/v1/token`` (missing, unknown or expired: 401 ``{"detail": ...}``; see
:mod:`connector.sandbox.connecteam_oauth`), then the per-account rate limit
(``x-ratelimit-minute-*`` and ``x-ratelimit-day-*`` headers on every response, 429 past the
limit), then an access token's scopes against the operation's (403 ``{"detail": ...}``), then
validation against the catalog's schemas (422 ``HTTPValidationError``: FastAPI's
``{"detail": [{"loc", "msg", "type"}]}``), then the handler. Successful bodies are wrapped as
Connecteam wraps them: ``{"requestId": ..., "data": {...}}`` plus ``paging`` on lists. Unknown ids
are 404 ``{"detail": ...}``; refused changes (a phone number that another user has) are 400.

Changes to users are reported for Connecteam's webhooks
(:mod:`connector.sandbox.connecteam_webhooks`) as Connecteam reports them, one event per call with
every user it touched: ``user_created`` and ``user_updated`` with the users as this API shows them,
``user_archived``, ``user_restored`` and ``user_deleted`` with ``{"userId": N}`` only. An edit
that changes nothing reports nothing (and leaves ``modifiedAt`` alone).
"""

from __future__ import annotations

import copy
import uuid
import weakref
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from connector.sandbox import connecteam_oauth
from connector.sandbox.common import (
    ApiError,
    Call,
    Handler,
    Reply,
    Routes,
    json_response,
    parse_json_body,
    reply_response,
    route_sort_key,
)
from connector.sandbox.ghl_model import normalize_phone
from connector.sandbox.lookup import user_key, users_changed, users_with
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.state import SandboxState
from connector.sandbox.validation import Issue, OperationIndex, check_request

__all__ = ["build_connecteam_app", "envelope", "routes"]

routes = Routes()

_TYPE_ERRORS = {
    "integer": ("value is not a valid integer", "type_error.integer"),
    "number": ("value is not a valid float", "type_error.float"),
    "string": ("str type expected", "type_error.str"),
    "boolean": ("value could not be parsed to a boolean", "type_error.bool"),
    "array": ("value is not a valid list", "type_error.list"),
    "object": ("value is not a valid dict", "type_error.dict"),
}


def envelope(data: Any, paging: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"requestId": str(uuid.uuid4()), "data": data}
    if paging is not None:
        body["paging"] = paging
    return body


def detail(issues: list[Issue]) -> list[dict[str, Any]]:
    """FastAPI's validation error items."""
    out = []
    for i in issues:
        loc = [i.where, *i.loc]
        if i.kind == "missing":
            out.append({"loc": loc, "msg": "field required", "type": "value_error.missing"})
        elif i.kind == "type":
            msg, typ = _TYPE_ERRORS.get(i.expected, (i.message, "type_error"))
            out.append({"loc": loc, "msg": msg, "type": typ})
        elif i.kind == "enum":
            permitted = ", ".join(f"'{v.strip()}'" for v in i.expected.split(","))
            msg = f"value is not a valid enumeration member; permitted: {permitted}"
            out.append({"loc": loc, "msg": msg, "type": "type_error.enum"})
        else:
            out.append({"loc": loc, "msg": i.message, "type": "value_error"})
    return out


def _endpoint(
    state: SandboxState,
    limiter: RateLimiter,
    index: OperationIndex,
    method: str,
    path: str,
    fn: Handler,
) -> Any:
    op = index.get(method, path)

    async def endpoint(request: Request) -> Response:
        try:
            account, scopes = connecteam_oauth.authenticate(state, request)
        except ApiError as exc:
            return json_response(exc.status, {"detail": exc.message})
        decision = limiter.check_connecteam(account)
        headers = dict(decision.headers)
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after)
            return json_response(429, {"detail": "Too Many Requests"}, headers)
        needed = op.scopes if op is not None else ()
        if scopes is not None and needed and not any(s in scopes for s in needed):
            text = f"The access token lacks the scope this endpoint needs: {' or '.join(needed)}"
            return json_response(403, {"detail": text}, headers)
        body, error = parse_json_body(await request.body())
        if error is not None:
            item = {
                "loc": ["body", 0],
                "msg": f"JSON decode error: {error}",
                "type": "value_error.jsondecode",
            }
            return json_response(422, {"detail": [item]}, headers)
        query_lists = {k: request.query_params.getlist(k) for k in request.query_params}
        typed: dict[str, Any] = {k: v[-1] for k, v in query_lists.items()}
        if op is not None:
            schema = op.body_schema
            if body is None and schema is not None and (op.body_required or schema.get("required")):
                item = {"loc": ["body"], "msg": "field required", "type": "value_error.missing"}
                return json_response(422, {"detail": [item]}, headers)
            issues, typed_params = check_request(op, request.path_params, query_lists, body)
            if issues:
                return json_response(422, {"detail": detail(issues)}, headers)
            typed.update(typed_params)
        call = Call(request, state, op, dict(request.path_params), typed, body, account=account)
        try:
            with state.lock:
                reply = fn(call)
        except ApiError as exc:
            return json_response(exc.status, {"detail": exc.message}, headers)
        return reply_response(reply, headers)

    return endpoint


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    await json_response(404, {"detail": "Not Found"})(scope, receive, send)


def build_connecteam_app(state: SandboxState, limiter: RateLimiter) -> ASGIApp:
    from connector.sandbox import connecteam_tasks, connecteam_webhooks

    index = OperationIndex("connecteam")
    table = sorted(
        [*routes.items, *connecteam_tasks.routes.items, *connecteam_webhooks.routes.items],
        key=lambda r: route_sort_key(r[1]),
    )
    out = [Route(p, _endpoint(state, limiter, index, m, p, fn), methods=[m]) for m, p, fn in table]
    out.append(Route("/oauth/v1/token", connecteam_oauth.token_endpoint(state), methods=["POST"]))
    return Router(routes=out, default=_not_found, redirect_slashes=False)


# -- users ------------------------------------------------------------------------------------


def render_user(state: SandboxState, user: dict[str, Any]) -> dict[str, Any]:
    """A stored user as the document's ``User`` (custom fields with their type and name)."""
    out = {k: v for k, v in user.items() if v is not None and k != "customFields"}
    fields = []
    for f in user.get("customFields", []):
        setting = state.ct.custom_fields.get(int(f["customFieldId"]))
        if setting is not None:
            fields.append(
                {
                    "customFieldId": setting["id"],
                    "value": f["value"],
                    "type": setting["type"],
                    "name": setting["name"],
                }
            )
    out["customFields"] = fields
    return out


def get_user(state: SandboxState, user_id: Any) -> dict[str, Any]:
    user = state.ct.users.get(int(user_id))
    if user is None:
        raise ApiError(404, f"User {user_id} not found")
    return user


def _check_custom_fields(state: SandboxState, fields: list[dict[str, Any]]) -> None:
    for f in fields:
        if int(f["customFieldId"]) not in state.ct.custom_fields:
            raise ApiError(400, f"Custom field {f['customFieldId']} does not exist")


def _check_phone(state: SandboxState, phone: str, exclude: int | None = None) -> str:
    normalized = normalize_phone(phone)
    for other in _with_phone(state, normalized):
        if other["userId"] != exclude:
            raise ApiError(400, f"A user with phone number {phone} already exists")
    return normalized


def _with_phone(state: SandboxState, normalized: str) -> list[dict[str, Any]]:
    """The users whose phone number is ``normalized`` (E.164), in id order."""
    if normalized:
        return users_with(state, user_key("phone", normalized))
    return [u for u in _in_order(state) if not normalize_phone(str(u["phoneNumber"] or ""))]


def _with_details(state: SandboxState, q: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The users a list's ``emailAddresses`` (else ``phoneNumbers``) can name, in id order,
    found by the index; None when the list names none (or an empty one)."""
    for name, field in (("emailAddresses", "email"), ("phoneNumbers", "phone")):
        values = q.get(name)
        if not values:
            continue
        if any(not str(v) or (field == "phone" and not normalize_phone(str(v))) for v in values):
            return None  # an empty value: every record is compared
        found: dict[int, dict[str, Any]] = {}
        for value in values:
            for user in users_with(state, user_key(field, value)):
                found[user["userId"]] = user
        return [found[i] for i in sorted(found)]
    return None


def _merge_fields(
    current: list[dict[str, Any]], given: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    by_id = {int(f["customFieldId"]): dict(f) for f in current}
    for f in given:
        by_id[int(f["customFieldId"])] = {
            "customFieldId": int(f["customFieldId"]),
            "value": f["value"],
        }
    return list(by_id.values())


# the users in id order, kept while no user is added or removed: paging through 100,000 users
# does not sort them again for every page
_ORDER: weakref.WeakKeyDictionary[
    SandboxState, tuple[tuple[int, int, int], list[dict[str, Any]]]
] = weakref.WeakKeyDictionary()


def _in_order(state: SandboxState) -> list[dict[str, Any]]:
    users = state.ct.users
    version = (id(users), len(users), state.ct.next_id)
    cached = _ORDER.get(state)
    if cached is not None and cached[0] == version:
        return cached[1]
    ordered = sorted(users.values(), key=lambda u: u["userId"])
    _ORDER[state] = (version, ordered)
    return ordered


# the users of one status in id order, kept while no user is added, removed, archived or restored
_FLIPS: weakref.WeakKeyDictionary[SandboxState, int] = weakref.WeakKeyDictionary()
_BY_STATUS: weakref.WeakKeyDictionary[
    SandboxState, dict[str, tuple[tuple[int, int, int, int], list[dict[str, Any]]]]
] = weakref.WeakKeyDictionary()


def _with_status(state: SandboxState, status: str) -> list[dict[str, Any]]:
    users = state.ct.users
    version = (id(users), len(users), state.ct.next_id, _FLIPS.get(state, 0))
    kept = _BY_STATUS.setdefault(state, {}).get(status)
    if kept is not None and kept[0] == version:
        return kept[1]
    archived = status == "archived"
    found = [u for u in _in_order(state) if bool(u["isArchived"]) == archived]
    _BY_STATUS[state][status] = (version, found)
    return found


@routes("GET", "/users/v1/users")
def list_users(call: Call) -> Reply:
    q = call.query
    status = q.get("userStatus", "active")
    named = None
    if q.get("userIds"):  # by id: no need to order every user
        wanted = {int(x) for x in q["userIds"]}
        users = call.state.ct.users
        people = [users[i] for i in sorted(wanted) if i in users]
    elif (named := _with_details(call.state, q)) is not None:  # by email or phone: the index
        people = named
    elif status != "all":
        people = _with_status(call.state, status)
    else:
        people = _in_order(call.state)
    if status != "all" and (q.get("userIds") or named is not None):
        people = [u for u in people if u["isArchived"] == (status == "archived")]
    if q.get("userIds"):
        people = [u for u in people if u["userId"] in q["userIds"]]
    if q.get("fullNames"):
        names = {n.lower() for n in q["fullNames"]}
        people = [u for u in people if f"{u['firstName']} {u['lastName']}".lower() in names]
    if q.get("phoneNumbers"):
        phones = {normalize_phone(p) for p in q["phoneNumbers"]}
        people = [u for u in people if normalize_phone(u["phoneNumber"]) in phones]
    if q.get("emailAddresses"):
        emails = {e.lower() for e in q["emailAddresses"]}
        people = [u for u in people if str(u.get("email") or "").lower() in emails]
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
    page = people[offset : offset + limit]
    data = {"users": [render_user(call.state, u) for u in page]}
    return 200, envelope(data, {"offset": offset + len(page), "total": len(people)})


@routes("POST", "/users/v1/users")
def create_users(call: Call) -> Reply:
    state, now = call.state, int(call.state.now())
    created = []
    for item in call.body:
        phone = _check_phone(state, item["phoneNumber"])
        _check_custom_fields(state, item.get("customFields", []))
        if item["userType"] in ("manager", "owner") and not item.get("email"):
            raise ApiError(400, "email is mandatory for managers and owners")
        uid = state.ct_id()
        user = {
            "userId": uid,
            "firstName": item["firstName"],
            "lastName": item["lastName"],
            "phoneNumber": phone,
            "userType": item["userType"],
            "email": item.get("email"),
            "customFields": _merge_fields([], item.get("customFields", [])),
            "isArchived": bool(item.get("isArchived", False)),
            "createdAt": now,
            "modifiedAt": now,
            "lastLogin": 0,
            "smartGroupsIds": [],
        }
        state.ct.users[uid] = user
        users_changed(state, uid)
        state.ct.notes[uid] = []
        created.append(render_user(state, user))
    state.emit_connecteam("users", "user_created", created)
    return 200, envelope({"results": created})


@routes("PUT", "/users/v1/users")
def edit_users(call: Call) -> Reply:
    state = call.state
    by_phone = bool(call.query.get("editUsersByPhone", False))
    edited, updated = [], []
    flipped: dict[str, list[dict[str, Any]]] = {"user_archived": [], "user_restored": []}
    for item in call.body:
        if by_phone:
            match = _with_phone(state, normalize_phone(str(item.get("phoneNumber", ""))))
            if not match:
                raise ApiError(404, f"User with phone number {item.get('phoneNumber')} not found")
            user = match[0]
        else:
            if "userId" not in item:
                raise ApiError(400, "userId is required unless editUsersByPhone is true")
            user = get_user(state, item["userId"])
        before = copy.deepcopy(user)
        if item.get("phoneNumber") and not by_phone:
            user["phoneNumber"] = _check_phone(state, item["phoneNumber"], user["userId"])
        for key in ("firstName", "lastName", "email", "userType"):
            if item.get(key) is not None:
                user[key] = item[key]
        if "customFields" in item:
            _check_custom_fields(state, item["customFields"])
            user["customFields"] = _merge_fields(user["customFields"], item["customFields"])
        if item.get("isArchived") is not None and bool(item["isArchived"]) != user["isArchived"]:
            _archive(state, user, bool(item["isArchived"]))
            flipped["user_archived" if user["isArchived"] else "user_restored"].append(
                {"userId": user["userId"]}
            )
        users_changed(state, user["userId"])
        if _changed(before, user):
            user["modifiedAt"] = int(state.now())
            if _changed(before, user, ("isArchived", "archivedAt")):
                updated.append(render_user(state, user))
        edited.append(render_user(state, user))
    state.emit_connecteam("users", "user_updated", updated)
    for event, ids in flipped.items():
        state.emit_connecteam("users", event, ids)
    return 200, envelope({"count": len(edited), "users": edited})


def _changed(before: dict[str, Any], after: dict[str, Any], ignore: tuple[str, ...] = ()) -> bool:
    skip = {"modifiedAt", *ignore}
    keys = (set(before) | set(after)) - skip
    return any(before.get(k) != after.get(k) for k in keys)


def _archive(state: SandboxState, user: dict[str, Any], archived: bool) -> None:
    user["isArchived"] = archived
    _FLIPS[state] = _FLIPS.get(state, 0) + 1  # the lists by status are made again
    if archived:
        user["archivedAt"] = int(state.now())
    else:
        user.pop("archivedAt", None)


def _remove(state: SandboxState, user_ids: list[int], deletion: str) -> None:
    users = [get_user(state, uid) for uid in user_ids]
    changed = []
    for user in users:
        if deletion == "delete":
            if state.ct.users.pop(user["userId"], None) is not None:
                users_changed(state, user["userId"])
                changed.append({"userId": user["userId"]})
            state.ct.notes.pop(user["userId"], None)
        elif not user["isArchived"]:
            _archive(state, user, True)
            user["modifiedAt"] = int(state.now())
            changed.append({"userId": user["userId"]})
    event = "user_deleted" if deletion == "delete" else "user_archived"
    state.emit_connecteam("users", event, changed)


@routes("DELETE", "/users/v1/users")
def archive_users(call: Call) -> Reply:
    _remove(call.state, [int(u) for u in call.body], call.query.get("deletionType", "archive"))
    return 200, envelope({"success": True})


@routes("DELETE", "/users/v1/users/{userId}")
def delete_user(call: Call) -> Reply:
    _remove(call.state, [int(call.path["userId"])], call.query.get("deletionType", "archive"))
    return 200, envelope({"success": True})


@routes("POST", "/users/v1/users/{userId}/notes")
def create_note(call: Call) -> Reply:
    state = call.state
    user = get_user(state, call.path["userId"])
    owner = next((u["userId"] for u in state.ct.users.values() if u["userType"] == "owner"), 1)
    now = int(state.now())
    note = {
        "id": state.ct_id(),
        "text": call.body["text"],
        "createdBy": owner,
        "modifiedBy": owner,
        "createdAt": now,
        "modifiedAt": now,
    }
    if call.body.get("title") is not None:
        note["title"] = call.body["title"]
    state.ct.notes.setdefault(user["userId"], []).append(note)
    return 200, envelope(dict(note))
