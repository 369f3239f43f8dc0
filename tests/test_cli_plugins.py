"""``connector plugins list``, plugin options on every command, and plugins used from recipes.

The last tests are end to end: plugins/connector-phone is pip-installed into a temporary virtual
environment and used by its example recipe through the command line, and the same module works as a
drop-in file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
GOOD, BROKEN, OVERRIDE = PLUGINS / "good", PLUGINS / "broken", PLUGINS / "override"
RECIPES = PLUGINS / "recipes"
PHONE = ROOT / "plugins" / "connector-phone"
PHONE_EXAMPLE = PHONE / "examples" / "upsert-contact-e164.yaml"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    for var in ("CONNECTOR_DISABLE_PLUGINS", "CONNECTOR_PLUGINS_DIR", "CONNECTOR_PHONE_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def listing(*args: str | Path) -> dict[str, Any]:
    result = invoke("plugins", "list", *args, "--json")
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def names(data: dict[str, Any]) -> list[str]:
    return [p["name"] for p in data["plugins"]]


def test_list_shows_every_plugin_with_origin_version_hooks_and_registrations() -> None:
    result = invoke("plugins", "list", "--plugins-dir", GOOD)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Loaded plugins" in out
    for text in ("builtin:filters", "shout", "1.2.3", "every_hook", "register_triggers"):
        assert text in out
    assert "shout.py" in out  # the origin of a drop-in: its path (folded in a narrow table)
    assert "filters: shout" in out and "actions: echo.say" in out and "apps: echo" in out
    assert "Failed plugins" not in out


def test_list_reports_failed_disabled_and_overriding_plugins() -> None:
    result = invoke(
        "plugins", "list", "--plugins-dir", BROKEN, "--plugins-dir", OVERRIDE,
        "--disable-plugin", "survivor",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Failed plugins" in out
    assert "fails_on_import" in out and "connector_no_such_module" in out
    assert "misspelt_hook" in out and "register_filter" in out
    assert "disabled: survivor" in out
    assert "override: filter 'email' of builtin:filters is replaced by loud_email" in out
    assert "register_filters is not marked" in out


def test_list_json_is_one_document_for_scripts() -> None:
    data = listing("--plugins-dir", GOOD, "--plugins-dir", BROKEN)
    assert set(data) == {"plugins", "failed", "disabled", "overrides", "warnings"}
    shout = next(p for p in data["plugins"] if p["name"] == "shout")
    assert shout == {
        "name": "shout",
        "version": "1.2.3",
        "kind": "file",
        "origin": str(GOOD / "shout.py"),
        "dist": None,
        "path": str(GOOD / "shout.py"),
        "hooks": ["register_filters"],
        "registered": {"filters": ["shout"]},
    }
    failed = {f["name"]: f for f in data["failed"]}
    assert failed["fails_on_import"]["origin"] == str(BROKEN / "fails_on_import.py")
    assert "did you mean 'register_filters'?" in failed["misspelt_hook"]["error"]
    assert "survivor" in names(data)


def test_plugin_options_work_on_the_root_command_and_from_the_environment(home: Path) -> None:
    result = invoke("--plugins-dir", GOOD, "--disable-plugin", "shout", "plugins", "list", "--json")
    data = json.loads(result.stdout)
    assert "every_hook" in names(data) and "shout" not in names(data)
    assert data["disabled"] == ["shout"]

    env = {
        "CONNECTOR_DISABLE_PLUGINS": "every_hook,builtin:links",
        "CONNECTOR_PLUGINS_DIR": str(GOOD),
    }
    result = invoke("plugins", "list", "--json", env=env)
    data = json.loads(result.stdout)
    assert "shout" in names(data)
    assert sorted(data["disabled"]) == ["builtin:links", "every_hook"]

    (home / "plugins").mkdir(parents=True)
    shutil.copy(GOOD / "shout.py", home / "plugins" / "loud.py")
    assert "loud" in names(listing())


def test_other_commands_warn_about_broken_plugins_and_still_work() -> None:
    result = invoke(
        "validate", RECIPES / "shout-and-echo.yaml", "--plugins-dir", GOOD, "--plugins-dir", BROKEN
    )
    assert result.exit_code == 0, result.output
    assert "warning: plugin 'fails_on_import' failed to load" in result.stderr


def test_a_drop_in_plugin_is_used_by_a_recipe_through_every_hook() -> None:
    recipe = RECIPES / "shout-and-echo.yaml"
    invalid = invoke("validate", recipe)
    assert invalid.exit_code == 1
    assert (
        "unknown filter 'shout'" in invalid.output
        and "unknown trigger app 'echo'" in invalid.output
    )
    assert invoke("validate", recipe, "--plugins-dir", GOOD).exit_code == 0

    result = invoke("run", recipe, "--json", "--plugins-dir", GOOD)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded"
    assert record["output"] == {"said": "HELLO!", "backwards": "olleh"}  # filters + async action
    assert record["steps"][0]["output"] == {"said": "HELLO!", "recipe": "shout-and-echo"}

    result = invoke("run", RECIPES / "echo-app.yaml", "--dry-run", "--json", "--plugins-dir", GOOD)
    assert result.exit_code == 0, result.output
    (step,) = json.loads(result.stdout)["steps"]
    assert (step["method"], step["url"]) == ("GET", "http://127.0.0.1:9/echo/things/abc")


def test_disabling_a_plugin_makes_its_recipe_invalid() -> None:
    result = invoke(
        "validate",
        RECIPES / "shout-and-echo.yaml",
        "--plugins-dir",
        GOOD,
        "--disable-plugin",
        "shout",
    )
    assert result.exit_code == 1
    assert "unknown filter 'shout'" in result.output
    assert "echo.say" not in result.output  # every_hook still loaded


def test_a_plugin_overriding_a_builtin_filter_changes_what_recipes_get() -> None:
    recipe = RECIPES / "email.yaml"
    plain = invoke("run", recipe, "--json", "--plugins-dir", GOOD)
    loud = invoke("run", recipe, "--json", "--plugins-dir", GOOD, "--plugins-dir", OVERRIDE)
    assert plain.exit_code == 0 and loud.exit_code == 0, plain.output + loud.output
    assert json.loads(plain.stdout)["output"]["email"] == "Ada@example.com"  # the built-in
    assert json.loads(loud.stdout)["output"]["email"] == "ADA@EXAMPLE.COM"  # the override


# --- end to end: pip install into a temporary virtual environment --------------------------------


def _sh(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture
def venv(
    tmp_path: Path, home: Path, skip_or_fail: Callable[[str], NoReturn]
) -> tuple[Path, dict[str, str]]:
    """A fresh venv that sees this environment's packages (connector, phonenumbers, pip,
    setuptools) through a .pth file, so installing into it needs no network. Without
    plugins/connector-phone or those packages the test skips, and fails under CI (the test
    extras provide them there): see tests/conftest.py."""
    if not PHONE.is_dir():
        skip_or_fail(f"plugins/connector-phone is missing (looked in {PHONE})")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "CONNECTOR_"))
    }
    env.update(CONNECTOR_HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    # setuptools comes through the .pth, after its own distutils shim could install itself
    env["SETUPTOOLS_USE_DISTUTILS"] = "stdlib"
    path = tmp_path / "venv"
    made = _sh(sys.executable, "-m", "venv", "--without-pip", path, env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    python = path / "bin" / "python"
    purelib = _sh(
        python,
        "-c",
        "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        env=env,
        cwd=tmp_path,
    )
    ours = sysconfig.get_paths()["purelib"]
    pth = f"import site; site.addsitedir({ours!r})\n"
    Path(purelib.stdout.strip(), "_connector_test_parent.pth").write_text(pth, encoding="utf-8")
    probe = _sh(
        python, "-c", "import pip, setuptools, connector, phonenumbers", env=env, cwd=tmp_path
    )
    if probe.returncode != 0:
        skip_or_fail(
            "this environment lacks what the test venv borrows (pip, setuptools, connector, "
            f"phonenumbers; pip install -e '.[test]'): {probe.stderr.strip()[-200:]}"
        )
    return python, env


def test_connector_phone_installed_with_pip_is_used_from_a_recipe(
    venv: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    python, env = venv
    before = _sh(python, "-m", "connector", "plugins", "list", "--json", env=env, cwd=tmp_path)
    assert before.returncode == 0, before.stderr
    if "phone" in names(json.loads(before.stdout)):
        # legitimate everywhere, so a plain skip even under CI (its reason is printed: conftest.py)
        pytest.skip(
            "connector-phone is already installed in the project's environment, so installing "
            "it cannot be shown to change anything (pip uninstall connector-phone to run this)"
        )
    refused = _sh(python, "-m", "connector", "validate", PHONE_EXAMPLE, env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "unknown filter 'e164'" in refused.stdout + refused.stderr

    source = tmp_path / "connector-phone"  # build from a copy: pip writes build files in the tree
    shutil.copytree(
        PHONE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    )
    pip = ("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", source)
    installed = _sh(python, *pip, env=env, cwd=tmp_path)
    assert installed.returncode == 0, installed.stdout + installed.stderr

    after = _sh(python, "-m", "connector", "plugins", "list", "--json", env=env, cwd=tmp_path)
    assert after.returncode == 0, after.stderr
    phone = next(p for p in json.loads(after.stdout)["plugins"] if p["name"] == "phone")
    assert (phone["kind"], phone["dist"], phone["version"]) == (
        "entry point",
        "connector-phone",
        "0.1.0",
    )
    assert phone["registered"] == {"filters": ["e164", "phone_national"]}

    valid = _sh(python, "-m", "connector", "validate", PHONE_EXAMPLE, env=env, cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    ran = _sh(
        python,
        "-m",
        "connector",
        "run",
        PHONE_EXAMPLE,
        "--sandbox",
        "--json",
        env=env,
        cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    record = json.loads(ran.stdout)
    assert record["status"] == "succeeded"
    assert record["output"] == {"phone": "+14155552671", "national": "(415) 555-2671"}
    (step,) = record["steps"]
    assert step["status"] == "succeeded" and step["status_code"] == 200
    assert step["output"]["contact"]["phone"] == "+14155552671"  # what the sandbox stored

    disabled = _sh(
        python,
        "-m",
        "connector",
        "validate",
        PHONE_EXAMPLE,
        "--disable-plugin",
        "phone",
        env=env,
        cwd=tmp_path,
    )
    assert disabled.returncode == 1


def test_the_same_module_works_as_a_drop_in_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dropins = tmp_path / "dropins"
    dropins.mkdir()
    shutil.copy(PHONE / "connector_phone" / "__init__.py", dropins / "phone_dropin.py")
    monkeypatch.setenv("GHL_LOCATION_ID", "loc-dropin")
    result = invoke("run", PHONE_EXAMPLE, "--dry-run", "--json", "--plugins-dir", dropins)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["output"] == {"phone": "+14155552671", "national": "(415) 555-2671"}
    assert record["steps"][0]["request"]["body"]["phone"] == "+14155552671"


def test_piped_list_wraps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 29: `plugins list` piped wrapped `ghl.ContactTagUpd / ate` over two lines."""
    monkeypatch.delenv("COLUMNS")
    result = invoke("plugins", "list")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "builtin:triggers" in line]
    assert len(rows) == 1 and "ghl.ContactTagUpdate, ghl.ContactDndUpdate" in rows[0]
    assert "…" not in result.stdout and " more (--json lists them)" in rows[0]
    narrow = invoke("plugins", "list", env={"COLUMNS": "80"}).stdout
    assert "ghl.ContactTagUpdate, ghl.ContactDndUpdate" not in narrow  # a terminal's width
