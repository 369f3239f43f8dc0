"""The HTTP seam of ``connector test``: transports that answer from recordings, or record.

The durable runtime takes an ``httpx`` transport for every app's client
(:class:`~connector.runtime.durable.RuntimeOptions`), so a test changes nothing else:

* :class:`ReplayTransport` answers each request with the first recorded :class:`Response` whose
  ``request`` matches it (used once, unless ``repeat``), and never opens a connection. A request
  with no response left is answered ``404`` with a message naming it (the step fails there, and
  the test fails with that message); it is never retried or sent on.
* :class:`RecordingTransport` sends through another transport (the sandbox's, or a live
  account's) and keeps each exchange; :func:`write_cassette` writes them as plain YAML, secrets
  redacted by the project's :class:`~connector.sending.http.Redactor`.

Requests are described by app and by the path under that app's base URL (``/contacts/abc``, not
``/ghl/contacts/abc``), so a cassette recorded against the sandbox answers the same requests
made to the real base URLs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from connector.sending.http import Redactor
from connector.testing.compare import Sent, request_differences
from connector.testing.spec import Response

__all__ = ["RecordingTransport", "ReplayTransport", "Resolver", "write_cassette"]

# what a cassette keeps of a response's headers (the others are the server's own noise)
KEPT_HEADERS = ("content-type", "retry-after", "location")


class Resolver:
    """Which app a URL belongs to, and its path under that app's base URL."""

    def __init__(self, bases: Mapping[str, str]) -> None:
        self._bases = sorted(
            ((name, httpx.URL(url)) for name, url in bases.items()),
            key=lambda item: -len(item[1].path),
        )

    def resolve(self, url: httpx.URL) -> tuple[str | None, str]:
        for name, base in self._bases:
            prefix = base.path.rstrip("/")
            if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
                continue
            if url.path == prefix or url.path.startswith(prefix + "/"):
                return name, url.path[len(prefix) :] or "/"
        return None, url.path

    def sent(self, request: httpx.Request) -> Sent:
        app, path = self.resolve(request.url)
        query: dict[str, Any] = {}
        for key, value in request.url.params.multi_items():
            if key in query:
                old = query[key]
                query[key] = [*old, value] if isinstance(old, list) else [old, value]
            else:
                query[key] = value
        return Sent(app, request.method, path, query, _body(request.content))


def _body(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def _response(answer: Response) -> httpx.Response:
    headers = dict(answer.headers)
    lower = {k.lower() for k in headers}
    if isinstance(answer.body, str):
        if "content-type" not in lower:
            headers["Content-Type"] = "text/plain"
        return httpx.Response(answer.status, headers=headers, content=answer.body.encode())
    if answer.body is None:
        return httpx.Response(answer.status, headers=headers)
    if "content-type" not in lower:
        headers["Content-Type"] = "application/json"
    content = json.dumps(answer.body, separators=(",", ":")).encode()
    return httpx.Response(answer.status, headers=headers, content=content)


class ReplayTransport(httpx.BaseTransport):
    """Answers from ``responses``; sends nothing anywhere. ``sent`` lists every request made
    (``mark()`` starts a new run's list), ``misses`` the ones nothing answered."""

    def __init__(self, responses: Sequence[Response], resolver: Resolver) -> None:
        self.responses = list(responses)
        self.resolver = resolver
        self.used: set[int] = set()
        self.sent: list[Sent] = []
        self.misses: list[str] = []
        self._start = 0

    def mark(self) -> None:
        """A new run starts: :attr:`run_sent` is its requests from here on."""
        self._start = len(self.sent)

    @property
    def run_sent(self) -> list[Sent]:
        return self.sent[self._start :]

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sent = self.resolver.sent(request)
        self.sent.append(sent)
        spent = None
        for index, answer in enumerate(self.responses):
            if request_differences(answer.request, sent):
                continue
            if index in self.used and not answer.repeat:
                spent = spent or answer
                continue
            self.used.add(index)
            return _response(answer)
        message = f"no recorded response for {sent.method} {sent.path}"
        if sent.app:
            message += f" ({sent.app})"
        if spent is not None:
            message += f": the one at {spent.where} was used already (repeat: true answers again)"
        self.misses.append(message)
        return httpx.Response(404, json={"message": f"connector test: {message}"})


@dataclass
class Exchange:
    sent: Sent
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class RecordingTransport(httpx.BaseTransport):
    """Sends through ``inner`` and keeps every exchange in ``exchanges``."""

    inner: httpx.BaseTransport
    resolver: Resolver
    exchanges: list[Exchange] = field(default_factory=list)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        content = response.read()
        response.close()
        headers = {k.lower(): v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
        kind = response.headers.get("content-type", "")
        body: Any = None
        if content:
            body = _body(content) if "json" in kind else content.decode("utf-8", "replace")
        self.exchanges.append(
            Exchange(self.resolver.sent(request), response.status_code, headers, body)
        )
        passed = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        }
        return httpx.Response(
            response.status_code, headers=passed, content=content, request=request
        )

    def close(self) -> None:
        self.inner.close()


def _entry(exchange: Exchange, redactor: Redactor) -> dict[str, Any]:
    sent = exchange.sent
    request: dict[str, Any] = {}
    if sent.app:
        request["app"] = sent.app
    request["method"] = sent.method
    request["path"] = redactor.text(sent.path)
    if sent.query:
        request["query"] = redactor.value(dict(sent.query))
    entry: dict[str, Any] = {"request": request, "status": exchange.status}
    headers = {k: v for k, v in redactor.headers(exchange.headers).items() if k != "content-type"}
    if exchange.headers.get("content-type", "").split(";")[0] not in ("application/json", ""):
        headers["content-type"] = exchange.headers["content-type"]
    if headers:
        entry["headers"] = headers
    if exchange.body is not None:
        entry["body"] = redactor.value(exchange.body)
    return entry


class _Dumper(yaml.SafeDumper):
    """Block style, multi-line strings as literal blocks: a cassette a person can read."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and len(value) > 40 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def write_cassette(
    path: Path,
    exchanges: Iterable[Exchange],
    redactor: Redactor,
    *,
    source: str,
    env: Mapping[str, str],
    test: str,
) -> int:
    """Write ``exchanges`` to ``path`` as a cassette; returns how many were written."""
    entries = [_entry(e, redactor) for e in exchanges]
    doc = {
        "recorded": {"test": test, "from": source},
        "env": {k: redactor.text(v) for k, v in sorted(env.items())},
        "responses": entries,
    }
    text = (
        "# Recorded by `connector test --record`: the responses this test's run got, in order;"
        " secrets are\n# redacted. Edit freely (see docs/testing.md); record again to refresh.\n"
        + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return len(entries)
