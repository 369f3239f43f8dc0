"""The hooks a connector plugin can implement.

A plugin is a module or package with functions marked ``@connector.hookimpl`` whose names are the
hooks below. Every registration hook takes a ``register`` callback, so each hook has one return type
(none) and a plugin may register any number of things. Hooks are called once per plugin manager, which
is made fresh for each command (``connector.plugins.make_plugin_manager``); nothing is loaded at import
time. The built-ins (standard filters, the id-link actions, the GoHighLevel and Connecteam apps, the
trigger catalog) are registered through these same hooks by the modules in ``connector.builtins``.

When two plugins register the same name, the one registered last wins and ``connector plugins list``
says so; outside plugins are called after the built-ins, so they can override them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from connector.apps import Action, App
    from connector.catalog.model import TriggerEvent

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("connector")
hookimpl = pluggy.HookimplMarker("connector")


@hookspec
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Add Jinja filters that recipes can use in templates.

    Called once when the registry is built, before any recipe is validated or run.

    ``register(name, function)``: ``name`` is how templates call the filter
    (``{{ trigger.phone | e164 }}``); ``function(value, *args, **kwargs)`` receives the piped value
    first and returns the filtered value. It must not do I/O. Returns nothing.
    """


@hookspec
def register_actions(register: Callable[[Action], None]) -> None:
    """Add step actions that are not HTTP operations (``action: links.get``).

    Called once when the registry is built.

    ``register(action)`` takes a :class:`connector.apps.Action`: its ``name`` (``<prefix>.<name>``),
    a ``run(params, context)`` callable that gets the rendered ``with:`` values and the
    :class:`connector.apps.RunContext` and returns the step's output (it may be a coroutine function),
    and an optional JSON Schema of ``with:`` that ``connector validate`` checks. Returns nothing.
    """


@hookspec
def register_triggers(register: Callable[[TriggerEvent], None]) -> None:
    """Add trigger events that recipes can name in ``trigger: {app, event}``.

    Called once when the registry is built.

    ``register(event)`` takes a :class:`connector.catalog.model.TriggerEvent` (its app, event name,
    description and the JSON Schema of its payload where one is known). Returns nothing.
    """


@hookspec
def register_apps(register: Callable[[App], None]) -> None:
    """Add a whole app: its catalog of operations, base URL and authentication.

    Called once when the registry is built.

    ``register(app)`` takes a :class:`connector.apps.App`. Its operations become actions named
    ``<app>.<operation>``; the engine sends them through one httpx client per app, with the base
    URL and auth the app describes. Returns nothing.
    """
