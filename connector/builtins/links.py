"""The id-link store's actions: ``links.get``, ``links.put``, ``links.delete``, ``links.find``.

Recipes use them to remember which GoHighLevel record is which Connecteam record
(see :mod:`connector.links`)::

    - id: link
      action: links.get
      with: {kind: contact, ghl_id: "{{ trigger.contactId }}"}
    - id: note
      if: "{{ steps.link.output.found }}"
      action: connecteam.create-user-note
      with: {userId: "{{ steps.link.output.connecteam_id }}", text: "..."}

``links.get`` never fails because a link is missing: it answers ``found: false`` with null ids, so a
recipe branches with ``if:``. A null id to look up (a trigger without that field) is "not found"
too. The store is opened once per run and kept in ``context.services["links"]``; reading a home
that has no store yet creates nothing (a ``--dry-run`` leaves no file behind).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.apps import Action, RunContext
from connector.hookspecs import hookimpl
from connector.links import Link, LinkError, LinkId, LinkStore, links_path

__all__ = ["open_store"]

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


def open_store(context: RunContext) -> LinkStore:
    """The run's link store, opened on first use and kept in ``context.services``."""
    store = context.services.get(SERVICE_KEY)
    if not isinstance(store, LinkStore):
        store = LinkStore(links_path(context.home))
        context.services[SERVICE_KEY] = store
    return store


def _existing_store(context: RunContext) -> LinkStore | None:
    """The run's link store for reading: ``None`` (and no file created) when there is none yet."""
    if (
        isinstance(context.services.get(SERVICE_KEY), LinkStore)
        or links_path(context.home).exists()
    ):
        return open_store(context)
    return None


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
        raise LinkError("'kind' is required (contact, task, note, ...)")
    ghl_id, ct_id = params.get("ghl_id"), params.get("connecteam_id")
    if ghl_id is not None and ct_id is not None:
        raise LinkError("give ghl_id or connecteam_id, not both")
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
            raise LinkError(f"link metadata must not contain a secret (the value of {name})")


def links_get(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """``links.get``: the link for one id, or ``found: false``."""
    kind, ghl_id, ct_id = _side(params)
    if ghl_id is None and ct_id is None:
        return _not_found(kind)
    store = _existing_store(context)
    link = store.get(kind, ghl_id=ghl_id, connecteam_id=ct_id) if store else None
    return _found(link) if link else _not_found(kind)


def links_put(params: Mapping[str, Any], context: RunContext) -> dict[str, Any]:
    """``links.put``: link two ids (an idempotent upsert); returns the stored link."""
    kind = params.get("kind")
    ghl_id, ct_id = params.get("ghl_id"), params.get("connecteam_id")
    if ghl_id is None or ct_id is None:
        missing = "ghl_id" if ghl_id is None else "connecteam_id"
        raise LinkError(f"links.put needs both ids; {missing} is null")
    meta = params.get("meta") or {}
    _check_no_secrets(meta, context.env)
    link = open_store(context).put(str(kind) if kind is not None else "", ghl_id, ct_id, meta)
    return _found(link)


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
        raise LinkError("'kind' is required (contact, task, note, ...)")
    by_ghl = params.get("ghl_ids") is not None
    raw = params.get("ghl_ids") if by_ghl else params.get("connecteam_ids")
    if raw is None:
        raise LinkError("give ghl_ids or connecteam_ids (a list)")
    if not isinstance(raw, list | tuple):
        raise LinkError("ghl_ids / connecteam_ids must be a list")
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
            " links that reuse either id).",
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
