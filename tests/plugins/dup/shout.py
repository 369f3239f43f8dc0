"""Named like good/shout.py: loading both folders reports this one as a duplicate."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("shout", lambda value: "second")
