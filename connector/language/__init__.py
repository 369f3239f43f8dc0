"""Recipes: loading YAML with positions, and validating against the schema, catalog and templates.

``load_recipe`` turns a file into a :class:`LoadedRecipe` (plain values plus the line and column of
every node); ``validate_recipe`` returns every :class:`~connector.errors.Problem` in one pass.
"""

from connector.language.load import LoadedRecipe, child_path, load_recipe, load_recipe_text
from connector.language.validate import find_recipe_files, validate_paths, validate_recipe

__all__ = [
    "LoadedRecipe",
    "child_path",
    "find_recipe_files",
    "load_recipe",
    "load_recipe_text",
    "validate_paths",
    "validate_recipe",
]
