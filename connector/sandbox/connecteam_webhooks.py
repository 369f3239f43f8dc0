"""Connecteam's webhooks: the ``/settings/v1/webhooks`` API, and the deliveries it asks for.

Registration (tag ``Settings:v1:Webhook`` of the document): ``POST /settings/v1/webhooks``
(``WebhookCreateRequest``: ``name``, ``url``, ``featureType`` and ``eventTypes`` required), ``GET``
with ``featureType``, ``limit`` and ``offset``, and ``GET``/``PUT``/``DELETE
/settings/v1/webhooks/{webhookId}`` (an integer). Answers are ``PublicBaseWebhookResponse`` in
``{requestId, data}`` (lists: ``{webhooks: [WebhookResponse]}`` with ``paging``). The URL must be
https, as Connecteam requires, except that ``http://localhost`` and loopback addresses
(``http://127.0.0.1``, any of 127.0.0.0/8, ``http://[::1]``) are accepted too: the sandbox runs on
this machine, and so does what it calls.
Unknown feature types and bad URLs are 422 in FastAPI's shape; the secret key is stored, never
shown (Connecteam does not publish how it signs with it, so the sandbox sends no signature).

Deliveries (vendor facts 5.2, 5.3): a change the Connecteam fake reports
(:meth:`~connector.sandbox.state.SandboxState.emit_connecteam`) goes to every enabled webhook whose
``featureType`` and ``eventTypes`` match (and, for tasks, whose ``entityId`` is the task board, or
none), as ``{"requestId", "company", "activityType", "eventType", "eventTimestamp",
"evnetTimestamp", "data": [...]}`` (the misspelt duplicate is Connecteam's). Each delivery has its
own ``requestId``, the same on its retries: up to 3, 60 s apart on the sandbox clock
(:data:`~connector.sandbox.delivery.CONNECTEAM_RETRY`).
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

from connector.sandbox.common import ApiError, Call, Reply, Routes
from connector.sandbox.connecteam import envelope
from connector.sandbox.delivery import CONNECTEAM_RETRY, Delivery, Dispatcher, RetryPolicy
from connector.sandbox.state import SandboxState

__all__ = ["FEATURE_TYPES", "ConnecteamWebhooks", "routes"]

routes = Routes()
FEATURE_TYPES = ("users", "forms", "time_activity", "tasks", "shift_scheduler", "chat")
ACTIVITY_TYPES = {"users": "User", "tasks": "Task"}
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FIELDS = ("name", "url", "secretKey", "isDisabled", "featureType", "entityId", "objectId")


def url_problem(url: str) -> dict[str, Any] | None:
    """The FastAPI-style error item for a webhook URL Connecteam would refuse, or None."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        msg = "invalid or missing URL scheme"
        return {"loc": ["body", "url"], "msg": msg, "type": "value_error.url.scheme"}
    # Connecteam accepts only https. The sandbox is local, so a receiver on this machine may be
    # plain http: http://localhost and loopback addresses (127.0.0.1, 127.0.0.2, [::1]; any port).
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(parts.hostname)):
        return None
    return {
        "loc": ["body", "url"],
        "msg": "URL scheme not permitted",
        "type": "value_error.url.scheme",
        "ctx": {"allowed_schemes": ["https"]},
    }


def _loopback(host: str | None) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def feature_problem(feature: str) -> dict[str, Any] | None:
    if feature in FEATURE_TYPES:
        return None
    permitted = ", ".join(f"'{f}'" for f in FEATURE_TYPES)
    return {
        "loc": ["body", "featureType"],
        "msg": f"value is not a valid enumeration member; permitted: {permitted}",
        "type": "type_error.enum",
    }


def problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """What the document's schema cannot say about a create or update body."""
    found = []
    if body.get("url") is not None:
        found.append(url_problem(str(body["url"])))
    if body.get("featureType") is not None:
        found.append(feature_problem(str(body["featureType"])))
    return [p for p in found if p is not None]


