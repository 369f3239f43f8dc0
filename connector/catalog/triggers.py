"""The trigger catalog: hand-written events plus the webhooks of Connecteam's OpenAPI document.

``triggers_source.yaml`` (beside this module) holds GoHighLevel's webhook events, the seed's
Connecteam events (``contact.selected``, ``contact.created``, ``contact.updated``,
``task.created``), ``schedule.cron`` and ``manual.*``. Connecteam's own events are the entries
under ``webhooks`` of its document. Their event name is the key in snake case: lowercase, every
run of characters other than letters and digits replaced by ``_`` (``"User created"`` ->
``user_created``, ``"Time activity admin approved clock out without NFC request"`` ->
``time_activity_admin_approved_clock_out_without_nfc_request``); the payload schema is the
schema the document gives for the webhook's call, with references resolved. Snake case keeps
them apart from the seed's dotted names. ``data``, a list in the webhook, is one item in the
event (``connector serve`` runs each item as its own event).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from connector.catalog.resolve import DocumentSet

__all__ = ["SOURCE", "build_triggers", "webhook_event_name"]

SOURCE = Path(__file__).with_name("triggers_source.yaml")


def webhook_event_name(key: str) -> str:
    """A Connecteam ``webhooks`` key as an event name: ``"User created"`` -> ``user_created``."""
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def _entry(
    app: str,
    event: str,
    description: str,
    schema: Any,
    source: str,
    any_event: bool = False,
    vendor_name: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "app": app,
        "event": event,
        "description": description,
        "payload_schema": schema,
        "source": source,
        "any_event": any_event,
    }
    if vendor_name is not None:
        entry["vendor_name"] = vendor_name
    return entry


def _webhook_schema(operation: dict[str, Any]) -> Any:
    """The payload schema of a webhook: its request body, else its 2xx response's schema.

    Connecteam's document describes each payload as the webhook's *response* schema.
    """
    body = (operation.get("requestBody") or {}).get("content") or {}
    for content in body.values():
        if content.get("schema"):
            return content["schema"]
    for status in sorted(operation.get("responses") or {}):
        if str(status).startswith("2"):
            content = (operation["responses"][status].get("content") or {}).values()
            for c in content:
                if c.get("schema"):
                    return c["schema"]
    return None


def build_triggers(
    connecteam_doc: dict[str, Any], connecteam_file: Path, docs: DocumentSet
) -> dict[str, Any]:
    """The ``triggers.json`` document: hand-written events, then Connecteam's webhooks."""
    import yaml

    try:
        with open(SOURCE, encoding="utf-8") as fh:
            source = yaml.safe_load(fh)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"cannot read the trigger source {SOURCE}: {exc}") from exc
    triggers = [
        _entry(
            t["app"],
            t["event"],
            t.get("description", ""),
            t.get("payload_schema"),
            SOURCE.name,
            bool(t.get("any_event", False)),
        )
        for t in source["triggers"]
    ]
    seen = {(t["app"], t["event"]) for t in triggers}
    for key, item in (connecteam_doc.get("webhooks") or {}).items():
        for method in sorted(item):
            op = item[method]
            if not isinstance(op, dict):
                continue
            event = webhook_event_name(key)
            if ("connecteam", event) in seen:
                raise ValueError(f"Connecteam webhook {key!r} collides with event {event!r}")
            seen.add(("connecteam", event))
            schema = _webhook_schema(op)
            summary = op.get("summary") or key
            description = f"{summary} (Connecteam webhook {key!r})."
            resolved = docs.resolve(schema, connecteam_file) if schema is not None else None
            triggers.append(
                _entry(
                    "connecteam",
                    event,
                    description,
                    _one_item(resolved),
                    connecteam_file.name,
                    vendor_name=key,
                )
            )
    return {"triggers": triggers}


def _one_item(schema: Any) -> Any:
    """A webhook's schema as ``connector serve`` hands it to a run: each item of ``data`` is its
    own event, so ``data`` is one item (``{{ trigger.data.userId }}``), not the list."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return schema
    data = schema["properties"].get("data")
    if not isinstance(data, dict) or data.get("type") != "array":
        return schema
    item = dict(data.get("items") or {"type": "object"})
    said = str(data.get("description") or "").rstrip(".")
    item["description"] = (
        f"{said}: one item of the webhook's `data` (connector serve runs each as its own event)"
    ).lstrip(": ")
    return {**schema, "properties": {**schema["properties"], "data": item}}
