"""Parsing a recipe into typed nodes: each node keeps where it was written, actions are resolved
once, and the validator and the planner read the same parse."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from jinja2 import Environment

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.errors import RecipeInvalid
from connector.language import check_recipe, load_recipe, parse_recipe, validate_recipe
from connector.language.nodes import Node
from connector.language.plan import build_plan, plan_recipe
from connector.runtime.prepare import prepare

ROOT = Path(__file__).parent.parent.parent
PULL = Path(__file__).parent.parent / "recipes" / "valid" / "pull-contact.yaml"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()[0]


def _at(node: Node | None) -> tuple[int, int, str]:
    assert node is not None
    return node.location.line, node.location.column, node.location.path


def test_nodes_keep_where_each_part_was_written(registry: Registry) -> None:
    recipe = parse_recipe(load_recipe(PULL), registry)
    assert recipe.trigger is not None
    assert _at(recipe.trigger.app) == (5, 8, "$.trigger.app")
    assert [(v.name, _at(v)) for v in recipe.vars] == [
        ("tag", (9, 8, "$.vars.tag")),
        ("tags", (10, 9, "$.vars.tags")),
    ]
    complete = recipe.steps[3]
    assert complete.id == "complete" and complete.foreach is not None
    assert _at(complete.foreach) == (26, 14, "$.steps[3].foreach")
    assert _at(complete.action) == (28, 13, "$.steps[3].action")
    assert complete.on_error is not None and complete.on_error.raw == "continue"
    assert recipe.steps[0].if_ is None  # not written: no node
    assert _at(recipe.output)[:2] == (35, 3)


def test_an_action_is_resolved_once_for_the_validator_and_the_planner(
    registry: Registry,
) -> None:
    recipe = parse_recipe(load_recipe(PULL), registry)
    tag = recipe.steps[2].action
    assert isinstance(tag.target, Operation) and tag.target.name == "ghl.add-tags"
    assert check_recipe(recipe, registry) == []
    plan = build_plan(recipe, registry)
    assert plan.steps[2].target is tag.target
    assert plan.where("$.steps[3].foreach") == f"{PULL}:26:14"


def test_preparing_a_recipe_resolves_each_action_once(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = default_registry()[0]
    asked: list[str] = []
    resolve = registry.resolve

    def counted(name: str, *args: object) -> object:
        asked.append(name)
        return resolve(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(registry, "resolve", counted)
    prepared = prepare(
        ROOT / "tests" / "workloads" / "create-contact-from-connecteam.yaml", registry
    )
    assert prepared.plan is not None, prepared.problems
    written = [s.action for s in prepared.plan.steps] + [
        s.once.lookup.action for s in prepared.plan.steps if s.once and s.once.lookup
    ]
    assert sorted(asked) == sorted(written)


def test_an_unknown_action_is_reported_by_both_from_the_one_resolution(
    registry: Registry,
) -> None:
    data = {
        "name": "x",
        "trigger": {"app": "manual", "event": "go"},
        "steps": [{"id": "a", "action": "ghl.get-contactz", "with": {}}],
    }
    with pytest.raises(RecipeInvalid) as info:
        plan_recipe(data, registry, path="x.yaml")
    [problem] = info.value.problems
    assert problem.location.path == "$.steps[0].action"
    assert "did you mean" in problem.message


def test_a_plan_refuses_a_trigger_or_step_of_the_wrong_shape(registry: Registry) -> None:
    data = {
        "name": "x",
        "trigger": "manual",
        "steps": ["ghl.get-contact", {"id": "b", "action": "ghl.get-contact"}],
    }
    with pytest.raises(RecipeInvalid) as info:
        plan_recipe(data, registry, path="x.yaml")
    assert [(p.location.path, p.message) for p in info.value.problems] == [
        ("$.trigger", "expected a mapping"),
        ("$.steps[0]", "expected a mapping"),
    ]


_FRESH = itertools.count()


def _fresh_registry() -> Registry:
    """A registry whose templates no environment has parsed or compiled yet (a filter of its own
    gives it an environment of its own)."""
    registry = default_registry()[0]
    registry.filters[f"fresh_{next(_FRESH)}"] = str
    return registry


def test_planning_a_validated_recipe_parses_no_template_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parses: list[str] = []
    parse = Environment._parse

    def counted(self: Environment, source: str, *args: object) -> object:
        parses.append(source)
        return parse(self, source, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Environment, "_parse", counted)
    path = ROOT / "tests" / "workloads" / "create-contact-from-connecteam.yaml"
    validate_recipe(load_recipe(path), _fresh_registry())
    validated = list(parses)
    parses.clear()
    assert prepare(path, _fresh_registry()).plan is not None
    assert validated and parses == validated
