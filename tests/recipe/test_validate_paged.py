"""`connector validate` on what steps with ``pages:`` give: the list of the items of all pages, or
the summary ``{pages, items}`` with one item in the ``foreach`` that walks the pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.language import load_recipe, validate_recipe

PAGED = Path(__file__).parent / "paged"


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _report = default_registry()
    return reg


def _found(name: str, registry: Registry) -> list[str]:
    problems = validate_recipe(load_recipe(PAGED / name), registry)
    return [
        f"{p.location.line}:{p.location.column} {p.location.path} {p.severity}: {p.message}"
        for p in problems
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "streamed-item-misspelt.yaml",
            "11:51 $.steps[1].with.body error: item has no field 'emial' in the response "
            "connecteam.get-users documents; did you mean 'email'?",
        ),
        (
            "listed-item-misspelt.yaml",
            "9:10 $.output.first error: steps.users.output[0] has no field 'emial' in the "
            "response connecteam.get-users documents; did you mean 'email'?",
        ),
        (
            "listed-read-as-response.yaml",
            "9:10 $.output.users error: steps.users.output is a list in the response "
            "connecteam.get-users documents, so it has no field 'data'; read one item "
            "(steps.users.output[0], steps.users.output | first) or loop over it with foreach",
        ),
        (
            "streamed-summary-misspelt.yaml",
            "13:10 $.output.pages error: steps.users.output has no field 'pagse': it is the "
            "summary {pages, items} of a paged step whose items the next step walks; did you "
            "mean 'pages'?",
        ),
        (
            "search-item-misspelt.yaml",
            "13:46 $.steps[1].with.body error: item has no field 'firstNmae' in the response "
            "ghl.search-contacts-advanced documents; did you mean 'firstName'?",
        ),
        (
            "search-response-misspelt.yaml",
            "11:10 $.output.email error: steps.found.output.contacts[0] has no field 'emial' in "
            "the response ghl.search-contacts-advanced documents; did you mean 'email'?",
        ),
    ],
)
def test_a_paged_steps_output_is_checked_as_it_is_stored(
    name: str, expected: str, registry: Registry
) -> None:
    assert _found(name, registry) == [expected]


def test_paged_outputs_read_as_stored_are_clean(registry: Registry) -> None:
    assert _found("valid.yaml", registry) == []


def test_a_paged_step_with_foreach_is_checked_as_one_list_per_item(
    registry: Registry, tmp_path: Path
) -> None:
    """Its output is a list with, per item, the list of the items of all pages."""
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: r\ntrigger: {app: manual, event: go, sample: {ids: [a]}}\nsteps:\n"
        "  - id: users\n    action: connecteam.get-users\n    pages: all\n"
        '    foreach: "{{ trigger.ids }}"\n'
        "output:\n"
        '  fine: "{{ steps.users.output[0][0].email }} {{ steps.users.output | length }}"\n'
        '  typo: "{{ (steps.users.output | first)[0].emial }}"\n'
        '  flat: "{{ steps.users.output[0].data }}"\n'
    )
    found = [
        f"{p.location.line}:{p.location.column} {p.location.path} {p.severity}: {p.message}"
        for p in validate_recipe(load_recipe(path), registry)
    ]
    assert found == [
        "10:9 $.output.typo error: (steps.users.output | first)[0] has no field 'emial' in the "
        "response connecteam.get-users documents; did you mean 'email'?",
        "11:9 $.output.flat error: steps.users.output[0] is a list in the response "
        "connecteam.get-users documents, so it has no field 'data'; read one item "
        "(steps.users.output[0][0], steps.users.output[0] | first) or loop over it with foreach",
    ]


def test_a_streamed_summarys_unknown_field_is_an_error_even_with_nothing_close(
    registry: Registry, tmp_path: Path
) -> None:
    """The summary is the runtime's own, closed object: a field with no near miss is not a gap in
    a vendor's document (a warning elsewhere) but a mistake."""
    recipe = (PAGED / "streamed-summary-misspelt.yaml").read_text()
    path = tmp_path / "r.yaml"
    path.write_text(recipe.replace("steps.users.output.pagse", "steps.users.output.total"))
    assert [(p.severity, p.message) for p in validate_recipe(load_recipe(path), registry)] == [
        (
            "error",
            "steps.users.output has no field 'total': it is the summary {pages, items} of a "
            "paged step whose items the next step walks",
        )
    ]
