"""Assemble the sandbox app and serve it on a real server, in the foreground or in a thread.

``create_app()`` builds the ASGI app: GoHighLevel under ``/ghl``, Connecteam under
``/connecteam``, the control endpoints under ``/_sandbox``, with fault injection around it all and
bounded request bodies in front of each (:mod:`connector.sandbox.bodylimit`). One
:class:`~connector.sandbox.clock.SandboxClock` times the state, the rate limiter, the faults and
the webhook retries; one :class:`~connector.sandbox.delivery.Dispatcher` thread delivers both
vendors' webhooks.
``start_in_thread()`` serves it with uvicorn on a background thread (port 0 picks a free port)
and returns a :class:`RunningSandbox` whose ``env`` points the apps at it; ``connector run
--sandbox`` overlays that ``env`` on the environment of the run.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from connector.errors import ConnectorError
from connector.sandbox.bodylimit import BodyLimit
from connector.sandbox.clock import SandboxClock
from connector.sandbox.connecteam import build_connecteam_app
from connector.sandbox.connecteam_webhooks import ConnecteamWebhooks
from connector.sandbox.control import build_control_app
from connector.sandbox.delivery import CONNECTEAM_RETRY, GHL_RETRY, Dispatcher, RetryPolicy
from connector.sandbox.faults import FaultConfig, FaultInjector
from connector.sandbox.ghl import build_ghl_app, ghl_error
from connector.sandbox.ratelimit import RateLimitConfig, RateLimiter
from connector.sandbox.state import Clock, SandboxState, load_seed
from connector.sandbox.webhooks import WebhookEmitter

__all__ = ["RunningSandbox", "SandboxApp", "SandboxError", "create_app", "start_in_thread"]


class SandboxError(ConnectorError):
    """The sandbox could not start."""


class SandboxApp(Starlette):
    """The sandbox's Starlette app. Requests pass the fault injector first: it must sit outside
    Starlette's own middleware to reach the server's connection when it drops one."""

    state_: SandboxState
    clock: SandboxClock
    limiter: RateLimiter
    faults: FaultInjector
    dispatcher: Dispatcher
    webhooks: WebhookEmitter  # GoHighLevel's: set ``webhooks.url`` to receive them
    connecteam_webhooks: ConnecteamWebhooks  # ``connecteam_webhooks.register(url, ...)``

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.faults(scope, receive, send)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until no webhook delivery is due or in flight; False if ``timeout`` passed."""
        return self.dispatcher.flush(timeout)

    def close(self) -> None:
        """Stop the webhook delivery thread (retries not yet made are dropped)."""
        self.dispatcher.close()

    async def _inner(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(
    seed: Path | Mapping[str, Any] | None = None,
    faults: FaultConfig | None = None,
    *,
    limits: RateLimitConfig | None = None,
    clock: Clock = time.time,
    webhook_url: str | None = None,
    ghl_retry: RetryPolicy = GHL_RETRY,
    connecteam_retry: RetryPolicy = CONNECTEAM_RETRY,
    webhook_timeout: float = 5.0,
) -> SandboxApp:
    """The sandbox as an ASGI app; ``seed`` is a seed file, a parsed seed, or None (shipped seed).

    ``clock`` is the base of the sandbox clock (``POST /_sandbox/clock`` adds to it); a
    :class:`SandboxClock` is used as it is. ``ghl_retry`` and ``connecteam_retry`` are the
    vendors' retry schedules, ``webhook_timeout`` how long (real seconds) a delivery attempt waits
    for an answer.
    """
    data = seed if isinstance(seed, Mapping) else load_seed(seed)
    now = clock if isinstance(clock, SandboxClock) else SandboxClock(clock)
    state = SandboxState(data, clock=now)
    limiter = RateLimiter(limits, clock=now)
    dispatcher = Dispatcher(now, timeout=webhook_timeout)
    now.watch(dispatcher.wake)
    webhooks = WebhookEmitter(state, webhook_url, dispatcher, ghl_retry)
    connecteam_webhooks = ConnecteamWebhooks(state, dispatcher, connecteam_retry)
    app = SandboxApp()
    injector = FaultInjector(app._inner, faults, clock=now)
    dispatcher.loses = lambda delivery: injector.loses_webhook(delivery.vendor)
    control = build_control_app(
        state, limiter, injector, webhooks, clock=now, connecteam_webhooks=connecteam_webhooks
    )
    app.router.routes.extend(
        [
            Mount("/ghl", app=BodyLimit(build_ghl_app(state, limiter), ghl_error)),
            Mount("/connecteam", app=BodyLimit(build_connecteam_app(state, limiter), _detail)),
            Mount("/_sandbox", app=BodyLimit(control, _detail)),
        ]
    )
    app.state_, app.clock, app.limiter, app.faults = state, now, limiter, injector
    app.dispatcher, app.webhooks = dispatcher, webhooks
    app.connecteam_webhooks = connecteam_webhooks
    return app


def _detail(status: int, message: str) -> dict[str, Any]:
    """Connecteam's (FastAPI's) error body, which the control endpoints use too."""
    return {"detail": message}


class RunningSandbox:
    """A sandbox served on a background thread. Use it as a context manager, or call stop()."""

    def __init__(
        self, app: SandboxApp, server: uvicorn.Server, thread: threading.Thread, url: str
    ) -> None:
        self.app = app
        self.server = server
        self.thread = thread
        self.url = url
        state = app.state_
        self.env: dict[str, str] = {
            "GHL_BASE_URL": f"{url}/ghl",
            "GHL_TOKEN": state.default_token,
            "GHL_LOCATION_ID": state.default_location_id,
            "CONNECTEAM_BASE_URL": f"{url}/connecteam",
            "CONNECTEAM_API_KEY": state.default_api_key,
        }

    @property
    def state(self) -> SandboxState:
        return self.app.state_

    @property
    def clock(self) -> SandboxClock:
        """The sandbox clock: ``clock.advance(60)`` does what ``POST /_sandbox/clock`` does."""
        return self.app.clock

    def stop(self) -> None:
        """Stop serving and wait for the server thread to end; stop delivering webhooks."""
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.app.close()

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SandboxError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    # Accepted connections inherit TCP_NODELAY: without it, uvicorn's separate writes of headers
    # and body meet the client's delayed ACK and every response is ~40 ms late.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


# How long the sandbox keeps an idle connection open: longer than clients keep one for reuse
# (httpx: 5 s). At uvicorn's default, also 5 s, a client could send on a connection in the very
# moment the sandbox closed it, and get "Server disconnected without sending a response".
KEEP_ALIVE_SECONDS = 30


def server_for(app: ASGIApp, host: str, port: int) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=3,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return uvicorn.Server(config)


def start_in_thread(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: Path | Mapping[str, Any] | None = None,
    faults: FaultConfig | None = None,
    wrap: Callable[[SandboxApp], ASGIApp] | None = None,
    **options: Any,
) -> RunningSandbox:
    """Serve a fresh sandbox on a background thread; ``port=0`` picks a free port.

    ``options`` go to :func:`create_app` (``limits``, ``clock``, ``webhook_url``, ``ghl_retry``,
    ``connecteam_retry``, ``webhook_timeout``); ``wrap`` puts a middleware in front of the app
    (tests count or withhold requests with one).
    """
    app = create_app(seed, faults, **options)
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    server = server_for(wrap(app) if wrap is not None else app, host, bound)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"sandbox-{bound}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise SandboxError(f"the sandbox server did not start on {host}:{bound}")
        time.sleep(0.01)
    shown = f"[{host}]" if ":" in host else host
    return RunningSandbox(app, server, thread, f"http://{shown}:{bound}")
