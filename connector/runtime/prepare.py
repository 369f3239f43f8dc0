"""Preparing a recipe: load, validate, plan. No database, no DBOS: `validate`, `--dry-run` and
`--help` stay fast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connector.apps.registry import Registry
from connector.errors import Problem, RecipeInvalid, RecipeLoadError
from connector.language.load import LoadedRecipe, load_recipe, load_recipe_text
from connector.language.nodes import parse_recipe
from connector.language.plan import Plan, build_plan
from connector.language.validate import check_recipe

__all__ = ["Prepared", "prepare", "prepare_text"]


@dataclass(frozen=True)
class Prepared:
    """A recipe ready to run (``plan``), or the problems that stop it (``problems``)."""

    path: str
    text: str
    plan: Plan | None
    problems: tuple[Problem, ...] = ()


def prepare(path: str | Path, registry: Registry) -> Prepared:
    """Load, validate and plan the recipe file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        text = ""
    try:
        loaded = load_recipe(str(path))
    except RecipeLoadError as exc:
        return Prepared(str(path), text, None, (exc.problem,))
    return _plan(str(path), text, loaded, registry)


def prepare_text(path: str, text: str, registry: Registry) -> Prepared:
    """The same for a recipe's stored text (a run resumed after its file changed)."""
    try:
        loaded = load_recipe_text(text, path)
    except RecipeLoadError as exc:
        return Prepared(path, text, None, (exc.problem,))
    return _plan(path, text, loaded, registry)


def _plan(path: str, text: str, loaded: LoadedRecipe, registry: Registry) -> Prepared:
    """Validate and plan one parse of ``loaded``."""
    recipe = parse_recipe(loaded, registry)
    problems = [p for p in check_recipe(recipe, registry) if p.severity == "error"]
    if problems:
        return Prepared(path, text, None, tuple(problems))
    try:
        plan = build_plan(recipe, registry)
    except RecipeInvalid as exc:
        return Prepared(path, text, None, tuple(exc.problems))
    return Prepared(path, text, plan)
