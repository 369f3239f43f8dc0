"""The catalog of API operations and trigger events, generated from the vendors' OpenAPI documents.

The data lives in ``connector/catalog/data/*.json``, written by ``connector.catalog.generate``
(``connector catalog generate``); see :mod:`connector.catalog.model` for its layout.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from connector.catalog.model import Operation, Parameter, TriggerEvent

__all__ = ["DATA_DIR", "Operation", "Parameter", "TriggerEvent", "load_operations", "load_triggers"]

DATA_DIR = Path(__file__).parent / "data"


def _read(name: str) -> Any:
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return json.load(fh)


@cache
def load_operations(app: str) -> dict[str, Operation]:
    """The committed catalog of one app (``ghl`` or ``connecteam``), by full action name."""
    data = _read(f"{app}.json")
    ops = (Operation.from_json(o) for o in data["operations"])
    return {op.name: op for op in ops}


@cache
def load_triggers() -> tuple[TriggerEvent, ...]:
    data = _read("triggers.json")
    return tuple(TriggerEvent.from_json(t) for t in data["triggers"])
