"""Overrides the built-in ``email`` filter: outside plugins are called after the built-ins."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


def loud_email(value: Any) -> str:
    return str(value).strip().upper()


@hookimpl
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("email", loud_email)
