"""A plugin whose registration hook raises after registering one filter: none of it is kept."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("half_done", str)
    raise KeyError("settings")
