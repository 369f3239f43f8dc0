"""The operation a deprecated one's description names as its replacement.

The vendors' documents mark some operations ``deprecated: true`` (the catalog keeps the flag,
:attr:`connector.catalog.model.Operation.deprecated`). Their descriptions name the replacement in
one of two ways, both understood here:

* an endpoint in backticks: ``Deprecated. Use `GET /users/search` instead.``
* a link to the replacement's page, whose last path segment is its operationId:
  ``Please use the [Search Contacts](https://.../contacts/search-contacts-advanced) endpoint``.

Only the catalog's model is imported: ``connector catalog show`` uses this and stays quick to
start (``validate``'s warning, :mod:`connector.language.deprecation`, uses it too).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from connector.catalog.model import Operation

__all__ = ["replacement"]

_ENDPOINT = re.compile(r"`(GET|POST|PUT|PATCH|DELETE)\s+(/[^`\s]*)`", re.IGNORECASE)
_LINK = re.compile(r"\[[^\]]*\]\(\s*[^)\s]*/([A-Za-z0-9_-]+)/?\s*\)")


def replacement(op: Operation, operations: Iterable[Operation]) -> Operation | None:
    """The operation among ``operations`` (those of ``op``'s app) that ``op``'s summary or
    description names as its replacement, or ``None``."""
    text = f"{op.summary}\n{op.description}"
    endpoints = _ENDPOINT.findall(text)
    links = _LINK.findall(text)
    if not endpoints and not links:
        return None
    others = [o for o in operations if o.name != op.name and o.app == op.app]
    for method, path in endpoints:
        for other in others:
            if other.method == method.upper() and other.path.rstrip("/") == path.rstrip("/"):
                return other
    for operation_id in links:
        for other in others:
            if other.operation_id == operation_id:
                return other
    return None
