"""Turning an operation and its rendered parameters into an HTTP request, and sending it.

Only :func:`make_clients` creates network clients; everything else takes them as arguments, so
tests inject ``httpx.MockTransport`` and the sandbox. The :class:`Sender` is the seam where retries,
rate limiting and the durable journal plug in: the engine calls ``sender.send(client, request,
operation)`` and nothing else touches the network.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from connector.apps import App
from connector.catalog.model import WHOLE_BODY, Operation
from connector.config import tls_context

__all__ = [
    "KEEPALIVE_EXPIRY_SECONDS",
    "REDACTED",
    "Clients",
    "DirectSender",
    "Redactor",
    "Sender",
    "api_message",
    "build_request",
    "make_clients",
    "parse_body",
    "shown_headers",
    "without_nulls",
]

REDACTED = "***"
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})
SECRET_KEYS = frozenset(
    {"access_token", "refresh_token", "client_secret", "password", "api_key", "apikey", "token"}
)
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# An idle connection is used again for at most this long (httpx's ``keepalive_expiry``; the
# servers' side of it is their keep-alive timeout): under the 5 s after which many servers
# close one (Node's, uvicorn's, Apache's defaults). At the boundary a request went out on a
# connection the server was closing and failed after it was sent: a write's outcome unknown.
KEEPALIVE_EXPIRY_SECONDS = 4.0


class ParameterError(ValueError):
    """A parameter could not be placed in the request (missing path parameter, bad type)."""


def _as_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def build_request(
    client: httpx.Client,
    app: App,
    operation: Operation,
    params: Mapping[str, Any],
) -> httpx.Request:
    """The request for ``operation`` with ``params`` placed where the catalog says each goes.

    A query or body parameter whose value is null is left out: a mapping such as
    ``email: "{{ trigger.email }}"`` with no email in the event sends no ``email`` field, rather
    than a null the API would refuse. The same holds inside the body, at every depth
    (:func:`without_nulls`).
    """
    path = operation.path
    query: list[tuple[str, str | int | float | bool | None]] = []
    headers: dict[str, str] = {"Accept": "application/json"}
    body: dict[str, Any] = {}
    for name, value in params.items():
        param = operation.param(name)
        where = param.location if param is not None else "body"
        if where == "path":
            if value is None or value == "":
                raise ParameterError(f"path parameter {name!r} is empty")
            path = path.replace("{" + name + "}", quote(_as_str(value), safe=""))
        elif where == "query":
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            query.extend((name, _as_str(v)) for v in values)
        elif where == "header":
            if value is not None:
                headers[name] = _as_str(value)
        elif value is not None:  # a field that renders to null is left out, as for the query
            body[name] = value
    if "{" in path:
        missing = path[path.index("{") + 1 : path.index("}")] if "}" in path else path
        raise ParameterError(f"path parameter {missing!r} is missing")
    if app.headers is not None:
        headers.update(app.headers(operation))
    content: bytes | None = None
    payload: Any = body
    if operation.whole_body:
        payload = body.get(WHOLE_BODY)
    payload = without_nulls(payload)
    if payload or (operation.body_schema is not None and operation.body_required):
        content = json.dumps(payload, separators=(",", ":"), default=str).encode()
        headers["Content-Type"] = "application/json"
    return client.build_request(
        operation.method, path, params=query or None, headers=headers, content=content
    )


def without_nulls(value: Any) -> Any:
    """``value`` with every object member whose value is null left out, at every depth (the
    rule for the top level of a body, for the objects inside it too: Connecteam answers 422 to a
    null field in a list item). List items are kept as they are, nulls included."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


_NOISE_HEADERS = frozenset(
    {"host", "accept-encoding", "connection", "content-length", "user-agent"}
)


def shown_headers(request: httpx.Request) -> dict[str, str]:
    """The headers worth showing in a record (not the transport's own); redact them first."""
    return {k: v for k, v in request.headers.items() if k.lower() not in _NOISE_HEADERS}


class Sender(Protocol):
    """Sends one request for one operation. Retries, rate limits and the journal wrap this."""

    def send(
        self, client: httpx.Client, request: httpx.Request, operation: Operation
    ) -> httpx.Response:
        """Send ``request`` and return the final response (raise httpx errors on transport failure)."""
        ...


class DirectSender:
    """Sends once, as is."""

    def send(
        self, client: httpx.Client, request: httpx.Request, operation: Operation
    ) -> httpx.Response:
        return client.send(request)


