"""The registry: everything the plugin hooks registered, gathered once per command.

The validator, the planner and the engine take a :class:`Registry` as an argument; they never
look plugins up themselves. :func:`build_registry` calls the registration hooks of a plugin manager
one plugin at a time, so it knows who registered what, can keep a plugin's mistake from reaching
the others, and can say which registration overrode which.
"""

from __future__ import annotations

import difflib
import inspect
import keyword
import re
import sysconfig
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from connector.apps import Action, App
from connector.apps.events import Poll, Webhook
from connector.catalog.model import Operation, TriggerEvent
from connector.errors import UnknownOperation
from connector.hookspecs import HOOK_NAMES

__all__ = [
    "KINDS",
    "Override",
    "Registry",
    "build_registry",
    "describe_exception",
    "registry_from_plugins",
]

#: The kinds of things plugins register, as ``plugins list`` names them.
KINDS: tuple[str, ...] = ("filters", "actions", "apps", "triggers")

# origins keys are "<prefix>:<name>"; the prefix of each kind
_PREFIX = {
    "filters": "filter",
    "actions": "action",
    "apps": "app",
    "triggers": "trigger",
}
_DOTTED_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ACTION_NAME = re.compile(r"^[a-z][a-z0-9_-]*\.[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_APP_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_ARITY = {
    "filters": "(name, function)",
    "actions": "one Action",
    "apps": "one App",
    "triggers": "one TriggerEvent",
}


@dataclass(frozen=True)
class Override:
    """``plugin`` registered ``name`` (a ``kind``) that ``previous`` had registered before."""

    kind: str
    name: str
    previous: str
    plugin: str


@dataclass
class Registry:
    """The filters, actions, apps and trigger events of one command, and who gave them."""

    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    triggers: dict[tuple[str, str], TriggerEvent] = field(default_factory=dict)
    # "<kind prefix>:<name>" -> the plugin whose registration is in effect (for override notes)
    origins: dict[str, str] = field(default_factory=dict)
    # plugin -> kind ("filters", ...) -> names it registered, in order (including overridden ones)
    contributions: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    overrides: list[Override] = field(default_factory=list)
    # plugin -> why its registration hooks were rejected (nothing of it is in the registry)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def template_variables(self) -> tuple[str, ...]:
        """The environment variables the apps name their location by (``App.location_env``):
        templates see them as ``env``, beside ``CONNECTOR_VAR_*``."""
        return tuple(sorted({a.location_env for a in self.apps.values() if a.location_env}))

    def operation(self, name: str) -> Operation | None:
        """The catalog operation ``<app>.<operation>``, or ``None``."""
        app_name, _, _ = name.partition(".")
        app = self.apps.get(app_name)
        return app.operations.get(name) if app else None

    def action_names(self) -> list[str]:
        """Every name a step's ``action:`` may use: custom actions, then the apps' operations."""
        names = list(self.actions)
        for app in self.apps.values():
            names.extend(n for n in app.operations if n not in self.actions)
        return names

    def resolve(
        self,
        name: str,
        version: str | None = None,
        preferred: Mapping[str, str] | None = None,
    ) -> Operation | Action:
        """The HTTP operation or custom action a step's ``action:`` names; an operation at the
        version the step asks for (``version``), else at the one the recipe prefers for its app
        (``preferred``, ``{"ghl": "v3"}``), else as the catalog sends it by default
        (:func:`connector.catalog.versions.pick_version`).

        Raises :class:`connector.errors.UnknownOperation` (with close matches) when nothing has
        that name, and :class:`connector.catalog.versions.UnknownVersion` when the operation has
        no such ``version`` (or ``version`` is given for a custom action). A custom action hides
        an operation of the same name.
        """
        from connector.catalog.versions import UnknownVersion, pick_version

        if name in self.actions:
            if version is not None:
                raise UnknownVersion.for_action(name, version)
            return self.actions[name]
        op = self.operation(name)
        if op is not None:
            return pick_version(op, version, preferred)
        raise UnknownOperation(name, self.suggest(name, self.action_names()))

    def trigger(self, app: str, event: str) -> TriggerEvent | None:
        """The trigger event ``(app, event)``, or the app's catch-all (``event="*"``), or ``None``."""
        found = self.triggers.get((app, event))
        if found is None:
            found = self.triggers.get((app, "*"))
        return found

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        """What ``plugin`` registered, by kind (only the kinds it registered something of)."""
        return {k: list(v) for k, v in self.contributions.get(plugin, {}).items() if v}

    @staticmethod
    def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
        """Up to ``n`` candidates close to ``name``, for "did you mean" hints."""
        return difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


class _Rejected(Exception):
    """A ``register`` call with something the registry cannot accept."""


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file.py:LINE)``: the error and the innermost place outside connector."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, _Rejected):
        text = str(exc)
    skip = [Path(__file__).resolve().parents[1], Path(sysconfig.get_paths()["stdlib"]).resolve()]
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        if not path.is_absolute() or "pluggy" in path.parts:
            continue
        resolved = path.resolve()
        if not any(base in resolved.parents for base in skip):
            where = f"{frame.filename}:{frame.lineno}"
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        where = f"{exc.filename}:{exc.lineno}"
    return f"{text} ({where})" if where else text


def _check_filter(name: object, func: object) -> tuple[str, tuple[Any, Any]]:
    if not isinstance(name, str) or not _DOTTED_NAME.match(name) or keyword.iskeyword(name):
        raise _Rejected(f"filter name {name!r} is not a valid name (letters, digits, _, dots)")
    if not callable(func):
        raise _Rejected(f"filter {name!r}: {func!r} is not callable")
    return name, (name, func)


