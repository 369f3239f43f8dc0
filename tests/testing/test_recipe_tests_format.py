"""The test-file format: the shipped files parse, and every mistake is located (file:line:col)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from recipe_tests_support import RECIPES, ROOT, SHIPPED, connector

from connector.testing.spec import SCHEMA_PATH, SpecError, load_cassette, load_test_file


def test_every_shipped_recipe_has_tests_that_load() -> None:
    for name in SHIPPED:
        tests = load_test_file(RECIPES / "tests" / f"{name}.test.yaml")
        assert tests.recipe.resolve() == (RECIPES / f"{name}.yaml").resolve()
        assert len(tests.tests) >= 3, name
        for case in tests.tests:
            if case.cassette is not None:
                assert load_cassette(case.cassette).responses, case.cassette


def test_the_schema_copy_for_editors_is_the_same() -> None:
    assert (ROOT / "schemas" / "recipe-test.schema.json").read_text() == SCHEMA_PATH.read_text()


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "r.yaml").write_text((RECIPES / "push-task-edits.yaml").read_text())
    path = tmp_path / "r.test.yaml"
    path.write_text(text)
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_test_file(path)
    return [str(p) for p in caught.value.problems]


def test_an_unknown_key_is_reported_at_its_line_with_did_you_mean(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "tests:\n  - name: one\n    expect:\n      status: succeeded\n      stpes: {pair: succeeded}\n",
    )
    assert _problems(path) == [
        f"{path}:5:7: error: $.tests[0].expect.stpes: unknown key 'stpes'; did you mean 'steps'?"
    ]


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    text = (
        "tests:\n"
        "  - name: one\n"
        "    runs: 0\n"
        "    expect: {status: done}\n"
        "  - name: two\n"
        "    responses:\n"
        "      - request: nonsense\n"
    )
    found = _problems(_write(tmp_path, text))
    assert [p.split(": error: ")[1].split(":")[0] for p in found] == [
        "$.tests[0].runs",
        "$.tests[0].expect.status",
        "$.tests[1].responses[0].request",
    ]
    assert found[0].startswith(f"{tmp_path / 'r.test.yaml'}:3:11:")


def test_a_bad_clock_a_duplicate_name_and_a_missing_recipe(tmp_path: Path) -> None:
    path = tmp_path / "x.test.yaml"
    path.write_text("now: yesterday\ntests:\n  - name: a\n  - name: a\n")
    found = _problems(path)
    assert any("no recipe x.yaml beside this file" in p for p in found)
    assert f"{path}:4:11: error: $.tests[1].name: a second test named 'a'" in "\n".join(found)
    assert any(p.startswith(f"{path}:1:6:") and "not an ISO 8601 moment" in p for p in found)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "- one\n- two\n",
            "1:1: error: $: a test file is a mapping (tests:), but this file holds a list",
        ),
        ("# nothing\n", "1:1: error: $: the file holds no test file"),
        (
            "tests: []\n---\ntests: []\n",
            "2:1: error: $: a test file holds one YAML document; found a second '---'",
        ),
    ],
)
def test_a_file_that_is_no_test_file_is_named_as_one(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = _write(tmp_path, text)
    assert _problems(path) == [f"{path}:{problem}"]


def test_a_cassette_that_is_a_folder_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_cassette(tmp_path)
    assert [p.message for p in caught.value.problems] == ["this is a folder, not a cassette file"]


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    path = _write(tmp_path, "tests:\n  - name: [unclosed\n")
    (found,) = _problems(path)
    assert found.startswith(f"{path}:")
    assert "error" in found


def test_a_bad_test_file_exits_2_with_located_errors_and_no_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, "tests:\n  - nme: one\n")
    result = connector("test", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:2:5: error: $.tests[0].nme: unknown key 'nme'" in result.stdout
    assert "Traceback" not in result.output


def test_a_cassette_with_a_mistake_fails_its_test_with_the_location(tmp_path: Path) -> None:
    path = _write(tmp_path, "tests:\n  - name: one\n    cassette: c.cassette.yaml\n")
    (tmp_path / "c.cassette.yaml").write_text("responses:\n  - request: GET /x\n    staus: 200\n")
    result = connector("test", "--json", str(path))
    assert result.exit_code == 1
    (test,) = json.loads(result.stdout)["tests"]
    (failure,) = test["failures"]
    assert (failure["line"], failure["column"]) == (3, 5)
    assert failure["file"].endswith("c.cassette.yaml")
    assert "unknown key 'staus'; did you mean 'status'?" in failure["message"]
