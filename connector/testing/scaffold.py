"""The test file ``connector new test RECIPE`` writes: one test that ``connector test`` runs as
written, with no cassette and nothing sent.

The test runs the recipe on its ``trigger.sample``; every operation a step calls is answered by
an inline response (``repeat: true``) made from the operation's response schema in the catalog,
and the test expects the run to succeed with every step that has no ``if:`` succeeded. Comments
say how to record real answers from the sandbox instead (``cassette:`` and ``--record``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from connector.apps.registry import Registry
from connector.language.scaffold import response_sample

__all__ = ["scaffold_test_file"]


def _path_pattern(path: str) -> str:
    """``/contacts/{contactId}/tasks`` -> ``/contacts/*/tasks`` (``*`` is one segment)."""
    return re.sub(r"\{[^/}]+\}", "*", path)


def scaffold_test_file(
    recipe_path: Path, test_path: Path, registry: Registry, schema_ref: str
) -> str:
    """The text of a test file at ``test_path`` for the recipe at ``recipe_path``."""
    try:
        raw = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(
            f"not YAML ({exc.__class__.__name__}); `connector validate` says where"
        ) from None
    recipe: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    name = str(recipe.get("name") or recipe_path.stem)
    steps = recipe.get("steps") if isinstance(recipe.get("steps"), list) else []
    responses: list[dict[str, Any]] = []
    expected_steps: dict[str, str] = {}
    env: dict[str, str] = {}
    seen: set[tuple[str, str, str]] = set()
    for step in steps or []:
        if not isinstance(step, Mapping):
            continue
        action = str(step.get("action") or "")
        op = registry.operation(action)
        if "if" not in step and step.get("id"):
            expected_steps[str(step["id"])] = "succeeded"
        if op is None:
            continue
        app = registry.apps.get(op.app)
        if app is not None and app.location_env:
            env[app.location_env] = "ve9EPM428h8vShlRW1KT"
        key = (op.app, op.method, _path_pattern(op.path))
        if key in seen:
            continue
        seen.add(key)
        responses.append(
            {
                "request": {"app": op.app, "method": op.method, "path": key[2]},
                "status": op.response_status,
                "body": response_sample(op.response_schema),
                "repeat": True,
            }
        )
    relative = os.path.relpath(recipe_path, test_path.parent)
    default = test_path.parent / f"{recipe_path.stem}.yaml"
    beside = test_path.parent.parent / f"{recipe_path.stem}.yaml"
    names_recipe = Path(os.path.normpath(test_path.parent / relative)) not in (
        Path(os.path.normpath(default)),
        Path(os.path.normpath(beside)),
    )
    doc: dict[str, Any] = {}
    if names_recipe:
        doc["recipe"] = relative
    doc["description"] = (
        f"{name}: what it must do for an event, given what the APIs answer "
        "(docs/testing.md). Nothing is sent anywhere."
    )
    if env:
        doc["env"] = env
    if responses:
        doc["responses"] = responses
    case: dict[str, Any] = {"name": "the sample event runs every step"}
    expect: dict[str, Any] = {"status": "succeeded"}
    if expected_steps:
        expect["steps"] = expected_steps
    case["expect"] = expect
    doc["tests"] = [case]
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    header = [
        f"# yaml-language-server: $schema={schema_ref}",
        f"# The tests of {relative}: connector test {test_path}",
        "# The responses below are made from the API documents. To record real answers from the",
        "# embedded sandbox instead, give a test `cassette: cassettes/"
        f"{recipe_path.stem}/sample.cassette.yaml`",
        f"# and run `connector test --record {test_path}` (docs/testing.md, Recording).",
        "# Add `requests:`, `not_sent:` and `output:` under expect: to pin what the recipe sends.",
    ]
    return "\n".join(header) + "\n" + body
