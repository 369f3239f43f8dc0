"""The standard filters recipes can use beyond Jinja's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connector.hookspecs import hookimpl


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    pass
