"""Fixtures of the ``connector test`` tests: the CLI runner, a copy of the shipped recipes."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from recipe_tests_support import RECIPES

from connector.persistence.database import close_all


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    yield
    close_all()


@pytest.fixture()
def copy_recipe(tmp_path: Path) -> Callable[[str], Path]:
    """Copy a shipped recipe with its tests and cassettes to ``tmp_path/recipes``; returns the
    copied recipe's path."""

    def copy(name: str) -> Path:
        target = tmp_path / "recipes"
        (target / "tests").mkdir(parents=True, exist_ok=True)
        shutil.copy(RECIPES / f"{name}.yaml", target / f"{name}.yaml")
        shutil.copy(RECIPES / "tests" / f"{name}.test.yaml", target / "tests")
        cassettes = RECIPES / "tests" / "cassettes" / name
        if cassettes.is_dir():
            shutil.copytree(cassettes, target / "tests" / "cassettes" / name)
        return target / f"{name}.yaml"

    return copy
