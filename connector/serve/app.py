"""The HTTP face of ``connector serve``: a Starlette app (routes and answers in CONTRACT.md).

Every refusal is a JSON ``{"error": ...}`` with the status the contract gives, and never a
traceback: 401 for a bad or missing signature or token, 404 for a wrong Connecteam secret or an
unknown recipe, 413 for a body over 1 MiB, 400 for anything malformed or stale, 503 when the
event could not be stored (the vendor sends it again). Reading and storing run in a worker
thread; the answer goes once the event's runs are on the durable queue.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.serve.bodies import MAX_BODY_BYTES, read_json
from connector.serve.events import connecteam_events, ghl_event, hook_event
from connector.serve.intake import Intake
from connector.serve.metrics import CONTENT_TYPE
from connector.serve.signatures import Rejected, WebhookKeys, check_timestamp, verify_ghl
from connector.ui import mount

__all__ = ["ServeSettings", "build_app", "mark_ready"]

log = logging.getLogger("connector.serve")

REASONS = {401: "signature", 413: "too_large", 400: "malformed"}


class ServeSettings:
    """What the routes check deliveries against (from the environment)."""

    def __init__(
        self,
        keys: WebhookKeys,
        connecteam_secret: str | None,
        hook_token: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.connecteam_secret = connecteam_secret or None
        self.hook_token = hook_token or None
        self.clock = clock  # what a GoHighLevel timestamp is compared with


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _read(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, read no further than ``limit`` bytes past which it is refused (413)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(f"the body is {declared} bytes; at most {limit} are accepted", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(f"the body is over {limit} bytes; at most {limit} are accepted", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(intake: Intake, settings: ServeSettings) -> Starlette:
    metrics = intake.metrics
    state = {"ready": False}

    def refuse(source: str, exc: Rejected) -> JSONResponse:
        metrics.refused.labels(source, exc.kind or REASONS.get(exc.status, "malformed")).inc()
        return _error(exc.status, exc.reason)

    async def store(source: str, delivery: str | None, events: Any, started: float) -> Response:
        try:
            accepted = await run_in_threadpool(intake.accept, source, delivery, events)
        except Exception as exc:  # the database: the vendor retries a non-2xx delivery
            log.error("could not store a %s delivery: %s", source, type(exc).__name__)
            metrics.refused.labels(source, "unavailable").inc()
            return _error(503, "the event could not be stored; send it again")
        metrics.answer_seconds.labels(source).observe(time.perf_counter() - started)
        return JSONResponse(accepted.to_json())

    async def ghl(request: Request) -> Response:
        started = time.perf_counter()
        try:
            raw = await _read(request)
            verify_ghl(raw, request.headers, settings.keys)
            payload = read_json(raw)
            check_timestamp(payload, settings.clock())
            event = ghl_event(payload)
        except Rejected as exc:
            return refuse("ghl", exc)
        webhook_id = payload.get("webhookId")
        delivery = webhook_id if isinstance(webhook_id, str) and webhook_id else event.key
        return await store("ghl", delivery, [event], started)

    async def connecteam(request: Request) -> Response:
        started = time.perf_counter()
        secret = request.path_params["secret"]
        expected = settings.connecteam_secret
        if expected is None or not hmac.compare_digest(secret.encode(), expected.encode()):
            metrics.refused.labels("connecteam", "secret").inc()
            return _error(404, "Not Found")
        try:
            envelope = read_json(await _read(request))
            events = connecteam_events(envelope)
        except Rejected as exc:
            return refuse("connecteam", exc)
        request_id = envelope.get("requestId")
        delivery = str(request_id) if request_id not in (None, "") else None
        return await store("connecteam", delivery, events, started)

    async def hook(request: Request) -> Response:
        name = request.path_params["recipe"]
        token = settings.hook_token
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if token is None:
            metrics.refused.labels("hook", "token").inc()
            return _error(401, "hooks are refused: CONNECTOR_HOOK_TOKEN is not set")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            metrics.refused.labels("hook", "token").inc()
            return _error(401, "a valid 'Authorization: Bearer <CONNECTOR_HOOK_TOKEN>' is required")
        plan = intake.router.plans.get(name)
        if plan is None:
            metrics.refused.labels("hook", "unknown_recipe").inc()
            return _error(404, f"no recipe named {name!r} is served")
        try:
            payload = read_json(await _read(request))
        except Rejected as exc:
            return refuse("hook", exc)
        event = hook_event(name, payload, request.headers.get("idempotency-key"))
        metrics.received.labels("hook").inc()
        try:
            run_id = await run_in_threadpool(intake.enqueue, plan, event)
        except Exception as exc:
            log.error("could not store a hook for %s: %s", name, type(exc).__name__)
            return _error(503, "the event could not be stored; send it again")
        return JSONResponse({"run_id": run_id}, status_code=202)

    async def healthz(request: Request) -> Response:
        if not state["ready"]:
            return _error(503, "not ready")
        return JSONResponse({"status": "ok", "recipes": sorted(intake.router.plans)})

    async def metrics_text(request: Request) -> Response:
        body = await run_in_threadpool(metrics.text)
        return Response(body, media_type=CONTENT_TYPE)

    app = Starlette(
        routes=[
            Route("/webhooks/ghl", ghl, methods=["POST"]),
            Route("/webhooks/connecteam/{secret}", connecteam, methods=["POST"]),
            Route("/hooks/{recipe}", hook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
        ]
    )
    app.state.readiness = state
    app.state.intake = intake
    mount(app, intake.runtime, intake.router.plans)  # the run history page, at /
    return app


def mark_ready(app: Starlette, ready: bool = True) -> None:
    app.state.readiness["ready"] = ready
