"""Deprecated operations: what a step calling one is warned about, and what replaces it.

The vendors' documents mark some operations ``deprecated: true`` (the catalog keeps the flag,
:attr:`connector.catalog.model.Operation.deprecated`). Their descriptions name the replacement in
one of two ways, both understood here:

* an endpoint in backticks: ``Deprecated. Use `GET /users/search` instead.``
* a link to the replacement's page, whose last path segment is its operationId:
  ``Please use the [Search Contacts](https://.../contacts/search-contacts-advanced) endpoint``.
"""

from __future__ import annotations

import re

from connector.catalog.model import Operation
from connector.registry import Registry

__all__ = ["deprecation_message", "replacement"]

_ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE)\s+(/[^`\s]*)`", re.IGNORECASE)
_LINK = re.compile(r"\[[^\]]*\]\(\s*[^)\s]*/([A-Za-z0-9_-]+)/?\s*\)")


def _operations(registry: Registry, app: str) -> list[Operation]:
    found = registry.apps.get(app)
    return list(found.operations.values()) if found is not None else []


def replacement(op: Operation, registry: Registry) -> Operation | None:
    """The operation ``op``'s description names as its replacement, if it names one that the
    catalog has."""
    text = f"{op.summary}\n{op.description}"
    others = [o for o in _operations(registry, op.app) if o.name != op.name]
    for method, path in _ENDPOINT.findall(text):
        for other in others:
            if other.method == method.upper() and other.path.rstrip("/") == path.rstrip("/"):
                return other
    for operation_id in _LINK.findall(text):
        for other in others:
            if other.operation_id == operation_id:
                return other
    return None


def deprecation_message(op: Operation, registry: Registry) -> str:
    """The warning for a step that calls the deprecated operation ``op``."""
    message = f"{op.name} ({op.method} {op.path}) is deprecated (its API document says so)"
    instead = replacement(op, registry)
    if instead is not None:
        return f"{message}; use {instead.name} ({instead.method} {instead.path}) instead"
    return f"{message}; `connector catalog list` shows the other operations"
