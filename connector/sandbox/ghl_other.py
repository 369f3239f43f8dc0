"""GoHighLevel users and calendar events: what the shipped recipes read besides contacts.

Users: ``GET /users/?locationId=`` (users of a location), ``GET /users/search`` (``companyId``,
``locationId``, ``query``, ``skip``, ``limit``) and ``GET /users/{userId}``.
Calendars: ``GET /calendars/events`` (``locationId``, ``startTime``/``endTime`` in ms, and one of
``calendarId``, ``userId``, ``groupId``) and ``GET /calendars/events/appointments/{eventId}``.
"""

from __future__ import annotations

from typing import Any

from connector.sandbox.common import ApiError, Call, Reply, Routes
from connector.sandbox.state import parse_iso

__all__ = ["routes"]

routes = Routes()


def _user(user: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "name", "firstName", "lastName", "email", "phone", "roles")
    out = {k: user[k] for k in keys if user.get(k) is not None}
    out["deleted"] = False
    return out


def _users_of(call: Call, location_id: str) -> list[dict[str, Any]]:
    return [
        u for u in call.state.ghl.users.values() if location_id in u["roles"].get("locationIds", [])
    ]


@routes("GET", "/users/")
def users_by_location(call: Call) -> Reply:
    with call.state.lock:
        return 200, {"users": [_user(u) for u in _users_of(call, call.location_id)]}


@routes("GET", "/users/search")
def search_users(call: Call) -> Reply:
    q = call.query
    with call.state.lock:
        found = _users_of(call, call.location_id)
        if q.get("query"):
            text = str(q["query"]).lower()
            found = [
                u for u in found if text in f"{u.get('name', '')} {u.get('email', '')}".lower()
            ]
        skip, limit = int(q.get("skip") or 0), int(q.get("limit") or 25)
        return 200, {"users": [_user(u) for u in found[skip : skip + limit]], "count": len(found)}


@routes("GET", "/users/{userId}")
def get_user(call: Call) -> Reply:
    with call.state.lock:
        user = call.state.ghl.users.get(call.path["userId"])
        if user is None or call.location_id not in user["roles"].get("locationIds", []):
            raise ApiError(400, "User not found")
        body = _user(user)
    body.pop("deleted")
    return 200, body


def _event(event: dict[str, Any]) -> dict[str, Any]:
    """An appointment as ``CalendarEventDTO`` (calendars document) shows it."""
    out = {
        "id": event["id"],
        "title": event.get("title", ""),
        "calendarId": event.get("calendarId", ""),
        "locationId": event["locationId"],
        "contactId": event["contactId"],
        "groupId": event.get("groupId", ""),
        "appointmentStatus": event.get("appointmentStatus", "booked"),
        "assignedUserId": event.get("assignedUserId", ""),
        "users": list(event.get("users", [])),
        "startTime": event.get("startTime", ""),
        "endTime": event.get("endTime", ""),
        "dateAdded": event.get("dateAdded", ""),
        "dateUpdated": event.get("dateUpdated", ""),
    }
    for key in ("address", "notes"):
        if event.get(key):
            out[key] = event[key]
    return out


@routes("GET", "/calendars/events")
def calendar_events(call: Call) -> Reply:
    q = call.query
    if not any(q.get(k) for k in ("calendarId", "userId", "groupId")):
        raise ApiError(422, "Either of calendarId, userId or groupId is required")
    try:
        start, end = float(q["startTime"]) / 1000.0, float(q["endTime"]) / 1000.0
    except ValueError as exc:
        raise ApiError(422, "startTime and endTime must be times in milliseconds") from exc
    with call.state.lock:
        events = []
        for e in call.state.ghl.appointments.values():
            if e["locationId"] != call.location_id:
                continue
            if q.get("calendarId") and e.get("calendarId") != q["calendarId"]:
                continue
            if q.get("userId") and q["userId"] not in [
                e.get("assignedUserId"),
                *e.get("users", []),
            ]:
                continue
            if q.get("groupId") and e.get("groupId") != q["groupId"]:
                continue
            if start <= parse_iso(str(e.get("startTime", ""))) <= end:
                events.append(_event(e))
    events.sort(key=lambda e: str(e["startTime"]))
    return 200, {"events": events}


@routes("GET", "/calendars/events/appointments/{eventId}")
def get_appointment(call: Call) -> Reply:
    with call.state.lock:
        event = call.state.ghl.appointments.get(call.path["eventId"])
        if event is None or event["locationId"] != call.location_id:
            raise ApiError(400, "Appointment not found")
        return 200, {"event": _event(event)}
