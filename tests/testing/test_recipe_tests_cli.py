"""``connector test``: the shipped recipes pass, the output and --json, exit codes, misses."""

from __future__ import annotations

import json
import re
from pathlib import Path

from recipe_tests_support import RECIPES, SHIPPED, connector

PUSH_TASK = (RECIPES / "push-task-edits.yaml").read_text()


def test_the_shipped_recipes_pass() -> None:
    result = connector("test", str(RECIPES))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    passes = [line for line in lines if line.startswith("PASS ")]
    assert len(passes) >= 4 * len(SHIPPED) - 4
    for name in SHIPPED:
        assert any(f"{name}.test.yaml::" in line for line in passes), name
    assert re.fullmatch(r"\d+ passed, 0 failed", lines[-1])


def _tests(tmp_path: Path, body: str) -> Path:
    (tmp_path / "push-task-edits.yaml").write_text(PUSH_TASK)
    path = tmp_path / "push-task-edits.test.yaml"
    path.write_text(body)
    return path


PAIRED = """\
env: {GHL_LOCATION_ID: loc1}
tests:
  - name: paired
    links: [{kind: task, ghl_id: T1, connecteam_id: 65f1a2b3c4d5e6f708192a3b, meta: {contactId: C1}}]
    responses:
      - {request: PUT /contacts/C1/tasks/T1, body: {task: {id: T1}}}
      - {request: PUT /contacts/C1/tasks/T1/completed, body: {task: {id: T1}}}
    expect:
      status: succeeded
      output: {ghl_task: T1, updated: true}
"""


def test_a_recipe_path_finds_its_tests_and_json_has_the_documented_shape(tmp_path: Path) -> None:
    _tests(tmp_path, PAIRED)
    result = connector("test", "--json", str(tmp_path / "push-task-edits.yaml"))
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"passed", "failed", "problems", "tests"}
    assert (doc["passed"], doc["failed"], doc["problems"]) == (1, 0, [])
    (test,) = doc["tests"]
    assert test["name"] == "paired" and test["status"] == "passed" and test["failures"] == []
    assert test["location"].endswith("push-task-edits.test.yaml:3:11")
    actual = test["actual"]
    assert actual["status"] == "succeeded"
    assert actual["steps"] == {
        "pair": "succeeded",
        "update_task": "succeeded",
        "complete_task": "succeeded",
    }
    assert [(r["method"], r["path"]) for r in actual["requests"]] == [
        ("PUT", "/contacts/C1/tasks/T1"),
        ("PUT", "/contacts/C1/tasks/T1/completed"),
    ]
    assert actual["requests"][1]["body"] == {"completed": True}


def test_a_request_with_no_response_fails_naming_it(tmp_path: Path) -> None:
    path = _tests(
        tmp_path,
        PAIRED.replace(
            "      - {request: PUT /contacts/C1/tasks/T1/completed, body: {task: {id: T1}}}\n", ""
        ),
    )
    result = connector("test", str(path))
    assert result.exit_code == 1
    assert f"FAIL {path}::paired" in result.stdout
    assert (
        f"{path}:3:11: no recorded response for PUT /contacts/C1/tasks/T1/completed (ghl)"
        in result.stdout
    )
    assert "Traceback" not in result.output


def test_a_response_is_used_once_unless_it_repeats(tmp_path: Path) -> None:
    body = PAIRED.replace("    expect:", "    runs: 2\n    expect:")
    result = connector("test", str(_tests(tmp_path, body)))
    assert result.exit_code == 1
    assert "was used already (repeat: true answers again)" in result.stdout
    repeated = body.replace("body: {task: {id: T1}}}", "body: {task: {id: T1}}, repeat: true}")
    assert connector("test", str(_tests(tmp_path, repeated))).exit_code == 0


def test_a_failure_shows_each_difference_at_its_line(tmp_path: Path) -> None:
    body = PAIRED.replace(
        "output: {ghl_task: T1, updated: true}", "output: {ghl_task: T2, updated: true}"
    )
    body += """\
      requests:
        - {method: PUT, path: /contacts/C1/tasks/T1/completed, body: {completed: false}}
      not_sent: [{method: PUT, path: /contacts/*/tasks/*}]
      steps: {pair: skipped, nope: succeeded}
"""
    path = _tests(tmp_path, body)
    result = connector("test", str(path))
    assert result.exit_code == 1
    out = result.stdout
    assert f'{path}:10:26: output.ghl_task: expected "T2", got "T1"' in out
    assert f"{path}:12:11: request not sent: PUT /contacts/C1/tasks/T1/completed body" in out
    assert "body.completed: expected false, got true" in out
    assert f"{path}:13:18: sent, but must not be: request 1, PUT /contacts/C1/tasks/T1" in out
    assert f"{path}:14:21: step pair: expected skipped, got succeeded" in out
    assert "the recipe has no step 'nope' (its steps: pair, update_task, complete_task)" in out
    assert out.rstrip().endswith("0 passed, 1 failed")


def test_exact_requests_and_exact_output(tmp_path: Path) -> None:
    body = PAIRED + "      requests: [PUT /contacts/C1/tasks/T1]\n      exact: [requests, output]\n"
    result = connector("test", str(_tests(tmp_path, body)))
    assert result.exit_code == 1
    assert (
        "request 2 is not expected (exact: requests): PUT /contacts/C1/tasks/T1/completed"
        in result.stdout
    )
    assert "output.completed: not expected, but is true" in result.stdout


def test_the_clock_is_fixed_so_runs_are_identical(tmp_path: Path) -> None:
    path = RECIPES / "tests" / "tag-contact-on-activity.test.yaml"
    first = json.loads(connector("test", "--json", "-k", "custom field", str(path)).stdout)
    second = json.loads(connector("test", "--json", "-k", "custom field", str(path)).stdout)
    for doc in (first, second):
        for test in doc["tests"]:
            test.pop("duration_ms")
    assert first == second
    assert first["passed"] == 1


def test_exit_2_for_no_tests_and_for_a_missing_path(tmp_path: Path) -> None:
    empty = connector("test", str(tmp_path))
    assert empty.exit_code == 2
    assert "no tests found" in empty.stderr
    missing = connector("test", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2
    assert "no such file or folder" in missing.stderr
    (tmp_path / "lonely.yaml").write_text(PUSH_TASK)
    lonely = connector("test", str(tmp_path / "lonely.yaml"))
    assert lonely.exit_code == 2
    assert "no tests for" in lonely.stderr
    assert connector("test").exit_code == 2
    selected = connector(
        "test", "-k", "no such test", str(RECIPES / "tests" / "push-task-edits.test.yaml")
    )
    assert selected.exit_code == 2


def test_an_invalid_recipe_fails_its_tests_at_the_recipe_line(tmp_path: Path) -> None:
    path = _tests(tmp_path, PAIRED)
    recipe = tmp_path / "push-task-edits.yaml"
    recipe.write_text(PUSH_TASK.replace("action: ghl.update-task\n", "action: ghl.update-tsak\n"))
    result = connector("test", str(path))
    assert result.exit_code == 1
    assert re.search(
        rf"{re.escape(str(recipe))}:\d+:\d+: the recipe is not valid: \$\.steps\[1\]\.action",
        result.stdout,
    )


def test_validate_and_serve_leave_test_files_and_cassettes_alone() -> None:
    from connector.language.validate import find_recipe_files

    found = find_recipe_files([str(RECIPES)])
    assert sorted(Path(p).stem for p in found) == SHIPPED
