"""Finding and loading plugins: built-ins, entry points (group ``connector``) and drop-in files.

Loading order, which is also the order hooks are called in (so later ones override earlier ones):

1. the built-ins, :data:`BUILTIN_PLUGINS`, named ``builtin:<module>``;
2. plugins installed with pip that declare an entry point in the group ``connector``, named after
   the entry point;
3. drop-in ``.py`` files from each ``--plugins-dir DIR`` and then from ``CONNECTOR_HOME/plugins``,
   named after the file (``phone.py`` is ``phone``); files starting with ``_`` are skipped.

A fresh plugin manager is made for each call; nothing is loaded at import time. Every problem is
recorded in the :class:`LoadReport` instead of raised: a plugin that fails to import, implements a
hook that does not exist (``register_filter``), or whose registration hook raises is reported by name
with its error, and the other plugins still load. Plugins named in ``disabled`` or in the
environment variable ``CONNECTOR_DISABLE_PLUGINS`` (comma-separated) are not imported at all.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from importlib.metadata import version as dist_version
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from connector import hookspecs
from connector.apps.registry import Override, Registry, build_registry, describe_exception

__all__ = [
    "BUILTIN_PLUGINS",
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "LoadReport",
    "PluginFailure",
    "PluginInfo",
    "default_registry",
    "disabled_from_env",
    "make_plugin_manager",
]

ENTRY_POINT_GROUP = "connector"
DISABLE_ENV = "CONNECTOR_DISABLE_PLUGINS"

BUILTIN_PLUGINS: tuple[str, ...] = (
    "connector.builtins.apps",
    "connector.builtins.triggers",
    "connector.builtins.filters",
    "connector.builtins.links",
)


@dataclass
class PluginInfo:
    """One loaded plugin: where it came from, the hooks it implements and what it registered."""

    name: str
    origin: str  # "builtin", "entry point (<dist>)", or the drop-in file's path
    version: str = ""
    hooks: list[str] = field(default_factory=list)
    kind: str = "builtin"  # "builtin" | "entry point" | "file"
    dist: str | None = None  # the distribution that declared the entry point
    path: str | None = None  # the file a drop-in plugin was loaded from
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version or None,
            "kind": self.kind,
            "origin": self.origin,
            "dist": self.dist,
            "path": self.path,
            "hooks": list(self.hooks),
            "registered": {k: list(v) for k, v in self.registered.items()},
        }


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was found but is not in use, and why."""

    name: str
    error: str
    origin: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "origin": self.origin, "error": self.error}


@dataclass
class LoadReport:
    """What loading plugins did: loaded, failed, disabled plugins, and notes for the user."""

    loaded: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)

    @property
    def failed(self) -> list[tuple[str, str]]:
        """``(name, error)`` of every plugin that failed."""
        return [(f.name, f.error) for f in self.failures]

    def plugin(self, name: str) -> PluginInfo | None:
        return next((p for p in self.loaded if p.name == name), None)

    def fail(self, name: str, error: str, origin: str = "") -> None:
        """Record ``name`` as failed (and no longer loaded)."""
        info = self.plugin(name)
        if info is not None:
            origin = origin or info.origin
            self.loaded.remove(info)
        self.failures.append(PluginFailure(name, error, origin))

    def to_json(self) -> dict[str, Any]:
        return {
            "plugins": [p.to_json() for p in self.loaded],
            "failed": [f.to_json() for f in self.failures],
            "disabled": list(self.disabled),
            "overrides": [
                {"kind": o.kind, "name": o.name, "previous": o.previous, "plugin": o.plugin}
                for o in self.overrides
            ],
            "warnings": list(self.warnings),
        }


def disabled_from_env(env: Mapping[str, str] | None = None) -> set[str]:
    """The plugin names in ``CONNECTOR_DISABLE_PLUGINS`` (comma-separated)."""
    env = os.environ if env is None else env
    return {s.strip() for s in env.get(DISABLE_ENV, "").split(",") if s.strip()}


def _load_file(path: Path) -> ModuleType:
    """Import a drop-in file as a fresh module (re-executed on every load)."""
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


def _unmarked_hooks(obj: object, pm: pluggy.PluginManager) -> list[str]:
    """Functions named like a hook but not marked ``@hookimpl``: a common slip, worth a warning."""
    names = []
    for hookname in hookspecs.HOOK_NAMES:
        func = getattr(obj, hookname, None)
        if callable(func) and pm.parse_hookimpl_opts(obj, hookname) is None:
            names.append(hookname)
    return names


def _connector_version() -> str:
    try:
        return dist_version("connector")
    except Exception:  # running from a source tree that is not installed
        return ""


def _entry_points() -> list[EntryPoint]:
    """The group's entry points, once each (a dist on sys.path twice lists them twice)."""
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if (ep.name, ep.value) not in seen:
            seen.add((ep.name, ep.value))
            found.append(ep)
    return found


