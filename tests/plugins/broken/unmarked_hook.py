"""A plugin whose hook is not marked with @hookimpl: loaded, never called, and warned about."""

from collections.abc import Callable
from typing import Any


def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("unmarked", str)
