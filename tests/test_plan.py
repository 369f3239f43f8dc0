"""Planning: a validated recipe becomes an immutable plan with resolved actions and compiled
templates; what cannot run is refused before anything is sent."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.errors import RecipeInvalid
from connector.language.plan import plan_recipe

HERE = Path(__file__).parent / "engine"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return default_registry()[0]


def test_plan_resolves_actions_and_lists_its_apps(registry: Registry) -> None:
    data = yaml.safe_load((HERE / "location_and_connecteam.yaml").read_text())
    plan = plan_recipe(data, registry, path="x.yaml")
    assert [s.id for s in plan.steps] == ["found", "users"]
    assert isinstance(plan.steps[0].target, Operation)
    assert plan.steps[0].target.path == "/contacts/"
    assert plan.apps == ("ghl", "connecteam")
    assert plan.sample == {"email": "ada@example.com"}
    assert len(plan.recipe_hash) == 64


def test_a_plan_is_immutable_and_independent_of_the_recipe(registry: Registry) -> None:
    data = yaml.safe_load((HERE / "three_steps.yaml").read_text())
    plan = plan_recipe(data, registry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.name = "other"  # type: ignore[misc]
    data["steps"][0]["with"]["contactId"] = "changed"
    context = {"trigger": {"contactId": "c9"}, "steps": {}, "vars": {}, "env": {}}
    assert plan.steps[0].params.render(context) == {"contactId": "c9"}


def test_the_hash_follows_the_content(registry: Registry) -> None:
    data = yaml.safe_load((HERE / "three_steps.yaml").read_text())
    first = plan_recipe(data, registry).recipe_hash
    data["description"] = "changed"
    assert plan_recipe(data, registry).recipe_hash != first


def test_unknown_actions_and_broken_templates_are_refused(registry: Registry) -> None:
    data = {
        "name": "broken",
        "trigger": {"app": "manual", "event": "x"},
        "steps": [
            {"id": "a", "action": "ghl.get-contactz", "with": {}},
            {"id": "b", "action": "ghl.get-contact", "with": {"contactId": "{{ trigger. }}"}},
        ],
    }
    with pytest.raises(RecipeInvalid) as info:
        plan_recipe(data, registry, path="broken.yaml")
    paths = [p.location.path for p in info.value.problems]
    assert paths == ["$.steps[0].action", "$.steps[1].with"]
    assert "did you mean" in info.value.problems[0].message
