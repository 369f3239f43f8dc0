"""``connector catalog`` says which operations the embedded sandbox answers: a ``sandbox:`` line
in ``show``, ``"sandbox"`` in the JSON, and ``--sandbox`` on ``list`` and ``search``."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from connector.catalog import load_operations
from connector.cli import cli
from connector.sandbox.coverage import covers


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_show_says_whether_the_sandbox_answers() -> None:
    shown = invoke("catalog", "show", "ghl.create-opportunity")
    assert shown.exit_code == 0
    assert "sandbox:     no: `--sandbox` runs refuse a step that calls it" in shown.stdout
    covered = invoke("catalog", "show", "ghl.get-contact")
    assert "sandbox:     yes: the embedded sandbox answers it" in covered.stdout


def test_show_json_carries_it() -> None:
    assert json.loads(invoke("catalog", "show", "ghl.get-contact", "--json").stdout)["sandbox"]
    doc = json.loads(invoke("catalog", "show", "ghl.create-opportunity", "--json").stdout)
    assert doc["sandbox"] is False


def test_list_sandbox_lists_exactly_the_covered_operations() -> None:
    result = invoke("catalog", "list", "--sandbox")
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.stdout.splitlines()}
    expected = {
        op.name
        for app in ("ghl", "connecteam")
        for op in load_operations(app).values()
        if covers(op)
    }
    assert listed == expected
    assert "ghl.create-opportunity" not in listed


def test_list_json_marks_every_operation() -> None:
    doc = json.loads(invoke("catalog", "list", "--app", "ghl", "--json").stdout)
    marks = {op["name"]: op["sandbox"] for op in doc["operations"]}
    assert marks["ghl.get-contact"] is True
    assert marks["ghl.create-opportunity"] is False
    only = json.loads(invoke("catalog", "list", "--app", "ghl", "--sandbox", "--json").stdout)
    assert {op["name"] for op in only["operations"]} == {n for n, m in marks.items() if m}


def test_search_sandbox_filters() -> None:
    everything = invoke("catalog", "search", "opportunity")
    assert "ghl.create-opportunity" in everything.stdout
    none = invoke("catalog", "search", "--sandbox", "opportunity")
    assert none.exit_code == 1
    assert "among the operations the sandbox answers" in none.stderr
    tasks = invoke("catalog", "search", "--sandbox", "task")
    assert tasks.exit_code == 0
    names = [line.split()[0] for line in tasks.stdout.splitlines()]
    assert names and all(covers_name(n) for n in names)


def covers_name(name: str) -> bool:
    app = name.split(".", 1)[0]
    return bool(covers(load_operations(app)[name]))


def test_sandbox_does_not_go_with_triggers() -> None:
    result = invoke("catalog", "list", "--sandbox", "--triggers")
    assert result.exit_code == 2
    assert "does not go with --triggers" in result.stderr
