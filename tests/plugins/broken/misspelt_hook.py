"""A plugin with a misspelt hook name (``register_filter``): reported, not silently ignored."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_filter(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("never", str)