class Clients(Mapping[str, httpx.Client]):
    """The HTTP client of each app, one per thread that sends: ``clients[app]`` is the calling
    thread's own, made at its first request and closed when the thread ends (or at
    :meth:`close`).

    httpx's connection pool takes one lock for every request it starts and every response it
    closes, and looks over each of its connections while holding it. A serving process runs
    dozens of runs at once, each on its thread: through one shared client they queued on that
    lock (py-spy dumps, 64 runs against an API answering in 250 ms: half of the run threads
    waiting for it, one in eight waiting for the API). A client of its own per thread never
    waits on another run and keeps its connection for the next request. They share the app's
    auth (one token refreshed for all) and the TLS settings.

    With a ``transport`` given (tests, the sandbox in process) every thread shares one client:
    the transport decides what it can do at once, and closing one client would close it for all.
    """

    def __init__(self, makers: Mapping[str, Callable[[], httpx.Client]], *, shared: bool) -> None:
        self._makers = dict(makers)
        self._shared = {name: make() for name, make in self._makers.items()} if shared else None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[httpx.Client] = set()  # the per-thread clients not yet closed
        self._closed = False

    def __getitem__(self, name: str) -> httpx.Client:
        if self._shared is not None:
            return self._shared[name]
        mine: dict[str, httpx.Client] | None = getattr(self._local, "clients", None)
        if mine is None:
            mine = self._local.clients = {}
        client = mine.get(name)
        if client is None:
            client = mine[name] = self._make(name)
        return client

    def _make(self, name: str) -> httpx.Client:
        make = self._makers[name]  # KeyError: no such app, as a dict says
        with self._lock:
            if self._closed:
                raise RuntimeError("the HTTP clients are closed")
            client = make()
            self._open.add(client)
        # the thread's end closes it (its connections with it); close() closes what is left
        weakref.finalize(threading.current_thread(), self._retire, client)
        return client

    def _retire(self, client: httpx.Client) -> None:
        with self._lock:
            if client not in self._open:
                return
            self._open.discard(client)
        client.close()

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)

    def close(self) -> None:
        """Close every client made so far; none is made after."""
        with self._lock:
            self._closed = True
            left = list(self._open) + list((self._shared or {}).values())
            self._open.clear()
        for client in left:
            client.close()


def make_clients(
    apps: Iterable[App],
    env: Mapping[str, str],
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> Clients:
    """The clients of every app (:class:`Clients`): its base URL and auth from the environment."""

    def maker(app: App) -> Callable[[], httpx.Client]:
        auth = app.auth(env) if app.auth is not None else None
        base_url = app.base_url(env) + "/"

        def make() -> httpx.Client:
            return httpx.Client(
                base_url=base_url,
                auth=auth,
                timeout=timeout,
                transport=transport,
                headers={"User-Agent": "connector/0.1"},
                verify=tls_context(),
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_SECONDS),
            )

        return make

    return Clients({app.name: maker(app) for app in apps}, shared=transport is not None)


def parse_body(response: httpx.Response) -> Any:
    """The response body: parsed JSON when it is JSON, text otherwise, None when empty."""
    if not response.content:
        return None
    ctype = response.headers.get("content-type", "")
    if "json" in ctype:
        try:
            return response.json()
        except ValueError:
            return response.text
    return response.text


_LOC_ROOTS = frozenset({"body", "query", "path", "header", "cookie"})


def _loc_path(loc: Any) -> str:
    """The field a FastAPI ``loc`` points at: ``["body", 0, "phoneNumber"]`` is ``phoneNumber``,
    ``["body", "customFields", 2, "value"]`` is ``customFields[2].value``.

    The leading request part (``body``, ``query``, ...) and the index of the item in a list body
    are left out; what remains is a dotted path with ``[i]`` for list indices (empty when nothing
    remains).
    """
    parts = list(loc) if isinstance(loc, list | tuple) else [loc]
    if parts and parts[0] in _LOC_ROOTS:
        parts = parts[1:]
    while parts and isinstance(parts[0], int):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _error_item(item: Any) -> str:
    """One item of an error list: a string, or FastAPI's ``{"loc", "msg"}`` as ``field: msg``."""
    if not isinstance(item, dict):
        return str(item)
    msg = item.get("msg")
    if not isinstance(msg, str):
        return json.dumps(item)
    field = _loc_path(item["loc"]) if "loc" in item else ""
    return f"{field}: {msg}" if field else msg


def api_message(body: Any) -> str:
    """The API's own error message: GoHighLevel's ``message`` (a string or a list), Connecteam's
    ``detail`` (FastAPI's items become ``field: msg``), or the raw text."""
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "msg"):
            value = body.get(key)
            if isinstance(value, list):
                return "; ".join(_error_item(v) for v in value)
            if isinstance(value, str) and value:
                return value
        return json.dumps(body)[:500]
    if isinstance(body, str):
        return body[:500]
    return ""


class Redactor:
    """Replaces secret values (tokens, API keys) wherever they appear in what is recorded."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    @classmethod
    def for_apps(cls, apps: Iterable[App], env: Mapping[str, str]) -> Redactor:
        """A redactor that knows the value of every variable an app names in ``secret_env``."""
        return cls(env[name] for app in apps for name in app.secret_env if env.get(name))

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        out = {}
        for key, value in headers.items():
            if key.lower() in SECRET_HEADERS:
                scheme = value.split(" ", 1)[0] if " " in value else ""
                out[key] = f"{scheme} {REDACTED}".strip()
            else:
                out[key] = self.text(value)
        return out

    def learn(self, secret: str) -> None:
        """Mask ``secret`` from now on wherever it appears (a token an API returned, say)."""
        if len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def value(self, value: Any) -> Any:
        """Redact inside any JSON-like value. The value of a secret-named field is learned, so
        it is masked where a later step sends or shows it too."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if str(k).lower() in SECRET_KEYS and isinstance(v, str) and v:
                    self.learn(v)
                    out[self.text(str(k))] = REDACTED
                else:
                    out[self.text(str(k))] = self.value(v)
            return out
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value