def render(state: SandboxState, hook: dict[str, Any], listed: bool = False) -> dict[str, Any]:
    """A stored webhook as ``PublicBaseWebhookResponse`` (``WebhookResponse`` when ``listed``)."""
    out = {k: v for k, v in hook.items() if k not in ("secretKey", "objectId")}
    if hook.get("objectId") is not None:
        out["objectId"] = hook["objectId"]
    out["retryLimit"] = state.connecteam_retry_limit
    if listed:
        out["origin"] = "organic"
    return out


def _owner(state: SandboxState) -> int:
    people = sorted(state.ct.users.values(), key=lambda u: u["userId"])
    for kind in ("owner", "manager"):
        for user in people:
            if user["userType"] == kind:
                return int(user["userId"])
    return 1


def add_webhook(state: SandboxState, body: dict[str, Any]) -> dict[str, Any]:
    """Store a webhook from a (valid) ``WebhookCreateRequest``; the stored record."""
    with state.lock:
        hook: dict[str, Any] = {
            "id": state.ct_id(),
            "name": str(body["name"]),
            "userId": _owner(state),
            "timeCreated": int(state.now()),
            "url": str(body["url"]),
            "isDisabled": bool(body.get("isDisabled", False)),
            "featureType": str(body["featureType"]),
            "entityId": body.get("entityId"),
            "objectId": body.get("objectId"),
            "eventTypes": [str(e) for e in body["eventTypes"]],
            "webhookVersion": int(body.get("webhookVersion") or 1),
            "secretKey": body.get("secretKey"),
        }
        if hook["entityId"] is None and hook["objectId"] is not None:
            hook["entityId"] = str(hook["objectId"])
        state.ct.webhooks[hook["id"]] = hook
        return hook


def _hook(call: Call) -> dict[str, Any]:
    hook = call.state.ct.webhooks.get(int(call.path["webhookId"]))
    if hook is None:
        raise ApiError(404, f"Webhook {call.path['webhookId']} not found")
    return hook


@routes("POST", "/settings/v1/webhooks")
def create_webhook(call: Call) -> Reply:
    found = problems(call.body)
    if found:
        return 422, {"detail": found}
    return 200, envelope(render(call.state, add_webhook(call.state, call.body)))


@routes("GET", "/settings/v1/webhooks")
def list_webhooks(call: Call) -> Reply:
    q = call.query
    hooks = sorted(call.state.ct.webhooks.values(), key=lambda h: h["id"])
    if q.get("featureType"):
        hooks = [h for h in hooks if h["featureType"] == q["featureType"]]
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 10))
    page = hooks[offset : offset + limit]
    data = {"webhooks": [render(call.state, h, listed=True) for h in page]}
    return 200, envelope(data, {"offset": offset + len(page), "total": len(hooks)})


@routes("GET", "/settings/v1/webhooks/{webhookId}")
def get_webhook(call: Call) -> Reply:
    return 200, envelope(render(call.state, _hook(call)))


@routes("PUT", "/settings/v1/webhooks/{webhookId}")
def update_webhook(call: Call) -> Reply:
    hook = _hook(call)
    found = problems(call.body)
    if found:
        return 422, {"detail": found}
    for key in (*FIELDS, "eventTypes", "webhookVersion"):  # null means "leave it"
        if call.body.get(key) is not None:
            hook[key] = call.body[key]
    if call.body.get("entityId") is None and call.body.get("objectId") is not None:
        hook["entityId"] = str(call.body["objectId"])
    return 200, envelope(render(call.state, hook))


@routes("DELETE", "/settings/v1/webhooks/{webhookId}")
def delete_webhook(call: Call) -> Reply:
    del call.state.ct.webhooks[_hook(call)["id"]]
    return 200, envelope({})


