"""Filters and sorting of ``POST /contacts/search`` (GoHighLevel's advanced search).

A filter is ``{field, operator, value}`` or a group ``{group: "AND"|"OR", filters: [...]}``;
a list of filters is ANDed. Operators: ``eq``, ``not_eq``, ``contains``, ``not_contains``,
``exists``, ``not_exists``, ``range`` (``value: {gte, lte}``). ``tags`` compares against each tag.
Sort is ``[{field, direction: "asc"|"desc"}]``; the default is ``dateAdded`` ascending.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["matches_filters", "sort_contacts"]


def _values(contact: Mapping[str, Any], field: str) -> list[str]:
    value = contact.get(field)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).lower() for v in value]
    return [str(value).lower()]


def _match(contact: Mapping[str, Any], flt: Mapping[str, Any]) -> bool:
    if "group" in flt:
        parts = [_match(contact, f) for f in flt.get("filters") or []]
        return any(parts) if str(flt["group"]).upper() == "OR" else all(parts)
    field = str(flt.get("field", ""))
    op = str(flt.get("operator", "eq"))
    have = _values(contact, field)
    wanted = flt.get("value")
    wanted_list = [str(w).lower() for w in (wanted if isinstance(wanted, list) else [wanted])]
    if op == "exists":
        return bool(have)
    if op == "not_exists":
        return not have
    if op == "eq":
        return any(w in have for w in wanted_list)
    if op == "not_eq":
        return not any(w in have for w in wanted_list)
    if op == "contains":
        return any(w in h for h in have for w in wanted_list)
    if op == "not_contains":
        return not any(w in h for h in have for w in wanted_list)
    if op == "range" and isinstance(wanted, Mapping):
        raw = contact.get(field)
        if raw is None:
            return False
        low, high = wanted.get("gte"), wanted.get("lte")
        return (low is None or str(raw) >= str(low)) and (high is None or str(raw) <= str(high))
    return False


def matches_filters(contact: Mapping[str, Any], filters: Any) -> bool:
    if not isinstance(filters, list):
        return True
    return all(_match(contact, f) for f in filters if isinstance(f, Mapping))


def sort_contacts(contacts: list[dict[str, Any]], sort: Any) -> list[dict[str, Any]]:
    ordered = sorted(contacts, key=lambda c: (c["_sort"], c["id"]))
    if isinstance(sort, list):
        for spec in reversed([s for s in sort if isinstance(s, Mapping)]):
            field = str(spec.get("field", "dateAdded"))
            desc = str(spec.get("direction", "asc")).lower() == "desc"
            ordered.sort(key=lambda c: str(c.get(field) or "").lower(), reverse=desc)
    return ordered
