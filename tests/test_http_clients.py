"""The HTTP clients of a runtime: one per app for each thread that sends (connector.sending.http).

A serving process runs many runs at once, each on its own thread; through one shared httpx client
they queued on its connection pool's lock. These tests hold what replaced it, against a real
local server: each thread its own client and its own kept-alive connection, the app's settings
(base URL, auth) on every one, a thread's client closed when the thread ends, all of them at
``close()``, and one shared client when a transport is given.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest

from connector.apps import App
from connector.sending.http import KEEPALIVE_EXPIRY_SECONDS, Clients, make_clients

T = TypeVar("T")


class _Peers(BaseHTTPRequestHandler):
    """Answers every GET with the client's address (host:port) and the Authorization it sent."""

    protocol_version = "HTTP/1.1"  # keep-alive, as an API does

    def do_GET(self) -> None:
        body = f"{self.client_address[1]} {self.headers.get('Authorization', '')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Peers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _app(base_url: str) -> App:
    return App(
        name="api",
        title="An API",
        operations={},
        default_base_url=base_url,
        auth=lambda env: httpx.BasicAuth("user", env["API_SECRET"]),
    )


def _in_thread(func: Callable[[], T]) -> T:
    """``func()`` on a new thread, its result (or its exception raised here)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = func()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_each_thread_sends_through_a_client_and_a_connection_of_its_own(base_url: str) -> None:
    clients = make_clients([_app(base_url)], {"API_SECRET": "s3cret"})
    try:
        assert isinstance(clients, Clients)
        assert list(clients) == ["api"] and len(clients) == 1
        barrier = threading.Barrier(4)
        seen: dict[int, list[str]] = {}
        made: dict[int, httpx.Client] = {}

        def sender(i: int) -> None:
            client = clients["api"]
            assert clients["api"] is client  # the same thread: the same client
            made[i] = client
            barrier.wait()  # all four hold their client at once
            seen[i] = [client.get("x").text for _ in range(3)]

        threads = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(c) for c in made.values()}) == 4
        ports = {}
        for i, answers in seen.items():
            port_of = {a.split()[0] for a in answers}
            assert len(port_of) == 1, f"thread {i} changed connections: {answers}"  # kept alive
            ports[i] = port_of.pop()
            # the app's auth on every thread's client
            assert all(a.split()[1] == "Basic" for a in answers)
        assert len(set(ports.values())) == 4  # no connection shared between threads
        assert all(str(c.base_url) == base_url + "/" for c in made.values())
        assert len({id(c.auth) for c in made.values()}) == 1  # one auth for all
    finally:
        clients.close()


def test_a_threads_client_is_closed_when_the_thread_ends(base_url: str) -> None:
    clients = make_clients([_app(base_url)], {"API_SECRET": "s3cret"})
    try:
        client = _in_thread(lambda: clients["api"])
        assert isinstance(client, httpx.Client)
        gc.collect()  # the ended thread's object goes, and its client with it
        assert client.is_closed
        mine = clients["api"]
        assert mine is not client and not mine.is_closed
    finally:
        clients.close()


def test_close_closes_every_threads_client_and_makes_no_more(base_url: str) -> None:
    clients = make_clients([_app(base_url)], {"API_SECRET": "s3cret"})
    keep = threading.Event()
    release = threading.Event()
    held: list[httpx.Client] = []

    def holder() -> None:
        held.append(clients["api"])
        keep.set()
        release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    keep.wait(10)
    mine = clients["api"]
    clients.close()
    assert mine.is_closed and held[0].is_closed  # the live thread's too
    release.set()
    thread.join()
    with pytest.raises(RuntimeError, match="closed"):
        _in_thread(lambda: clients["api"])


def test_an_unknown_app_is_not_there(base_url: str) -> None:
    clients = make_clients([_app(base_url)], {"API_SECRET": "s3cret"})
    try:
        assert clients.get("nope") is None
        with pytest.raises(KeyError):
            clients["nope"]
        assert "api" in clients and "nope" not in clients
    finally:
        clients.close()


def test_with_a_transport_every_thread_shares_one_client() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="ok"))
    clients = make_clients([_app("http://api.test")], {"API_SECRET": "s3cret"}, transport=transport)
    mine = clients["api"]
    theirs = _in_thread(lambda: clients["api"])
    assert theirs is mine
    assert mine.get("x").text == "ok"
    clients.close()
    assert mine.is_closed


def test_a_connection_idle_near_five_seconds_is_not_used_again(base_url: str) -> None:
    """Many servers close an idle connection after 5 s; a request sent on one in that moment
    fails after it left (a write's outcome unknown). Idle longer than KEEPALIVE_EXPIRY_SECONDS, the
    client connects anew (this server never closes: httpx's own 5 s would have reused it)."""
    assert KEEPALIVE_EXPIRY_SECONDS < 5
    clients = make_clients([_app(base_url)], {"API_SECRET": "s3cret"})
    try:
        client = clients["api"]
        first = client.get("x").text.split()[0]
        assert client.get("x").text.split()[0] == first  # kept alive between quick requests
        time.sleep(KEEPALIVE_EXPIRY_SECONDS + 0.5)
        assert client.get("x").text.split()[0] != first  # a new connection
    finally:
        clients.close()
