"""`connector validate`'s checks against the API documents: response fields, parameter types,
template bombs found without running them, deprecated operations, and folders with event files."""

from __future__ import annotations

import dataclasses
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.cli import cli
from connector.errors import Location, Problem
from connector.language import find_recipe_files, load_recipe_text, validate_recipe
from connector.language.fields import resolve, schema_types
from connector.language.validate import validate_files

INVALID = Path(__file__).parent.parent / "recipes" / "invalid"


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _report = default_registry()
    return reg


def _found(text: str, registry: Registry) -> list[tuple[str, int, str, str]]:
    problems = validate_recipe(load_recipe_text(text, "t.yaml"), registry)
    return [(p.location.path, p.location.line, p.severity, p.message) for p in problems]


HEAD = "name: t\ntrigger: {app: manual, event: go, sample: {contactId: c1}}\nsteps:\n"
CONTACT = '  - id: contact\n    action: ghl.get-contact\n    with: {contactId: "{{ trigger.contactId }}"}\n'
# a contact's tasks, then a task whose `with:` (its last key) the test goes on to write
TASKS_THEN_TASK = (
    HEAD + "  - id: tasks\n    action: ghl.get-all-tasks\n"
    '    with: {contactId: "{{ trigger.contactId }}"}\n'
    "  - id: task\n    action: ghl.create-task\n    with:\n"
)


def test_a_misspelt_response_field_is_an_error_and_an_undocumented_one_a_warning(
    registry: Registry,
) -> None:
    text = (
        HEAD + CONTACT + "output:\n"
        '  a: "{{ steps.contact.output.contact.emial }}"\n'
        '  b: "{{ steps.contact.output.contact.favouriteColour }}"\n'
    )
    found = _found(text, registry)
    assert [(path, line, severity) for path, line, severity, _ in found] == [
        ("$.output.a", 8, "error"),
        ("$.output.b", 9, "warning"),
    ]
    assert found[0][3].endswith("did you mean 'email'?")
    assert "the document may be incomplete" in found[1][3]


def test_a_step_without_a_documented_response_is_not_checked(registry: Registry) -> None:
    text = (
        HEAD + "  - id: link\n    action: links.get\n    with: {kind: contact, ghl_id: x}\n"
        'output: "{{ steps.link.output.anything.at_all }}"\n'
    )
    assert _found(text, registry) == []


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},
        {"type": "object", "properties": {"a": {}}, "additionalProperties": True},
        {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string"}},
        {"type": "object", "properties": {"a": {}}, "patternProperties": {"^x": {}}},
        {"anyOf": [{"type": "object", "properties": {"a": {}}}, {"type": "object"}]},
        {"anyOf": [{"type": "object", "properties": {"a": {}}}, {"$ref": "#/$defs/Missing"}]},
    ],
)
def test_open_objects_take_any_field(schema: dict[str, Any]) -> None:
    found = resolve(schema, "steps.x.output", (("field", "b"),), "op")
    assert found.problem is None


def test_fields_are_followed_through_all_of_any_of_refs_and_nulls() -> None:
    schema = {
        "$defs": {"Node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/Node"}}}},
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}},
            {"type": "object", "properties": {"tree": {"$ref": "#/$defs/Node"}}},
        ],
    }
    parts: tuple[tuple[str, Any], ...] = (("field", "tree"), ("field", "child"), ("get", "chld"))
    found = resolve(schema, "steps.x.output", parts, "op")
    assert found.problem is not None
    assert found.problem[0] == "error"
    assert "steps.x.output.tree.child has no field 'chld'" in found.problem[1]
    nullable = {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"n": {}}}]}
    assert resolve(nullable, "s", (("field", "n"),), "op").problem is None
    assert schema_types(resolve(schema, "s", (("field", "a"),), "op").schema) == {"integer"}


