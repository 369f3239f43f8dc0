"""What keeps ``connector serve`` standing on a public address: no traceback from any route,
and slow clients cut off.

- :class:`Guard` (ASGI middleware around every route) gives each request an id
  (``request.state.request_id``). A client that went away mid-request (Starlette's
  ``ClientDisconnect``) is one debug line; anything else a route raises is answered
  ``500 {"error": ..., "request_id": ...}`` and logged as one line with that id: never a
  traceback, whoever sends what.
- :class:`TimedH11Protocol` (uvicorn's h11 protocol) closes a connection whose request line and
  headers have not all arrived within :data:`HEADER_SECONDS` (a slowloris on the headers); a body
  has its own deadline in the app (:data:`BODY_SECONDS`, :func:`connector.serve.app.read_body`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["BODY_SECONDS", "HEADER_SECONDS", "KEEP_ALIVE_SECONDS", "Guard", "TimedH11Protocol"]

log = logging.getLogger("connector.serve")

HEADER_SECONDS = 5.0  # from the connection (or the end of the last answer) to a whole header block
BODY_SECONDS = 10.0  # from the headers to the last byte of the body
KEEP_ALIVE_SECONDS = 5  # an idle kept-alive connection is closed after this
MAX_HEADER_BYTES = 64 * 1024  # h11's bound on a request line and headers


def _where(scope: Scope) -> str:
    """The route in a log line: never a path segment past the second (a webhook secret)."""
    parts = str(scope.get("path", "")).split("/")
    return "/".join(parts[:3]) + ("/..." if len(parts) > 3 else "")


class Guard:
    """Request ids, and every failure of a route as one log line (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except ClientDisconnect:
            log.debug("request %s %s: the client went away", request_id, _where(scope))
        except OSError as exc:  # the connection broke while answering
            log.debug("request %s %s: %s", request_id, _where(scope), type(exc).__name__)
        except Exception as exc:
            log.error(
                "request %s %s %s failed: %s",
                request_id,
                scope.get("method", ""),
                _where(scope),
                type(exc).__name__,
            )
            if not started:
                await _answer_500(send, request_id)


async def _answer_500(send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "error": "the server failed; its log has a line with this request id",
            "request_id": request_id,
        }
    ).encode()
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
    except Exception:  # the client is gone
        pass


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are slower than
    :data:`HEADER_SECONDS` (uvicorn times out idle kept-alive connections, not slow headers)."""

    header_seconds = HEADER_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _waiting_for_headers(self) -> bool:
        cycle = self.cycle
        return cycle is None or cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            log.debug(
                "a connection sent no whole request within %.0f s: closed", self.header_seconds
            )
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._waiting_for_headers():
            self._arm()
        super().data_received(data)
        if not self._waiting_for_headers():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the kept-alive connection now waits for the next request (uvicorn's keep-alive timer
        # covers it idle; this one covers it sending a request slowly)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_limits() -> dict[str, Any]:
    """The settings of :class:`uvicorn.Config` that bound clients."""
    return {
        "http": TimedH11Protocol,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
