"""The sandbox keeps an idle connection open longer than its clients keep one for reuse.

httpx reuses a connection that has been idle for up to 5 s; uvicorn, by default, closes one after
5 s. At that boundary a client sent a request on a connection the sandbox was closing and got
"Server disconnected without sending a response" (tests/runtime/test_crash.py met it reading the
sandbox's state; a runtime with a client per thread leaves its connections idle longer).
"""

from __future__ import annotations

import time

import httpx

from connector.sandbox import start_in_thread


def test_a_connection_idle_for_longer_than_uvicorns_default_is_still_open() -> None:
    connects: list[str] = []

    def trace(event: str, info: dict) -> None:
        if event == "connection.connect_tcp.complete":
            connects.append(event)

    with (
        start_in_thread() as running,
        httpx.Client(
            limits=httpx.Limits(keepalive_expiry=60)  # the client would reuse it: may the server?
        ) as client,
    ):
        url = f"{running.url}/_sandbox/state"
        assert client.get(url, extensions={"trace": trace}).status_code == 200
        time.sleep(5.5)  # past uvicorn's default keep-alive (5 s)
        assert client.get(url, extensions={"trace": trace}).status_code == 200
    # one connection for both: the sandbox had not closed it (at 5 s it had, and httpx, seeing
    # the socket closed, opened a second one)
    assert connects == ["connection.connect_tcp.complete"]
