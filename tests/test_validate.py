"""Validating recipes: every check, each against a broken recipe file under tests/recipes/invalid/."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.errors import ConnectorError, Problem, UsageError
from connector.language import (
    find_recipe_files,
    load_recipe,
    load_recipe_text,
    validate_paths,
    validate_recipe,
)

RECIPES = Path(__file__).parent / "recipes"
VALID = RECIPES / "valid"
INVALID = RECIPES / "invalid"
EXPECTED: dict[str, list[str]] = yaml.safe_load((RECIPES / "expected-problems.yaml").read_text())


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _report = default_registry()
    return reg


def _problems(path: Path, registry: Registry) -> list[Problem]:
    return validate_paths([str(path)], registry)


def _describe(p: Problem) -> str:
    return f"{p.location.line}:{p.location.column} {p.location.path} :: {p.message}"


@pytest.mark.parametrize("path", sorted(VALID.glob("*.yaml")), ids=lambda p: p.name)
def test_valid_recipes_have_no_problems(path: Path, registry: Registry) -> None:
    assert _problems(path, registry) == []


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=str)
def test_each_broken_recipe_reports_exactly_its_problems(name: str, registry: Registry) -> None:
    found = [_describe(p) for p in _problems(INVALID / name, registry)]
    assert found == EXPECTED[name]


def test_every_broken_recipe_file_has_expectations() -> None:
    files = {p.name for p in INVALID.iterdir()}
    assert files == set(EXPECTED)


@pytest.mark.parametrize(
    ("name", "where", "fragment"),
    [
        ("unknown-key-top.yaml", "1:1 $.nmae", "unknown key 'nmae'; did you mean 'name'?"),
        ("unknown-key-step.yaml", "5:5 $.steps[0].acton", "did you mean 'action'?"),
        ("unknown-action.yaml", "5:13 $.steps[0].action", "did you mean 'ghl.get-contact'"),
        ("missing-param.yaml", "6:5 $.steps[0].with", "missing required parameter 'dueDate'"),
        ("missing-path-param.yaml", "4:5 $.steps[0]", "missing required parameter 'contactId'"),
        ("unknown-param.yaml", "11:7 $.steps[0].with.asignedTo", "did you mean 'assignedTo'?"),
        (
            "wrong-literal-type.yaml",
            "10:18 $.steps[0].with.completed",
            "takes a boolean, but 'definitely' is a string",
        ),
        ("duplicate-step-id.yaml", "7:9 $.steps[1].id", "duplicate step id 'contact'"),
        ("step-ref-missing.yaml", "10:18 $.steps[1].with.contactId", "no step 'contcat'"),
        ("step-ref-later.yaml", "7:18 $.steps[0].with.contactId", "runs after this one"),
        ("step-ref-self.yaml", "6:23 $.steps[0].with.contactId", "cannot read its own result"),
        ("jinja-syntax.yaml", "10:5 $.output.text", "template syntax error"),
        ("undefined-name.yaml", "6:23 $.steps[0].with.contactId", "'triger' is undefined"),
        ("unknown-filter.yaml", "6:23 $.steps[0].with.contactId", "unknown filter 'uper'"),
        ("unknown-test.yaml", "5:9 $.steps[0].if", "unknown test 'nothing'"),
        ("undeclared-var.yaml", "10:14 $.steps[0].with.tags[0]", "no var 'tags'"),
        ("var-declared-later.yaml", "4:13 $.vars.greeting", "declared below this one"),
        ("item-outside-foreach.yaml", "6:23 $.steps[0].with.contactId", "'item' is undefined"),
        ("unknown-trigger-app.yaml", "3:8 $.trigger.app", "did you mean 'connecteam'?"),
        ("unknown-trigger-event.yaml", "4:10 $.trigger.event", "did you mean 'ContactCreate'"),
        ("schedule-without-cron.yaml", "3:3 $.trigger", "a schedule trigger needs 'cron'"),
    ],
)
def test_the_checks_the_issue_names(
    name: str, where: str, fragment: str, registry: Registry
) -> None:
    found = [_describe(p) for p in _problems(INVALID / name, registry)]
    assert any(f.startswith(where + " ::") and fragment in f for f in found), found


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("unsafe-dunder-class.yaml", "'__class__'"),
        ("unsafe-mro.yaml", "'__mro__'"),
        ("unsafe-subclasses.yaml", "'__subclasses__'"),
        ("unsafe-cycler-globals.yaml", "'__globals__'"),
        ("unsafe-lipsum-globals.yaml", "'__globals__'"),
        ("unsafe-str-format.yaml", "'format'"),
        ("unsafe-format-map.yaml", "'format_map'"),
        ("unsafe-attr-filter.yaml", "'__class__' (through |attr)"),
        ("unsafe-map-attribute.yaml", "'__class__' (through |map)"),
        ("unsafe-getitem-dunder.yaml", "'__class__'"),
        ("unsafe-mro-method.yaml", "'mro'"),
    ],
)
def test_jinja_escapes_are_flagged_unsafe(name: str, attribute: str, registry: Registry) -> None:
    problems = _problems(INVALID / name, registry)
    assert problems, "an escape went unnoticed"
    assert all(p.location.path == "$.steps[0].with.tags[0]" for p in problems)
    assert all((p.location.line, p.location.column) == (8, 14) for p in problems)
    assert any(f"unsafe template: attribute {attribute}" in p.message for p in problems)


def test_all_problems_are_reported_in_one_pass(registry: Registry) -> None:
    problems = _problems(INVALID / "many-problems.yaml", registry)
    kinds = [
        "lowercase letters",
        "unknown filter",
        "unknown parameter",
        "no step 'later'",
        "takes a boolean",
        "duplicate step id",
        "unknown action",
        "unknown key 'retries'",
        "'stepz' is undefined",
    ]
    for kind in kinds:
        assert any(kind in p.message for p in problems), kind
    lines = [p.location.line for p in problems]
    assert lines == sorted(lines)


def test_problem_prints_the_way_compilers_do(registry: Registry) -> None:
    (problem,) = _problems(INVALID / "wrong-literal-type.yaml", registry)
    assert str(problem) == (
        f"{INVALID / 'wrong-literal-type.yaml'}:10:18: error: $.steps[0].with.completed: "
        "parameter 'completed' of ghl.create-task takes a boolean, but 'definitely' is a string"
    )


def test_ghl_location_id_may_be_left_to_the_engine(registry: Registry) -> None:
    recipe = load_recipe_text(
        "name: new-contact\ntrigger: {app: manual, event: go}\n"
        "steps:\n  - id: c\n    action: ghl.create-contact\n    with: {firstName: Ann}\n"
    )
    assert validate_recipe(recipe, registry) == []


def test_templates_in_parameters_skip_the_type_check_but_literals_around_them_do_not(
    registry: Registry,
) -> None:
    text = (
        "name: t\ntrigger: {app: manual, event: go}\nsteps:\n  - id: task\n"
        "    action: ghl.create-task\n    with:\n      contactId: abc\n"
        '      title: ["{{ trigger.t }}"]\n      dueDate: x\n'
        '      completed: "{{ trigger.done }}"\n'
    )
    problems = validate_recipe(load_recipe_text(text, "t.yaml"), registry)
    assert [(p.location.path, p.location.line) for p in problems] == [("$.steps[0].with.title", 8)]


def test_foreach_item_and_index_are_in_scope_only_for_if_and_with(registry: Registry) -> None:
    text = (
        "name: t\ntrigger: {app: manual, event: go}\nsteps:\n  - id: tags\n"
        '    foreach: "{{ item }}"\n    if: "{{ index < 3 }}"\n'
        '    action: ghl.add-tags\n    with: {contactId: "{{ item.id }}", tags: [x]}\n'
    )
    problems = validate_recipe(load_recipe_text(text, "t.yaml"), registry)
    assert [(p.location.path, p.location.line) for p in problems] == [("$.steps[0].foreach", 5)]


def test_template_defined_names_are_not_undefined(registry: Registry) -> None:
    text = (
        "name: t\ntrigger: {app: manual, event: go}\nsteps:\n  - id: a\n"
        "    action: ghl.get-contact\n    with:\n      contactId: >-\n"
        "        {% set x = trigger.id %}{% for y in [x] %}{{ y ~ loop.index }}{% endfor %}"
        "{% macro m(z) %}{{ z }}{% endmacro %}{{ m(x) }}{{ range(3) | list | length }}\n"
    )
    assert validate_recipe(load_recipe_text(text, "t.yaml"), registry) == []


def test_find_recipe_files(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.yaml", "a.yml", "sub/c.yaml", "notes.txt"):
        (tmp_path / name).write_text("x: 1\n")
    assert find_recipe_files([str(tmp_path)]) == [
        str(tmp_path / "a.yml"),
        str(tmp_path / "b.yaml"),
        str(tmp_path / "sub" / "c.yaml"),
    ]
    with pytest.raises(UsageError, match="no such file"):
        find_recipe_files([str(tmp_path / "missing.yaml")])
    with pytest.raises(UsageError):
        find_recipe_files([])


def test_load_errors_become_problems_and_other_files_go_on(registry: Registry) -> None:
    problems = validate_paths(
        [str(INVALID / "yaml-syntax.yaml"), str(INVALID / "unknown-action.yaml")], registry
    )
    assert [p.location.file for p in problems] == [
        str(INVALID / "yaml-syntax.yaml"),
        str(INVALID / "unknown-action.yaml"),
    ]


def test_validate_recipe_takes_a_loaded_recipe(registry: Registry) -> None:
    recipe = load_recipe(VALID / "pull-contact.yaml")
    assert validate_recipe(recipe, registry) == []


TEMPLATEISH = st.lists(
    st.sampled_from(
        [
            "{{",
            "}}",
            "{%",
            "%}",
            " ",
            "trigger",
            "steps",
            ".",
            "x",
            "|",
            "upper",
            "for",
            "in",
            "endfor",
            "set",
            "=",
            "(",
            ")",
            "'",
            "__class__",
            "[",
            "]",
            "if",
            "item",
            "vars",
            "1",
        ]
    ),
    max_size=20,
).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_any_bytes_or_text_validate_without_a_traceback(
    registry: Registry, data: bytes | str
) -> None:
    with contextlib.suppress(ConnectorError):
        for problem in validate_recipe(load_recipe_text(data, "fuzz.yaml"), registry):
            assert isinstance(problem, Problem)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.one_of(st.text(max_size=10), st.integers()),
            "trigger": st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"app": st.sampled_from(["manual", "ghl", "schedule", "x"])},
                    optional={"event": st.text(max_size=8), "cron": st.text(max_size=12)},
                ),
            ),
            "vars": st.dictionaries(st.text(max_size=5), TEMPLATEISH, max_size=3),
            "steps": st.lists(
                st.one_of(
                    st.integers(),
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "id": st.sampled_from(["a", "b", "1x", "a"]),
                            "action": st.sampled_from(
                                ["ghl.get-contact", "ghl.create-task", "links.get", "nope"]
                            ),
                            "with": st.one_of(
                                st.dictionaries(
                                    st.sampled_from(["contactId", "title", "kind", "x"]),
                                    st.one_of(TEMPLATEISH, st.integers(), st.booleans()),
                                ),
                                TEMPLATEISH,
                            ),
                            "if": st.one_of(TEMPLATEISH, st.booleans()),
                            "foreach": st.one_of(TEMPLATEISH, st.lists(st.integers())),
                        },
                    ),
                ),
                max_size=3,
            ),
            "output": TEMPLATEISH,
        },
    )
)
def test_recipe_shaped_noise_validates_without_a_traceback(
    registry: Registry, data: dict[str, object]
) -> None:
    text = yaml.safe_dump(data)
    with contextlib.suppress(ConnectorError):
        for problem in validate_recipe(load_recipe_text(text, "fuzz.yaml"), registry):
            assert problem.location.line >= 1


def _properties(schema: object, where: str = "$") -> list[tuple[str, dict[str, object]]]:
    found: list[tuple[str, dict[str, object]]] = []
    if isinstance(schema, dict):
        for name, spec in (schema.get("properties") or {}).items():
            found.append((f"{where}.{name}", spec))
        for key, value in schema.items():
            found.extend(_properties(value, f"{where}/{key}"))
    elif isinstance(schema, list):
        for item in schema:
            found.extend(_properties(item, where))
    return found


def test_schema_is_2020_12_and_every_property_has_a_description() -> None:
    from jsonschema import Draft202012Validator

    from connector.language.schema import recipe_schema

    schema = recipe_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    props = _properties(schema)
    assert len(props) >= 18
    undocumented = [path for path, spec in props if not spec.get("description")]
    assert undocumented == []


def test_schema_at_the_repository_root_is_the_packaged_one() -> None:
    root = Path(__file__).parent.parent
    link = root / "schemas" / "recipe.schema.json"
    assert link.is_symlink()
    assert link.resolve() == (root / "connector" / "schemas" / "recipe.schema.json").resolve()


def test_modeline_of_the_example_recipe_points_at_the_schema() -> None:
    first = (VALID / "pull-contact.yaml").read_text().splitlines()[0]
    target = first.split("$schema=", 1)[1]
    assert (VALID / target).resolve().name == "recipe.schema.json"
    assert (VALID / target).exists()


def test_docs_reference_is_generated_from_the_schema() -> None:
    from connector.language.schema import reference_markdown

    docs = (Path(__file__).parent.parent / "docs" / "recipes.md").read_text()
    assert reference_markdown() in docs, "run: python -m connector.language.schema"
