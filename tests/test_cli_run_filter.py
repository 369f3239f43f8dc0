"""`connector run` honours the recipe's trigger.if as `connector serve` does; --force overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli

RECIPE = str(Path(__file__).parent / "cli" / "filtered.yaml")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    for name in ("GHL_TOKEN", "GHL_BASE_URL", "GHL_LOCATION_ID", "CONNECTEAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def invoke(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout


def test_an_event_the_condition_is_false_for_is_not_run_and_says_why() -> None:
    code, out = invoke("run", RECIPE, "--sandbox")
    assert code == 0
    assert "filtered, nothing was run" in out
    assert "trigger.if {{ trigger.kind == 'customer' }} is false for this event" in out
    assert "--force" in out
    code, out = invoke("runs", "list", "--json")
    assert json.loads(out)["runs"] == []  # nothing ran, nothing recorded

    code, out = invoke("run", RECIPE, "--sandbox", "--json")
    assert code == 0
    assert json.loads(out)["status"] == "filtered"


def test_an_event_the_condition_holds_for_runs() -> None:
    event = json.dumps({"contactId": "ocQHyuzHvysMo5N5VsXc", "kind": "customer"})
    code, out = invoke("run", RECIPE, "--sandbox", "--json", "--event", "-", input=event)
    assert code == 0, out
    assert json.loads(out)["status"] == "succeeded"


def test_force_runs_a_filtered_event() -> None:
    code, out = invoke("run", RECIPE, "--sandbox", "--json", "--force")
    assert code == 0, out
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert record["steps"][0]["status_code"] == 200
