"""The hooks a connector plugin can implement.

A plugin is a module (a package's module named by an entry point in the group ``connector``, or a
drop-in ``.py`` file) with functions marked ``@connector.hookimpl`` whose names are the hooks below.

Every hook is a *registration* hook: it takes a ``register`` callback and returns nothing, so each
hook has one return type and a plugin may register any number of things (the pattern of llm's
``register_models(register)``). Hooks are called once per plugin manager, which is made fresh for
each command (:func:`connector.apps.plugins.make_plugin_manager`); nothing is loaded at import time.

Order and overrides: each hook is called for the built-ins first (``connector.builtins.apps``,
``triggers``, ``filters``, ``links``, in that order), then for entry-point plugins, then for drop-in
files, in the order they were loaded. There is no "first result wins": every registration counts,
and when two plugins register the same name the one called later wins, so an outside plugin can
replace a built-in filter or action. ``connector plugins list`` shows every override.

Failure: when a hook raises (or calls ``register`` with something it does not accept), nothing that
plugin registered is kept, from that hook or any other, and the plugin is reported as failed with
its error; the command goes on with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from connector.apps import Action, App
    from connector.catalog.model import TriggerEvent

__all__ = ["HOOK_NAMES", "hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("connector")
hookimpl = pluggy.HookimplMarker("connector")

#: Called in this order by :func:`connector.apps.registry.build_registry`.
HOOK_NAMES: tuple[str, ...] = (
    "register_filters",
    "register_actions",
    "register_apps",
    "register_triggers",
)


@hookspec
def register_filters(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Add Jinja filters that recipes can use in templates: ``{{ trigger.phone | e164 }}``.

    When: once per command, while the registry is built, before any recipe is validated or run.

    ``register(name, function)``: ``name`` is how templates call the filter (a Python identifier);
    ``function(value, *args, **kwargs)`` receives the piped value first, then the filter's own
    arguments (``{{ x | e164("GB") }}`` calls ``function(x, "GB")``), and returns the new value.
    A filter must not do I/O. To report bad input, raise :class:`connector.errors.TemplateError`
    with a message the recipe's author can act on; the step fails with it.

    Returns nothing. Every call of ``register`` counts; the same name registered later wins.
    """


@hookspec
def register_actions(register: Callable[[Action], None]) -> None:
    """Add step actions that are not HTTP operations (``action: csv.append-row``).

    When: once per command, while the registry is built.

    ``register(action)`` takes a :class:`connector.apps.Action`:

    - ``name``: ``<prefix>.<name>``, what a step's ``action:`` says;
    - ``run(params, context)``: gets the rendered ``with:`` values (a mapping) and the
      :class:`connector.apps.RunContext` of the run, and returns the step's output (anything JSON
      can hold). It may be a coroutine function. A failure it can explain should raise a
      :class:`connector.errors.ConnectorError` (a subclass of your own is fine) whose message
      says what to fix; any other exception fails the step too, shown as ``Type: message``;
    - ``params_schema``: the JSON Schema (an object) of ``with:``, checked by ``connector
      validate``, so a missing or misspelt parameter is a validation problem with its location;
    - ``writes``: whether it changes anything outside the run; ``--dry-run`` does not call it then.

    Returns nothing. An action named like a catalog operation hides that operation.
    """


@hookspec
def register_apps(register: Callable[[App], None]) -> None:
    """Add a whole app: its catalog of operations, base URL and authentication.

    When: once per command, while the registry is built.

    ``register(app)`` takes a :class:`connector.apps.App`. Its ``operations`` (keyed by full action
    name, ``<app>.<operation>``) become actions that recipes can call; the engine sends them through
    one httpx client per app, with the base URL (``default_base_url``, overridden by the
    environment variable ``base_url_env``), the ``auth(env)`` and ``headers(operation)`` the app
    describes. Values of the variables in ``secret_env`` are never printed or stored.

    Returns nothing. An app registered later under the same name replaces the earlier one.
    """


@hookspec
def register_triggers(register: Callable[[TriggerEvent], None]) -> None:
    """Add trigger events that recipes can name in ``trigger: {app: ..., event: ...}``.

    When: once per command, while the registry is built.

    ``register(event)`` takes a :class:`connector.catalog.model.TriggerEvent`: its ``app``, its
    ``event`` name, a description, and the JSON Schema of its payload where one is known
    (``payload_schema``). ``any_event=True`` with ``event="*"`` accepts any event name of that app.

    Returns nothing. The same ``(app, event)`` registered later wins.
    """
