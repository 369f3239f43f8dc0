"""Every hook is typed, documented (in its docstring and in docs/plugins.md) and exercised."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from connector import hookspecs
from connector.apps.plugins import default_registry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "plugins.md"
EVERY_HOOK = Path(__file__).parent / "plugins" / "good"

# hook -> the kind of thing it registers, and a name tests/plugins/good/every_hook.py registers
EXERCISED = {
    "register_filters": ("filters", "backwards"),
    "register_actions": ("actions", "echo.say"),
    "register_apps": ("apps", "echo"),
    "register_triggers": ("triggers", "echo.said"),
}


def spec_names() -> list[str]:
    return [
        name
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(func, "connector_spec")
    ]


def signature(name: str) -> str:
    """``register_filters(register: Callable[[...], None]) -> None``, as the docs must show it."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


def test_hook_names_lists_every_hookspec() -> None:
    assert sorted(hookspecs.HOOK_NAMES) == sorted(spec_names())
    assert set(EXERCISED) == set(hookspecs.HOOK_NAMES), "add the new hook to EXERCISED"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_is_typed_and_says_when_what_and_returns(name: str) -> None:
    func = getattr(hookspecs, name)
    sig = inspect.signature(func)
    assert sig.return_annotation == "None"
    for param in sig.parameters.values():
        assert param.annotation is not inspect.Parameter.empty, f"{name}({param.name}) is untyped"
        assert f"``{param.name}(" in (func.__doc__ or ""), f"{name} must describe {param.name}"
    doc = inspect.getdoc(func) or ""
    assert "When:" in doc and "Returns" in doc


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_is_documented_with_its_exact_signature(name: str) -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert f"### `{name}`" in docs, f"docs/plugins.md needs a section for {name}"
    section = docs.split(f"### `{name}`", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    assert signature(name) in section, f"docs/plugins.md must show {signature(name)}"
    assert "@hookimpl" in section and f"def {name}(register)" in section, "an example"


@pytest.mark.parametrize("name", hookspecs.HOOK_NAMES)
def test_every_hook_is_exercised_and_its_registration_takes_effect(name: str) -> None:
    registry, report = default_registry([EVERY_HOOK], load_entry_points=False, env={})
    plugin = report.plugin("every_hook")
    assert plugin is not None and name in plugin.hooks
    kind, registered = EXERCISED[name]
    assert plugin.registered[kind] == [registered]
    store = getattr(registry, kind)
    key = tuple(registered.split(".", 1)) if kind == "triggers" else registered
    assert key in store