def test_a_documented_reference_of_the_wrong_type_is_reported_with_both_types(
    registry: Registry,
) -> None:
    text = (
        TASKS_THEN_TASK + '      contactId: "{{ steps.tasks.output.tasks[0].contactId }}"\n'
        '      title: "{{ steps.tasks.output.tasks[0].completed }}"\n'
        '      dueDate: "{{ steps.tasks.output.tasks[0].dueDate }}"\n'
        '      completed: "{{ steps.tasks.output.tasks[0].completed }}"\n'
    )
    assert _found(text, registry) == [
        (
            "$.steps[1].with.title",
            11,
            "error",
            "parameter 'title' of ghl.create-task takes a string, but "
            "steps.tasks.output.tasks[0].completed is a boolean (in the response "
            "ghl.get-all-tasks documents)",
        )
    ]


def test_a_template_that_is_not_a_plain_reference_is_not_type_checked(
    registry: Registry,
) -> None:
    text = (
        TASKS_THEN_TASK + "      contactId: c1\n      dueDate: d\n      completed: false\n"
        "      title: \"{{ steps.tasks.output.tasks | map(attribute='title') | join(', ') }}\"\n"
    )
    assert _found(text, registry) == []


BOMBS = [
    "{{ (((10**256)**256)**256)**256 }}",
    "{{ '%999999999d'|format(1) }}",
    "{{ ('a'*1000)|replace('a','a'*999999) }}",
    "{{ ([('a'*999999)]*1500)|join }}",
    "{% set ns=namespace(x=3) %}{% for i in range(40) %}{% set ns.x=ns.x*ns.x %}{% endfor %}",
    "{{ 'x' | truncate(-1) }}",
    "{{ trigger.contactId ~ ('a'*1000)|replace('a','a'*999999) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
]


@pytest.mark.parametrize("source", BOMBS)
def test_template_bombs_are_errors_at_their_template_with_bounded_memory(
    source: str, registry: Registry
) -> None:
    text = HEAD + "  - id: c\n    action: ghl.get-contact\n    with:\n      contactId: |-\n"
    text += f"        first line\n        {source}\n"
    tracemalloc.start()
    try:
        found = _found(text, registry)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(path, line, severity) for path, line, severity, _ in found] == [
        ("$.steps[0].with.contactId", 9, "error")
    ]
    assert "found without running it" in found[0][3]
    assert peak < 50 * 1024 * 1024


def test_constant_templates_within_the_bounds_are_fine(registry: Registry) -> None:
    text = (
        HEAD + "  - id: c\n    action: ghl.get-contact\n    with:\n"
        "      contactId: \"{{ ('a' * 10) | replace('a', 'bb') ~ (2 ** 64) ~ range(5) | join }}\"\n"
    )
    assert _found(text, registry) == []


def test_a_plugin_filter_is_never_called_to_find_bombs(registry: Registry) -> None:
    calls: list[Any] = []

    def upper(value: Any) -> Any:
        calls.append(value)
        return value

    mine = dataclasses.replace(registry, filters={**registry.filters, "upper": upper})
    text = HEAD + CONTACT + "output: \"{{ 'a' | upper }}\"\n"
    assert validate_recipe(load_recipe_text(text, "t.yaml"), mine) == []
    assert calls == []


def test_deprecated_operations_are_warnings_naming_the_replacement(registry: Registry) -> None:
    text = HEAD + "  - id: contacts\n    action: ghl.get-contacts\n"
    assert _found(text, registry) == [
        (
            "$.steps[0].action",
            5,
            "warning",
            "ghl.get-contacts (GET /contacts/) is deprecated (its API document says so); use "
            "ghl.search-contacts-advanced (POST /contacts/search) instead",
        )
    ]


def test_warnings_show_in_text_and_json_and_keep_exit_status_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    path = str(INVALID / "deprecated-operation.yaml")
    result = CliRunner().invoke(cli, ["validate", path])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(
        f"{path}:5:13: warning: $.steps[0].action: ghl.get-user-by-location (GET /users/) is "
        "deprecated"
    )
    assert "use ghl.search-users (GET /users/search) instead" in result.stdout
    assert result.stderr.strip() == "1 recipe valid (2 warnings)"
    result = CliRunner().invoke(cli, ["validate", "--json", path])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["valid"] is True
    assert [(p["line"], p["severity"]) for p in doc["problems"]] == [
        (5, "warning"),
        (7, "warning"),
    ]


