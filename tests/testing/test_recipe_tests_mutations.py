"""A mutated copy of each shipped recipe (a changed mapping, a dropped step) fails its tests,
with a readable difference located in the test file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from recipe_tests_support import SHIPPED, connector


def _step(recipe: dict[str, Any], step_id: str) -> dict[str, Any]:
    return next(s for s in recipe["steps"] if s["id"] == step_id)


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A changed mapping: ``step_id.with.a.b`` (or ``vars.x.y``) becomes ``value``."""

    def mutate(recipe: dict[str, Any]) -> None:
        head, *keys = path.split(".")
        node: Any = recipe["vars"] if head == "vars" else _step(recipe, head)
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[keys[-1]] = value

    return mutate


def _mentions(value: Any, step_id: str) -> bool:
    return f"steps.{step_id}" in yaml.safe_dump(value)


def _drop(step_id: str) -> Callable[[dict[str, Any]], None]:
    """A dropped step, and the outputs that read it (as a person deleting it would)."""

    def mutate(recipe: dict[str, Any]) -> None:
        recipe["steps"] = [s for s in recipe["steps"] if s["id"] != step_id]
        output = recipe.get("output")
        if isinstance(output, dict):
            recipe["output"] = {k: v for k, v in output.items() if not _mentions(v, step_id)}

    return mutate


MAPPINGS = {
    "archive-user-on-contact-delete": _set("archive.with.deletionType", "delete"),
    "create-contact-from-connecteam": _set("upsert_contact.with.firstName", "{{ vars.name.last }}"),
    "create-task-from-connecteam": _set("create_task.with.title", "{{ vars.task.title | upper }}"),
    "pull-contact-on-select": _set(
        "update_user.with.body.0.customFields.1.value",
        "{{ steps.contact.output.contact.firstName }}",
    ),
    "push-contact-edits": _set("update_phone.with.phone", "{{ vars.changes.phoneNumber }}"),
    "push-task-edits": _set("complete_task.with.completed", "{{ trigger.status != 'completed' }}"),
    "sync-contact-to-connecteam": _set(
        "vars.wanted.lastName", "{{ trigger.firstName | default(none) }}"
    ),
    "tag-contact-on-activity": _set("tag.with.tags", ["{{ vars.tag | upper }}"]),
}
DROPS = {
    "archive-user-on-contact-delete": _drop("forget"),
    "create-contact-from-connecteam": _drop("add_tags"),
    "create-task-from-connecteam": _drop("create_task"),
    "pull-contact-on-select": _drop("create_notes"),
    "push-contact-edits": _drop("add_tags"),
    "push-task-edits": _drop("complete_task"),
    "sync-contact-to-connecteam": _drop("adopt"),
    "tag-contact-on-activity": _drop("tag"),
}


def test_every_shipped_recipe_has_mutations() -> None:
    assert sorted(MAPPINGS) == sorted(DROPS) == SHIPPED


@pytest.mark.parametrize("kind", ["changed mapping", "dropped step"])
@pytest.mark.parametrize("name", SHIPPED)
def test_a_mutated_recipe_fails_its_tests(
    name: str, kind: str, copy_recipe: Callable[[str], Path]
) -> None:
    recipe_path = copy_recipe(name)
    recipe = yaml.safe_load(recipe_path.read_text())
    (MAPPINGS if kind == "changed mapping" else DROPS)[name](recipe)
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    assert connector("validate", str(recipe_path)).exit_code == 0, "the mutant must still be valid"
    result = connector("test", str(recipe_path))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "FAIL " in out and "Traceback" not in result.output
    test_file = re.escape(str(recipe_path.parent / "tests" / f"{name}.test.yaml"))
    # each failure is at a line of the test file, and says what differed
    located = re.findall(rf"^{test_file}:\d+:\d+: (.*)$", out, re.M)
    assert located, out
    assert any(
        re.search(
            r"expected .*, got |request not sent|sent, but must not be|no recorded response|is not expected",
            line,
        )
        for line in located
    ), out
