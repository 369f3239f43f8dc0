"""``connector runs list`` at 80 columns: ids and start times whole, the failing step's error and
the sandbox mark shown; wide terminals add the trigger and the duration; ``--json`` carries
``failed_step``, ``error`` and ``sandbox``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.persistence.database import close_all
from connector.persistence.runs import RunStore
from connector.records import RunRecord, StepRecord

LONG_ERROR = (
    "HTTP 422: email must be an email; phone must be a valid phone number; the request was "
    "refused by GoHighLevel\nwhat to do: fix the step's with: block"
)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("CONNECTOR_HOME", str(home))
    monkeypatch.delenv("CONNECTOR_DATABASE_URL", raising=False)
    store = RunStore.open(home)
    runs = [
        _run("run_0123456789abcdef0123", "2026-03-01T09:15:02.125Z", True, None),
        _run("run_fedcba9876543210fedc", "2026-03-01T10:40:59.900Z", False, "create_contact"),
    ]
    for record in runs:
        store.run_started(record)
        for step in record.steps:
            store.step_finished(record, step)
        store.run_finished(record)
    yield home
    close_all()


def _run(run_id: str, started: str, sandbox: bool, failing: str | None) -> RunRecord:
    record = RunRecord(
        id=run_id,
        recipe="create-contact-from-connecteam-with-a-long-name",
        recipe_hash="h",
        recipe_path="recipes/x.yaml",
        trigger_app="connecteam",
        trigger_event="user_created",
        trigger={},
        status="failed" if failing else "succeeded",
        error=LONG_ERROR if failing else None,
        started_at=started,
        finished_at=started,
        duration_ms=1234.5,
        sandbox=sandbox,
    )
    record.steps.append(
        StepRecord(id="find_user", action="connecteam.get-users", status="succeeded")
    )
    if failing:
        record.steps.append(
            StepRecord(id=failing, action="ghl.create-contact", status="failed", error=LONG_ERROR)
        )
    return record


def invoke(columns: int, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["runs", "list", *args], env={"COLUMNS": str(columns)}, catch_exceptions=False
    )


def test_at_80_columns_ids_and_times_are_whole(home: Path) -> None:
    result = invoke(80)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), result.stdout
    by_id = {line.split()[0]: line for line in lines[1:3]}
    assert set(by_id) == {"run_0123456789abcdef0123", "run_fedcba9876543210fedc"}
    assert "03-01 09:15:02" in by_id["run_0123456789abcdef0123"]
    assert "03-01 10:40:59" in by_id["run_fedcba9876543210fedc"]
    assert "…" in by_id["run_fedcba9876543210fedc"]  # the error gave way, not the id or time
    # the failing step and the start of its error
    assert "create_contact: H" in by_id["run_fedcba9876543210fedc"]
    assert lines[0].split()[:4] == ["id", "started", "(UTC)", "status"]
    assert "error" in lines[0]


def test_the_sandbox_run_is_marked(home: Path) -> None:
    lines = invoke(80).stdout.splitlines()
    by_id = {line.split()[0]: line for line in lines[1:3]}
    assert "succeeded*" in by_id["run_0123456789abcdef0123"]
    assert "failed*" not in by_id["run_fedcba9876543210fedc"]
    assert "failed" in by_id["run_fedcba9876543210fedc"]
    assert lines[-1] == "* against the embedded sandbox (--sandbox)"


def test_a_wide_terminal_adds_trigger_duration_and_the_year(home: Path) -> None:
    result = invoke(200)
    line = next(x for x in result.stdout.splitlines() if x.startswith("run_fedcba"))
    assert "2026-03-01 10:40:59" in line
    assert "connecteam user_created" in line
    assert " 1234 " in line or " 1235 " in line
    assert "create_contact: HTTP 422: email must be an email" in line
    assert "what to do" not in line  # the first line of the error only


def test_json_carries_the_failing_step_and_the_sandbox(home: Path) -> None:
    result = invoke(80, "--json")
    runs = {r["id"]: r for r in json.loads(result.stdout)["runs"]}
    failed = runs["run_fedcba9876543210fedc"]
    assert failed["failed_step"] == "create_contact"
    assert failed["error"] == LONG_ERROR
    assert failed["sandbox"] is False
    ok = runs["run_0123456789abcdef0123"]
    assert ok["failed_step"] is None and ok["sandbox"] is True


def test_piped_output_is_as_wide_as_its_rows(home: Path) -> None:
    """Issue 29: `connector runs list | cat` printed `pull-cont…`: a pipe gets every column
    whole, whatever width a terminal would have."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["CONNECTOR_HOME"] = str(home)
    out = subprocess.run(
        [sys.executable, "-m", "connector", "runs", "list"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "…" not in out
    assert out.count("create-contact-from-connecteam-with-a-long-name") == 2
    assert "create_contact: " + LONG_ERROR.splitlines()[0] in out
    assert "connecteam user_created" in out  # the wide layout: trigger and duration too


def test_a_list_cut_by_its_limit_says_so(home: Path) -> None:
    result = CliRunner().invoke(cli, ["runs", "list", "--limit", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert len([line for line in result.stdout.splitlines() if line.startswith("run_")]) == 1
    assert result.stderr.strip() == "more runs than these 1; use --limit to see more"
    result = CliRunner().invoke(cli, ["runs", "list", "--limit", "2"], env={"COLUMNS": "200"})
    assert result.stderr == ""
