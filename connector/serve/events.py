"""What arrives, as events: a GoHighLevel webhook is one event, a Connecteam webhook one event
per item of its ``data``, a hook one event of the recipe it names.

Each event has the app and type recipes' triggers name (``ghl`` / ``ContactUpdate``,
``connecteam`` / ``user_created``), the payload that is ``trigger`` in templates, and a *key*
unique to it (the delivery's id, and the item's index), from which its runs' ids are made: a
delivery that arrives twice makes the same run ids, and a run id exists once.

A Connecteam event keeps the envelope's fields (``requestId``, ``company``, ``eventType``,
``activityType``, ``eventTimestamp``) with ``data`` the one item it is about:
``{{ trigger.data.userId }}``.

The *subject* of an event is the record it is about (``ghl:contact:ID``,
``connecteam:user:ID``), with the record's fields as the event shows them; the intake uses it to
recognise a change the runtime itself wrote (:mod:`connector.persistence.echoes`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connector.serve.signatures import Rejected

__all__ = ["Event", "connecteam_events", "digest_of", "ghl_event", "hook_event", "run_id_for"]

# GoHighLevel event types about a contact whose payload is the contact itself
GHL_CONTACT_EVENTS = frozenset(
    {"ContactCreate", "ContactUpdate", "ContactDelete", "ContactTagUpdate", "ContactDndUpdate"}
)
CONNECTEAM_USER_EVENTS = frozenset({"user_created", "user_updated"})


@dataclass(frozen=True)
class Event:
    app: str
    type: str
    payload: dict[str, Any]
    key: str  # unique to this event: "ghl:<webhookId>", "connecteam:<requestId>#<index>"
    subject: str | None = None  # the record it is about, for echoes and ordering
    fields: Mapping[str, Any] | None = None  # that record's fields as the event shows them


def digest_of(value: Any) -> str:
    """A short, stable digest of a JSON-like value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def run_id_for(event: Event, recipe: str) -> str:
    """The id of ``recipe``'s run for ``event``: the same for every delivery of the event."""
    return "run_" + hashlib.sha256(f"{event.key}\x00{recipe}".encode()).hexdigest()[:20]


def ghl_event(payload: dict[str, Any]) -> Event:
    """A verified GoHighLevel webhook body as its event (400 when it names no ``type``)."""
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        raise Rejected("the webhook has no 'type'", status=400)
    webhook_id = payload.get("webhookId")
    # without a webhookId (older deliveries), the signed body itself identifies the delivery
    key = f"ghl:{webhook_id}" if isinstance(webhook_id, str) and webhook_id else None
    subject = fields = None
    if kind in GHL_CONTACT_EVENTS and isinstance(payload.get("id"), str):
        subject, fields = f"ghl:contact:{payload['id']}", payload
    return Event("ghl", kind, payload, key or f"ghl-body:{digest_of(payload)}", subject, fields)


def connecteam_events(envelope: dict[str, Any]) -> list[Event]:
    """A Connecteam webhook (``{requestId, company, eventType, eventTimestamp, data: [...]}``) as
    one event per item of ``data`` (400 when it is not that envelope)."""
    kind = envelope.get("eventType")
    if not isinstance(kind, str) or not kind:
        raise Rejected("the webhook has no 'eventType'", status=400)
    data = envelope.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise Rejected("the webhook's 'data' must be a list of objects", status=400)
    request_id = envelope.get("requestId")
    base = (
        f"connecteam:{request_id}"
        if isinstance(request_id, str | int) and str(request_id)
        else f"connecteam-body:{digest_of(envelope)}"
    )
    head = {k: v for k, v in envelope.items() if k != "data"}
    events = []
    for index, item in enumerate(data):
        subject = fields = None
        if kind in CONNECTEAM_USER_EVENTS and item.get("userId") is not None:
            subject, fields = f"connecteam:user:{item['userId']}", item
        events.append(
            Event("connecteam", kind, {**head, "data": item}, f"{base}#{index}", subject, fields)
        )
    return events


def hook_event(recipe: str, payload: dict[str, Any], idempotency_key: str | None) -> Event:
    """The event a ``POST /hooks/{recipe}`` carries; with an ``Idempotency-Key``, sending it
    again makes the same run."""
    key = f"hook:{recipe}:{idempotency_key}" if idempotency_key else None
    return Event("hook", recipe, payload, key or "")
