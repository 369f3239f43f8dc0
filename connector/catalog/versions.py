"""Versions of an operation: which one a step is sent with, and how two of them differ.

GoHighLevel versions its API per document with the ``Version`` header: the Contacts API has
``2021-07-28`` (``apps/contacts.json``) and ``v3`` (``apps/v3/contacts-v3.json``). The catalog
keeps the version sent by default as the operation and the others under
:attr:`~connector.catalog.model.Operation.variants` (see :mod:`connector.catalog.generate`).

A recipe picks a version per step (``version: v3``) or per app (``versions: {ghl: v3}``);
:func:`pick_version` turns that choice into the operation that is validated and sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.catalog.model import Operation
from connector.catalog.types import type_of
from connector.errors import CatalogError

__all__ = [
    "UnknownVersion",
    "field_differences",
    "pick_version",
    "preference_problems",
    "preferred_versions",
    "schema_fields",
]


class UnknownVersion(CatalogError):
    """A step asks for a version its operation does not have."""

    def __init__(self, op: Operation, version: str) -> None:
        self.operation = op.name
        self.version = version
        self.known = op.versions
        have = f"it has {', '.join(op.versions)}" if op.versions else "it sends no Version header"
        super().__init__(
            f"{op.name} has no version {version!r} ({have}); "
            f"`connector catalog show {op.name}` lists its versions"
        )

    @classmethod
    def for_action(cls, name: str, version: str) -> UnknownVersion:
        """``version:`` on a step whose action is a plugin's, not a catalogued operation."""
        error = cls.__new__(cls)
        error.operation, error.version, error.known = name, version, ()
        CatalogError.__init__(
            error,
            f"{name} is a plugin action, not a catalogued operation: it has no versions; "
            "remove `version:`",
        )
        return error


def pick_version(
    op: Operation, version: str | None = None, preferred: Mapping[str, str] | None = None
) -> Operation:
    """``op`` as it is sent for a step: at ``version`` (the step's ``version:``; raises
    :class:`UnknownVersion` when ``op`` has no such version), else at the version ``preferred``
    names for its app (the recipe's ``versions:``; an operation without that version keeps the
    one it has), else as the catalog sends it by default."""
    if version is not None:
        found = op.at_version(version)
        if found is None:
            raise UnknownVersion(op, version)
        return found
    wanted = (preferred or {}).get(op.app)
    if wanted is not None:
        return op.at_version(wanted) or op
    return op


def _type(schema: Mapping[str, Any]) -> str:
    return type_of(schema)


def _members(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """``schema`` and what it merges in (``allOf``) or may be (``anyOf``, ``oneOf``)."""
    out = [schema]
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            if isinstance(sub, Mapping):
                out.extend(_members(sub))
    return out


def schema_fields(schema: Any, prefix: str = "", depth: int = 0) -> dict[str, str]:
    """Every field of ``schema`` by dotted path (a list's items after ``[]``: ``tasks[].id``),
    with its type as ``catalog show`` writes one; recursive parts stop at a ``$ref``."""
    out: dict[str, str] = {}
    if not isinstance(schema, Mapping) or depth > 8:
        return out
    for member in _members(schema):
        items = member.get("items")
        if member.get("type") == "array" and isinstance(items, Mapping):
            out.update(schema_fields(items, f"{prefix}[]", depth + 1))
        props = member.get("properties")
        if not isinstance(props, Mapping):
            continue
        for name, sub in props.items():
            if not isinstance(sub, Mapping):
                continue
            path = f"{prefix}.{name}" if prefix else str(name)
            out[path] = _type(sub)
            out.update(schema_fields(sub, path, depth + 1))
    return out


def _params(op: Operation) -> dict[str, str]:
    return {
        p.name: f"{p.location}, {_type(p.schema)}" + (", required" if p.required else "")
        for p in op.parameters
        if p.location != "body"
    }


def _body(op: Operation) -> dict[str, str]:
    required = set((op.body_schema or {}).get("required") or ())
    fields = schema_fields(op.body_schema)
    return {k: v + (", required" if k in required else "") for k, v in fields.items()}


def _under(name: str, parents: set[str]) -> bool:
    """Whether ``name`` is inside one of the fields ``parents`` (``a.b`` or ``a[].b`` of ``a``)."""
    return any(name.startswith((p + ".", p + "[]")) for p in parents)


def field_differences(base: Operation, other: Operation) -> list[str]:
    """How ``other`` (a version of ``base``) differs from it, one line per difference: its path,
    parameters (where each goes, type, whether required), body fields and response fields, each
    named with the version that has it (``response succeeded: only in v3 (boolean)``). The
    fields inside a field that only one version has are not listed again."""
    a, b = base.version or "-", other.version or "-"
    lines: list[str] = []
    if (base.method, base.path) != (other.method, other.path):
        lines.append(f"path: {a} {base.method} {base.path}; {b} {other.method} {other.path}")
    for what, old, new in (
        ("parameter", _params(base), _params(other)),
        ("body", _body(base), _body(other)),
        ("response", schema_fields(base.response_schema), schema_fields(other.response_schema)),
    ):
        only: set[str] = set()
        for name in sorted(old.keys() | new.keys()):
            if _under(name, only):
                continue
            if name not in new:
                lines.append(f"{what} {name}: only in {a} ({old[name]})")
                only.add(name)
            elif name not in old:
                lines.append(f"{what} {name}: only in {b} ({new[name]})")
                only.add(name)
            elif old[name] != new[name]:
                lines.append(f"{what} {name}: {a} {old[name]}; {b} {new[name]}")
    if base.response_status != other.response_status:
        lines.append(f"response status: {a} {base.response_status}; {b} {other.response_status}")
    return lines


def preferred_versions(recipe: Any) -> dict[str, str]:
    """A recipe's ``versions:`` (app -> version), leaving out what is not a string (the schema
    reports it)."""
    given = recipe.get("versions") if isinstance(recipe, Mapping) else None
    if not isinstance(given, Mapping):
        return {}
    return {str(k): v for k, v in given.items() if isinstance(v, str)}


def preference_problems(
    preferred: Mapping[str, str], apps: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(app, message) for each entry of a recipe's ``versions:`` that names an app that is not
    registered, or a version none of the app's operations has. ``apps``: name -> an object with
    ``operations`` (a :class:`connector.apps.App`)."""
    problems: list[tuple[str, str]] = []
    for app, version in preferred.items():
        found = apps.get(app)
        if found is None:
            known = ", ".join(sorted(apps))
            problems.append((app, f"unknown app {app!r} (known: {known})"))
            continue
        have = sorted({v for op in found.operations.values() for v in op.versions})
        if version not in have:
            listed = ", ".join(have) if have else "none: its operations send no Version header"
            problems.append((app, f"no operation of {app} has version {version!r} ({listed})"))
    return problems
