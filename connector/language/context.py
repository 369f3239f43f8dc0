"""What the checks of one recipe share: where to put a problem, and what a template reads.

:class:`CheckContext` collects the problems of one recipe as it is checked, each placed in the
recipe's file (:meth:`~CheckContext.add`, :meth:`~CheckContext.warn`; a template's own line with
:meth:`~CheckContext.template_location`). :mod:`.validate` drives the checks; :mod:`.params` and
:mod:`.template_check` add to the same context, and read a template's analysis through it
(:attr:`~CheckContext.analysis`, cached by :class:`~.template_check.TemplateChecker`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connector.apps.registry import Registry
from connector.errors import Location, Problem
from connector.language.analyze import Analysis
from connector.language.load import LoadedRecipe

__all__ = ["CheckContext"]


@dataclass
class CheckContext:
    """The problems of one recipe found so far, and what its checks share."""

    recipe: LoadedRecipe
    # the analysis of a template's text (cached per registry by the template checker)
    analysis: Callable[[str], Analysis]
    problems: list[Problem] = field(default_factory=list)
    # (the event, "ghl ContactCreate", and the schema of its payload) when the catalog has one
    trigger_payload: tuple[str, Any] | None = None
    # the apps, actions and filters the recipe is checked against
    registry: Registry | None = field(default=None, kw_only=True)

    def add(self, path: str, message: str, *, key: bool = False) -> None:
        """An error at ``path`` (at its key with ``key=True``)."""
        self.problems.append(Problem(self.recipe.location(path, key=key), message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.recipe.location(path), message, severity="warning"))

    def template_location(self, path: str, line: int) -> Location:
        """The file position of line ``line`` of the template at ``path``."""
        recipe = self.recipe
        block = recipe.block_starts.get(path)
        if block is not None:
            return Location(recipe.path, block[0] + line - 1, block[1], path)
        return recipe.location(path)
