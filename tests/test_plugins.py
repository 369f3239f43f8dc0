"""Loading plugins (connector/apps/plugins.py) and gathering what they register (connector/apps/registry.py).

The plugins are files under tests/plugins/: good/ (drop-ins that work), broken/ (one that fails to
import, misspelt hooks, a hook that raises, ...), override/ (replaces a built-in filter), dup/ (a
name already taken) and site/ (an installed distribution with entry points).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector import hookimpl
from connector.apps import Action, App
from connector.apps.plugins import LoadReport, default_registry
from connector.apps.registry import Override, Registry, registry_from_plugins
from connector.catalog.model import Operation
from connector.errors import UnknownOperation
from connector.language.templates import compile_value, make_environment

PLUGINS = Path(__file__).parent / "plugins"
GOOD, BROKEN, OVERRIDE, DUP, SITE = (
    PLUGINS / d for d in ("good", "broken", "override", "dup", "site")
)


def load(*dirs: Path, **kwargs: Any) -> tuple[Registry, LoadReport]:
    """Load like a command does, but blind to the machine's installed plugins and environment."""
    kwargs.setdefault("load_entry_points", False)
    kwargs.setdefault("env", {})
    return default_registry(list(dirs), **kwargs)


def failure(report: LoadReport, name: str) -> str:
    errors = [f.error for f in report.failures if f.name == name]
    assert errors, f"{name} is not among the failures: {report.failed}"
    return errors[0]


def render(registry: Registry, template: str, **context: Any) -> Any:
    return compile_value(make_environment(registry.filters), template).render(context)


def test_builtins_are_registered_through_the_same_hooks() -> None:
    registry, report = load()
    names = [p.name for p in report.loaded]
    assert names == ["builtin:apps", "builtin:triggers", "builtin:filters", "builtin:links"]
    assert report.failures == []
    apps = report.plugin("builtin:apps")
    assert apps is not None and apps.origin == "builtin" and apps.hooks == ["register_apps"]
    assert apps.registered["apps"] == ["ghl", "connecteam"]
    assert registry.origins["filter:email"] == "builtin:filters"
    assert registry.origins["action:links.get"] == "builtin:links"
    assert isinstance(registry.resolve("ghl.get-contact"), Operation)


def test_a_drop_in_file_is_loaded_with_what_it_registered() -> None:
    registry, report = load(GOOD)
    shout = report.plugin("shout")
    assert shout is not None
    assert (shout.version, shout.kind, shout.path) == ("1.2.3", "file", str(GOOD / "shout.py"))
    assert shout.hooks == ["register_filters"]
    assert shout.registered == {"filters": ["shout"]}
    assert render(registry, "{{ 'hi' | shout }}") == "HI!"
    assert render(registry, "{{ 'hi' | shout('?') }}") == "HI?"


def test_files_starting_with_an_underscore_are_not_plugins() -> None:
    _, report = load(GOOD)
    assert report.failures == []
    assert "_not_a_plugin" not in [p.name for p in report.loaded]


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_load() -> None:
    registry, report = load(BROKEN)
    error = failure(report, "fails_on_import")
    assert "No module named 'connector_no_such_module'" in error
    assert "fails_on_import.py:3" in error  # where, so the author can fix it
    assert report.plugin("survivor") is not None
    assert render(registry, "{{ 1 | survivor }}") == "still here: 1"


def test_every_misspelt_hook_is_reported_with_the_plugin_and_a_suggestion() -> None:
    registry, report = load(BROKEN)
    assert "unknown hook 'register_filter' (did you mean 'register_filters'?)" in failure(
        report, "misspelt_hook"
    )
    assert "did you mean 'register_actions'?" in failure(report, "misspelt_too")
    assert report.plugin("misspelt_hook") is None
    assert "never" not in registry.filters


def test_a_registration_hook_that_raises_is_that_plugins_failure() -> None:
    registry, report = load(BROKEN)
    error = failure(report, "raises_in_hook")
    assert error.startswith("register_filters: KeyError: 'settings'")
    assert "raises_in_hook.py:12" in error
    assert "half_done" not in registry.filters  # what it registered before raising is dropped
    assert report.plugin("raises_in_hook") is None


def test_registering_something_malformed_is_that_plugins_failure() -> None:
    registry, report = load(BROKEN)
    assert "expected a connector.apps.Action" in failure(report, "bad_registration")
    assert not any(name.startswith("oops") for name in registry.actions)


def test_a_hook_without_the_marker_is_warned_about() -> None:
    registry, report = load(BROKEN)
    assert report.plugin("unmarked_hook") is not None
    assert any("'unmarked_hook': register_filters is not marked" in w for w in report.warnings)
    assert "unmarked" not in registry.filters


def test_plugins_are_disabled_by_name_or_by_environment() -> None:
    registry, report = load(GOOD, BROKEN, disabled=["shout", "nosuch"])
    assert report.plugin("shout") is None and "shout" in report.disabled
    assert "shout" not in registry.filters
    assert "no plugin named 'nosuch' to disable" in report.warnings

    env = {"CONNECTOR_DISABLE_PLUGINS": "fails_on_import, misspelt_hook,builtin:filters"}
    registry, report = load(BROKEN, env=env)
    names = [f.name for f in report.failures]
    assert "fails_on_import" not in names and "misspelt_hook" not in names  # never imported
    assert report.disabled == ["builtin:filters", "fails_on_import", "misspelt_hook"]
    assert "email" not in registry.filters