def _check_action(action: object) -> tuple[str, tuple[Any, Any]]:
    if not isinstance(action, Action):
        raise _Rejected(f"expected a connector.apps.Action, got {action!r}")
    if not _ACTION_NAME.match(action.name):
        raise _Rejected(f"action name {action.name!r} is not of the form '<prefix>.<name>'")
    if not callable(action.run):
        raise _Rejected(f"action {action.name!r}: run is not callable")
    builtin = getattr(action.run, "__module__", "").startswith("connector.builtins.")
    # the built-ins' schemas are checked by the test suite; skipping them here keeps jsonschema
    # out of start-up for commands such as `catalog show`
    if action.params_schema is not None and not builtin:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(dict(action.params_schema))
        except SchemaError as exc:
            raise _Rejected(f"action {action.name!r}: params_schema: {exc.message}") from None
    return action.name, (action.name, action)


def _check_app(app: object) -> tuple[str, tuple[Any, Any]]:
    if not isinstance(app, App):
        raise _Rejected(f"expected a connector.apps.App, got {app!r}")
    if not _APP_NAME.match(app.name):
        raise _Rejected(f"app name {app.name!r} must be lowercase letters, digits, - or _")
    stray = [n for n in app.operations if not n.startswith(f"{app.name}.")]
    if stray:
        raise _Rejected(
            f"app {app.name!r}: operation names must start with '{app.name}.': {stray[:3]}"
        )
    for webhook in app.webhooks:
        if not isinstance(webhook, Webhook):
            raise _Rejected(
                f"app {app.name!r}: expected a connector.apps.events.Webhook, got {webhook!r}"
            )
        if webhook.path != app.name and not webhook.path.startswith(f"{app.name}/"):
            raise _Rejected(
                f"app {app.name!r}: webhook path {webhook.path!r} must be {app.name!r} or start"
                f" with '{app.name}/' (it is served at /webhooks/<path>)"
            )
    for event, poll in app.polls.items():
        if not isinstance(poll, Poll):
            raise _Rejected(
                f"app {app.name!r}: polls[{event!r}] is not a connector.apps.events.Poll"
            )
    return app.name, (app.name, app)


def _check_trigger(event: object) -> tuple[str, tuple[Any, Any]]:
    if not isinstance(event, TriggerEvent):
        raise _Rejected(f"expected a connector.catalog.model.TriggerEvent, got {event!r}")
    return event.name, ((event.app, event.event), event)


_CHECKS: dict[str, tuple[str, Callable[..., tuple[str, tuple[Any, Any]]]]] = {
    "register_filters": ("filters", _check_filter),
    "register_actions": ("actions", _check_action),
    "register_apps": ("apps", _check_app),
    "register_triggers": ("triggers", _check_trigger),
}


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook of ``pm``, plugin by plugin, and gather what they register.

    Hooks run in the order of :data:`connector.hookspecs.HOOK_NAMES`; within a hook, plugins run in
    the order they were registered (built-ins first), so a later registration of a name wins and is
    recorded in :attr:`Registry.overrides`. A plugin whose hook raises, or that registers something
    malformed, is recorded in :attr:`Registry.failures` and contributes nothing at all.
    """
    reg = Registry()
    # (plugin, kind, display name, key, value), applied once every hook has run
    pending: list[tuple[str, str, str, Any, Any]] = []

    for hookname in HOOK_NAMES:
        caller = getattr(pm.hook, hookname, None)
        if caller is None:
            continue
        kind, check = _CHECKS[hookname]
        for impl in caller.get_hookimpls():
            plugin = pm.get_name(impl.plugin) or repr(impl.plugin)
            if plugin in reg.failures:
                continue
            found: list[tuple[str, str, str, Any, Any]] = []

            def register(
                *args: Any,
                _found: list[Any] = found,
                _plugin: str = plugin,
                _kind: str = kind,
                _check: Callable[..., tuple[str, tuple[Any, Any]]] = check,
            ) -> None:
                try:
                    display, (key, value) = _check(*args)
                except TypeError:
                    n = len(args)
                    raise _Rejected(
                        f"register() takes {_ARITY[_kind]}, not {n} argument{'s' * (n != 1)}"
                    ) from None
                _found.append((_plugin, _kind, display, key, value))

            try:
                if impl.hookwrapper or impl.wrapper:
                    raise _Rejected("hook wrappers are not supported")
                result = impl.function(**{arg: register for arg in impl.argnames})
                if inspect.isawaitable(result) or inspect.isgenerator(result):
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                    raise _Rejected("the hook must be a plain function, not async or a generator")
            except Exception as exc:
                reg.failures[plugin] = f"{hookname}: {describe_exception(exc)}"
                continue
            pending.extend(found)

    for plugin, kind, display, key, value in pending:
        if plugin in reg.failures:
            continue
        store: dict[Any, Any] = getattr(reg, kind)
        store[key] = value
        origin_key = f"{_PREFIX[kind]}:{display}"
        previous = reg.origins.get(origin_key)
        if previous is not None and previous != plugin:
            reg.overrides.append(Override(kind, display, previous, plugin))
        reg.origins[origin_key] = plugin
        reg.contributions.setdefault(plugin, {}).setdefault(kind, []).append(display)
    return reg


def registry_from_plugins(plugins: Mapping[str, object]) -> Registry:
    """A registry from already-imported plugin objects (name -> module), for tests and embedding."""
    from connector import hookspecs

    pm = pluggy.PluginManager("connector")
    pm.add_hookspecs(hookspecs)
    for name, plugin in plugins.items():
        pm.register(plugin, name=name)
    return build_registry(pm)
