"""A plugin that registers something that is not an Action: reported as its failure."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_actions(register: Callable[[Any], None]) -> None:
    register({"name": "oops.not-an-action"})
