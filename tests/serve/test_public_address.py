"""`connector serve` on a public address, tried as an attacker would: clients that go away
mid-body, slow headers and bodies, a flood of forged 1 MiB bodies, a route that fails, and a
second serving process on one SQLite file. The server's own log shows no traceback after any
of them."""

from __future__ import annotations

import json
import logging
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.config import tls_context
from connector.errors import ConnectorError
from connector.serve.guard import BODY_SECONDS, HEADER_SECONDS
from connector.serve.server import Service
from tests.runtime.e2e_support import LOCAL
from tests.serve.conftest import Served, shipped, wait_for

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

MiB = 1024 * 1024


class Caught(logging.Handler):
    """Every log record of the server (connector's, uvicorn's, Starlette's), formatted whole."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")):  # the test's own client
            return
        self.records.append(record)
        self.lines.append(logging.Formatter().format(record))

    def tracebacks(self) -> list[str]:
        return [
            line
            for line in self.lines
            if "Traceback" in line or "Exception in ASGI application" in line
        ]


@pytest.fixture()
def log() -> Iterator[Caught]:
    caught = Caught()
    names = ["", "uvicorn"]  # the others propagate to one of these
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.addHandler(caught)
        logger.setLevel(logging.DEBUG)
    yield caught
    for name in names:
        logging.getLogger(name).removeHandler(caught)
        logging.getLogger(name).setLevel(saved[name])


@pytest.fixture()
def served(serve_with: Callable[..., Served], log: Caught) -> Served:
    served = serve_with(wire=False)
    # uvicorn configured its loggers as it started: catch them again
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    if log not in logging.getLogger("uvicorn").handlers:
        logging.getLogger("uvicorn").addHandler(log)
    return served


def _address(served: Served) -> tuple[str, int]:
    host, port = served.url.removeprefix("http://").split(":")
    return host, int(port)


def _connect(served: Served) -> socket.socket:
    sock = socket.create_connection(_address(served))
    sock.settimeout(HEADER_SECONDS + BODY_SECONDS + 30)  # the test fails rather than hangs
    return sock


def _closed_by_server(sock: socket.socket, keep_sending: bytes = b"") -> bytes:
    """Everything the server sends until it closes ``sock``, sending ``keep_sending`` a byte at
    a time meanwhile (a slow client that never finishes)."""
    got = b""
    sock.settimeout(0.5)
    deadline = time.monotonic() + HEADER_SECONDS + BODY_SECONDS + 30
    i = 0
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if keep_sending:
                try:
                    sock.sendall(keep_sending[i % len(keep_sending) : i % len(keep_sending) + 1])
                except OSError:
                    return got
                i += 1
            continue
        except ConnectionResetError:
            return got
        if not chunk:
            return got
        got += chunk
    raise AssertionError("the server kept a slow client's connection open")


def _ghl(
    served: Served, body: dict[str, Any], forged: bool = False
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    headers = dict(served.sandbox.app.webhooks.signatures(raw))
    if forged:
        headers = {"x-ghl-signature": headers["x-ghl-signature"][::-1]}
    return raw, {**headers, "content-type": "application/json"}


def test_a_client_gone_mid_body_is_no_traceback(served: Served, log: Caught) -> None:
    for _ in range(30):
        sock = _connect(served)
        sock.sendall(
            b"POST /webhooks/ghl HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        sock.close()
    for _ in range(5):
        sock = _connect(served)
        sock.sendall(
            b"POST /hooks/pull-contact-on-select HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer " + served.env["CONNECTOR_HOOK_TOKEN"].encode() + b"\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        sock.close()
    assert httpx.get(f"{served.url}/healthz").status_code == 200
    wait_for(lambda: sum("went away" in line for line in log.lines) >= 1, 30)
    assert log.tracebacks() == []
    gone = [r for r in log.records if "went away" in r.getMessage()]
    assert all(r.levelno == logging.DEBUG and "\n" not in r.getMessage() for r in gone)


def test_slow_headers_are_cut_off(served: Served, log: Caught) -> None:
    socks = [_connect(served) for _ in range(20)]
    for sock in socks:
        sock.sendall(b"POST /webhooks/ghl HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    for sock in socks[1:]:
        assert _closed_by_server(sock) == b""
    # dribbling a header a byte at a time does not keep a connection open either
    assert _closed_by_server(socks[0], keep_sending=b"X-Slow: a\r\n") == b""
    assert httpx.get(f"{served.url}/healthz").status_code == 200
    assert log.tracebacks() == []


def test_a_body_sent_slowly_is_refused(served: Served, log: Caught) -> None:
    raw, headers = _ghl(served, {"type": "ContactTag", "locationId": "x"})
    sock = _connect(served)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(
        f"POST /webhooks/ghl HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
        f"Content-Length: {len(raw)}\r\n\r\n".encode()
    )
    answer = _closed_by_server(sock, keep_sending=raw)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"not sent within" in answer
    assert httpx.get(f"{served.url}/healthz").status_code == 200
    assert log.tracebacks() == []


def test_a_flood_of_forged_bodies_leaves_healthz_and_real_webhooks_answered(
    served: Served, log: Caught
) -> None:
    big = {"type": "ContactTag", "locationId": "x", "pad": "a" * (MiB - 200)}
    forged_raw, forged_headers = _ghl(served, big, forged=True)
    assert len(forged_raw) <= MiB
    answers: list[int] = []
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(timeout=60, verify=tls_context()) as client:
            while not stop.is_set() and len(answers) < 200:
                try:
                    r = client.post(
                        f"{served.url}/webhooks/ghl", content=forged_raw, headers=forged_headers
                    )
                    answers.append(r.status_code)
                except httpx.HTTPError:
                    answers.append(0)

    threads = [threading.Thread(target=flood, daemon=True) for _ in range(20)]
    for thread in threads:
        thread.start()
    health: list[float] = []
    legit: list[float] = []
    with httpx.Client(timeout=60) as client:
        while len(answers) < 200:
            started = time.perf_counter()
            assert client.get(f"{served.url}/healthz").status_code == 200
            health.append(time.perf_counter() - started)
            raw, headers = (
                served.sandbox.app.webhooks.payload(
                    "ContactTag", {"contactId": "nobody", "tags": []}
                ),
                None,
            )
            body = json.dumps(raw).encode()
            headers = {
                **served.sandbox.app.webhooks.signatures(body),
                "content-type": "application/json",
            }
            started = time.perf_counter()
            answer = client.post(f"{served.url}/webhooks/ghl", content=body, headers=headers)
            legit.append(time.perf_counter() - started)
            assert answer.status_code == 200, answer.text
    stop.set()
    for thread in threads:
        thread.join()
    assert set(answers) <= {401, 503}, set(answers)
    assert 401 in answers
    print(
        f"\nunder {len(answers)} forged 1 MiB bodies, 20 at a time: /healthz median "
        f"{statistics.median(health) * 1000:.0f} ms (max {max(health) * 1000:.0f} ms) over "
        f"{len(health)}; a signed webhook median {statistics.median(legit) * 1000:.0f} ms "
        f"(max {max(legit) * 1000:.0f} ms) over {len(legit)}"
    )
    assert log.tracebacks() == []


def test_a_failing_route_is_a_500_with_a_request_id_and_one_line(
    served: Served, log: Caught, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(served.service.metrics, "text", broken)
    answer = httpx.get(f"{served.url}/metrics")
    assert answer.status_code == 500
    request_id = answer.json()["request_id"]
    assert answer.headers["x-request-id"] == request_id
    lines = [line for line in log.lines if request_id in line]
    assert len(lines) == 1 and "\n" not in lines[0] and "RuntimeError" in lines[0]
    assert log.tracebacks() == []


def test_a_second_server_on_one_sqlite_file_is_refused(
    served: Served, registry: Any, tmp_path: Path
) -> None:
    env = {**served.env, "CONNECTOR_EXECUTOR_ID": "another-one"}
    second = Service(registry, shipped(registry), env, workers=1)
    with pytest.raises(ConnectorError) as refused:
        second.start()
    message = str(refused.value)
    assert "already serving the SQLite database" in message
    assert "CONNECTOR_DATABASE_URL=postgresql://" in message
    second.runtime.close(wait=False)


@pytest.mark.parametrize("trusted", [False, True])
def test_forwarded_headers_are_believed_only_from_the_proxies_named(
    database: dict[str, str], serve_with: Callable[..., Served], trusted: bool
) -> None:
    if trusted:
        database["CONNECTOR_FORWARDED_ALLOW_IPS"] = "127.0.0.1"
    served = serve_with(wire=False)
    answer = httpx.get(f"{served.url}/", headers={"X-Forwarded-Proto": "https"})
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"].lower()
    assert ("secure" in cookie) is trusted  # the proxy said https: only believed when named


def test_where_the_sealing_key_is_kept_is_warned_about(
    database: dict[str, str], serve_with: Callable[..., Served], log: Caught
) -> None:
    key = Path(database["CONNECTOR_HOME"]) / "secret.key"
    key.parent.mkdir(parents=True, exist_ok=True)
    from connector.persistence.sealing import new_key

    key.write_text(new_key() + "\n")
    served = serve_with(wire=False)
    key.chmod(0o644)
    assert served.service.warn_about_key(public=False) == []  # it is made 0600 as it is read
    assert key.stat().st_mode & 0o077 == 0
    found = served.service.warn_about_key(public=True)
    assert any("beside the database" in w for w in found)
    assert any("beside the database" in line for line in log.lines)


def test_past_the_bound_of_bodies_being_read_a_delivery_is_answered_503_at_once(
    served: Served, log: Caught, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connector.serve.app as serve_app

    monkeypatch.setattr(serve_app, "MAX_PENDING_BODIES", 2)
    holding = [_connect(served) for _ in range(2)]
    for sock in holding:  # two bodies that never come: each holds a place until its deadline
        sock.sendall(
            b"POST /webhooks/ghl HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"
        )

    def refused() -> httpx.Response | None:
        answer = httpx.post(f"{served.url}/webhooks/ghl", content=b"{}")
        return answer if answer.status_code == 503 else None

    answer = wait_for(refused, 5)
    assert answer.headers["retry-after"] == "1" and "send it again" in answer.json()["error"]
    for sock in holding:
        sock.close()
    raw, headers = _ghl(served, served.sandbox.app.webhooks.payload("ContactTag", {"tags": []}))
    wait_for(
        lambda: (
            httpx.post(f"{served.url}/webhooks/ghl", content=raw, headers=headers).status_code
            == 200
        ),
        5,
    )
    assert log.tracebacks() == []


def test_wrong_hook_tokens_from_one_address_are_refused_after_a_few(served: Served) -> None:
    url = f"{served.url}/hooks/pull-contact-on-select"
    codes = [
        LOCAL.post(url, json={}, headers={"authorization": f"Bearer guess-{n}"}).status_code
        for n in range(40)
    ]
    wrong = codes.count(401)
    assert 0 < wrong < 40 and codes[wrong:] == [429] * (40 - wrong)
    refused = httpx.post(
        url, json={}, headers={"authorization": f"Bearer {served.env['CONNECTOR_HOOK_TOKEN']}"}
    )
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
