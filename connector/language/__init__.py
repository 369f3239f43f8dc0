"""Recipes: loading YAML with positions, and validating against the schema, catalog and templates.

``load_recipe`` turns a file into a :class:`LoadedRecipe` (plain values plus the line and column of
every node); ``validate_recipe`` returns every :class:`~connector.errors.Problem` in one pass.
Underneath, a recipe is parsed once into typed nodes (``parse_recipe``, :mod:`.nodes`), which the
validator checks (``check_recipe``) and the planner builds its plan from (:mod:`.plan`).
"""

from connector.language.load import LoadedRecipe, child_path, load_recipe, load_recipe_text
from connector.language.nodes import Recipe, parse_recipe
from connector.language.validate import (
    check_recipe,
    find_recipe_files,
    validate_paths,
    validate_recipe,
)

__all__ = [
    "LoadedRecipe",
    "Recipe",
    "check_recipe",
    "child_path",
    "find_recipe_files",
    "load_recipe",
    "load_recipe_text",
    "parse_recipe",
    "validate_paths",
    "validate_recipe",
]
