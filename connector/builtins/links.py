"""The id-link store's actions: ``links.get``, ``links.put``, ``links.delete``."""

from __future__ import annotations

from collections.abc import Callable

from connector.apps import Action
from connector.hookspecs import hookimpl


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    pass
