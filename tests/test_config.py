"""Settings from the environment and ``.env`` files, and ``connector config``: each source shown,
the environment winning, secrets masked, and every variable the code reads listed."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.config import SETTINGS, load_env_files, mask, settings
from connector.persistence.database import close_all

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "pit-0123456789abcdef-SECRET-wxyz"


@pytest.fixture(autouse=True)
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A working directory of its own, and the process's environment put back afterwards (the
    command line sets the .env files' values in it)."""
    saved = dict(os.environ)
    for s in SETTINGS:
        monkeypatch.delenv(s.name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    yield tmp_path
    os.environ.clear()
    os.environ.update(saved)
    close_all()


def config(*args: str, env: dict[str, str] | None = None) -> Result:
    """``connector config ARGS`` as a fresh process would see it: the environment as it was."""
    saved = dict(os.environ)
    try:
        return CliRunner().invoke(cli, ["config", *args], env=env, catch_exceptions=False)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def shown(result: Result) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in json.loads(result.stdout)["settings"]}


def test_each_source_is_named_and_the_environment_wins(environ: Path) -> None:
    home = environ / "home"
    (environ / ".env").write_text(
        f"CONNECTOR_HOME={home}\nGHL_LOCATION_ID=from-here\nGHL_BASE_URL=http://here.example\n"
    )
    (home / ".env").write_text(
        "GHL_LOCATION_ID=from-home\nCONNECTEAM_BASE_URL=http://home.example\n"
        "CONNECTOR_VAR_TASK_BOARD_ID=7001\n"
    )
    result = config("--json", env={"GHL_BASE_URL": "http://environment.example"})
    assert result.exit_code == 0, result.output
    found = shown(result)
    assert found["GHL_BASE_URL"]["value"] == "http://environment.example"
    assert found["GHL_BASE_URL"]["source"] == "environment"
    assert found["GHL_LOCATION_ID"]["value"] == "from-here"  # the working directory's file first
    assert found["GHL_LOCATION_ID"]["source"] == f".env file {environ / '.env'}"
    # CONNECTOR_HOME set by the first file says where the second is
    assert found["CONNECTEAM_BASE_URL"]["source"] == f".env file {home / '.env'}"
    assert found["CONNECTOR_VAR_TASK_BOARD_ID"]["value"] == "7001"
    assert found["CONNECTOR_RETRY_ATTEMPTS"] == {
        "name": "CONNECTOR_RETRY_ATTEMPTS",
        "value": None,
        "source": "default: 8",
        "meaning": "attempts per request, the first included",
        "secret": False,
    }
    text = config().stdout
    line = next(x for x in text.splitlines() if x.startswith("GHL_LOCATION_ID "))
    assert line.split() == ["GHL_LOCATION_ID", "from-here", ".env", "file", str(environ / ".env")]


def test_a_setting_from_a_env_file_is_what_commands_use(environ: Path) -> None:
    """The database URL in .env is the database `connector db upgrade` makes."""
    database = environ / "elsewhere.sqlite3"
    (environ / ".env").write_text(
        f"CONNECTOR_HOME={environ / 'home'}\nCONNECTOR_DATABASE_URL=sqlite:///{database}\n"
    )
    result = CliRunner().invoke(cli, ["db", "upgrade"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert database.is_file() and database.stat().st_size > 0
    assert not (environ / "home" / "connector.sqlite3").exists()


def test_secrets_are_masked_wherever_they_come_from(environ: Path) -> None:
    (environ / ".env").write_text(
        f"GHL_TOKEN={TOKEN}\nCONNECTEAM_API_KEY=short-key\n"
        "CONNECTOR_DATABASE_URL=postgresql://app:hunter2-secret@db.example:5432/connector\n"
    )
    env = {
        "CONNECTOR_ALERT_URLS": "json://hooks.example/T0KEN-PART, mailto://u:pw-secret@mail.example",
        "CONNECTOR_UI_PASSWORD": "correct horse battery staple",
    }
    for args in ((), ("--json",)):
        out = config(*args, env=env).stdout
        for secret in (TOKEN, "short-key", "hunter2-secret", "T0KEN-PART", "pw-secret", "horse"):
            assert secret not in out
    found = shown(config("--json", env=env))
    assert found["GHL_TOKEN"]["value"] == "****wxyz"
    assert found["CONNECTEAM_API_KEY"]["value"] == "****"
    assert found["CONNECTOR_DATABASE_URL"]["value"] == (
        "postgresql://app:****@db.example:5432/connector"
    )
    assert found["CONNECTOR_ALERT_URLS"]["value"] == "json://****, mailto://****"
    assert found["CONNECTOR_UI_PASSWORD"]["source"] == "environment"
    assert mask("GHL_TOKEN", "x" * 19) == "****"


def test_an_unknown_name_is_shown_with_a_guess(environ: Path) -> None:
    (environ / ".env").write_text("CONNECTOR_HOOK_TOKN=abc\n")
    line = next(x for x in config().stdout.splitlines() if x.startswith("CONNECTOR_HOOK_TOKN"))
    assert "did you mean CONNECTOR_HOOK_TOKEN?" in line


def test_load_env_files_never_overrides_the_environment(environ: Path) -> None:
    (environ / ".env").write_text("GHL_TOKEN=from-file\nGHL_LOCATION_ID=loc\n")
    env = {"GHL_TOKEN": "from-env", "CONNECTOR_HOME": str(environ / "home")}
    loaded = load_env_files(env, cwd=environ)
    assert env["GHL_TOKEN"] == "from-env" and env["GHL_LOCATION_ID"] == "loc"
    assert loaded == {"GHL_LOCATION_ID": environ / ".env"}
    values = {s.name: s for s in settings(env, loaded)}
    assert values["GHL_TOKEN"].source == "environment"


def test_every_variable_the_code_reads_is_a_setting() -> None:
    """Found the way a reader would: every CONNECTOR_/GHL_/CONNECTEAM_ string in connector/
    that is not the name of a Python constant."""
    literal = re.compile(r"[\"']((?:CONNECTOR|GHL|CONNECTEAM|XDG)_[A-Z0-9_]+)[\"']")
    constant = re.compile(r"^((?:CONNECTOR|GHL|CONNECTEAM)_[A-Z0-9_]+)\s*[:=]", re.M)
    read: set[str] = set()
    names: set[str] = set()
    for path in (ROOT / "connector").rglob("*.py"):
        text = path.read_text()
        read.update(literal.findall(text))
        names.update(constant.findall(text))
    read -= names
    read = {n for n in read if not n.startswith("CONNECTOR_VAR_")}
    missing = read - {s.name for s in SETTINGS}
    assert len(read) > 25
    assert missing == set()
