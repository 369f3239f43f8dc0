"""The HTTP face of ``connector serve``: a Starlette app (routes and answers in CONTRACT.md).

Each app's webhooks (:attr:`App.webhooks <connector.apps.App.webhooks>`) are mounted at
``POST /webhooks/<path>``, and every request to one goes the same way: the app admits it (a
secret in the URL), the body is read within bounds, the app verifies it (a signature) and reads
it into events, and the intake stores their runs. Beside them: ``POST /hooks/{recipe}``,
``GET /healthz``, ``GET /metrics`` and the run history page.

Every refusal is a JSON ``{"error": ...}`` with the status the contract gives, and never a
traceback: 401 for a bad or missing signature or token, 404 for a wrong secret in the URL or an
unknown recipe, 413 for a body over 1 MiB, 400 for anything malformed or stale, 408 for a body
sent too slowly (:func:`read_body`), 503 when the event could not be stored or too many bodies
are being read at once (the vendor sends it again). Signature checks and parsing run on the event
loop for a body of a few KiB (:data:`INLINE_CHECK_BYTES`), else on a few threads of their own
(:data:`CHECKING_THREADS`); storing runs on the thread pool; the answer goes
once the event's runs are on the durable queue. Whatever else fails is answered by
:class:`~connector.serve.guard.Guard`: a 500 with a request id, one log line.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.apps import App
from connector.apps.events import Rejected, Webhook
from connector.serve.bodies import MAX_BODY_BYTES, read_json
from connector.serve.events import hook_event
from connector.serve.guard import BODY_SECONDS, Guard
from connector.serve.intake import Intake
from connector.serve.metrics import CONTENT_TYPE
from connector.ui import mount
from connector.ui.access import LoginGuard, client_address

__all__ = ["MAX_PENDING_BODIES", "Mounted", "ServeSettings", "build_app", "mark_ready", "read_body"]

log = logging.getLogger("connector.serve")

REASONS = {401: "signature", 413: "too_large", 400: "malformed", 408: "slow", 503: "busy"}
# Bodies read and checked at once before their sender is known (a webhook's signature, a hook's
# token): past this a delivery is answered 503 at once (the vendor sends it again), so a flood of
# forged bodies holds a bounded amount of memory and work.
MAX_PENDING_BODIES = 64
# Threads that check signatures and parse bodies (off the event loop, apart from the threads that
# store events, so a flood of forged bodies cannot hold up legitimate ones being stored).
CHECKING_THREADS = 4
# A body this small is checked and parsed on the event loop (a signature check and a parse of a
# few KiB take about 0.1 ms, less than handing it to a thread and back).
INLINE_CHECK_BYTES = 16 * 1024
# Wrong CONNECTOR_HOOK_TOKENs from one client address, past which its hooks are refused 429 (no
# overall bound: guessing from many addresses must not shut out the scripts that know the token)
HOOK_GUESSES_PER_ADDRESS = "20/15 minutes"


@dataclass(frozen=True)
class Mounted:
    """One app's webhook as served: the app's name (the source ``/metrics`` counts it under),
    the :class:`~connector.apps.events.Webhook`, and its settings, read from the environment."""

    app: str
    webhook: Webhook
    settings: Any

    @property
    def route(self) -> str:
        return f"/webhooks/{self.webhook.path}"


class ServeSettings:
    """What the routes check deliveries against (from the environment)."""

    def __init__(
        self,
        webhooks: Sequence[Mounted],
        hook_token: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.webhooks = list(webhooks)
        self.hook_token = hook_token or None
        self.clock = clock  # what a webhook's timestamp is compared with

    @classmethod
    def from_env(
        cls, apps: Iterable[App], env: Mapping[str, str], clock: Callable[[], float] = time.time
    ) -> ServeSettings:
        """Every webhook of ``apps``, with its settings read from ``env`` (a variable that is set
        but unusable is a :class:`~connector.errors.UsageError`), and ``CONNECTOR_HOOK_TOKEN``."""
        mounted = [
            Mounted(app.name, webhook, webhook.settings(env))
            for app in apps
            for webhook in app.webhooks
        ]
        return cls(mounted, env.get("CONNECTOR_HOOK_TOKEN"), clock)


# a body refused as too big is still read (and dropped) up to this many times the limit, for
# at most this long, so that its client gets the 413 rather than a reset connection
DRAIN_FACTOR = 4
DRAIN_SECONDS = 2.0


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_body(
    request: Request, limit: int = MAX_BODY_BYTES, seconds: float = BODY_SECONDS
) -> bytes:
    """The body, read no further than ``limit`` bytes past which it is refused (413), and
    within ``seconds`` (408: a client sending it slowly is cut off)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        await _drain(request, int(declared), limit)
        raise Rejected(f"the body is {declared} bytes; at most {limit} are accepted", 413)
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(seconds) as deadline:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                # the rest is read and dropped, a little of it (see _drain), then refused
                if size > DRAIN_FACTOR * limit:
                    break
                chunks = []
                continue
            chunks.append(chunk)
    if size > limit:
        raise Rejected(f"the body is over {limit} bytes; at most {limit} are accepted", 413)
    if deadline.cancelled_caught:
        raise Rejected(f"the body was not sent within {seconds:.0f} s", 408)
    return b"".join(chunks)


