"""``csv.append-row``: what ends up in the file, what the step returns, and how it fails."""

from __future__ import annotations

import csv
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import connector_csv
import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from connector.apps import Action, RunContext
from connector.apps.registry import registry_from_plugins
from connector.cli import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def action() -> Action:
    found = registry_from_plugins({"csv": connector_csv}).resolve("csv.append-row")
    assert isinstance(found, Action)
    return found


def run(params: dict[str, Any], tmp_path: Path, dry_run: bool = False) -> Any:
    context = RunContext(run_id="r1", recipe="test", home=tmp_path, dry_run=dry_run)
    return action().run(params, context)


def read(path: Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_a_new_file_gets_a_header_then_rows(tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    out = run({"path": str(path), "columns": ["name", "email"], "row": {"name": "Ada"}}, tmp_path)
    assert out == {"path": str(path), "rows_written": 1, "columns": ["name", "email"]}
    out = run({"path": str(path), "row": {"email": "b@example.com", "name": "Bo"}}, tmp_path)
    assert out["rows_written"] == 1
    assert read(path) == [["name", "email"], ["Ada", ""], ["Bo", "b@example.com"]]


def test_without_columns_the_first_rows_keys_are_the_header(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    out = run({"path": str(path), "rows": [{"b": 1, "a": 2}, {"a": 3, "c": 4}]}, tmp_path)
    assert out["rows_written"] == 2
    assert read(path) == [["b", "a", "c"], ["1", "2", ""], ["", "3", "4"]]


def test_values_are_written_so_spreadsheets_read_them_back(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    row = {"text": 'say "hi", then\nleave', "none": None, "flag": True, "obj": {"k": [1, 2]}}
    run({"path": str(path), "row": row}, tmp_path)
    with open(path, encoding="utf-8", newline="") as fh:
        (back,) = list(csv.DictReader(fh))
    assert back == {
        "text": 'say "hi", then\nleave',
        "none": "",
        "flag": "true",
        "obj": '{"k": [1, 2]}',
    }


def test_a_key_the_file_does_not_have_fails_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,email\nAda,a@example.com\n", encoding="utf-8")
    with pytest.raises(connector_csv.CSVError, match=r"column\(s\) \['emial'\]"):
        run({"path": str(path), "row": {"name": "Bo", "emial": "b@example.com"}}, tmp_path)
    assert read(path) == [["name", "email"], ["Ada", "a@example.com"]]


def test_columns_that_disagree_with_the_file_fail(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name,email\n", encoding="utf-8")
    with pytest.raises(connector_csv.CSVError, match="has the columns"):
        run({"path": str(path), "columns": ["email", "name"], "row": {"name": "Bo"}}, tmp_path)


def test_a_file_without_a_final_newline_is_not_glued_to_the_new_row(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("name\nAda", encoding="utf-8")
    run({"path": str(path), "row": {"name": "Bo"}}, tmp_path)
    assert read(path) == [["name"], ["Ada"], ["Bo"]]


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(connector_csv.CSVError, match="does not exist"):
        run({"path": str(tmp_path / "nope" / "t.csv"), "row": {"a": 1}}, tmp_path)


def test_rows_that_are_not_objects_fail(tmp_path: Path) -> None:
    with pytest.raises(connector_csv.CSVError, match="every row must be an object"):
        run({"path": str(tmp_path / "t.csv"), "rows": ["a", "b"]}, tmp_path)


def test_a_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    out = run({"path": str(path), "row": {"a": 1}}, tmp_path, dry_run=True)
    assert out["rows_written"] == 0 and out["dry_run"] is True
    assert not path.exists()


def test_parallel_appends_write_one_header_and_every_row(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"

    def append(i: int) -> None:
        run({"path": str(path), "columns": ["i"], "row": {"i": i}}, tmp_path)

    threads = [threading.Thread(target=append, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = read(path)
    assert rows[0] == ["i"]
    assert sorted(int(r[0]) for r in rows[1:]) == list(range(16))


def test_the_params_schema_accepts_the_example_and_rejects_mistakes() -> None:
    recipe = yaml.safe_load((EXAMPLES / "log-new-contact.yaml").read_text(encoding="utf-8"))
    (step,) = recipe["steps"]
    assert step["action"] == "csv.append-row"
    schema = action().params_schema
    assert schema is not None
    jsonschema.validate(step["with"], schema)
    mistakes: list[dict[str, Any]] = [
        {"row": {}},
        {"path": "x.csv"},
        {"path": "x.csv", "row": {}, "colums": ["a"]},
    ]
    for bad in mistakes:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


@pytest.fixture
def as_drop_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This plugin as a drop-in file (it is one module), run from a scratch directory."""
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "dropins"
    folder.mkdir()
    shutil.copy(connector_csv.__file__, folder / "csv_under_test.py")
    return folder


def test_the_example_recipe_validates_and_appends_a_row_per_run(
    as_drop_in: Path, tmp_path: Path
) -> None:
    recipe = str(EXAMPLES / "log-new-contact.yaml")
    runner = CliRunner()
    valid = runner.invoke(cli, ["validate", recipe, "--plugins-dir", str(as_drop_in)])
    assert valid.exit_code == 0, valid.output
    for _ in range(2):
        result = runner.invoke(cli, ["run", recipe, "--json", "--plugins-dir", str(as_drop_in)])
        assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    written = tmp_path / "new-contacts.csv"
    assert record["output"] == {"file": str(written), "rows_written": 1}
    assert read(written) == [
        ["name", "email", "phone"],
        ["Ada Lovelace", "ada@example.com", "+14155552671"],
        ["Ada Lovelace", "ada@example.com", "+14155552671"],
    ]


def test_a_dry_run_of_the_example_writes_nothing(as_drop_in: Path, tmp_path: Path) -> None:
    recipe = str(EXAMPLES / "log-new-contact.yaml")
    args = ["run", recipe, "--dry-run", "--json", "--plugins-dir", str(as_drop_in)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "new-contacts.csv").exists()
