"""A sandbox served with a middleware that records every vendor request it answers, for the
paging tests: (method, path, query string, body) in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from connector.db import close_all
from connector.sandbox.server import SandboxApp, bind, create_app, server_for
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
    def __init__(self, app: SandboxApp, counting: Counting, url: str) -> None:
        self.app = app
        self.counting = counting
        self.url = url
        state = app.state_
        self.env = {
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
    def requests(self) -> list[Request]:
        return self.counting.requests


@contextmanager
def counted_sandbox(**options: Any) -> Iterator[CountedSandbox]:
    """A fresh sandbox (``options`` go to ``create_app``) on a thread, its requests recorded."""
    app = create_app(None, None, **options)
    counting = Counting(app)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = server_for(counting, "127.0.0.1", port)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the sandbox did not start"
        time.sleep(0.01)
    try:
        yield CountedSandbox(app, counting, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        app.close()
        close_all()