async def _drain(request: Request, size: int, limit: int) -> None:
    """Read and drop the rest of a body that is refused as too big, when it is not much bigger
    (at most :data:`DRAIN_FACTOR` times the limit, within :data:`DRAIN_SECONDS`): a client
    still sending when the connection closes may lose the answer (the close resets what it has
    not read), so one that sent a little too much is told 413 instead of seeing its connection
    cut. A far bigger or slower body is not waited for."""
    if size > DRAIN_FACTOR * limit:
        return
    read = 0
    with anyio.move_on_after(DRAIN_SECONDS):
        async for chunk in request.stream():
            read += len(chunk)
            if read > DRAIN_FACTOR * limit:
                return


def build_app(intake: Intake, settings: ServeSettings) -> Starlette:
    metrics = intake.metrics
    state = {"ready": False}
    pending = {"bodies": 0}
    checking = anyio.CapacityLimiter(CHECKING_THREADS)
    guesses = LoginGuard(HOOK_GUESSES_PER_ADDRESS, overall=None)  # wrong hook tokens

    def busy(source: str) -> JSONResponse:
        metrics.refused.labels(source, "busy").inc()
        answer = _error(503, "too many deliveries are being read; send it again")
        answer.headers["Retry-After"] = "1"
        return answer

    def refuse(source: str, exc: Rejected) -> JSONResponse:
        metrics.refused.labels(source, exc.kind or REASONS.get(exc.status, "malformed")).inc()
        answer = _error(exc.status, exc.reason)
        if exc.status in (408, 413):  # the rest of the body is not waited for
            answer.headers["Connection"] = "close"
        return answer

    async def store(source: str, delivery: str | None, events: Any, started: float) -> Response:
        try:
            accepted = await run_in_threadpool(intake.accept, source, delivery, events)
        except Exception as exc:  # the database: the vendor retries a non-2xx delivery
            log.error("could not store a %s delivery: %s", source, type(exc).__name__)
            metrics.refused.labels(source, "unavailable").inc()
            return _error(503, "the event could not be stored; send it again")
        metrics.answer_seconds.labels(source).observe(time.perf_counter() - started)
        return JSONResponse(accepted.to_json())

    def receiver(mounted: Mounted) -> Callable[[Request], Any]:
        source, webhook, config = mounted.app, mounted.webhook, mounted.settings

        def check(raw: bytes, headers: Any, now: float) -> Any:
            if webhook.verify is not None:
                webhook.verify(config, raw, headers)
            return webhook.parse(config, read_json(raw), now)

        async def receive(request: Request) -> Response:
            started = time.perf_counter()
            if pending["bodies"] >= MAX_PENDING_BODIES:
                return busy(source)
            pending["bodies"] += 1
            try:
                if webhook.admit is not None:
                    webhook.admit(config, request.path_params, request.headers)
                raw = await read_body(request)
                if len(raw) <= INLINE_CHECK_BYTES:  # a vendor's usual event: quicker than a hop
                    delivered = check(raw, request.headers, settings.clock())
                else:
                    delivered = await anyio.to_thread.run_sync(
                        partial(check, raw, request.headers, settings.clock()), limiter=checking
                    )
            except Rejected as exc:
                return refuse(source, exc)
            except ClientDisconnect:
                raise
            except Exception as exc:  # the app's code failed: the vendor sends it again
                log.error(
                    "request %s: a %s delivery could not be read: %s",
                    getattr(request.state, "request_id", "-"),
                    source,
                    type(exc).__name__,
                )
                metrics.refused.labels(source, "error").inc()
                return _error(500, "the delivery could not be read")
            finally:
                pending["bodies"] -= 1
            return await store(source, delivered.delivery_id, list(delivered.events), started)

        return receive

    async def hook(request: Request) -> Response:
        name = request.path_params["recipe"]
        token = settings.hook_token
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if token is None:
            metrics.refused.labels("hook", "token").inc()
            return _error(401, "hooks are refused: CONNECTOR_HOOK_TOKEN is not set")
        address = client_address(request)
        wait = guesses.refused_for(address)
        if wait:  # too many wrong tokens from there: refused without looking
            metrics.refused.labels("hook", "token").inc()
            refused = _error(429, f"too many wrong tokens: try again in {int(wait) + 1} s")
            refused.headers["Retry-After"] = str(int(wait) + 1)
            return refused
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            guesses.failed(address)
            metrics.refused.labels("hook", "token").inc()
            return _error(401, "a valid 'Authorization: Bearer <CONNECTOR_HOOK_TOKEN>' is required")
        plan = intake.router.plans.get(name)
        if plan is None:
            metrics.refused.labels("hook", "unknown_recipe").inc()
            return _error(404, f"no recipe named {name!r} is served")
        try:
            raw = await read_body(request)
            payload = await anyio.to_thread.run_sync(read_json, raw, limiter=checking)
        except Rejected as exc:
            return refuse("hook", exc)
        event = hook_event(name, payload, request.headers.get("idempotency-key"))
        metrics.received.labels("hook").inc()
        try:
            run_id, held = await run_in_threadpool(intake.place, plan, event)
        except Exception as exc:
            log.error("could not store a hook for %s: %s", name, type(exc).__name__)
            return _error(503, "the event could not be stored; send it again")
        answer: dict[str, Any] = {"run_id": run_id}
        if held:  # the recipe is paused: the run starts when it is resumed
            answer["held"] = True
        return JSONResponse(answer, status_code=202)

    async def healthz(request: Request) -> Response:
        if not state["ready"]:
            return _error(503, "not ready")
        return JSONResponse({"status": "ok", "recipes": sorted(intake.router.plans)})

    async def metrics_text(request: Request) -> Response:
        body = await run_in_threadpool(metrics.text)
        return Response(body, media_type=CONTENT_TYPE)

    webhooks = [Route(m.route, receiver(m), methods=["POST"]) for m in settings.webhooks]
    app = Starlette(
        routes=[
            *webhooks,
            Route("/hooks/{recipe}", hook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_text, methods=["GET"]),
        ],
        middleware=[Middleware(Guard)],
    )
    app.state.readiness = state
    app.state.intake = intake
    # the run history page, at /
    mount(app, intake.runtime, intake.router.plans, start=intake.run_now, syncs=intake.syncs.syncs)
    return app


def mark_ready(app: Starlette, ready: bool = True) -> None:
    app.state.readiness["ready"] = ready
