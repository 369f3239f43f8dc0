"""A recipe's and a sync declaration's own alert targets (`alerts:`): `connector validate` takes
both forms and refuses, at the entry, a password written in the file, a URL Apprise does not know
and an entry that is neither a URL nor a variable's name; the plan and the spec carry them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.apps.plugins import default_registry
from connector.cli import cli
from connector.language.alert_targets import AlertTargets
from connector.language.sync_spec import load_sync
from connector.runtime.prepare import prepare
from connector.serve.targets import alert_routes

HERE = Path(__file__).parent / "alerts"


def _validate(*paths: Path) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(cli, ["validate", "--json", *map(str, paths)])
    doc = json.loads(result.stdout)
    return result.exit_code, doc["problems"], result.output


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TEAM_ALERTS_URL", "json://team.example.com/alerts")
    monkeypatch.setenv("PEOPLE_TEAM_URL", "json://people.example.com/alerts")
    monkeypatch.delenv("UNSET_TEAM_URL", raising=False)


def test_both_forms_validate_for_recipes_and_syncs() -> None:
    code, problems, output = _validate(
        HERE / "adds.yaml", HERE / "only-own.yaml", HERE / "people.sync.yaml"
    )
    assert (code, problems) == (0, []), output


def test_wrong_targets_are_refused_at_their_entry_without_showing_a_password() -> None:
    code, problems, output = _validate(HERE / "wrong.yaml")
    assert code == 1
    found = [(p["line"], p["path"], p["severity"]) for p in problems]
    assert found == [
        (9, "$.alerts[0]", "error"),
        (10, "$.alerts[1]", "error"),
        (11, "$.alerts[2]", "error"),
        (12, "$.alerts[3]", "warning"),
    ]
    messages = [str(p["message"]) for p in problems]
    assert "carries a password" in messages[0] and "environment variable" in messages[0]
    assert "Apprise does not understand this nosuchservice:// URL" in messages[1]
    assert "neither an Apprise URL" in messages[2]
    assert "UNSET_TEAM_URL is not set" in messages[3]
    assert "hunter2-pass" not in output


def test_a_sync_declaration_with_a_password_in_its_alerts_is_refused() -> None:
    code, problems, output = _validate(HERE / "wrong-people.sync.yaml")
    assert code == 1
    [problem] = problems
    assert (problem["path"], problem["line"]) == ("$.alerts.to[0]", 5)
    assert "t0p-secret" not in output


def test_no_target_at_all_and_a_wrong_shape_are_errors() -> None:
    code, problems, _ = _validate(HERE / "nowhere.yaml")
    assert code == 1 and "no target" in str(problems[0]["message"])
    code, problems, _ = _validate(HERE / "shapeless.yaml")
    assert code == 1 and problems[0]["path"] == "$.alerts"


def test_the_plan_and_the_spec_carry_them_and_serve_reads_the_variables() -> None:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    adds = prepare(HERE / "adds.yaml", registry).plan
    own = prepare(HERE / "only-own.yaml", registry).plan
    spec, _ = load_sync(HERE / "people.sync.yaml", registry)
    assert adds is not None and own is not None and spec is not None
    assert adds.alerts == AlertTargets(("TEAM_ALERTS_URL", "json://alerts.example.com/connector"))
    assert own.alerts == AlertTargets(("TEAM_ALERTS_URL",), deployment=False)
    env = {"TEAM_ALERTS_URL": "json://team.example.com/a, json://team.example.com/b"}
    routes = alert_routes([adds, own], [spec], env)
    assert routes == {
        "contact-with-team-alerts": (
            (
                "json://team.example.com/a",
                "json://team.example.com/b",
                "json://alerts.example.com/connector",
            ),
            True,
        ),
        "contact-with-own-alerts": (
            ("json://team.example.com/a", "json://team.example.com/b"),
            False,
        ),
        "people-with-alerts": ((), False),  # PEOPLE_TEAM_URL not in this env: logged
    }
