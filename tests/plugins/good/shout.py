"""A drop-in plugin: the ``shout`` filter (``{{ "hi" | shout }}`` is ``HI!``)."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl

__version__ = "1.2.3"


def shout(value: Any, mark: str = "!") -> str:
    return f"{str(value).upper()}{mark}"


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("shout", shout)
