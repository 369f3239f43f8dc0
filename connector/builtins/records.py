"""The record types the built-in apps offer a two-way sync (:class:`connector.apps.RecordType`):
GoHighLevel contacts and Connecteam users.

Each says how one record is read, found by a match key, created, changed and removed through the
catalogued operations, and which of its webhook events say what. Times are the vendor's own:
a GoHighLevel contact's ``dateUpdated`` (ISO 8601, milliseconds), a Connecteam user's
``modifiedAt`` (epoch seconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connector.apps.records import RecordType, Request

__all__ = ["CONNECTEAM_RECORDS", "GHL_RECORDS", "iso_seconds"]


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


def _ghl_create(fields: Mapping[str, Any], env: Mapping[str, str]) -> Request:
    return "ghl.create-contact", {**fields, "locationId": env.get("GHL_LOCATION_ID", "")}


GHL_CONTACT = RecordType(
    app="ghl",
    name="contact",
    title="GoHighLevel contact",
    fields=GHL_CONTACT_FIELDS,
    read=lambda rid: ("ghl.get-contact", {"contactId": rid}),
    record_of=_ghl_contact,
    id_of=lambda record: str(record.get("id") or ""),
    changed_at=lambda record: iso_seconds(record.get("dateUpdated")),
    update=lambda rid, fields: ("ghl.update-contact", {"contactId": rid, **fields}),
    create=_ghl_create,
    created=_ghl_contact,
    find=_ghl_find,
    found=_ghl_found,
    remove=lambda rid: ("ghl.delete-contact", {"contactId": rid}),
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


def _ct_create(fields: Mapping[str, Any], env: Mapping[str, str]) -> Request:
    return "connecteam.create-users", {"body": [{"userType": "user", **fields}]}


def _ct_update(rid: str, fields: Mapping[str, Any]) -> Request:
    return "connecteam.edit-users", {"body": [{"userId": int(rid), **fields}]}


def _ct_event_record(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    data = payload.get("data")  # `connector serve` gives each item of `data` with its envelope
    return data if isinstance(data, Mapping) else payload


def _ct_event_id(payload: Mapping[str, Any]) -> str | None:
    user_id = payload.get("userId")
    return str(user_id) if user_id not in (None, "") else None


CONNECTEAM_USER = RecordType(
    app="connecteam",
    name="user",
    title="Connecteam user",
    fields=CONNECTEAM_USER_FIELDS,
    read=lambda rid: ("connecteam.get-users", {"userIds": [int(rid)], "userStatus": "all"}),
    record_of=_ct_user,
    id_of=lambda record: str(record.get("userId") or ""),
    changed_at=lambda record: _epoch(record.get("modifiedAt")),
    update=_ct_update,
    create=_ct_create,
    created=_ct_created,
    find=_ct_find,
    found=_ct_found,
    remove=lambda rid: ("connecteam.archive-users", {"deletionType": "delete", "body": [int(rid)]}),
    archive=lambda rid: (
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
)

CONNECTEAM_RECORDS: Mapping[str, RecordType] = {"user": CONNECTEAM_USER}
