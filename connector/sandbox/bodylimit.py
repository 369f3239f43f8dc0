"""Request bodies within bounds: 413 past 1 MiB, 400 for JSON nested deeper than 32 levels.

:class:`BodyLimit` sits in front of each fake (and the control endpoints). A ``Content-Length``
over the limit is refused before a byte is read; a body without one (chunked) is counted while it
is read and refused as soon as it passes the limit. The body is then scanned for nesting with
:func:`connector.serve.bodies.depth` (brackets inside strings do not count), before anything parses
it, so a hostile body cannot exhaust the parser's stack; form-encoded and multipart bodies are not
JSON and are not scanned. The error body is the vendor's (``error_body(status, message)``).
The limits are :data:`~connector.serve.bodies.MAX_BODY_BYTES` and
:data:`~connector.serve.bodies.MAX_DEPTH`, the same as the intake of ``connector serve``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.serve.bodies import MAX_BODY_BYTES, MAX_DEPTH, depth

__all__ = ["BodyLimit"]

ErrorBody = Callable[[int, str], Any]
_NOT_JSON = (b"application/x-www-form-urlencoded", b"multipart/form-data")


class BodyLimit:
    """ASGI middleware: bounded request bodies, refused with ``error_body(status, message)``."""

    def __init__(
        self,
        app: ASGIApp,
        error_body: ErrorBody,
        *,
        max_bytes: int = MAX_BODY_BYTES,
        max_depth: int = MAX_DEPTH,
    ) -> None:
        self.app = app
        self.error_body = error_body
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send, 413, self._too_large(int(declared)))
            return
        chunks: list[bytes] = []
        size = 0
        last: Message | None = None
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                last = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, 413, self._too_large(size, counted=True), close=True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)
        kind = headers.get(b"content-type", b"").lower()
        if not kind.startswith(_NOT_JSON) and raw.count(b"[") + raw.count(b"{") > self.max_depth:
            nested = depth(raw.decode("utf-8", errors="replace"))
            if nested > self.max_depth:
                text = f"JSON nested {nested} levels deep; at most {self.max_depth} are accepted"
                await self._refuse(send, 400, text)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return last if last is not None else await receive()

        await self.app(scope, replay, send)

    def _too_large(self, size: int, counted: bool = False) -> str:
        amount = f"more than {self.max_bytes}" if counted else str(size)
        return f"request entity too large: {amount} bytes; at most {self.max_bytes} are accepted"

    async def _refuse(self, send: Send, status: int, message: str, close: bool = False) -> None:
        payload = json.dumps(self.error_body(status, message)).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        if close:  # the rest of the body is not read
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