class ConnecteamWebhooks:
    """Delivers the Connecteam fake's changes to the registered webhooks, through ``dispatcher``.

    Webhooks live in the state (``POST /_sandbox/reset`` forgets them, as it forgets every
    change); :meth:`register` adds one without going through the API.
    """

    def __init__(
        self,
        state: SandboxState,
        dispatcher: Dispatcher | None = None,
        retry: RetryPolicy = CONNECTEAM_RETRY,
    ) -> None:
        self.state = state
        self.retry = retry
        self.dispatcher = dispatcher or Dispatcher(state.clock)
        state.connecteam_retry_limit = retry.retries
        state.connecteam_listeners.append(self.on_change)

    def register(
        self,
        url: str,
        feature_type: str,
        event_types: list[str],
        *,
        name: str = "sandbox webhook",
        secret_key: str | None = None,
        entity_id: str | None = None,
        disabled: bool = False,
    ) -> dict[str, Any]:
        """Register a webhook as ``POST /settings/v1/webhooks`` would; the answer's ``data``.
        ValueError when Connecteam would refuse it (not https nor loopback, unknown feature type,
        no event types)."""
        found = [url_problem(url), feature_problem(feature_type)]
        messages = [f"{p['loc'][-1]}: {p['msg']}" for p in found if p is not None]
        if not event_types:
            messages.append("eventTypes: ensure this value has at least 1 items")
        if messages:
            raise ValueError("; ".join(messages))
        body = {
            "name": name,
            "url": url,
            "featureType": feature_type,
            "eventTypes": list(event_types),
            "secretKey": secret_key,
            "entityId": entity_id,
            "isDisabled": disabled,
        }
        return render(self.state, add_webhook(self.state, body))

    def unregister(self, webhook_id: int) -> bool:
        """Delete a webhook; False if there was none with that id."""
        with self.state.lock:
            return self.state.ct.webhooks.pop(int(webhook_id), None) is not None

    def registered(self) -> list[dict[str, Any]]:
        with self.state.lock:
            hooks = sorted(self.state.ct.webhooks.values(), key=lambda h: h["id"])
            return [render(self.state, h) for h in hooks]

    def on_change(self, feature: str, event: str, items: list[dict[str, Any]]) -> None:
        with self.state.lock:
            hooks = [
                dict(h)
                for h in sorted(self.state.ct.webhooks.values(), key=lambda h: h["id"])
                if not h["isDisabled"] and h["featureType"] == feature and event in h["eventTypes"]
            ]
            company = self.state.ct.company_id
            now = int(self.state.now())
        for hook in hooks:
            data = items
            if feature == "tasks" and hook.get("entityId"):
                data = [i for i in items if str(i.get("taskBoardId")) == str(hook["entityId"])]
            if not data:
                continue
            body = _body(company, now, feature, event, data)
            raw = json.dumps(body, separators=(",", ":")).encode()
            self.dispatcher.submit(
                Delivery("connecteam", hook["url"], event, body["requestId"], raw, self.retry)
            )

    def payload(self, feature: str, event: str, items: list[dict[str, Any]]) -> dict[str, Any]:
        """The body a webhook registered for ``feature`` and ``event`` gets for ``items``."""
        with self.state.lock:
            company, now = self.state.ct.company_id, int(self.state.now())
        return _body(company, now, feature, event, items)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until no delivery (of either vendor) is due or in flight (for tests)."""
        return self.dispatcher.flush(timeout)

    def close(self) -> None:
        """Stop the delivery thread (which GoHighLevel's webhooks share)."""
        self.dispatcher.close()


def _body(
    company: Any, now: int, feature: str, event: str, data: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "requestId": str(uuid.uuid4()),
        "company": company,
        "activityType": ACTIVITY_TYPES.get(feature, feature),
        "eventType": event,
        "eventTimestamp": now,
        "evnetTimestamp": now,  # sic: Connecteam's deprecated duplicate
        "data": data,
    }
