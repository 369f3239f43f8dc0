"""The README's quick start is what a newcomer types on a fresh machine: exactly two commands,
the first runs a shipped recipe on the embedded sandbox, the second is the test command CI runs
(.ci/run calls it word for word)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from connector.cli import cli

ROOT = Path(__file__).resolve().parents[1]


def _quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_the_quick_start_is_two_commands_and_the_second_is_what_ci_runs() -> None:
    first, second = _quick_start()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert second in ci.splitlines()
    assert first.startswith("python3 -m venv .venv && .venv/bin/pip install -q -e . && ")


def test_the_quick_start_recipe_is_shipped_and_runs_on_the_sandbox(tmp_path: Path) -> None:
    first, _ = _quick_start()
    command = shlex.split(first.rsplit("&& ", 1)[1])
    assert command[0] == ".venv/bin/connector" and command[1] == "run" and "--sandbox" in command
    recipe = ROOT / command[2]
    assert recipe.is_file() and recipe.parent == ROOT / "recipes"
    done = CliRunner().invoke(
        cli, ["run", str(recipe), "--sandbox"], env={"CONNECTOR_HOME": str(tmp_path)}
    )
    assert done.exit_code == 0, done.output
    assert "succeeded" in done.output
