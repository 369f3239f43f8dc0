"""GoHighLevel contacts: create, read, update, delete, upsert, list, search, duplicates, bulk.

Behaviour follows the contacts document and the live API where the document is silent:

- An unknown contact id is 400 ``Contact not found`` (the document lists 400, not 404).
- Create refuses a second contact with the same email (case-insensitive) or phone (E.164) in a
  location that does not allow duplicates: 400 ``This location does not allow duplicated
  contacts.`` with ``meta.contactId`` and ``meta.matchingField``. Upsert updates that match instead.
- ``GET /contacts/`` pages by ``startAfter`` (ms) and ``startAfterId`` in ``(dateAdded, id)``
  order, ``limit`` 20 by default, 100 at most, with ``meta`` as ``ContactsMetaSchema`` describes.
- ``POST /contacts/search`` takes ``locationId``, ``query``, ``filters``, ``page``/``pageLimit``
  (at most 500 a page and 10,000 records in all) or ``searchAfter`` (the ``searchAfter`` value of
  the last contact of the page before), and answers ``{contacts, total}``.
"""

from __future__ import annotations

import bisect
import uuid
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from connector.sandbox.common import ApiError, Call, Reply, Routes
from connector.sandbox.ghl_model import (
    apply_contact_input,
    full_name,
    merge_tags,
    normalize_phone,
    render_contact,
    render_contact_summary,
)
from connector.sandbox.lookup import contact_key, contacts_changed, contacts_with
from connector.sandbox.search import matches_filters, sort_contacts
from connector.sandbox.state import SandboxState

__all__ = ["find_duplicate", "get_contact", "routes"]

routes = Routes()
DUPLICATE_MESSAGE = "This location does not allow duplicated contacts."


def get_contact(call: Call, contact_id: str) -> dict[str, Any]:
    """The stored contact, or the API's error for an unknown id or another location's contact."""
    contact = call.state.ghl.contacts.get(contact_id)
    if contact is None:
        raise ApiError(400, "Contact not found")
    if contact["locationId"] != call.location_id:
        raise ApiError(403, "The token does not have access to this location.")
    return contact


def find_duplicate(
    state: SandboxState, location_id: str, email: Any, phone: Any, exclude: str | None = None
) -> tuple[dict[str, Any], str] | None:
    """The contact that an email (first) or phone (second) already belongs to, and which matched."""
    email_l = str(email).strip().lower() if email else ""
    phone_n = normalize_phone(str(phone)) if phone else ""
    for field, wanted in (("email", email_l), ("phone", phone_n)):
        if not wanted:
            continue
        for c in contacts_with(state, contact_key(location_id, field, wanted)):
            have = str(c.get(field) or "")
            if c["id"] != exclude and (have.lower() if field == "email" else have) == wanted:
                return c, field
    return None


def _duplicate_error(found: tuple[dict[str, Any], str]) -> ApiError:
    contact, field = found
    meta = {"contactName": full_name(contact), "contactId": contact["id"], "matchingField": field}
    return ApiError(400, DUPLICATE_MESSAGE, meta=meta)


def _check_email(body: Any) -> None:
    email = body.get("email") if isinstance(body, dict) else None
    if isinstance(email, str) and email and ("@" not in email or " " in email.strip()):
        raise ApiError(422, "email must be an email")


def new_contact(call: Call, body: dict[str, Any]) -> dict[str, Any]:
    state = call.state
    now = state.now()
    contact: dict[str, Any] = {
        "id": state.ghl_id(),
        "locationId": call.location_id,
        "type": "lead",
        "dateAdded": state.now_iso(),
        "dateUpdated": state.now_iso(),
        "tags": [],
        "followers": [],
        "campaigns": [],
        "workflows": [],
        "_sort": now,
        "_seq": state.seq(),
    }
    apply_contact_input(contact, body)
    state.ghl.contacts[contact["id"]] = contact
    contacts_changed(state, contact["id"])
    state.ghl.tasks[contact["id"]] = {}
    state.ghl.notes[contact["id"]] = {}
    return contact


def _allows_duplicates(state: SandboxState, location_id: str) -> bool:
    return bool(state.ghl.locations[location_id].get("allowDuplicateContact"))


