"""Preparing a recipe: load, validate, plan. No database, no DBOS: `validate`, `--dry-run` and
`--help` stay fast."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from connector.apps.registry import Registry
from connector.errors import Problem, RecipeInvalid, RecipeLoadError
from connector.language.load import load_recipe, load_recipe_text
from connector.language.plan import Plan, plan_recipe
from connector.language.validate import validate_recipe

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


def _plan(path: str, text: str, loaded: object, registry: Registry) -> Prepared:
    problems = [p for p in validate_recipe(loaded, registry) if p.severity == "error"]  # type: ignore[arg-type]
    if problems:
        return Prepared(path, text, None, tuple(problems))
    try:
        plan = plan_recipe(
            loaded.data,  # type: ignore[attr-defined]
            registry,
            path=path,
            recipe_hash=loaded.sha256,  # type: ignore[attr-defined]
        )
    except RecipeInvalid as exc:
        return Prepared(path, text, None, tuple(exc.problems))
    plan = dataclasses.replace(plan, positions=dict(loaded.positions))  # type: ignore[attr-defined]
    return Prepared(path, text, plan)