def make_plugin_manager(
    plugins_dirs: Sequence[Path] = (),
    disabled: Iterable[str] = (),
    *,
    home: Path | None = None,
    load_entry_points: bool = True,
    env: Mapping[str, str] | None = None,
) -> tuple[pluggy.PluginManager, LoadReport]:
    """A new plugin manager with the built-ins, entry-point plugins and drop-in files loaded.

    ``plugins_dirs`` are searched for drop-in files, then ``home/plugins`` when ``home`` is given.
    ``disabled`` names plugins to skip, besides those in ``CONNECTOR_DISABLE_PLUGINS`` of ``env``
    (default: the process environment). Nothing is raised for a bad plugin: see the report.
    """
    pm = pluggy.PluginManager("connector")
    pm.add_hookspecs(hookspecs)
    report = LoadReport()
    skip = set(disabled) | disabled_from_env(env)
    skipped: set[str] = set()

    def is_disabled(name: str) -> bool:
        if name in skip:
            skipped.add(name)
            if name not in report.disabled:
                report.disabled.append(name)
            return True
        return False

    def add(obj: object, info: PluginInfo) -> None:
        taken = report.plugin(info.name)
        if taken is not None or pm.has_plugin(info.name):
            where = taken.origin if taken else "another plugin"
            report.failures.append(
                PluginFailure(
                    info.name,
                    f"a plugin named {info.name!r} is already loaded from {where}",
                    info.origin,
                )
            )
            return
        try:
            pm.register(obj, name=info.name)
        except Exception as exc:  # a hook with arguments its spec does not have, ...
            report.fail(info.name, describe_exception(exc), info.origin)
            return
        info.hooks = sorted(h.name for h in pm.get_hookcallers(obj) or ())
        report.loaded.append(info)
        for hookname in _unmarked_hooks(obj, pm):
            report.warnings.append(
                f"plugin {info.name!r}: {hookname} is not marked with @connector.hookimpl, "
                "so it is never called"
            )

    version = _connector_version()
    for modname in BUILTIN_PLUGINS:
        name = f"builtin:{modname.rsplit('.', 1)[-1]}"
        if is_disabled(name):
            continue
        try:
            module = importlib.import_module(modname)
        except Exception as exc:
            report.fail(name, describe_exception(exc), "builtin")
            continue
        add(module, PluginInfo(name=name, origin="builtin", version=version, kind="builtin"))

    if load_entry_points:
        for ep in _entry_points():
            dist = ep.dist
            origin = f"entry point ({dist.name})" if dist else "entry point"
            if is_disabled(ep.name):
                continue
            try:
                obj = ep.load()
            except Exception as exc:
                report.fail(ep.name, describe_exception(exc), origin)
                continue
            info = PluginInfo(
                name=ep.name,
                origin=origin,
                version=dist.version if dist else "",
                kind="entry point",
                dist=dist.name if dist else None,
            )
            add(obj, info)

    dirs = [Path(d) for d in plugins_dirs]
    if home is not None and (home / "plugins").is_dir():
        dirs.append(home / "plugins")
    for d in dirs:
        if not d.is_dir():
            report.warnings.append(f"plugins directory {str(d)!r} does not exist")
            continue
        for path in sorted(d.glob("*.py")):
            if path.name.startswith("_") or is_disabled(path.stem):
                continue
            try:
                module = _load_file(path)
            except (Exception, SystemExit) as exc:
                report.fail(path.stem, describe_exception(exc), str(path))
                continue
            info = PluginInfo(
                name=path.stem,
                origin=str(path),
                version=str(getattr(module, "__version__", "") or ""),
                kind="file",
                path=str(path),
            )
            add(module, info)

    for name in sorted(skip - skipped):
        report.warnings.append(f"no plugin named {name!r} to disable")

    # A hook name that is not a hookspec (`register_filter`): report every such plugin, keep the rest.
    while True:
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as exc:
            bad = pm.get_name(exc.plugin) or repr(exc.plugin)
            unknown = [c.name for c in pm.get_hookcallers(exc.plugin) or () if not c.has_spec()]
            hints = []
            for hookname in unknown:
                close = Registry.suggest(hookname, list(hookspecs.HOOK_NAMES), n=1)
                hints.append(f"{hookname!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            pm.unregister(exc.plugin)
            report.fail(
                bad,
                f"unknown hook {', '.join(hints)}; the hooks are {', '.join(hookspecs.HOOK_NAMES)}",
            )
    return pm, report


def default_registry(
    plugins_dirs: Sequence[Path] = (),
    home: Path | None = None,
    *,
    disabled: Iterable[str] = (),
    load_entry_points: bool = True,
    env: Mapping[str, str] | None = None,
) -> tuple[Registry, LoadReport]:
    """Load the plugins and build the registry, the way every command does.

    A plugin whose registration hook raised is moved from ``loaded`` to ``failures`` in the report;
    the others' ``registered`` say what each contributed, and ``overrides`` which names a later plugin
    took over.
    """
    pm, report = make_plugin_manager(
        plugins_dirs, disabled, home=home, load_entry_points=load_entry_points, env=env
    )
    registry = build_registry(pm)
    for name, error in registry.failures.items():
        report.fail(name, error)
        plugin = pm.get_plugin(name)
        if plugin is not None:
            pm.unregister(plugin)
    for info in report.loaded:
        info.registered = registry.registered_by(info.name)
    report.overrides = list(registry.overrides)
    return registry, report
