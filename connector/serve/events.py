"""What arrives, as events (:class:`~connector.apps.events.Event`): each app's webhook routes
read their deliveries into events as the app declares (:attr:`App.webhooks
<connector.apps.App.webhooks>`); a hook is one event of the recipe it names.

Each event has the app and type recipes' triggers name, the payload that is ``trigger`` in
templates, and a *key* unique to it (the delivery's id, and the item's index), from which its
runs' ids are made: a delivery that arrives twice makes the same run ids, and a run id exists
once. The *subject* of an event is the record it is about (``ghl:contact:ID``), with the record's
fields as the event shows them; the intake uses it to recognise a change the runtime itself wrote
(:mod:`connector.persistence.echoes`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from connector.apps.events import Event, digest_of

__all__ = ["Event", "digest_of", "hook_event", "run_id_for"]


def run_id_for(event: Event, recipe: str) -> str:
    """The id of ``recipe``'s run for ``event``: the same for every delivery of the event."""
    return "run_" + hashlib.sha256(f"{event.key}\x00{recipe}".encode()).hexdigest()[:20]


def hook_event(recipe: str, payload: dict[str, Any], idempotency_key: str | None) -> Event:
    """The event a ``POST /hooks/{recipe}`` carries; with an ``Idempotency-Key``, sending it
    again makes the same run."""
    key = f"hook:{recipe}:{idempotency_key}" if idempotency_key else None
    return Event("hook", recipe, payload, key or "")
