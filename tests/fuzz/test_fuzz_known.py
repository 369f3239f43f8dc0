"""Defects the fuzz tests found, each reproduced by one small case.

An open defect is a strict xfail here, and test_fuzz_recipes.py sets its cases aside; once it is
fixed the test passes (which fails the run, ``strict``): the marker and that setting-aside go, and
the test stays as the defect's regression test."""

from __future__ import annotations

import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.language.load import load_recipe_text
from connector.language.validate import validate_recipe
from connector.runtime.prepare import prepare_text

STEP = """
steps:
  - id: contact
    action: ghl.get-contact
    with: {contactId: "{{ trigger.contactId }}"}
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _ = default_registry()
    return reg


def problems(registry: Registry, text: str) -> list[str]:
    return [str(p) for p in validate_recipe(load_recipe_text(text, "r.yaml"), registry)]


def test_a_key_with_a_line_break_keeps_its_problem_on_one_line(registry: Registry) -> None:
    text = "name: x\ndescription: y\ntrigger: {app: manual, event: t}" + STEP + '    "a\\nb": 1\n'
    found = problems(registry, text)
    assert found and all(len(p.splitlines()) == 1 for p in found)


def test_a_step_id_with_a_line_break_keeps_problems_on_one_line(registry: Registry) -> None:
    text = (
        "name: x\ndescription: y\ntrigger: {app: manual, event: t}\nsteps:\n"
        '  - id: "a\\nb"\n    action: ghl.get-contact\n    with: {contactId: c}\n'
        '  - id: c\n    if: "{{ steps.nosuch.output }}"\n'
        "    action: ghl.get-contact\n    with: {contactId: c}\n"
    )
    found = problems(registry, text)
    assert len(found) == 2 and all(len(p.splitlines()) == 1 for p in found)


def test_validate_finds_an_unknown_lookup_action_as_run_does(registry: Registry) -> None:
    text = (
        "name: x\ndescription: y\ntrigger: {app: manual, event: t}\nsteps:\n"
        "  - id: up\n    action: ghl.upsert-contact\n    with: {email: a@b.c}\n"
        '    once:\n      key: k\n      lookup: {action: "gh l.nosuch", with: {}, found: "{{ output }}"}\n'
    )
    run_problems = [str(p) for p in prepare_text("r.yaml", text, registry).problems]
    assert run_problems  # run refuses it ...
    assert problems(registry, text) == run_problems  # ... and validate says the same


def test_validate_finds_an_unknown_filter_in_once_link_as_run_does(registry: Registry) -> None:
    text = (
        "name: x\ndescription: y\ntrigger: {app: manual, event: t}\nsteps:\n"
        "  - id: up\n    action: ghl.upsert-contact\n    with: {email: a@b.c}\n"
        "    once:\n      key: k\n"
        '      link: {kind: contact, ghl_id: "{{ output | nosuchfilter }}", connecteam_id: "1"}\n'
    )
    run_problems = [str(p) for p in prepare_text("r.yaml", text, registry).problems]
    assert run_problems
    assert problems(registry, text) == run_problems
