"""A second misspelt hook in the same folder: every such plugin is reported, not only the first."""

from collections.abc import Callable
from typing import Any

from connector import hookimpl


@hookimpl
def register_action(register: Callable[[Any], None]) -> None:
    pass
