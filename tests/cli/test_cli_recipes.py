"""``connector recipes list|pause|resume`` on the database of CONNECTOR_HOME: the recipes it
knows, a pause stored where every serving process reads it, an unknown name refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.persistence.database import close_all, open_database
from connector.persistence.pauses import Pauses
from connector.persistence.runs import RunStore

RECIPE = "create-contact-from-connecteam"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("CONNECTOR_HOME", str(home))
    monkeypatch.delenv("CONNECTOR_DATABASE_URL", raising=False)
    RunStore.open(home).put_recipe("ab" * 32, RECIPE, f"recipes/{RECIPE}.yaml", "name: x")
    yield home
    close_all()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def pauses(home: Path) -> Pauses:
    return Pauses(open_database({"CONNECTOR_HOME": str(home)}).engine)


def test_pause_and_resume_are_stored_in_the_database(home: Path) -> None:
    paused = invoke("recipes", "pause", RECIPE)
    assert paused.exit_code == 0, paused.output
    assert f"paused {RECIPE}" in paused.output
    assert pauses(home).paused(RECIPE)
    assert "was paused already" in invoke("recipes", "pause", RECIPE).output
    pauses(home).hold("run_held1", RECIPE, "connecteam", "user_created", "k1", None, {"a": 1})
    listed = json.loads(invoke("recipes", "list", "--json").output)
    assert listed == [
        {
            "name": RECIPE,
            "paused": True,
            "paused_at": pauses(home).all_paused()[RECIPE],
            "held": 1,
            "last_run": None,
        }
    ]
    table = invoke("recipes", "list").output.splitlines()
    assert table[0].split() == ["RECIPE", "STATE", "HELD", "LAST", "RUN"]
    assert table[1].split() == [RECIPE, "paused", "1", "-"]  # the whole name, never cut
    resumed = invoke("recipes", "resume", RECIPE)
    assert resumed.exit_code == 0
    assert "its 1 held event(s) run now" in resumed.output
    assert not pauses(home).paused(RECIPE)
    assert "was not paused" in invoke("recipes", "resume", RECIPE).output


def test_an_unknown_recipe_is_refused_with_the_known_ones(home: Path) -> None:
    result = CliRunner().invoke(cli, ["recipes", "pause", "no-such-recipe"])
    assert result.exit_code == 1
    assert "no recipe named 'no-such-recipe'" in result.output
    assert f"known: {RECIPE}" in result.output
    assert pauses(home).all_paused() == {}


def test_help_teaches_pause_and_resume() -> None:
    text = invoke("recipes", "--help").output
    assert "connector recipes pause tag-contact-on-activity" in text
    assert "held" in text
