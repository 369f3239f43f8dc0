"""Request bodies from outside, read within bounds: never a 500, never unbounded work.

:func:`read_json` turns the raw bytes of a webhook or hook into a JSON object, or raises
:class:`~connector.apps.events.Rejected` with the status to answer: 413 over
:data:`MAX_BODY_BYTES`, 400 for anything that is not UTF-8 JSON, is nested deeper than
:data:`MAX_DEPTH` (checked before parsing, so a hostile body cannot exhaust the parser's stack), or
is not an object.
"""

from __future__ import annotations

import json
from typing import Any

from connector.apps.events import Rejected

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "depth", "read_json"]

MAX_BODY_BYTES = 1024 * 1024  # 1 MiB
MAX_DEPTH = 32


def depth(text: str) -> int:
    """How deeply ``text``'s arrays and objects nest (brackets inside strings do not count)."""
    deepest = level = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            level += 1
            deepest = max(deepest, level)
        elif char in "]}":
            level -= 1
    return deepest


def read_json(
    raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """The JSON object in ``raw``; :class:`Rejected` (413 or 400) when it cannot be one."""
    if len(raw) > max_bytes:
        raise Rejected(f"the body is {len(raw)} bytes; at most {max_bytes} are accepted", 413)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("the body is not UTF-8 text", 400) from None
    nested = depth(text)
    if nested > max_depth:
        raise Rejected(
            f"the JSON nests {nested} levels deep; at most {max_depth} are accepted", 400
        )
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise Rejected(f"the body is not JSON{where}", 400) from None
    if not isinstance(value, dict):
        raise Rejected(f"the body must be a JSON object, not {type(value).__name__}", 400)
    return value
