"""Helpers of the ``connector test`` tests (imported by name: pytest puts this folder on the path)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from connector.cli import cli

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "tests" / "workloads"
SHIPPED = sorted(p.stem for p in RECIPES.glob("*.yaml"))


def connector(*args: str) -> Result:
    """``connector ARGS...`` in this process."""
    return CliRunner().invoke(cli, list(args))
