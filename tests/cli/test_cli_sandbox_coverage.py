"""``--sandbox`` refuses up front a recipe whose steps call operations the sandbox does not answer:
``run`` and ``serve`` exit 2 naming each step and where it is, before the sandbox starts, so
nothing is sent and no run is recorded; ``test --record`` writes no cassette; a dry run warns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli

RECIPE = """\
name: make-opportunity
trigger:
  app: manual
  event: go
  sample: {}
steps:
  - id: contact
    action: ghl.get-contact
    with:
      contactId: ocQHyuzHvysMo5N5VsXc
  - id: create_opp
    action: ghl.create-opportunity
    with:
      pipelineId: p1
      locationId: "{{ env.GHL_LOCATION_ID }}"
      name: Spring clean-up
      status: open
      contactId: "{{ steps.contact.output.contact.id }}"
"""

TESTS = """\
now: "2024-03-15T12:00:00Z"
tests:
  - name: an opportunity for the contact
    cassette: cassettes/opp.cassette.yaml
    expect:
      status: succeeded
"""

GAP = (
    ":12:13: error: $.steps[1].action: step `create_opp`: ghl.create-opportunity is not in "
    "the sandbox"
)


@pytest.fixture()
def recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    for name in ("GHL_TOKEN", "GHL_BASE_URL", "GHL_LOCATION_ID", "CONNECTEAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "opp.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture()
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting the sandbox (the only place these requests could go) fails the test."""
    import connector.sandbox.server

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("the sandbox was started")

    monkeypatch.setattr(connector.sandbox.server, "start_in_thread", refuse)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_run_refuses_before_the_sandbox_starts_and_records_nothing(
    recipe: Path, no_sandbox: None
) -> None:
    result = invoke("run", str(recipe), "--sandbox")
    assert result.exit_code == 2, result.output
    assert f"{recipe}{GAP}" in result.stderr
    assert "nothing was run" in result.stderr
    assert "ghl.get-contact" not in result.stderr  # the sandbox answers that one
    listed = invoke("runs", "list", "--json")
    assert json.loads(listed.stdout)["runs"] == []


def test_run_json_carries_the_refusal_as_problems(recipe: Path, no_sandbox: None) -> None:
    result = invoke("run", str(recipe), "--sandbox", "--json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["status"] == "invalid"
    [problem] = doc["problems"]
    assert (problem["line"], problem["column"], problem["path"]) == (12, 13, "$.steps[1].action")
    assert "ghl.create-opportunity is not in the sandbox" in problem["message"]


def test_without_sandbox_the_recipe_is_not_refused(
    recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GHL_LOCATION_ID", "loc1")
    result = invoke("run", str(recipe), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "not in the sandbox" not in result.output


def test_a_dry_run_against_the_sandbox_only_warns(recipe: Path) -> None:
    result = invoke("run", str(recipe), "--sandbox", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"{recipe}:12:13: warning: $.steps[1].action: step `create_opp`" in result.stderr


def test_a_once_lookup_the_sandbox_lacks_is_named(tmp_path: Path, recipe: Path) -> None:
    text = RECIPE.replace(
        "  - id: create_opp\n",
        "  - id: create_opp\n"
        "    once:\n"
        '      key: "{{ steps.contact.output.contact.id }}"\n'
        "      lookup:\n"
        "        action: ghl.get-opportunity\n"
        '        with: {id: "x"}\n'
        '        found: "{{ output.opportunity }}"\n',
    ).replace("ghl.create-opportunity", "ghl.create-note")
    text = text.replace(
        "      pipelineId: p1\n"
        '      locationId: "{{ env.GHL_LOCATION_ID }}"\n'
        "      name: Spring clean-up\n"
        "      status: open\n"
        '      contactId: "{{ steps.contact.output.contact.id }}"\n',
        '      contactId: "{{ steps.contact.output.contact.id }}"\n      body: hello\n',
    )
    recipe.write_text(text)
    assert invoke("validate", str(recipe)).exit_code == 0
    result = invoke("run", str(recipe), "--sandbox")
    assert result.exit_code == 2, result.output
    assert (
        "$.steps[1].once.lookup.action: step `create_opp` (once.lookup): ghl.get-opportunity"
        in result.stderr
    )


def test_serve_refuses_before_listening(
    recipe: Path, no_sandbox: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.serve.server

    def no_bind(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("serve started listening")

    monkeypatch.setattr(connector.serve.server, "bind", no_bind)
    result = invoke("serve", str(recipe), "--sandbox", "--port", "0")
    assert result.exit_code == 2, result.output
    assert f"{recipe}{GAP}" in result.stderr
    assert "nothing is served" in result.stderr


def test_record_refuses_and_writes_no_cassette(recipe: Path, no_sandbox: None) -> None:
    tests = recipe.parent / "tests"
    tests.mkdir()
    (tests / "opp.test.yaml").write_text(TESTS)
    result = invoke("test", "--record", str(tests / "opp.test.yaml"))
    assert result.exit_code == 2, result.output
    assert f"{recipe}{GAP}" in result.stderr
    assert not (tests / "cassettes").exists()