@routes("POST", "/contacts/")
def create_contact(call: Call) -> Reply:
    _check_email(call.body)
    with call.state.lock:
        if not _allows_duplicates(call.state, call.location_id):
            found = find_duplicate(
                call.state, call.location_id, call.body.get("email"), call.body.get("phone")
            )
            if found:
                raise _duplicate_error(found)
        contact = new_contact(call, call.body)
        shown = render_contact(contact)
    call.state.emit("ContactCreate", shown)
    return 201, {"contact": shown}


@routes("GET", "/contacts/{contactId}")
def get_contact_op(call: Call) -> Reply:
    with call.state.lock:
        return 200, {"contact": render_contact(get_contact(call, call.path["contactId"]))}


@routes("PUT", "/contacts/{contactId}")
def update_contact(call: Call) -> Reply:
    _check_email(call.body)
    body = call.body or {}
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        if not _allows_duplicates(call.state, call.location_id):
            found = find_duplicate(
                call.state, call.location_id, body.get("email"), body.get("phone"), contact["id"]
            )
            if found:
                raise _duplicate_error(found)
        old_tags = list(contact.get("tags", []))
        apply_contact_input(contact, body)
        contacts_changed(call.state, contact["id"])
        contact["dateUpdated"] = call.state.now_iso()
        shown = render_contact(contact)
    call.state.emit("ContactUpdate", shown)
    if shown["tags"] != old_tags:
        call.state.emit("ContactTagUpdate", shown)
    return 200, {"succeded": True, "contact": shown}


@routes("DELETE", "/contacts/{contactId}")
def delete_contact(call: Call) -> Reply:
    g = call.state.ghl
    with call.state.lock:
        contact = get_contact(call, call.path["contactId"])
        shown = render_contact(contact)
        del g.contacts[contact["id"]]
        contacts_changed(call.state, contact["id"])
        g.tasks.pop(contact["id"], None)
        g.notes.pop(contact["id"], None)
        for aid in [a for a, e in g.appointments.items() if e["contactId"] == contact["id"]]:
            del g.appointments[aid]
    call.state.emit("ContactDelete", shown)
    return 200, {"succeded": True}


@routes("POST", "/contacts/upsert")
def upsert_contact(call: Call) -> Reply:
    _check_email(call.body)
    body = call.body
    with call.state.lock:
        allows = _allows_duplicates(call.state, call.location_id)
        found = None
        if not (allows and body.get("createNewIfDuplicateAllowed")):
            found = find_duplicate(
                call.state, call.location_id, body.get("email"), body.get("phone")
            )
        if found:
            contact = found[0]
            fields = dict(body)
            if found[1] == "email":  # the first matching field wins; the second is not applied
                other = find_duplicate(
                    call.state, call.location_id, None, body.get("phone"), contact["id"]
                )
                if other and not allows:
                    fields.pop("phone", None)
            apply_contact_input(contact, fields)
            contacts_changed(call.state, contact["id"])
            contact["dateUpdated"] = call.state.now_iso()
            created = False
        else:
            contact = new_contact(call, body)
            created = True
        shown = render_contact(contact)
    call.state.emit("ContactCreate" if created else "ContactUpdate", shown)
    return 200, {"new": created, "contact": shown, "traceId": str(uuid.uuid4())}


def _in_location(state: SandboxState, location_id: str) -> list[dict[str, Any]]:
    return [c for c in state.ghl.contacts.values() if c["locationId"] == location_id]


