"""The trigger catalog: GoHighLevel webhooks, Connecteam webhooks and the seed's events,
``schedule`` and ``manual``."""

from __future__ import annotations

from collections.abc import Callable

from connector.catalog import load_triggers
from connector.catalog.model import TriggerEvent
from connector.hookspecs import hookimpl


@hookimpl
def register_triggers(register: Callable[[TriggerEvent], None]) -> None:
    for event in load_triggers():
        register(event)
