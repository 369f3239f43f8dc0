"""`connector validate` on what templates read of the trigger's payload: checked against the
event's payload schema in the trigger catalog, and only ever warned about (the schemas are the
catalog's reading of the vendors' pages, and a polled event carries what the poll's API returns)."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.language import load_recipe, validate_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _report = default_registry()
    return reg


def _problems(tmp_path: Path, registry: Registry, trigger: str, body: str) -> list[tuple[str, str]]:
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: r\ntrigger: {trigger}\nsteps:\n  - id: n\n    action: ghl.create-note\n"
        f'    with: {{contactId: c1, body: "{body}"}}\n'
    )
    return [(p.severity, p.message) for p in validate_recipe(load_recipe(path), registry)]


def test_a_misspelt_payload_field_is_a_warning_with_did_you_mean(
    tmp_path: Path, registry: Registry
) -> None:
    found = _problems(
        tmp_path, registry, "{app: ghl, event: ContactCreate}", "{{ trigger.firstNmae }}"
    )
    assert found == [
        (
            "warning",
            "trigger has no field 'firstNmae' in the payload of ghl ContactCreate events; "
            "did you mean 'firstName'?",
        )
    ]


def test_a_field_the_payload_lists_nested_or_not_is_clean(
    tmp_path: Path, registry: Registry
) -> None:
    body = "{{ trigger.firstName }} {{ trigger.customFields[0].value }} {{ trigger.tags | first }}"
    assert _problems(tmp_path, registry, "{app: ghl, event: ContactCreate}", body) == []


@pytest.mark.parametrize(
    ("trigger", "body"),
    [
        # a manual trigger's payload is anything
        ("{app: manual, event: go}", "{{ trigger.whatever.deep }}"),
        # an object the schema leaves open: Connecteam's `data`
        ("{app: connecteam, event: user_created}", "{{ trigger.data.firstNmae }}"),
    ],
)
def test_an_open_payload_is_not_checked(
    tmp_path: Path, registry: Registry, trigger: str, body: str
) -> None:
    assert _problems(tmp_path, registry, trigger, body) == []


def test_a_local_name_trigger_is_not_the_payload(tmp_path: Path, registry: Registry) -> None:
    body = "{% for trigger in [{'x': 1}] %}{{ trigger.x }}{% endfor %}"
    assert _problems(tmp_path, registry, "{app: ghl, event: ContactCreate}", body) == []


def test_the_shipped_recipes_read_only_documented_payload_fields(registry: Registry) -> None:
    workloads = RECIPES.parent / "tests" / "workloads"
    shipped = [p for p in RECIPES.glob("*.yaml") if not p.name.endswith(".sync.yaml")]
    for path in sorted([*shipped, *workloads.glob("*.yaml")]):
        problems = validate_recipe(load_recipe(path), registry)
        assert [p for p in problems if "payload" in p.message] == [], path.name