def _text_match(contacts: Iterable[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    if not query:
        return list(contacts)
    q = str(query).lower()
    keys = ("firstName", "lastName", "name", "email", "phone", "companyName")
    return [
        c
        for c in contacts
        if any(q in str(c.get(k) or "").lower() for k in keys) or q in full_name(c).lower()
    ]


def _cursor(contact: dict[str, Any]) -> tuple[int, str]:
    return round(contact["_sort"] * 1000), str(contact["id"])


# a location's contacts in list order and their cursors, kept while no contact is added or
# removed: paging through 100,000 contacts does not sort them again for every page
_ORDER: weakref.WeakKeyDictionary[
    SandboxState,
    dict[str, tuple[tuple[int, int, int], list[dict[str, Any]], list[tuple[int, str]]]],
] = weakref.WeakKeyDictionary()


def _ordered(
    state: SandboxState, location_id: str
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The location's contacts in ``(dateAdded, id)`` order, with their cursors."""
    contacts = state.ghl.contacts
    version = (id(contacts), len(contacts), state.seq_value)
    cached = _ORDER.setdefault(state, {}).get(location_id)
    if cached is not None and cached[0] == version:
        return cached[1], cached[2]
    ordered = sorted(_in_location(state, location_id), key=_cursor)
    keys = [_cursor(c) for c in ordered]
    _ORDER[state][location_id] = (version, ordered, keys)
    return ordered, keys


@routes("GET", "/contacts/")
def list_contacts(call: Call) -> Reply:
    q = call.query
    limit = int(q.get("limit", 20))
    if limit < 1 or limit > 100:
        raise ApiError(422, "limit must not be greater than 100")
    with call.state.lock:
        if q.get("query"):
            everything = sorted(
                _text_match(_in_location(call.state, call.location_id), q.get("query")),
                key=_cursor,
            )
            keys = [_cursor(c) for c in everything]
        else:
            everything, keys = _ordered(call.state, call.location_id)
        start = 0
        after_id, after_ms = q.get("startAfterId"), q.get("startAfter")
        if after_id or after_ms is not None:
            ref = call.state.ghl.contacts.get(str(after_id)) if after_id else None
            key = _cursor(ref) if ref else (int(after_ms or 0), str(after_id or ""))
            start = bisect.bisect_right(keys, key)
        page = everything[start : start + limit]
        shown = [render_contact_summary(c) for c in page]
    total = len(everything)
    current = start // limit + 1
    meta: dict[str, Any] = {"total": total, "currentPage": current, "prevPage": current - 1 or None}
    if start + limit < total and page:
        ms, last_id = _cursor(page[-1])
        params = {"locationId": call.location_id, "startAfter": ms, "startAfterId": last_id}
        if limit != 20:
            params["limit"] = limit
        base = str(call.request.url).split("?")[0]
        meta.update(
            startAfter=ms,
            startAfterId=last_id,
            nextPage=current + 1,
            nextPageUrl=f"{base}?{urlencode(params)}",
        )
    return 200, {"contacts": shown, "count": total, "meta": meta}


@routes("POST", "/contacts/search")
def search_contacts(call: Call) -> Reply:
    body = call.body if isinstance(call.body, dict) else {}
    problems = []
    if not isinstance(body.get("locationId"), str) or not body.get("locationId"):
        problems.append("locationId should not be empty")
    for key, high in (("page", 10_000), ("pageLimit", 500)):
        if key in body and (not isinstance(body[key], int) or not 1 <= body[key] <= high):
            problems.append(f"{key} must be an integer between 1 and {high}")
    limit = int(body.get("pageLimit", 20)) if isinstance(body.get("pageLimit"), int) else 20
    if not problems and isinstance(body.get("page"), int) and body["page"] * limit > 10_000:
        # standard paging reaches 10,000 records at most; searchAfter goes beyond
        problems.append("page and pageLimit can fetch at most 10000 records; use searchAfter")
    if problems:
        raise ApiError(422, problems[0], messages=problems)
    after = body.get("searchAfter")
    with call.state.lock:
        if _in_list_order(body):  # every contact in list order: paged from the kept order
            ordered, keys = _ordered(call.state, call.location_id)
        else:
            found = _filtered(call.state, call.location_id, body)
            ordered = sort_contacts(found, body.get("sort") or [])
            keys = []
        if isinstance(after, list) and len(after) == 2:
            if keys:
                start = bisect.bisect_right(keys, (int(after[0]), str(after[1])))
            else:
                ids = [c["id"] for c in ordered]
                start = ids.index(after[1]) + 1 if after[1] in ids else 0
        else:
            start = (int(body.get("page", 1)) - 1) * limit
        shown = []
        for c in ordered[start : start + limit]:
            item = render_contact_summary(c)
            item["searchAfter"] = list(_cursor(c))
            shown.append(item)
    return 200, {"contacts": shown, "total": len(ordered)}


def _in_list_order(body: dict[str, Any]) -> bool:
    """Whether a search asks for every contact in the list's own order (dateAdded, then id)."""
    sort = body.get("sort") or []
    return (
        not body.get("query")
        and not body.get("filters")
        and (sort == [] or sort == [{"field": "dateAdded", "direction": "asc"}])
        and all(isinstance(x, int | float) for x in (body.get("searchAfter") or [0])[:1])
    )


def _filtered(state: SandboxState, location_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The location's contacts that a search's query and filters keep."""
    filters = body.get("filters") or []
    one = filters[0] if isinstance(filters, list) and len(filters) == 1 else None
    if (
        not body.get("query")
        and isinstance(one, dict)
        and one.get("operator") == "eq"
        and one.get("field") in ("email", "phone")
        and isinstance(one.get("value"), str)
    ):
        # a look-up by email or phone, as a sync's match makes one: by the index
        field, wanted = str(one["field"]), str(one["value"]).lower()
        if wanted:
            return contacts_with(state, contact_key(location_id, field, wanted))
        return [
            c
            for c in state.ghl.contacts.values()
            if c["locationId"] == location_id and not str(c.get(field) or "")
        ]
    found = _text_match(_in_location(state, location_id), body.get("query"))
    return [c for c in found if matches_filters(c, filters)]


@routes("GET", "/contacts/search/duplicate")
def duplicate_contact(call: Call) -> Reply:
    with call.state.lock:
        found = find_duplicate(
            call.state, call.location_id, call.query.get("email"), call.query.get("number")
        )
        return 200, {"contact": render_contact(found[0]) if found else None}


@routes("GET", "/contacts/business/{businessId}")
def contacts_by_business(call: Call) -> Reply:
    limit = int(call.query.get("limit", 25) or 25)
    skip = int(call.query.get("skip", 0) or 0)
    with call.state.lock:
        people = [
            c
            for c in _in_location(call.state, call.location_id)
            if c.get("businessId") == call.path["businessId"]
        ]
        people = sorted(_text_match(people, call.query.get("query")), key=_cursor)
        shown = [render_contact_summary(c) for c in people[skip : skip + limit]]
    return 200, {"contacts": shown, "count": len(people)}


@routes("POST", "/contacts/bulk/business")
def bulk_business(call: Call) -> Reply:
    body = call.body
    updated: list[str] = []
    with call.state.lock:
        for cid in body["ids"]:
            contact = call.state.ghl.contacts.get(cid)
            if contact is None or contact["locationId"] != call.location_id:
                continue
            if body.get("businessId"):
                contact["businessId"] = body["businessId"]
            else:
                contact.pop("businessId", None)
            contact["dateUpdated"] = call.state.now_iso()
            updated.append(cid)
    return 200, {"success": True, "ids": updated}


@routes("POST", "/contacts/bulk/tags/update/{type}")
def bulk_tags(call: Call) -> Reply:
    kind = call.path["type"]
    if kind not in ("add", "remove"):
        raise ApiError(400, "type must be one of the following values: add, remove")
    body = call.body
    tags = merge_tags([], body["tags"])
    responses: list[str] = []
    errors = 0
    with call.state.lock:
        for cid in body["contacts"]:
            contact = call.state.ghl.contacts.get(cid)
            if contact is None:
                errors += 1
                responses.append(f"{cid}: contact not found")
                continue
            if contact["locationId"] != body["locationId"]:
                errors += 1
                responses.append(f"{cid}: contact does not belong to location")
                continue
            if kind == "add":
                contact["tags"] = merge_tags(contact.get("tags", []), tags)
            elif body.get("removeAllTags"):
                contact["tags"] = []
            else:
                contact["tags"] = [t for t in contact.get("tags", []) if t not in tags]
            contact["dateUpdated"] = call.state.now_iso()
            responses.append(f"{cid}: Tags updated")
    return 201, {"succeded": errors == 0, "errorCount": errors, "responses": responses}