def test_a_recipe_with_only_warnings_still_gets_the_other_warnings(registry: Registry) -> None:
    extra = Problem(Location(str(INVALID / "deprecated-operation.yaml"), 1, 1, "$"), "x", "warning")
    found = validate_files(
        [str(INVALID / "deprecated-operation.yaml")], registry, warn=lambda loaded: [extra]
    )
    assert [p.location.line for p in found] == [1, 5, 7]


def test_a_folder_of_recipes_and_events_validates_only_the_recipes(tmp_path: Path) -> None:
    recipe = "name: r\ntrigger: {app: manual, event: go}\nsteps:\n  - {id: a, action: links.get}\n"
    (tmp_path / "events").mkdir()
    (tmp_path / "sub" / "events").mkdir(parents=True)
    files = {
        "r.yaml": recipe,
        "r.event.yaml": "contactId: c1\n",
        "r.event.yml": "contactId: c1\n",
        "r.event.json": '{"contactId": "c1"}\n',
        "events/first.yaml": "contactId: c1\n",
        "sub/s.yml": recipe,
        "sub/events/more.yaml": "contactId: c1\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert find_recipe_files([str(tmp_path)]) == [
        str(tmp_path / "r.yaml"),
        str(tmp_path / "sub" / "s.yml"),
    ]
    # a folder called events that is itself given is searched
    (tmp_path / "events" / "recipe.yaml").write_text(recipe)
    assert str(tmp_path / "events" / "recipe.yaml") in find_recipe_files([str(tmp_path / "events")])


def test_the_catalog_keeps_every_deprecated_flag_of_the_documents(
    specs: Path, registry: Registry
) -> None:
    from connector.catalog.generate import default_connecteam_file, default_ghl_dir

    marked: set[tuple[str, str, str]] = set()
    documents = [("ghl", p) for p in sorted(default_ghl_dir().glob("*.json"))]
    documents.append(("connecteam", default_connecteam_file()))
    for app, path in documents:
        for route, item in json.loads(path.read_text(encoding="utf-8"))["paths"].items():
            for method, op in item.items():
                if isinstance(op, dict) and op.get("deprecated") is True:
                    marked.add((app, method.upper(), route))
    flagged = {
        (op.app, op.method, op.path)
        for app in registry.apps.values()
        for op in app.operations.values()
        if op.deprecated
    }
    assert marked, "the documents mark some operations deprecated"
    assert flagged == marked


def test_a_long_chain_of_operators_is_a_problem_not_a_crash(registry: Registry) -> None:
    text = HEAD + CONTACT + 'output: "{{ 1' + " + 1" * 2000 + ' }}"\n'
    assert [(path, message) for path, _, _, message in _found(text, registry)] == [
        ("$.output", "template syntax error: the template is nested too deeply")
    ]


def test_a_trigger_whose_app_is_not_a_string_is_a_problem_not_a_crash(
    registry: Registry,
) -> None:
    text = (
        "name: t\ntrigger: {app: [connecteam], event: task.updated, poll: {every: 60}}\n"
        "steps:\n" + CONTACT.replace("trigger.contactId", "'c1'")
    )
    assert [path for path, *_ in _found(text, registry)] == ["$.trigger.app"]
    text = text.replace("app: [connecteam]", "app: connecteam").replace(
        "{every: 60}", "{every: 60, with: [1]}"
    )
    assert sorted((path, message) for path, _, _, message in _found(text, registry)) == [
        ("$.trigger.poll", "a poll of Connecteam tasks needs with.taskBoardId"),
        ("$.trigger.poll.with", "expected a mapping, found a list"),
    ]
