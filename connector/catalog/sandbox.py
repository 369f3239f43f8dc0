"""Which catalog operations the embedded sandbox answers, as ``connector catalog`` shows it.

``data/sandbox.json`` lists them. It is written from the routes the sandbox serves by
``python -m connector.sandbox.coverage`` (see :mod:`connector.sandbox.coverage`), and a test fails
when it differs from them, so it is never a hand list. Reading it here keeps ``catalog show``
from importing the sandbox (its web server and HTTP client) just to say one word.
"""

from __future__ import annotations

import json
from functools import cache

from connector.catalog import DATA_DIR
from connector.catalog.model import Operation

__all__ = ["SANDBOX_FILE", "sandbox_covers", "sandbox_operations"]

SANDBOX_FILE = DATA_DIR / "sandbox.json"


@cache
def sandbox_operations() -> tuple[frozenset[str], tuple[str, ...]]:
    """The names of the operations the sandbox answers, and the apps it fakes."""
    with open(SANDBOX_FILE, encoding="utf-8") as fh:
        data = json.load(fh)
    return frozenset(data["operations"]), tuple(data["apps"])


def sandbox_covers(op: Operation) -> bool | None:
    """Whether the sandbox answers ``op``; None when its app is not one the sandbox fakes."""
    names, apps = sandbox_operations()
    if op.app not in apps:
        return None
    return op.name in names
