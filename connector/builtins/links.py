"""The id-link store's actions: ``links.get``, ``links.put``, ``links.delete``, ``links.find``.

Recipes use them to remember which GoHighLevel record is which Connecteam record
(see :mod:`connector.persistence.links`)::

    - id: link
      action: links.get
      with: {kind: contact, ghl_id: "{{ trigger.contactId }}"}
    - id: note
      if: "{{ steps.link.output.found }}"
      action: connecteam.create-user-note
      with: {userId: "{{ steps.link.output.connecteam_id }}", text: "..."}

``links.get`` never fails because a link is missing: it answers ``found: false`` with null ids, so a
recipe branches with ``if:``. A null id to look up (a trigger without that field) is "not found"
too.

The store is the one database of the run's environment (``LinkStore.for_env(context.env)``:
``CONNECTOR_DATABASE_URL``, or ``connector.sqlite3`` under ``CONNECTOR_HOME``), opened on first use
and kept in ``context.services["links"]``; a store already there (put by a test, or by the runtime
so that links share its transactions) is used as it is. Reading where no SQLite database exists yet
creates nothing (a ``--dry-run`` leaves no file behind).

``links.put`` answers the stored link plus ``replaced`` (whether the put removed older links that
reused one of its ids) and ``replaced_links`` (those links, empty when none).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connector.apps import Action, RunContext
from connector.config import connector_home
from connector.hookspecs import hookimpl

if TYPE_CHECKING:
    from types import ModuleType

    from connector.persistence.links import Link, LinkId, LinkStore


def _links() -> ModuleType:
    """The id-link store's module, imported on first use (it brings SQLAlchemy, which commands
    that never run a step, such as `catalog show`, should not pay for)."""
    import connector.persistence.links

    return connector.persistence.links


__all__ = ["open_store", "store_env"]

SERVICE_KEY = "links"

_ID = {"type": ["string", "integer"], "minLength": 1}
_ID_OR_NULL = {"type": ["string", "integer", "null"]}
_KIND = {
    "type": "string",
    "minLength": 1,
    "maxLength": 64,
    "description": "What is linked: contact (GoHighLevel contact <-> Connecteam user), task, note,"
    " or any name the recipe chooses.",
}
_ONE_SIDE = {
    "kind": _KIND,
    "ghl_id": {**_ID_OR_NULL, "description": "The GoHighLevel id to look up."},
    "connecteam_id": {**_ID_OR_NULL, "description": "The Connecteam id to look up."},
}

GET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": _ONE_SIDE,
    "required": ["kind"],
    "anyOf": [{"required": ["ghl_id"]}, {"required": ["connecteam_id"]}],
    "additionalProperties": False,
}
DELETE_SCHEMA = GET_SCHEMA
PUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": _KIND,
        "ghl_id": {**_ID, "description": "The GoHighLevel id (contact, task or note id)."},
        "connecteam_id": {**_ID, "description": "The Connecteam id (user, task or note id)."},
        "meta": {
            "type": ["object", "null"],
            "description": "Extra facts to keep with the link (the GoHighLevel locationId, the"
            " Connecteam taskBoardId, ...); merged into what the link already has.",
        },
    },
    "required": ["kind", "ghl_id", "connecteam_id"],
    "additionalProperties": False,
}
FIND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": _KIND,
        "ghl_ids": {
            "type": "array",
            "items": _ID_OR_NULL,
            "description": "GoHighLevel ids to look up (for example every note id of a contact).",
        },
        "connecteam_ids": {
            "type": "array",
            "items": _ID_OR_NULL,
            "description": "Connecteam ids to look up.",
        },
    },
    "required": ["kind"],
    "oneOf": [{"required": ["ghl_ids"]}, {"required": ["connecteam_ids"]}],
    "additionalProperties": False,
}

# Environment variables whose values must never be written into link metadata.
_SECRET_SUFFIXES = ("_TOKEN", "_API_KEY", "_SECRET", "_PASSWORD", "_KEY")


def store_env(context: RunContext) -> Mapping[str, str]:
    """The environment whose database keeps this run's links: the run's own ``env``.

    Except when the runner gave the actions a home of their own (``context.home`` is not the
    env's ``CONNECTOR_HOME``): then the links live in the default SQLite database of that home and
    never in ``CONNECTOR_DATABASE_URL``. That is how ``connector run --sandbox`` keeps the links of
    a sandbox run with the sandbox (a temporary home) today; once the runner passes that home in
    ``env`` itself (``CONNECTOR_HOME`` set to it, no ``CONNECTOR_DATABASE_URL``), the two agree
    and this changes nothing.
    """
    env = context.env
    if Path(context.home) != connector_home(env):
        own = {k: v for k, v in env.items() if k != "CONNECTOR_DATABASE_URL"}
        own["CONNECTOR_HOME"] = str(context.home)
        return own
    return env


def open_store(context: RunContext) -> LinkStore:
    """The run's link store: the one in ``context.services``, or opened now and kept there."""
    store = context.services.get(SERVICE_KEY)
    if not isinstance(store, _links().LinkStore):
        store = _links().LinkStore.for_env(store_env(context))
        context.services[SERVICE_KEY] = store
    return store


def _existing_store(context: RunContext) -> LinkStore | None:
    """The run's link store for reading: ``None`` (and no file created) when there is none yet."""
    store = context.services.get(SERVICE_KEY)
    if isinstance(store, _links().LinkStore):
        return store
    store = _links().LinkStore.existing_for_env(store_env(context))
    if store is not None:
        context.services[SERVICE_KEY] = store
    return store


def _not_found(kind: str) -> dict[str, Any]:
    return {
        "found": False,
        "kind": kind,
        "ghl_id": None,
        "connecteam_id": None,
        "meta": {},
        "created_at": None,
        "updated_at": None,
    }


def _found(link: Link) -> dict[str, Any]:
    return {"found": True, **link.to_json()}


def _side(params: Mapping[str, Any]) -> tuple[str, LinkId | None, LinkId | None]:
    kind = params.get("kind")
    if not isinstance(kind, str) or not kind:
        raise _links().LinkError("'kind' is required (contact, task, note, ...)")
    ghl_id, ct_id = params.get("ghl_id"), params.get("connecteam_id")
    if ghl_id is not None and ct_id is not None:
        raise _links().LinkError("give ghl_id or connecteam_id, not both")
    return kind, ghl_id, ct_id


def _check_no_secrets(meta: Any, env: Mapping[str, str]) -> None:
    secrets = [
        (name, value)
        for name, value in env.items()
        if name.upper().endswith(_SECRET_SUFFIXES) and isinstance(value, str) and len(value) >= 8
    ]
    if not secrets:
        return
    text = repr(meta)
    for name, value in secrets:
        if value in text:
            raise _links().LinkError(
                f"link metadata must not contain a secret (the value of {name})"
            )


def links_get(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """``links.get``: the link for one id, or ``found: false``."""
    kind, ghl_id, ct_id = _side(params)
    if ghl_id is None and ct_id is None:
        return _not_found(kind)
    store = _existing_store(context)
    link = store.get(kind, ghl_id=ghl_id, connecteam_id=ct_id) if store else None
    return _found(link) if link else _not_found(kind)


def links_put(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """``links.put``: link two ids (an idempotent upsert).

    Returns the stored link with ``replaced`` (true when older links that reused one of the ids
    were removed) and ``replaced_links`` (those links).
    """
    kind = params.get("kind")
    ghl_id, ct_id = params.get("ghl_id"), params.get("connecteam_id")
    if ghl_id is None or ct_id is None:
        missing = "ghl_id" if ghl_id is None else "connecteam_id"
        raise _links().LinkError(f"links.put needs both ids; {missing} is null")
    meta = params.get("meta") or {}
    _check_no_secrets(meta, context.env)
    link = open_store(context).put(str(kind) if kind is not None else "", ghl_id, ct_id, meta)
    return {
        **_found(link),
        "replaced": bool(link.replaced),
        "replaced_links": [old.to_json() for old in link.replaced],
    }


def links_delete(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """``links.delete``: forget the link for one id; ``deleted`` says whether there was one."""
    kind, ghl_id, ct_id = _side(params)
    store = _existing_store(context)
    removed = None
    if store is not None and (ghl_id is not None or ct_id is not None):
        removed = store.delete(kind, ghl_id=ghl_id, connecteam_id=ct_id)
    out = _found(removed) if removed else _not_found(kind)
    out["deleted"] = removed is not None
    return out


def links_find(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """``links.find``: which of many ids are linked already.

    Returns ``links`` (the links found), ``linked`` and ``missing`` (the asked ids that have, or
    have not, a link, in the order asked, nulls dropped) and ``partners`` (asked id as a string ->
    the other side's id), so a ``foreach`` can create only what is missing.
    """
    kind = params.get("kind")
    if not isinstance(kind, str) or not kind:
        raise _links().LinkError("'kind' is required (contact, task, note, ...)")
    by_ghl = params.get("ghl_ids") is not None
    raw = params.get("ghl_ids") if by_ghl else params.get("connecteam_ids")
    if raw is None:
        raise _links().LinkError("give ghl_ids or connecteam_ids (a list)")
    if not isinstance(raw, list | tuple):
        raise _links().LinkError("ghl_ids / connecteam_ids must be a list")
    asked: list[LinkId] = list(dict.fromkeys(v for v in raw if v is not None))
    store = _existing_store(context)
    links: list[Link] = []
    if store is not None and asked:
        if by_ghl:
            links = store.find(kind, ghl_ids=asked)
        else:
            links = store.find(kind, connecteam_ids=asked)
    partners = {
        str(link.ghl_id if by_ghl else link.connecteam_id): (
            link.connecteam_id if by_ghl else link.ghl_id
        )
        for link in links
    }
    return {
        "kind": kind,
        "links": [link.to_json() for link in links],
        "linked": [v for v in asked if str(v) in partners],
        "missing": [v for v in asked if str(v) not in partners],
        "partners": partners,
    }


@hookimpl
def register_actions(register: Callable[[Action], None]) -> None:
    register(
        Action(
            name="links.get",
            run=links_get,
            description="Find the link of one GoHighLevel or Connecteam id: {found, ghl_id,"
            " connecteam_id, meta}; found is false (ids null) when there is none.",
            params_schema=GET_SCHEMA,
            writes=False,
        )
    )
    register(
        Action(
            name="links.put",
            run=links_put,
            description="Link a GoHighLevel id with a Connecteam id (idempotent; replaces older"
            " links that reuse either id): the stored link, replaced (true/false) and"
            " replaced_links.",
            params_schema=PUT_SCHEMA,
            writes=True,
        )
    )
    register(
        Action(
            name="links.delete",
            run=links_delete,
            description="Forget the link of one GoHighLevel or Connecteam id: {deleted, ...}.",
            params_schema=DELETE_SCHEMA,
            writes=True,
        )
    )
    register(
        Action(
            name="links.find",
            run=links_find,
            description="Which of many ids are linked: {links, linked, missing, partners}.",
            params_schema=FIND_SCHEMA,
            writes=False,
        )
    )
