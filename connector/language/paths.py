"""JSON paths of recipe nodes, in the style of jsonschema's ``ValidationError.json_path``.

``$`` is the document, ``.name`` a mapping member, ``[2]`` a list item; a key that is not a plain
name is quoted, ``['first name']``, so a path is never ambiguous; in a quoted key, a backslash, a
quote and every character that is not printable (line breaks, tabs, ``\\x00``) are escaped as
Python writes them (``['a\\nb']``), so a path is always one line.
"""

from __future__ import annotations

import re

__all__ = ["child_path", "parent_path"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_LAST = re.compile(r"(\[\d+\]|\['(?:[^'\\]|\\.)*'\]|\.[^.\[]*)\Z")


def child_path(parent: str, key: str | int) -> str:
    """The JSON path of ``parent``'s member ``key``: ``$.steps[2]``, ``$.with.email``.

    Keys that are not plain names are quoted (``$.with['first name']``) so a path is never
    ambiguous.
    """
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENT.match(key):
        return f"{parent}.{key}"
    return f"{parent}['{_escape(key)}']"


def _escape(key: str) -> str:
    """``key`` with backslashes, quotes and unprintable characters escaped (one line)."""
    if key.isprintable() and "\\" not in key and "'" not in key:
        return key
    return "".join(_escape_char(c) for c in key)


def _escape_char(c: str) -> str:
    if c in "\\'":
        return "\\" + c
    if c.isprintable():
        return c
    return repr(c)[1:-1]  # as Python writes it: \n, \t, \x00, \u2028


def parent_path(path: str) -> str | None:
    """The path one level up, or ``None`` for ``$``."""
    m = _LAST.search(path)
    if m is None or m.start() == 0:
        return None
    return path[: m.start()]
