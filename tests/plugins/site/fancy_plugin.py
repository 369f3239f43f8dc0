"""An installed plugin, found through the entry point its (test) distribution declares."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("fancy", lambda value: f"~{value}~")
