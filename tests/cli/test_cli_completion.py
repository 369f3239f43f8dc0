"""``connector completion bash|zsh|fish``: click's script, which completes in a real bash."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _connector_completion connector"),
        ("zsh", "compdef _connector_completion connector"),
        ("fish", "complete --no-files --command connector"),
    ],
)
def test_each_shell_gets_clicks_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.stdout and "_CONNECTOR_COMPLETE" in result.stdout


def test_an_unknown_shell_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["completion", "tcsh"])
    assert result.exit_code == 2 and "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.output


def test_bash_completes_commands_and_subcommands_with_the_script(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "connector"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m connector "$@"\n')
    launcher.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(ROOT)
    script = (
        "source <(connector completion bash)\n"
        "COMP_WORDS=(connector ca); COMP_CWORD=1; _connector_completion connector\n"
        'echo "${COMPREPLY[@]}"\n'
        "COMPREPLY=(); COMP_WORDS=(connector new r); COMP_CWORD=2; _connector_completion connector\n"
        'echo "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(
        [bash, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.splitlines() == ["catalog", "recipe"]