def test_a_plugin_can_override_a_builtin_filter() -> None:
    registry, _ = load()
    assert registry.origins.get("filter:email") == "builtin:filters", "the built-in it overrides"
    registry, report = load(OVERRIDE)
    assert render(registry, "{{ ' Ada@Example.com ' | email }}") == "ADA@EXAMPLE.COM"
    assert report.overrides == [Override("filters", "email", "builtin:filters", "loud_email")]
    assert registry.origins["filter:email"] == "loud_email"


def test_a_second_plugin_with_a_taken_name_is_reported() -> None:
    registry, report = load(GOOD, DUP)
    assert "already loaded from" in failure(report, "shout")
    assert report.plugin("shout") is not None  # the first one stays
    assert render(registry, "{{ 'a' | shout }}") == "A!"


def test_installed_plugins_are_found_by_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(SITE))
    registry, report = load(GOOD, load_entry_points=True)
    fancy = report.plugin("fancy")
    assert fancy is not None
    assert (fancy.kind, fancy.dist, fancy.version) == ("entry point", "fancy-plugin", "2.0.0")
    assert fancy.origin == "entry point (fancy-plugin)"
    assert render(registry, "{{ 'x' | fancy }}") == "~x~"
    ghost = [f for f in report.failures if f.name == "ghost"]
    assert ghost and ghost[0].origin == "entry point (fancy-plugin)"
    assert "connector_ghost_module_that_is_not_installed" in ghost[0].error
    names = [p.name for p in report.loaded]
    assert names.index("fancy") < names.index("shout")  # entry points before drop-ins


def test_connector_home_plugins_are_loaded_and_a_missing_dir_is_warned(tmp_path: Path) -> None:
    (tmp_path / "plugins").mkdir()
    shutil.copy(GOOD / "shout.py", tmp_path / "plugins" / "shout.py")
    registry, report = load(tmp_path / "nope", home=tmp_path)
    assert "shout" in registry.filters
    assert f"plugins directory {str(tmp_path / 'nope')!r} does not exist" in report.warnings


def test_each_call_loads_plugins_afresh(tmp_path: Path) -> None:
    plugin = tmp_path / "greet.py"
    text = (GOOD / "shout.py").read_text(encoding="utf-8")
    plugin.write_text(text, encoding="utf-8")
    registry, _ = load(tmp_path)
    assert render(registry, "{{ 'a' | shout }}") == "A!"
    plugin.write_text(text.replace('mark: str = "!"', 'mark: str = "?"'), encoding="utf-8")
    registry, _ = load(tmp_path)
    assert render(registry, "{{ 'a' | shout }}") == "A?"


def test_nothing_is_loaded_at_import_time() -> None:
    code = (
        "import sys, connector, connector.apps.plugins, connector.apps.registry, connector.cli\n"
        "print(sorted(m for m in sys.modules if m.startswith(('connector.builtins', 'connector_dropin'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_registry_resolves_plugin_actions_operations_and_triggers() -> None:
    registry, _ = load(GOOD)
    assert isinstance(registry.resolve("echo.say"), Action)
    assert isinstance(registry.resolve("echo.get-thing"), Operation)
    assert (
        registry.operation("echo.get-thing") is registry.apps["echo"].operations["echo.get-thing"]
    )
    assert {"echo.say", "echo.get-thing", "links.get"} <= set(registry.action_names())
    with pytest.raises(UnknownOperation) as info:
        registry.resolve("echo.sey")
    assert info.value.suggestions[0] == "echo.say"
    said = registry.trigger("echo", "said")
    assert said is not None and said.description == "Something was said."
    assert registry.trigger("echo", "shouted") is None
    manual = registry.trigger("manual", "anything.at.all")
    assert manual is not None and manual.any_event


class _BadSchema:
    @hookimpl
    def register_actions(self, register: Callable[[Action], None]) -> None:
        register(Action(name="x.y", run=lambda p, c: None, params_schema={"type": "objekt"}))


class _StrayOperation:
    @hookimpl
    def register_apps(self, register: Callable[[App], None]) -> None:
        op = Operation(name="other.get", app="other", method="GET", path="/")
        register(
            App(name="mine", title="Mine", operations={op.name: op}, default_base_url="http://x")
        )


class _BadFilterName:
    @hookimpl
    def register_filters(self, register: Callable[..., None]) -> None:
        register("no spaces please", str)


class _WrongArity:
    @hookimpl
    def register_filters(self, register: Callable[..., None]) -> None:
        register(str)


class _AsyncHook:
    @hookimpl
    async def register_filters(self, register: Callable[..., None]) -> None:
        register("late", str)


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        (_BadSchema(), "action 'x.y': params_schema:"),
        (_StrayOperation(), "operation names must start with 'mine.'"),
        (_BadFilterName(), "filter name 'no spaces please' is not a valid name"),
        (_WrongArity(), "register() takes (name, function), not 1 argument"),
        (_AsyncHook(), "must be a plain function, not async"),
    ],
)
def test_malformed_registrations_are_rejected_with_a_reason(plugin: object, message: str) -> None:
    registry = registry_from_plugins({"bad": plugin})
    assert message in registry.failures["bad"]
    assert registry.contributions == {}
