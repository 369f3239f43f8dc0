"""A good plugin among broken ones: it still loads."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("survivor", lambda value: f"still here: {value}")
