"""``connector validate``: problem lines on stdout, a summary on stderr, exit codes, --json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli

RECIPES = Path(__file__).parent / "recipes"
VALID = RECIPES / "valid"
INVALID = RECIPES / "invalid"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["validate", *args])


def test_valid_recipes_exit_0_with_a_summary() -> None:
    result = run(str(VALID))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    count = len(list(VALID.glob("*.yaml")))
    assert result.stderr.strip() == f"{count} recipes valid"


def test_one_valid_file_says_recipe_in_the_singular() -> None:
    result = run(str(VALID / "bom.yaml"))
    assert result.exit_code == 0
    assert result.stderr.strip() == "1 recipe valid"


def test_problems_exit_1_one_line_each() -> None:
    path = INVALID / "wrong-literal-type.yaml"
    result = run(str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:10:18: error: $.steps[0].with.completed: "
        "parameter 'completed' of ghl.create-task takes a boolean, but 'definitely' is a string"
    ]
    assert result.stderr.strip() == "1 error in 1 file"


def test_load_errors_are_problems_of_their_file_and_others_continue() -> None:
    result = run(str(INVALID / "alias-bomb.yaml"), str(INVALID / "binary.yaml"), str(VALID))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{INVALID / 'alias-bomb.yaml'}:5:23: error: $: ")
    assert lines[1].startswith(f"{INVALID / 'binary.yaml'}:1:1: error: $: ")
    assert result.stderr.strip() == "2 errors in 2 files"


def test_every_broken_recipe_in_the_folder_is_reported() -> None:
    result = run(str(INVALID))
    assert result.exit_code == 1
    files = {line.split(":", 1)[0] for line in result.stdout.splitlines()}
    assert files == {str(p) for p in INVALID.glob("*.yaml")}
    assert "Traceback" not in result.output


def test_json_output() -> None:
    result = run("--json", str(INVALID / "duplicate-step-id.yaml"), str(VALID / "bom.yaml"))
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    assert doc["files"] == [str(INVALID / "duplicate-step-id.yaml"), str(VALID / "bom.yaml")]
    assert doc["problems"] == [
        {
            "file": str(INVALID / "duplicate-step-id.yaml"),
            "line": 7,
            "column": 9,
            "path": "$.steps[1].id",
            "severity": "error",
            "message": "duplicate step id 'contact' (first used at line 4)",
        }
    ]


def test_json_output_when_valid() -> None:
    result = run("--json", str(VALID / "bom.yaml"))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "valid": True,
        "files": [str(VALID / "bom.yaml")],
        "problems": [],
    }


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = run()
    assert result.exit_code == 2
    assert "error: give at least one recipe file or folder" in result.stderr
    result = run(str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run(str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "no recipes" in result.stderr


def test_relative_paths_are_printed_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(INVALID / "unknown-action.yaml", tmp_path / "r.yaml")
    monkeypatch.chdir(tmp_path)
    result = run("r.yaml")
    assert result.stdout.startswith("r.yaml:5:13: error: $.steps[0].action: unknown action")


def test_help_explains_the_output_and_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["validate", "--help"])
    assert result.exit_code == 0
    assert "FILE:LINE:COL: error: JSONPATH: message" in result.output
    assert "0 all recipes valid, 1 problems found, 2 usage error" in result.output


def test_the_summary_counts_errors_and_warnings_apart(tmp_path: Path) -> None:
    """Issue 29: the summary said "4 problems" after 4 errors and 1 warning."""
    path = tmp_path / "mixed.yaml"
    path.write_text(
        "name: mixed\n"
        "trigger: {app: manual, event: go, sample: {contactId: abc}}\n"
        "steps:\n"
        "  - id: old\n"
        "    action: ghl.get-contacts\n"  # deprecated: a warning
        "    with: {locationId: loc}\n"
        "  - id: one\n"
        "    action: ghl.get-contact\n"
        '    with: {contactId: "{{ trigger.contactId }}", nope: 1}\n'
        "  - id: two\n"
        "    action: ghl.get-contact\n"
        '    with: {contactId: "{{ emial }}"}\n'
    )
    result = run(str(path))
    assert result.exit_code == 1
    severities = [line.split(": ")[1] for line in result.stdout.splitlines()]
    errors, warnings = severities.count("error"), severities.count("warning")
    assert (errors, warnings) == (2, 1), result.stdout
    assert result.stderr.strip() == "2 errors, 1 warning in 1 file"
