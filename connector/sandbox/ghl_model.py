"""GoHighLevel records as the sandbox stores them, and as the API shows them.

A contact is stored as the fields a client sent (normalised the way GoHighLevel does: phone to
E.164, tags lower-case without duplicates, ``name`` split into first and last name) plus the
fields GoHighLevel adds (``id``, ``dateAdded``, ``type``...). :func:`render_contact` turns a stored
contact into the response shape of the contacts document (``GetContectByIdSchema``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CONTACT_FIELDS",
    "apply_contact_input",
    "merge_tags",
    "normalize_phone",
    "render_contact",
    "render_contact_summary",
    "render_event",
    "render_note",
    "render_task",
]

# Body fields of CreateContactDto / UpdateContactDto / UpsertContactDto that a contact keeps.
CONTACT_FIELDS = (
    "firstName",
    "lastName",
    "name",
    "email",
    "gender",
    "phone",
    "address1",
    "city",
    "state",
    "postalCode",
    "website",
    "timezone",
    "dnd",
    "dndSettings",
    "inboundDndSettings",
    "tags",
    "customFields",
    "source",
    "dateOfBirth",
    "country",
    "companyName",
    "assignedTo",
)


@functools.lru_cache(maxsize=65536)
def normalize_phone(phone: str) -> str:
    """E.164 the way GoHighLevel stores it: ``+1 888-888-8888`` becomes ``+18888888888``
    (remembered: the fakes compare every stored number with a wanted one)."""
    digits = re.sub(r"\D", "", phone)
    if not digits:
        return ""
    if phone.strip().startswith("+"):
        return "+" + digits
    if len(digits) == 10:  # a national US number, GoHighLevel's default country
        return "+1" + digits
    return "+" + digits


def merge_tags(current: Iterable[str], added: Iterable[str]) -> list[str]:
    """Tags are lower-case and unique; order of first appearance is kept."""
    out: list[str] = []
    for tag in [*current, *added]:
        t = str(tag).strip().lower()
        if t and t not in out:
            out.append(t)
    return out


def apply_contact_input(contact: dict[str, Any], body: Mapping[str, Any]) -> None:
    """Apply create/update/upsert fields to a stored contact. ``tags`` replaces the tags."""
    for key in CONTACT_FIELDS:
        if key not in body:
            continue
        value = body[key]
        if value is None:
            contact.pop(key, None)
            continue
        if key == "tags":
            contact["tags"] = merge_tags([], value)
        elif key == "phone":
            contact["phone"] = normalize_phone(str(value))
        elif key == "email":
            contact["email"] = str(value).strip()
        elif key == "customFields":
            contact["customFields"] = _merge_custom_fields(contact.get("customFields", []), value)
        else:
            contact[key] = value
    if body.get("name") and not body.get("firstName") and not body.get("lastName"):
        first, _, last = str(body["name"]).strip().partition(" ")
        contact["firstName"] = first
        if last:
            contact["lastName"] = last.strip()
    if "name" in contact and ("firstName" in body or "lastName" in body) and "name" not in body:
        contact.pop("name")


def _merge_custom_fields(
    current: list[dict[str, Any]], given: Iterable[Any]
) -> list[dict[str, Any]]:
    by_id = {str(f.get("id")): dict(f) for f in current}
    for item in given:
        if not isinstance(item, Mapping):
            continue
        key = str(item.get("id") or item.get("key") or "")
        if key:
            by_id[key] = {"id": key, "value": item.get("field_value", item.get("value"))}
    return list(by_id.values())


def _custom_field_value(value: Any) -> str:
    """``CustomFieldSchema.value`` is a string in the document; other values are shown as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, dict) else str(value)


def full_name(contact: Mapping[str, Any]) -> str:
    if contact.get("name"):
        return str(contact["name"])
    return " ".join(str(contact[k]) for k in ("firstName", "lastName") if contact.get(k))


def render_contact(contact: Mapping[str, Any]) -> dict[str, Any]:
    """A stored contact in the shape of ``GetContectByIdSchema`` (and ``CreateContactSchema``)."""
    out: dict[str, Any] = {"id": contact["id"]}
    name = full_name(contact)
    if name:
        out["name"] = name
        out["fullNameLowerCase"] = name.lower()
    out["locationId"] = contact["locationId"]
    for key in (
        "firstName",
        "lastName",
        "email",
        "timezone",
        "companyName",
        "phone",
        "dnd",
        "dndSettings",
        "source",
        "assignedTo",
        "address1",
        "city",
        "state",
        "country",
        "postalCode",
        "website",
        "businessId",
    ):
        if contact.get(key) is not None:
            out[key] = contact[key]
    if contact.get("firstName"):
        out["firstNameLowerCase"] = str(contact["firstName"]).lower()
    if contact.get("lastName"):
        out["lastNameLowerCase"] = str(contact["lastName"]).lower()
    if contact.get("email"):
        out["emailLowerCase"] = str(contact["email"]).lower()
    if contact.get("dateOfBirth") is not None:
        out["dateOfBirth"] = str(contact["dateOfBirth"])
    out["type"] = contact.get("type", "lead")
    out["tags"] = list(contact.get("tags", []))
    out["customFields"] = [
        {"id": str(f.get("id")), "value": _custom_field_value(f.get("value"))}
        for f in contact.get("customFields", [])
    ]
    out["dateAdded"] = contact["dateAdded"]
    out["dateUpdated"] = contact.get("dateUpdated", contact["dateAdded"])
    return out


def render_contact_summary(contact: Mapping[str, Any]) -> dict[str, Any]:
    """A contact as list and search results show it (``ContactsSearchSchema`` and more)."""
    out = render_contact(contact)
    out.pop("dndSettings", None)
    out["followers"] = list(contact.get("followers", []))
    return out


def render_task(task: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "title", "body", "assignedTo", "dueDate", "completed", "contactId")
    return {k: task[k] for k in keys if task.get(k) is not None}


def render_note(note: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "body", "userId", "dateAdded", "contactId", "title", "color", "pinned")
    return {k: note[k] for k in keys if note.get(k) is not None}


def render_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """An appointment as ``GetEventSchema`` (contacts document) shows it."""
    keys = (
        "id",
        "calendarId",
        "status",
        "title",
        "assignedUserId",
        "notes",
        "startTime",
        "endTime",
        "address",
        "locationId",
        "contactId",
        "groupId",
        "appointmentStatus",
        "users",
        "dateAdded",
        "dateUpdated",
        "assignedResources",
    )
    return {k: event[k] for k in keys if event.get(k) is not None}
