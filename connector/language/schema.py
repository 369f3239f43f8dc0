"""The recipe format's one JSON Schema: checking a recipe against it, and its reference docs.

The schema (``connector/schemas/recipe.schema.json``, also ``schemas/recipe.schema.json`` at the
root of the repository) drives three things: this structural check, editor completion through the
``# yaml-language-server: $schema=...`` modeline, and the reference table in ``docs/recipes.md``
(:func:`reference_markdown`; ``python -m connector.language.schema`` prints it).

jsonschema's errors are turned into problems a person can act on: an unknown key is reported at
the key itself with "did you mean", a missing key at the mapping that lacks it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from connector.errors import Problem
from connector.language.load import LoadedRecipe, child_path

__all__ = [
    "SCHEMA_PATH",
    "error_problems",
    "read_schema",
    "recipe_schema",
    "reference_markdown",
    "schema_problems",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "recipe.schema.json"

_PATTERN_HINTS = {
    "name": "the recipe's name must be lowercase letters, digits and dashes (like 'pull-contact')",
    "id": "a step id must be letters, digits and underscores, not starting with a digit, "
    "so that templates can read steps.ID",
}


@cache
def read_schema(path: Path) -> Mapping[str, Any]:
    """The JSON schema at ``path`` (one of the package's ``schemas/``), read once."""
    with open(path, encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def recipe_schema() -> Mapping[str, Any]:
    """The recipe schema, read once."""
    return read_schema(SCHEMA_PATH)


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(recipe_schema())


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest candidates, or ``""``."""
    close = difflib.get_close_matches(name, sorted(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def _path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path = child_path(path, part)
    return path


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


def expected_types(types: Any) -> str:
    """``'a string or null'`` for a JSON Schema ``type``."""
    names = [types] if isinstance(types, str) else list(types)
    return " or ".join(_TYPE_NAMES.get(t, t) for t in names)


def error_problems(recipe: LoadedRecipe, error: ValidationError) -> Iterator[Problem]:
    """What one schema error of ``recipe`` (a recipe, or any file read by the recipe loader) says,
    at its place in the file, with the hints recipe authors get."""
    path = _path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        for key in error.instance:
            if key in allowed:
                continue
            sub = child_path(path, key)
            hint = did_you_mean(key, allowed) or f" (allowed here: {', '.join(allowed)})"
            yield Problem(recipe.location(sub, key=True), f"unknown key {key!r}{hint}")
        return
    if error.validator == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        message = f"missing required key {missing!r}"
        if "then" in error.schema_path and missing == "cron":
            message = "a schedule trigger needs 'cron', a cron expression such as '*/15 * * * *'"
        yield Problem(recipe.location(path), message)
        return
    if error.validator == "pattern" and "propertyNames" in error.schema_path:
        sub = child_path(path, str(error.instance))
        yield Problem(
            recipe.location(sub, key=True),
            f"var name {error.instance!r} must be letters, digits and underscores "
            "(not starting with a digit), so templates can read vars.NAME",
        )
        return
    if error.validator == "pattern" and error.absolute_path:
        last = error.absolute_path[-1]
        pattern_hint = _PATTERN_HINTS.get(str(last))
        if pattern_hint:
            yield Problem(recipe.location(path), f"{error.instance!r}: {pattern_hint}")
            return
    if error.validator == "type":
        yield Problem(
            recipe.location(path),
            f"expected {expected_types(error.validator_value)}, found {_kind(error.instance)}",
        )
        return
    if error.validator == "minItems" and path == "$.steps":
        yield Problem(recipe.location(path), "a recipe needs at least one step")
        return
    if error.validator == "minLength":
        yield Problem(recipe.location(path), "must not be empty")
        return
    yield Problem(recipe.location(path), error.message)


def schema_problems(recipe: LoadedRecipe) -> list[Problem]:
    """Every place where ``recipe`` does not fit the recipe schema."""
    problems: list[Problem] = []
    for error in _validator().iter_errors(recipe.data):
        problems.extend(error_problems(recipe, error))
    return problems


def _rows(props: Mapping[str, Any], required: list[str], prefix: str) -> Iterator[str]:
    for name, spec in props.items():
        kind = spec.get("type", "any")
        kind = " or ".join(kind) if isinstance(kind, list) else kind
        if "enum" in spec:
            kind = " \\| ".join(f"`{v}`" for v in spec["enum"])
        req = "yes" if name in required else ""
        desc = " ".join(str(spec.get("description", "")).split()).replace("|", "\\|")
        yield f"| `{prefix}{name}` | {kind} | {req} | {desc} |"


def reference_markdown() -> str:
    """The reference table of every key of a recipe, from the schema's descriptions."""
    schema = recipe_schema()
    step = schema["$defs"]["step"]
    head = ["| key | type | required | meaning |", "| --- | --- | --- | --- |"]
    lines = ["### Top level", "", *head]
    lines += _rows(schema["properties"], schema["required"], "")
    trig = schema["properties"]["trigger"]
    lines += ["", "### `trigger`", "", *head]
    lines += _rows(trig["properties"], trig["required"], "trigger.")
    lines += ["", "### Each of `steps`", "", *head]
    lines += _rows(step["properties"], step["required"], "")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a helper for writing docs/recipes.md
    print(reference_markdown(), end="")
