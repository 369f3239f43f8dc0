"""A sandbox served with a middleware that records every vendor request it answers, for the
paging tests: (method, path, query string, body) in order."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox, SandboxApp, start_in_thread
from connector.sandbox.state import SandboxState

__all__ = ["CountedSandbox", "counted_sandbox"]

Request = tuple[str, str, str, bytes]


class Counting:
    """ASGI middleware: each ``/ghl`` and ``/connecteam`` request, before it is answered; with
    ``kill_at`` (path, n, callback), the callback runs instead of the ``n``th request to
    ``path``, which is then left unanswered."""

    def __init__(self, app: SandboxApp) -> None:
        self.app = app
        self.requests: list[Request] = []
        self.kill_at: tuple[str, int, Any] | None = None
        self.refuse_at: tuple[str, int] | None = None  # answered 400, as an API refuses a page

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(("/ghl", "/connecteam")):
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        entry = (scope["method"], path, scope.get("query_string", b"").decode(), body)
        if self.kill_at is not None and path == self.kill_at[0]:
            asked = sum(1 for r in self.requests if r[1] == path) + 1
            if asked == self.kill_at[1]:
                self.kill_at[2]()
                return  # the client is gone: nothing is answered
        self.requests.append(entry)
        refused = self.refuse_at is not None and path == self.refuse_at[0]
        if refused and sum(1 for r in self.requests if r[1] == path) == self.refuse_at[1]:  # type: ignore[index]
            answer = b'{"statusCode":400,"message":"startAfterId is not valid"}'
            start = {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"application/json")],
            }
            await send(start)
            await send({"type": "http.response.body", "body": answer})
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class CountedSandbox:
    """A running sandbox and the requests its :class:`Counting` middleware saw."""

    def __init__(self, running: RunningSandbox, counting: Counting) -> None:
        self.running = running
        self.counting = counting
        self.app = running.app
        self.url = running.url
        self.env = running.env

    @property
    def state(self) -> SandboxState:
        return self.running.state

    @property
    def requests(self) -> list[Request]:
        return self.counting.requests


@contextmanager
def counted_sandbox(**options: Any) -> Iterator[CountedSandbox]:
    """A fresh sandbox (``options`` go to ``create_app``) on a thread, its requests recorded."""
    made: list[Counting] = []

    def wrap(app: SandboxApp) -> Counting:
        made.append(Counting(app))
        return made[0]

    running = start_in_thread(wrap=wrap, **options)
    try:
        yield CountedSandbox(running, made[0])
    finally:
        running.stop()
        close_all()
