"""What the vendors' documents leave out of an operation, and its documentation elsewhere
says: applied by the catalog generator (:mod:`connector.catalog.generate`), each entry with its
source. Today one operation needs them: GoHighLevel's contact search, ``POST /contacts/search``,
whose body schema is empty and whose response has no schema in the spec (vendor-facts 4.1).
"""

from __future__ import annotations

from typing import Any

__all__ = ["BODY_OVERLAY", "PAGING_OVERLAY", "RESPONSE_OVERLAY", "apply_overlays"]

# Paging that no document shows: ``POST /contacts/search``'s body schema is empty in the spec;
# its documentation (vendor-facts 4.1) pages with ``page``/``pageLimit`` (at most 500 a page and
# 10,000 items in all) or with ``searchAfter``, the value each returned contact carries.
PAGING_OVERLAY: dict[str, dict[str, Any]] = {
    "ghl.search-contacts-advanced": {
        "style": "search_after",
        "in": "body",
        "limit_param": "pageLimit",
        "max_limit": 500,
        "items": "contacts",
        "search_after_param": "searchAfter",
        "search_after_field": "searchAfter",
        "page_param": "page",
        "page_max_items": 10_000,
    }
}
# ... and the body fields it documents, which the spec's empty ``SearchBodyV2DTO`` leaves out
_SEARCH_FIELDS: dict[str, tuple[bool, dict[str, Any], str]] = {
    "locationId": (True, {"type": "string"}, "Location Id"),
    "query": (False, {"type": "string", "maxLength": 75}, "Text to search for"),
    "page": (False, {"type": "integer", "minimum": 1}, "Page (not with searchAfter)"),
    "pageLimit": (
        False,
        {"type": "integer", "minimum": 1, "maximum": 500},
        "Results per page (GoHighLevel requires it; `pages:` sends 500 when it is not given)",
    ),
    "searchAfter": (
        False,
        {"type": "array"},
        "The searchAfter value of the last contact of the page before",
    ),
    "filters": (False, {"type": "array"}, "{field, operator, value} or {group, filters}"),
    "sort": (False, {"type": "array"}, "{field, direction}, at most 2"),
}
BODY_OVERLAY: dict[str, dict[str, tuple[bool, dict[str, Any], str]]] = {
    "ghl.search-contacts-advanced": _SEARCH_FIELDS
}
# ... and its response, which the spec leaves without a schema: ``{contacts: [...], total: N}``
# (vendor-facts 4.1), each contact as ``GET /contacts/{contactId}`` documents one, with the
# ``searchAfter`` value that pages on: (the list's field, the operation whose response holds the
# item schema, the field of that response holding it, fields the item has besides, the total's).
RESPONSE_OVERLAY: dict[str, tuple[str, str, str, dict[str, Any], str]] = {
    "ghl.search-contacts-advanced": (
        "contacts",
        "ghl.get-contact",
        "contact",
        {
            "searchAfter": {
                "type": "array",
                "description": "The value to send as searchAfter for the page after this contact",
            }
        },
        "total",
    ),
}


def apply_overlays(ops: list[dict[str, Any]]) -> None:
    """Give the GoHighLevel operations ``ops`` (named) what their documents leave out: the
    paging, body fields and response of the overlays above. A document that gives a body or a
    response schema of its own keeps it."""
    by_name = {op["name"]: op for op in ops}
    for name, paging in PAGING_OVERLAY.items():
        if name in by_name:
            by_name[name]["pagination"] = dict(paging)
    for name, fields in BODY_OVERLAY.items():
        op = by_name.get(name)
        if op is None or (op["body"] or {}).get("schema", {}).get("properties"):
            continue
        op["body"]["schema"] = {
            "type": "object",
            "required": [n for n, (req, _, _) in fields.items() if req],
            "properties": {n: {**sch, "description": d} for n, (_, sch, d) in fields.items()},
        }
        op["parameters"] = [
            {"name": n, "in": "body", "required": req, "schema": sch, "description": d}
            for n, (req, sch, d) in fields.items()
        ]
    _overlay_responses(by_name)


def _overlay_responses(by_name: dict[str, dict[str, Any]]) -> None:
    for name, (items, source, field, extra, total) in RESPONSE_OVERLAY.items():
        op, donor = by_name.get(name), by_name.get(source)
        if op is None or donor is None or (op["response"] or {}).get("schema"):
            continue  # a document that now gives the schema (or lacks either) is taken as it is
        item = ((donor["response"] or {}).get("schema") or {}).get("properties", {}).get(field)
        if not item:
            continue
        item = {**item, "properties": {**item.get("properties", {}), **extra}}
        op["response"] = {
            "status": (op["response"] or {}).get("status", 200),
            "schema": {
                "type": "object",
                "properties": {items: {"type": "array", "items": item}, total: {"type": "number"}},
            },
        }
