"""Build a :class:`~connector.sandbox.state.SandboxState` from a seed document (see seed.yaml)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from connector.sandbox.ghl_model import apply_contact_input, merge_tags
from connector.sandbox.state import SeedError, TokenInfo, iso, parse_iso

if TYPE_CHECKING:
    from connector.sandbox.state import SandboxState

__all__ = ["add_contact", "add_user", "apply_seed", "seed_contacts", "seed_users"]


def apply_seed(state: SandboxState, seed: Mapping[str, Any]) -> None:
    """Fill an empty state from ``seed``; ids missing from the seed are generated."""
    try:
        _seed_ghl(state, seed.get("ghl") or {})
        _seed_connecteam(state, seed.get("connecteam") or {})
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SeedError(f"the seed does not have the expected layout: {exc!r}") from exc


def _seed_ghl(state: SandboxState, ghl: Mapping[str, Any]) -> None:
    g = state.ghl
    company = str(ghl.get("companyId") or state.ghl_id())
    for client in ghl.get("oauth_clients") or []:
        g.oauth_clients[str(client["client_id"])] = dict(client)
    for loc in ghl["locations"]:
        lid = str(loc["id"])
        g.locations[lid] = {
            "id": lid,
            "name": loc.get("name", lid),
            "companyId": company,
            "allowDuplicateContact": bool(loc.get("allowDuplicateContact", False)),
            "timezone": loc.get("timezone", "UTC"),
            "address": str(loc.get("address", "")),
        }
        if loc.get("token"):
            g.tokens[str(loc["token"])] = TokenInfo(token=str(loc["token"]), location_id=lid)
    for user in ghl.get("users") or []:
        uid = str(user.get("id") or state.ghl_id())
        rec = {k: v for k, v in user.items() if k != "role"}
        rec["id"] = uid
        rec["name"] = f"{user.get('firstName', '')} {user.get('lastName', '')}".strip()
        rec["roles"] = {
            "type": "account",
            "role": user.get("role", "user"),
            "locationIds": list(user.get("locationIds", [])),
        }
        g.users[uid] = rec
    for cal in ghl.get("calendars") or []:
        cid = str(cal.get("id") or state.ghl_id())
        g.calendars[cid] = {**cal, "id": cid}
    for raw in ghl.get("contacts") or []:
        _seed_contact(state, raw)


def _seed_contact(state: SandboxState, raw: Mapping[str, Any]) -> None:
    g = state.ghl
    cid = str(raw.get("id") or state.ghl_id())
    lid = str(raw["locationId"])
    if lid not in g.locations:
        raise SeedError(f"seed contact {cid} names an unknown location {lid}")
    added = str(raw.get("dateAdded") or state.now_iso())
    contact: dict[str, Any] = {
        "id": cid,
        "locationId": lid,
        "type": raw.get("type", "lead"),
        "dateAdded": added,
        "dateUpdated": str(raw.get("dateUpdated") or added),
        "tags": [],
        "followers": list(raw.get("followers", [])),
        "campaigns": [],
        "workflows": [],
        "_sort": parse_iso(added),
        "_seq": state.seq(),
    }
    apply_contact_input(contact, raw)
    contact["tags"] = merge_tags([], raw.get("tags") or [])
    if raw.get("businessId"):
        contact["businessId"] = str(raw["businessId"])
    g.contacts[cid] = contact
    g.tasks[cid] = {}
    for t in raw.get("tasks") or []:
        tid = str(t.get("id") or state.ghl_id())
        g.tasks[cid][tid] = {"completed": False, **t, "id": tid, "contactId": cid}
    g.notes[cid] = {}
    for n in raw.get("notes") or []:
        nid = str(n.get("id") or state.ghl_id())
        g.notes[cid][nid] = {"dateAdded": added, **n, "id": nid, "contactId": cid}
    for a in raw.get("appointments") or []:
        aid = str(a.get("id") or state.ghl_id())
        status = a.get("status", "booked")
        g.appointments[aid] = {
            "dateAdded": added,
            "dateUpdated": added,
            **a,
            "id": aid,
            "contactId": cid,
            "locationId": lid,
            "status": status,
            "appointmentStatus": a.get("appointmentStatus", status),
            "groupId": a.get("groupId", ""),
            "users": list(a.get("users", [])),
        }


def _seed_connecteam(state: SandboxState, ct: Mapping[str, Any]) -> None:
    c = state.ct
    account = str(ct.get("account_id", "sandbox-account"))
    if ct.get("api_key"):
        c.api_keys[str(ct["api_key"])] = account
    for client in ct.get("oauth_clients") or []:
        scopes = client.get("scopes") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        c.oauth_clients[str(client["client_id"])] = {
            "client_id": str(client["client_id"]),
            "client_secret": str(client["client_secret"]),
            "scopes": [str(x) for x in scopes],
            "account": account,
            "name": str(client.get("name", client["client_id"])),
        }
    if ct.get("company_id"):
        c.company_id = str(ct["company_id"])
    base = int(ct.get("created_at", 1704067200))  # 2024-01-01
    for cat in ct.get("custom_field_categories") or []:
        c.categories[int(cat["id"])] = {"id": int(cat["id"]), "name": cat["name"]}
    for f in ct.get("custom_fields") or []:
        fid = int(f["id"])
        rec: dict[str, Any] = {
            "id": fid,
            "name": f["name"],
            "type": f.get("type", "str"),
            "categoryId": int(f.get("categoryId", 1)),
            "isRequired": bool(f.get("isRequired", False)),
            "isVisibleToAllAdmins": True,
            "isEditableForAllAdmins": True,
            "isVisibleToUsers": bool(f.get("isVisibleToUsers", False)),
            "isEditableForUsers": False,
        }
        if rec["type"] == "dropdown":
            rec["isMultiSelect"] = bool(f.get("isMultiSelect", False))
            rec["dropdownOptions"] = [
                {"id": int(o["id"]), "value": o["value"], "isDisabled": False, "isDeleted": False}
                for o in f.get("dropdownOptions", [])
            ]
        c.custom_fields[fid] = rec
    for u in ct.get("users") or []:
        uid = int(u.get("userId") or state.ct_id())
        c.users[uid] = {
            "userId": uid,
            "firstName": u["firstName"],
            "lastName": u["lastName"],
            "phoneNumber": str(u["phoneNumber"]),
            "userType": u.get("userType", "user"),
            "email": u.get("email"),
            "customFields": [dict(x) for x in u.get("customFields", [])],
            "isArchived": bool(u.get("isArchived", False)),
            "createdAt": int(u.get("createdAt", base)),
            "modifiedAt": int(u.get("modifiedAt", base)),
            "lastLogin": 0,
            "smartGroupsIds": [],
        }
        c.notes[uid] = []
        for n in u.get("notes") or []:
            c.notes[uid].append(
                {
                    "id": state.ct_id(),
                    "title": n.get("title"),
                    "text": n["text"],
                    "createdBy": uid,
                    "modifiedBy": uid,
                    "createdAt": base,
                    "modifiedAt": base,
                }
            )
    for b in ct.get("task_boards") or []:
        bid = int(b["id"])
        c.task_boards[bid] = {
            "id": bid,
            "name": b["name"],
            "isArchived": bool(b.get("isArchived", False)),
        }
        c.tasks[bid] = {}
        for t in b.get("tasks") or []:
            tid = str(t.get("id") or state.hex_id())
            c.tasks[bid][tid] = {
                "id": tid,
                "title": t["title"],
                "userIds": [int(x) for x in t.get("userIds", [])],
                "status": t.get("status", "published"),
                "dueDate": t.get("dueDate"),
                "startTime": t.get("startTime"),
                "labelIds": list(t.get("labelIds", [])),
                "type": "oneTime",
                "isArchived": bool(t.get("isArchived", False)),
                "subTasks": [],
                "description": t.get("description"),
            }


def seed_contacts(
    state: SandboxState,
    location_id: str,
    count: int,
    *,
    business_id: str | None = None,
    start: str = "2024-01-01T00:00:00.000Z",
) -> list[str]:
    """Add ``count`` generated contacts to a location, one second apart from ``start``, cheaply
    (100,000 in about a second): the backfill benchmark's and the paging tests' data. Their ids
    are ``gen`` and a number; returns them in order."""
    g = state.ghl
    if location_id not in g.locations:
        raise SeedError(f"unknown location {location_id}")
    base = parse_iso(start)
    ids = []
    with state.lock:
        for n in range(count):
            cid = f"gen{location_id[:6]}{n:011d}"
            moment = base + n
            added = iso(moment)
            contact: dict[str, Any] = {
                "id": cid,
                "locationId": location_id,
                "type": "lead",
                "firstName": f"First{n}",
                "lastName": f"Last{n}",
                "email": f"contact{n}@{location_id[:6].lower()}.example",
                "dateAdded": added,
                "dateUpdated": added,
                "tags": [],
                "followers": [],
                "campaigns": [],
                "workflows": [],
                "_sort": moment,
                "_seq": state.seq(),
            }
            if business_id:
                contact["businessId"] = business_id
            g.contacts[cid] = contact
            g.tasks[cid] = {}
            g.notes[cid] = {}
            ids.append(cid)
    return ids


def seed_users(state: SandboxState, count: int, *, first_id: int = 5_000_000) -> list[int]:
    """Add ``count`` generated Connecteam users (ids from ``first_id``); returns their ids."""
    c = state.ct
    ids = []
    with state.lock:
        for n in range(count):
            uid = first_id + n
            c.users[uid] = {
                "userId": uid,
                "firstName": f"First{n}",
                "lastName": f"Last{n}",
                "phoneNumber": f"+1555{n:07d}",
                "userType": "user",
                "email": f"user{n}@users.example",
                "customFields": [],
                "isArchived": False,
                "createdAt": 1704067200 + n,
                "modifiedAt": 1704067200 + n,
                "lastLogin": 0,
                "smartGroupsIds": [],
            }
            c.notes[uid] = []
            ids.append(uid)
    return ids


def add_contact(
    state: SandboxState, location_id: str, fields: Mapping[str, Any], *, at: float
) -> str:
    """Put one contact with ``fields`` (firstName, lastName, email, phone: as GoHighLevel keeps
    them) straight into a location, added and last changed at ``at`` (epoch seconds), with no
    request and no webhook: a test's or a benchmark's world of thousands, in moments. Returns
    its id (``fields["id"]`` when given)."""
    g = state.ghl
    if location_id not in g.locations:
        raise SeedError(f"unknown location {location_id}")
    with state.lock:
        cid = str(fields.get("id") or state.ghl_id())
        moment = iso(at)
        contact: dict[str, Any] = {
            "type": "lead",
            **{k: v for k, v in fields.items() if v is not None},
            "id": cid,
            "locationId": location_id,
            "dateAdded": moment,
            "dateUpdated": moment,
            "tags": [],
            "followers": [],
            "campaigns": [],
            "workflows": [],
            "_sort": parse_iso(moment),
            "_seq": state.seq(),
        }
        g.contacts[cid] = contact
        g.tasks[cid] = {}
        g.notes[cid] = {}
    return cid


def add_user(state: SandboxState, fields: Mapping[str, Any], *, at: float) -> int:
    """Put one Connecteam user with ``fields`` (firstName, lastName, phoneNumber in E.164,
    email) straight into the state, made and last changed at ``at`` (whole epoch seconds), with
    no request and no webhook. Returns its id."""
    with state.lock:
        uid = state.ct_id()
        state.ct.users[uid] = {
            "userId": uid,
            "firstName": fields["firstName"],
            "lastName": fields["lastName"],
            "phoneNumber": str(fields["phoneNumber"]),
            "userType": "user",
            "email": fields.get("email"),
            "customFields": [],
            "isArchived": False,
            "createdAt": int(at),
            "modifiedAt": int(at),
            "lastLogin": 0,
            "smartGroupsIds": [],
        }
        state.ct.notes[uid] = []
    return uid
