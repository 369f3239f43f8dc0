"""How ``catalog show`` names a JSON Schema's type (shared by the descriptions and the version
comparison)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["type_of"]


def type_of(schema: Mapping[str, Any] | None) -> str:
    """A short type for a table: ``string``, ``array of string``, ``string (email)``, ``a|b``."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            parts = [type_of(s) for s in schema[key] if s.get("type") != "null"]
            return " | ".join(dict.fromkeys(parts)) or "null"
    kind = schema.get("type")
    if isinstance(kind, list):
        text = " | ".join(str(k) for k in kind if k != "null") or "null"
    elif kind == "array":
        items = schema.get("items")
        text = f"array of {type_of(items)}" if isinstance(items, Mapping) else "array"
    elif kind:
        text = str(kind)
    elif "properties" in schema:
        text = "object"
    elif "enum" in schema:
        text = "enum"
    else:
        return "any"
    if schema.get("format"):
        text += f" ({schema['format']})"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        shown = ", ".join(str(e) for e in enum[:6]) + (", ..." if len(enum) > 6 else "")
        text += f" [{shown}]"
    return text
