"""The registry: everything the plugin hooks registered, gathered once per command.

The validator, the planner and the engine take a :class:`Registry` as an argument; they never
look plugins up themselves.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from connector.apps import Action, App
from connector.catalog.model import Operation, TriggerEvent
from connector.errors import UnknownOperation

__all__ = ["Registry", "build_registry"]


@dataclass
class Registry:
    filters: dict[str, Callable[..., Any]] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)
    apps: dict[str, App] = field(default_factory=dict)
    triggers: dict[tuple[str, str], TriggerEvent] = field(default_factory=dict)
    # name -> the plugin that registered it, for `plugins list` and override notes
    origins: dict[str, str] = field(default_factory=dict)

    def operation(self, name: str) -> Operation | None:
        app_name, _, _ = name.partition(".")
        app = self.apps.get(app_name)
        return app.operations.get(name) if app else None

    def action_names(self) -> list[str]:
        names = list(self.actions)
        for app in self.apps.values():
            names.extend(app.operations)
        return names

    def resolve(self, name: str) -> Operation | Action:
        """The HTTP operation or custom action a step's ``action:`` names."""
        if name in self.actions:
            return self.actions[name]
        op = self.operation(name)
        if op is not None:
            return op
        raise UnknownOperation(name, self.suggest(name, self.action_names()))

    def trigger(self, app: str, event: str) -> TriggerEvent | None:
        found = self.triggers.get((app, event))
        if found is None:
            found = self.triggers.get((app, "*"))
        return found

    @staticmethod
    def suggest(name: str, candidates: list[str], n: int = 3) -> list[str]:
        return difflib.get_close_matches(name, candidates, n=n, cutoff=0.6)


def build_registry(pm: pluggy.PluginManager) -> Registry:
    """Call every registration hook of ``pm`` and gather what they register."""
    reg = Registry()
    hook = pm.hook

    def _call(hookname: str, store: Callable[[str, Any], None]) -> None:
        caller = getattr(hook, hookname)
        # historic order: built-ins first, outside plugins last (so they may override)
        for impl in caller.get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or "?"

            def register(*args: Any, _plugin: str = plugin_name) -> None:
                store(_plugin, *args)

            impl.function(register)

    def add_filter(plugin: str, name: str, func: Callable[..., Any]) -> None:
        reg.filters[name] = func
        reg.origins[f"filter:{name}"] = plugin

    def add_action(plugin: str, action: Action) -> None:
        reg.actions[action.name] = action
        reg.origins[f"action:{action.name}"] = plugin

    def add_app(plugin: str, app: App) -> None:
        reg.apps[app.name] = app
        reg.origins[f"app:{app.name}"] = plugin

    def add_trigger(plugin: str, event: TriggerEvent) -> None:
        reg.triggers[(event.app, event.event)] = event
        reg.origins[f"trigger:{event.app}.{event.event}"] = plugin

    _call("register_filters", add_filter)  # type: ignore[arg-type]
    _call("register_actions", add_action)  # type: ignore[arg-type]
    _call("register_apps", add_app)  # type: ignore[arg-type]
    _call("register_triggers", add_trigger)  # type: ignore[arg-type]
    return reg
