"""Finding and loading plugins: built-ins, entry points (group ``connector``) and drop-in files.

A fresh plugin manager is made for each command; nothing is loaded at import time.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import pluggy

from connector import hookspecs
from connector.registry import Registry, build_registry

__all__ = ["BUILTIN_PLUGINS", "LoadReport", "default_registry", "make_plugin_manager"]

ENTRY_POINT_GROUP = "connector"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "connector.builtins.apps",
    "connector.builtins.triggers",
    "connector.builtins.filters",
    "connector.builtins.links",
)


@dataclass
class PluginInfo:
    name: str
    origin: str  # "builtin", "entry point <dist>", or a file path
    version: str = ""
    hooks: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    loaded: list[PluginInfo] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, error)
    disabled: list[str] = field(default_factory=list)


def _load_file(path: Path) -> ModuleType:
    mod_name = f"connector_dropin_{path.stem}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def make_plugin_manager(
    plugins_dirs: Sequence[Path] = (),
    disabled: Iterable[str] = (),
    *,
    home: Path | None = None,
    load_entry_points: bool = True,
) -> tuple[pluggy.PluginManager, LoadReport]:
    """A new plugin manager with the built-ins, entry-point plugins and drop-in files loaded.

    A plugin that fails to import is recorded in the report (by name, with its error) and the
    others still load. ``disabled`` names plugins to skip.
    """
    pm = pluggy.PluginManager("connector")
    pm.add_hookspecs(hookspecs)
    report = LoadReport()
    skip = set(disabled) | {
        s.strip() for s in os.environ.get("CONNECTOR_DISABLE_PLUGINS", "").split(",") if s.strip()
    }

    def _register(obj: object, name: str, origin: str, version: str = "") -> None:
        if name in skip:
            report.disabled.append(name)
            return
        try:
            pm.register(obj, name=name)
        except Exception as exc:  # a misspelt hook, a duplicate name
            report.failed.append((name, f"{type(exc).__name__}: {exc}"))
            return
        hooks = sorted(h.name for h in pm.get_hookcallers(obj) or ())
        report.loaded.append(PluginInfo(name=name, origin=origin, version=version, hooks=hooks))

    for modname in BUILTIN_PLUGINS:
        short = modname.rsplit(".", 1)[-1]
        if f"builtin:{short}" in skip:
            report.disabled.append(f"builtin:{short}")
            continue
        _register(importlib.import_module(modname), f"builtin:{short}", "builtin")

    if load_entry_points:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in skip:
                report.disabled.append(ep.name)
                continue
            dist = ep.dist
            try:
                obj = ep.load()
            except Exception as exc:
                report.failed.append((ep.name, f"{type(exc).__name__}: {exc}"))
                continue
            origin = f"entry point ({dist.name})" if dist else "entry point"
            _register(obj, ep.name, origin, dist.version if dist else "")

    dirs = list(plugins_dirs)
    if home is not None and (home / "plugins").is_dir():
        dirs.append(home / "plugins")
    for d in dirs:
        for path in sorted(Path(d).glob("*.py")):
            if path.name.startswith("_") or path.stem in skip:
                if path.stem in skip:
                    report.disabled.append(path.stem)
                continue
            try:
                module = _load_file(path)
            except BaseException as exc:
                report.failed.append((path.stem, f"{type(exc).__name__}: {exc}"))
                continue
            _register(module, path.stem, str(path), str(getattr(module, "__version__", "")))

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        bad = pm.get_name(exc.plugin) or "?"
        report.failed.append((bad, str(exc)))
        pm.unregister(exc.plugin)
        report.loaded = [p for p in report.loaded if p.name != bad]
    return pm, report


def default_registry(
    plugins_dirs: Sequence[Path] = (), home: Path | None = None
) -> tuple[Registry, LoadReport]:
    pm, report = make_plugin_manager(plugins_dirs, home=home)
    return build_registry(pm), report
