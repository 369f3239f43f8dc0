"""What ``connector validate`` says about scopes: a step whose operation needs a scope that the
stored connection it would run with was not granted is a warning at that step's ``action``.

Only stored connections are checked, and only when the database exists already (``validate``
creates nothing): a token in the environment (``GHL_TOKEN``, ``CONNECTEAM_API_KEY``) and a
Connecteam API key carry no scope list to check against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.errors import ConnectorError, Problem

__all__ = ["granted_scopes", "scope_warnings"]

TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}


def granted_scopes(env: Mapping[str, str]) -> dict[str, tuple[str, frozenset[str]]]:
    """app -> (the connection's id, the scopes it was granted), for the connections a run in
    this environment would use; an app with nothing to check is left out."""
    from connector.persistence.database import database_url, sqlite_path

    url = database_url(env)
    path = sqlite_path(url)
    if url.startswith("sqlite") and (path is None or not path.exists()):
        return {}
    from connector.connections import open_store

    try:
        conns = open_store(env, sealed=False).find()
    except ConnectorError:
        return {}
    from connector.persistence.connections import used_for

    out: dict[str, tuple[str, frozenset[str]]] = {}
    for app, account, override in (
        ("ghl", env.get("GHL_LOCATION_ID", ""), "GHL_TOKEN"),
        ("connecteam", "", "CONNECTEAM_API_KEY"),
    ):
        conn = None if env.get(override) else used_for(conns, app, account, env)
        # an API key has every scope of its account: nothing to check
        if conn is not None and conn.kind != "api_key" and conn.scopes:
            out[app] = (conn.id, frozenset(conn.scopes))
    return out


def _actions(steps: Any, base: str) -> list[tuple[str, str]]:
    """(JSON path of an ``action``, the action) of each step and look-up."""
    out: list[tuple[str, str]] = []
    if not isinstance(steps, list):
        return out
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        if isinstance(step.get("action"), str):
            out.append((f"{base}[{i}].action", step["action"]))
        once = step.get("once")
        lookup = once.get("lookup") if isinstance(once, dict) else None
        if isinstance(lookup, dict) and isinstance(lookup.get("action"), str):
            out.append((f"{base}[{i}].once.lookup.action", lookup["action"]))
    return out


def scope_warnings(
    recipe: Any, registry: Any, granted: Mapping[str, tuple[str, frozenset[str]]]
) -> list[Problem]:
    """Warnings for ``recipe`` (a :class:`~connector.language.load.LoadedRecipe`) against
    ``granted`` (:func:`granted_scopes`)."""
    if not granted or not isinstance(recipe.data, dict):
        return []
    problems = []
    for path, action in _actions(recipe.data.get("steps"), "$.steps"):
        app = action.split(".", 1)[0]
        if app not in granted:
            continue
        op = registry.operation(action)
        scopes = tuple(getattr(op, "scopes", ()) or ())
        conn_id, have = granted[app]
        if not scopes or any(s in have for s in scopes):
            continue
        problems.append(
            Problem(
                recipe.location(path),
                f"{action} needs the scope {scopes[0]}, which the {TITLES.get(app, app)}"
                f" connection {conn_id} was not granted; log in again with it:"
                f" connector auth login {app} --scopes {scopes[0]}",
                severity="warning",
            )
        )
    return problems
