"""GoHighLevel's Contacts API v3 (``Version: v3``, ``apps/v3/contacts-v3.json``) beside
``2021-07-28``: the same contacts, tasks, notes and tags behind both, read and answered in the
shapes each version's document gives.

The pipeline (:mod:`connector.sandbox.ghl`) picks the operation by the request's ``Version``
header and validates the request against that version's schemas. Around the handler, which keeps
one way of storing records, this module turns a v3 request into the stored form
(:func:`stored_input`) and a reply into v3's shapes (:func:`shaped_reply`). What v3 changes, from
the two documents:

- ``dndSettings`` names its channels in lower camel case (``DndSettingsSchemaV3``: ``call``,
  ``email``, ``sms``, ``whatsApp``, ``gmb``, ``fb``) where 2021-07-28 writes ``Call``, ``Email``,
  ``SMS``, ``WhatsApp``, ``GMB``, ``FB``; in requests and in answers.
- A custom field's value may be sent as ``fieldValue`` (as well as ``field_value``).
- Answers say ``succeeded`` (spelt right) where 2021-07-28 says ``succeded``; a v3 answer keeps
  ``succeded`` only where its document still lists it (as deprecated).
- A v3 answer carries the fields its document gives and no others (the contacts of
  ``GET /contacts/business/{businessId}`` are v3's ``ContactsSearchSchema``, for one).

Webhook events are not versioned: they keep their one shape whichever version made the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from connector.catalog.model import Operation
from connector.sandbox.common import Reply

__all__ = ["DND_CHANNELS", "V3", "shaped_reply", "stored_input"]

V3 = "v3"

#: 2021-07-28's name of each DND channel -> v3's
DND_CHANNELS = {
    "Call": "call",
    "Email": "email",
    "SMS": "sms",
    "WhatsApp": "whatsApp",
    "GMB": "gmb",
    "FB": "fb",
}
_DND_STORED = {v3: stored for stored, v3 in DND_CHANNELS.items()}


def _is_v3(op: Operation | None) -> bool:
    return op is not None and op.version == V3


def _renamed(value: Any, names: Mapping[str, str]) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {names.get(k, k): v for k, v in value.items()}


def stored_input(op: Operation | None, body: Any) -> Any:
    """A request body of ``op`` as the handlers store it: a v3 body's ``dndSettings`` channels
    and custom fields' ``fieldValue`` in 2021-07-28's names; other bodies as they are."""
    if not _is_v3(op) or not isinstance(body, Mapping):
        return body
    out = dict(body)
    if "dndSettings" in out:
        out["dndSettings"] = _renamed(out["dndSettings"], _DND_STORED)
    fields = out.get("customFields")
    if isinstance(fields, list):
        out["customFields"] = [
            {**f, "field_value": f["fieldValue"]}
            if isinstance(f, Mapping) and "fieldValue" in f and "field_value" not in f
            else f
            for f in fields
        ]
    return out


def _v3_shape(value: Any) -> Any:
    if isinstance(value, list):
        return [_v3_shape(v) for v in value]
    if not isinstance(value, Mapping):
        return value
    out = {k: _v3_shape(v) for k, v in value.items()}
    if isinstance(out.get("dndSettings"), Mapping):
        out["dndSettings"] = _renamed(out["dndSettings"], DND_CHANNELS)
    return out


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The properties ``schema`` lists, with those of its ``allOf`` members."""
    props: dict[str, Any] = dict(schema.get("properties") or {})
    for member in schema.get("allOf") or []:
        if isinstance(member, Mapping):
            props.update(_properties(member))
    return props


def _documented(value: Any, schema: Any) -> Any:
    """``value`` with only the fields ``schema`` documents, where it lists them (an object
    schema without properties, or one of alternatives, keeps what it is given)."""
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, list):
        items = schema.get("items")
        return [_documented(v, items) for v in value] if isinstance(items, Mapping) else value
    if not isinstance(value, Mapping):
        return value
    props = _properties(schema)
    if not props:
        return value
    return {k: _documented(v, props[k]) for k, v in value.items() if k in props}


def shaped_reply(op: Operation | None, reply: Reply) -> Reply:
    """A handler's reply to ``op``, in the shapes of ``op``'s version: for v3, its names (see
    the module's docstring) and only the fields its document gives (2021-07-28 replies, and
    replies that are already responses, as they are)."""
    if op is None or not _is_v3(op) or isinstance(reply, Response):
        return reply
    status, payload = reply
    if not isinstance(payload, Mapping):
        return reply
    shaped = _v3_shape(payload)
    if "succeded" in shaped:
        shaped["succeeded"] = shaped["succeded"]
    if status == op.response_status and op.response_schema:
        shaped = _documented(shaped, op.response_schema)
    return status, shaped
