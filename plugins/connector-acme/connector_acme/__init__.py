"""connector plugin: the Acme widgets API as a whole app.

Acme is a small vendor API (a stand-in for any you would add): widgets with a ``version`` that
grows with each change, and notes on them. Everything ``connector`` knows of it is declared here,
on its :class:`~connector.apps.App`, the way the built-in GoHighLevel and Connecteam apps declare
theirs:

- three operations: ``acme.get-widget``, ``acme.list-widgets`` and ``acme.add-note``, at
  ``ACME_BASE_URL`` with the key ``ACME_API_KEY`` in ``X-Acme-Key``;
- the trigger event ``acme`` / ``widget.updated``;
- a webhook route, ``POST /webhooks/acme``: the body signed with HMAC-SHA256 under
  ``ACME_WEBHOOK_SECRET``, sent as ``X-Acme-Signature: sha256=<hex>`` (:func:`sign`); a request
  without a good signature is refused with 401 and runs nothing;
- a poll of ``widget.updated`` (``trigger.poll``): the widgets whose ``version`` grew since the
  last poll, for the changes no webhook told of;
- its rate-limit headers: ``X-Acme-Calls-Left: 0`` means the window is spent, and
  ``X-Acme-Calls-Reset-Ms`` how many milliseconds until it refills; a throttled request waits
  that long before it is sent again. Its budget, 10 calls per 2 seconds, is counted in the shared
  rate budget, which the same headers correct.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any

from connector import hookimpl
from connector.apps import App
from connector.apps.events import Delivered, Event, Poll, Poller, Rejected, Webhook
from connector.apps.limits import RateLimitHeaders, RateWindow
from connector.catalog.model import Operation, Parameter, TriggerEvent

__all__ = [
    "APP",
    "RATE_LIMIT_HEADERS",
    "SECRET_ENV",
    "SIGNATURE_HEADER",
    "WEBHOOK",
    "WidgetPoller",
    "register_apps",
    "register_triggers",
    "sign",
]

APP = "acme"
SECRET_ENV = "ACME_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Acme-Signature"
EVENT = "widget.updated"
DEFAULT_BASE_URL = "https://api.acme.example"

_WIDGET = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The widget's id."},
        "name": {"type": "string", "description": "Its name."},
        "version": {"type": "integer", "description": "Grows by one with each change."},
    },
}

OPERATIONS = (
    Operation(
        name="acme.get-widget",
        app=APP,
        method="GET",
        path="/widgets/{widgetId}",
        summary="Get a widget",
        parameters=(
            Parameter(name="widgetId", location="path", required=True, schema={"type": "string"}),
        ),
        response_schema={"type": "object", "properties": {"widget": _WIDGET}},
    ),
    Operation(
        name="acme.list-widgets",
        app=APP,
        method="GET",
        path="/widgets",
        summary="List the widgets changed since a version",
        parameters=(Parameter(name="since", location="query", schema={"type": "integer"}),),
        response_schema={
            "type": "object",
            "properties": {"widgets": {"type": "array", "items": _WIDGET}},
        },
    ),
    Operation(
        name="acme.add-note",
        app=APP,
        method="POST",
        path="/widgets/{widgetId}/notes",
        summary="Add a note to a widget",
        parameters=(
            Parameter(name="widgetId", location="path", required=True, schema={"type": "string"}),
            Parameter(name="text", location="body", required=True, schema={"type": "string"}),
        ),
        body_schema={
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string"}},
        },
        body_required=True,
        response_status=201,
    ),
)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Acme-Signature`` of ``body``: ``sha256=`` and the hex HMAC-SHA256 under
    ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# -- the webhook ------------------------------------------------------------------------------


def _secret(env: Mapping[str, str]) -> str | None:
    return env.get(SECRET_ENV) or None


def _verify(secret: str | None, body: bytes, headers: Mapping[str, str]) -> None:
    if secret is None:
        raise Rejected(f"{SECRET_ENV} is not set: Acme webhooks are refused")
    given = next((v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower()), None)
    if not given:
        raise Rejected(f"no signature: {SIGNATURE_HEADER} is required")
    if not hmac.compare_digest(given.strip().encode(), sign(secret, body).encode()):
        raise Rejected(f"{SIGNATURE_HEADER} does not match the body")


def _parse(secret: str | None, payload: dict[str, Any], now: float) -> Delivered:
    """``{"id": DELIVERY, "type": "widget.updated", "widget": {"id": ..., ...}}``: one event."""
    delivery, kind, widget = payload.get("id"), payload.get("type"), payload.get("widget")
    if not isinstance(delivery, str) or not delivery:
        raise Rejected("the webhook has no 'id'", status=400)
    if not isinstance(kind, str) or not kind:
        raise Rejected("the webhook has no 'type'", status=400)
    if not isinstance(widget, dict) or not isinstance(widget.get("id"), str):
        raise Rejected("the webhook's 'widget' must be an object with an 'id'", status=400)
    subject = f"{APP}:widget:{widget['id']}"
    return Delivered([Event(APP, kind, payload, f"{APP}:{delivery}", subject, widget)], delivery)


WEBHOOK = Webhook(
    path=APP,
    settings=_secret,
    verify=_verify,
    parse=_parse,
    env=(SECRET_ENV,),
    description=f"signed with HMAC-SHA256 under {SECRET_ENV} ({SIGNATURE_HEADER})",
)


# -- the poll ---------------------------------------------------------------------------------


class WidgetPoller(Poller):
    """One recipe's poll of Acme widgets: each widget whose ``version`` is past the cursor (the
    highest version the last poll saw) is the recipe's event, keyed by (id, version), so a widget
    seen twice runs once. The first poll only looks; the cursor moves once the runs are stored."""

    def poll(self) -> list[str]:
        self.next_at = self.clock() + self.every
        stored = self.cursors.get(self.name)
        since = int(stored) if stored else 0
        widgets = self._widgets(since)
        latest = max([since, *(int(w["version"]) for w in widgets)])
        runs: list[str] = []
        if stored is not None:  # the first poll only looks: the webhooks had the past
            events = [
                Event(
                    APP,
                    self.plan.trigger_event,
                    {"type": self.plan.trigger_event, "widget": w},
                    f"poll:{APP}:{w['id']}:{w['version']}",
                    f"{APP}:widget:{w['id']}",
                    w,
                )
                for w in widgets
            ]
            runs = self.accept("poll", events, self.plan) if events else []
        self.cursors.put(self.name, str(latest))
        return runs

    def _widgets(self, since: int) -> list[dict[str, Any]]:
        response = self.runtime.clients[APP].get("/widgets", params={"since": since})
        if response.status_code != 200:
            raise RuntimeError(f"GET /widgets answered {response.status_code}")
        found = response.json().get("widgets")
        return [
            w
            for w in (found if isinstance(found, list) else [])
            if isinstance(w, dict)
            and isinstance(w.get("id"), str)
            and isinstance(w.get("version"), int)
        ]


# -- the app ----------------------------------------------------------------------------------


def _auth(env: Mapping[str, str]) -> Any:
    from connector.sending.auth import APIKeyAuth

    key = env.get("ACME_API_KEY")
    return APIKeyAuth("X-Acme-Key", key) if key else None


RATE_LIMIT_HEADERS = RateLimitHeaders(
    windows=(
        RateWindow(
            remaining="X-Acme-Calls-Left",
            reset="X-Acme-Calls-Reset-Ms",
            resets="after-milliseconds",
            limit="X-Acme-Calls-Limit",
            budget="burst",
        ),
    )
)


@hookimpl
def register_apps(register: Callable[[App], None]) -> None:
    register(
        App(
            name=APP,
            title="Acme",
            description="Acme widgets API",
            operations={op.name: op for op in OPERATIONS},
            default_base_url=DEFAULT_BASE_URL,
            base_url_env="ACME_BASE_URL",
            auth=_auth,
            secret_env=("ACME_API_KEY", SECRET_ENV),
            rate_limits=((10, 2.0, "burst"),),
            rate_limit_headers=RATE_LIMIT_HEADERS,
            webhooks=(WEBHOOK,),
            polls={EVENT: Poll(WidgetPoller, what="Acme widgets")},
        )
    )


@hookimpl
def register_triggers(register: Callable[[TriggerEvent], None]) -> None:
    register(
        TriggerEvent(
            app=APP,
            event=EVENT,
            description="A widget changed: its webhook, or a poll that found it.",
            payload_schema={
                "type": "object",
                "properties": {
                    "id": {"type": "string", "description": "The delivery's id."},
                    "type": {"type": "string"},
                    "widget": _WIDGET,
                },
            },
        )
    )
