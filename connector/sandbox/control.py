"""The sandbox's own control endpoints under ``/_sandbox`` (not part of either vendor's API).

- ``GET /_sandbox/state``: the whole world as JSON (sandbox tokens included, on purpose).
- ``POST /_sandbox/reset``: back to the seed; rate-limit counters and the grants log cleared.
- ``GET``/``POST``/``DELETE /_sandbox/faults``: the fault rules, as ``{"seed": N, "rules": [...]}``
  or ``{"seed": N, "specs": ["503:0.5,path=/ghl"]}`` (see :mod:`connector.sandbox.faults`).
- ``GET /_sandbox/connecteam/users/{userId}/notes``: a Connecteam user's notes (Connecteam's API
  has no endpoint that lists them).
- ``GET /_sandbox/oauth``: every token grant answered, in order, as ``{"grants": [{"app": "ghl" |
  "connecteam", "grant_type": "authorization_code" | "refresh_token" | "location_token" |
  "client_credentials", "time": EPOCH_SECONDS (sandbox clock), "ok": bool, "status": HTTP status,
  "error": OAuth error code or null, "client_id", "user_type", "location_id", "company_id"}]}``
  from ``/ghl/oauth/token``, ``/ghl/oauth/locationToken`` and ``/connecteam/oauth/v1/token``
  (refusals included). No token, code or secret is in it; ``POST /_sandbox/reset`` clears it.
- ``GET``/``POST /_sandbox/clock``: the sandbox clock, ``{"now": EPOCH_SECONDS, "offset": S}``;
  ``POST {"advance": S}`` (a number, at least 0) moves it forward: tokens expire, rate-limit
  windows roll, webhook retries fall due.
- ``GET``/``POST /_sandbox/webhooks``: where GoHighLevel-style events are sent (``{"url": ...}``),
  and on ``GET`` every delivery attempt of both vendors (``sent``: vendor, url, event, deliveryId,
  attempt, status or error, time, nextAttemptAt), the retries still to come (``pending``) and the
  registered Connecteam webhooks (``connecteam``); ``GET /_sandbox/webhooks/public-key`` to verify
  ``x-wh-signature`` (``?scheme=ed25519``: ``x-ghl-signature``); ``GET
  /_sandbox/webhooks/public-keys`` gives both as ``{"ed25519": PEM, "rsa": PEM}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router

from connector.errors import UsageError
from connector.sandbox.clock import SandboxClock
from connector.sandbox.faults import FaultConfig, FaultInjector, FaultRule, parse_fault
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.state import SandboxState

if TYPE_CHECKING:
    from connector.sandbox.connecteam_webhooks import ConnecteamWebhooks
    from connector.sandbox.webhooks import WebhookEmitter

__all__ = ["build_control_app"]


def build_control_app(
    state: SandboxState,
    limiter: RateLimiter,
    faults: FaultInjector | None,
    webhooks: WebhookEmitter | None,
    *,
    clock: SandboxClock | None = None,
    connecteam_webhooks: ConnecteamWebhooks | None = None,
) -> Router:
    async def dump(request: Request) -> Response:
        return Response(state.dump_json(), media_type="application/json")

    async def reset(request: Request) -> Response:
        state.reset()
        limiter.reset()
        return JSONResponse({"reset": True})

    async def grants(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"grants": [dict(g) for g in state.grants]})

    async def get_faults(request: Request) -> Response:
        config = faults.config if faults else FaultConfig()
        body = config.to_json()
        body["fired"] = dict(faults.counts) if faults else {}
        return JSONResponse(body)

    async def set_faults(request: Request) -> Response:
        if faults is None:
            return JSONResponse({"detail": "fault injection is not installed"}, status_code=409)
        try:
            data: Any = await request.json()
            if not isinstance(data, dict):
                raise UsageError("send a JSON object: {seed, rules: [...]} or {seed, specs: [...]}")
            rules = [FaultRule.from_json(r) for r in data.get("rules", [])]
            rules += [parse_fault(s) for s in data.get("specs", [])]
            faults.configure(FaultConfig(rules, int(data.get("seed", 0))))
        except (UsageError, ValueError, TypeError) as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(faults.config.to_json())

    async def clear_faults(request: Request) -> Response:
        if faults is not None:
            faults.configure(FaultConfig())
        return JSONResponse({"seed": 0, "rules": []})

    async def user_notes(request: Request) -> Response:
        raw = request.path_params["userId"]
        with state.lock:
            if not raw.isdigit() or int(raw) not in state.ct.users:
                return JSONResponse({"detail": f"User {raw} not found"}, status_code=404)
            notes = [
                {k: v for k, v in n.items() if v is not None} for n in state.ct.notes[int(raw)]
            ]
        return JSONResponse({"notes": notes})

    async def get_clock(request: Request) -> Response:
        if clock is None:
            return JSONResponse({"now": state.now(), "offset": 0.0})
        return JSONResponse(clock.to_json())

    async def advance_clock(request: Request) -> Response:
        if clock is None:
            return JSONResponse({"detail": "the sandbox clock is not adjustable"}, status_code=409)
        try:
            data: Any = await request.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or "advance" not in data:
            return JSONResponse({"detail": 'send {"advance": SECONDS}'}, status_code=400)
        try:
            clock.advance(data["advance"])
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        return JSONResponse(clock.to_json())

    async def get_webhooks(request: Request) -> Response:
        hooks = connecteam_webhooks.registered() if connecteam_webhooks else []
        if webhooks is None:
            return JSONResponse({"url": None, "sent": [], "pending": [], "connecteam": hooks})
        sent, pending = webhooks.dispatcher.log(), webhooks.dispatcher.pending()
        return JSONResponse(
            {"url": webhooks.url, "sent": sent, "pending": pending, "connecteam": hooks}
        )

    async def set_webhooks(request: Request) -> Response:
        if webhooks is None:
            return JSONResponse({"detail": "webhook emission is not available"}, status_code=409)
        try:
            data = await request.json()
            url = data.get("url") if isinstance(data, dict) else None
        except ValueError:
            url = None
        webhooks.url = str(url) if url else None
        return JSONResponse({"url": webhooks.url})

    async def public_key(request: Request) -> Response:
        if webhooks is None:
            return PlainTextResponse("webhook signing is not available", status_code=409)
        scheme = request.query_params.get("scheme", "rsa")
        if scheme not in ("rsa", "ed25519"):
            return PlainTextResponse("scheme must be rsa or ed25519", status_code=400)
        return PlainTextResponse(webhooks.public_key_pem(scheme))

    async def public_keys(request: Request) -> Response:
        if webhooks is None:
            return PlainTextResponse("webhook signing is not available", status_code=409)
        return JSONResponse(
            {
                "ed25519": webhooks.public_key_pem("ed25519").decode(),  # X-GHL-Signature
                "rsa": webhooks.public_key_pem("rsa").decode(),  # X-WH-Signature
            }
        )

    return Router(
        routes=[
            Route("/state", dump, methods=["GET"]),
            Route("/reset", reset, methods=["POST"]),
            Route("/oauth", grants, methods=["GET"]),
            Route("/faults", get_faults, methods=["GET"]),
            Route("/faults", set_faults, methods=["POST"]),
            Route("/faults", clear_faults, methods=["DELETE"]),
            Route("/connecteam/users/{userId}/notes", user_notes, methods=["GET"]),
            Route("/clock", get_clock, methods=["GET"]),
            Route("/clock", advance_clock, methods=["POST"]),
            Route("/webhooks", get_webhooks, methods=["GET"]),
            Route("/webhooks", set_webhooks, methods=["POST"]),
            Route("/webhooks/public-key", public_key, methods=["GET"]),
            Route("/webhooks/public-keys", public_keys, methods=["GET"]),
        ]
    )
