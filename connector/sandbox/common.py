"""What the two fakes share: the call object handlers receive, route tables, JSON helpers."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connector.catalog.model import Operation
from connector.sandbox.state import SandboxState, TokenInfo

__all__ = [
    "ApiError",
    "Call",
    "Handler",
    "Reply",
    "Routes",
    "is_form",
    "json_response",
    "parse_form",
    "route_sort_key",
]


@dataclass
class Call:
    """One validated API request, as a handler sees it."""

    request: Request
    state: SandboxState
    op: Operation | None
    path: dict[str, str]
    query: dict[str, Any]
    body: Any
    token: TokenInfo | None = None  # GoHighLevel
    account: str | None = None  # Connecteam
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def location_id(self) -> str:
        assert self.token is not None
        return self.token.location_id


Reply = tuple[int, Any] | Response
Handler = Callable[[Call], Reply]


class ApiError(Exception):
    """Raised by a handler: the pipeline renders it in its vendor's error shape."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


class Routes:
    """A route table filled by decorating handlers: ``@routes("GET", "/contacts/{contactId}")``."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Handler]] = []

    def __call__(self, method: str, path: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.items.append((method.upper(), path, fn))
            return fn

        return register

    def sorted(self) -> list[tuple[str, str, Handler]]:
        return sorted(self.items, key=lambda item: route_sort_key(item[1]))


def route_sort_key(path: str) -> list[int]:
    """Literal segments before parameters, so ``/contacts/search`` wins over ``/{contactId}``."""
    return [1 if seg.startswith("{") else 0 for seg in path.strip("/").split("/")]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def reply_response(reply: Reply, headers: dict[str, str]) -> Response:
    """A handler's reply as a response carrying the rate-limit (and other) headers."""
    if isinstance(reply, Response):
        reply.headers.update(headers)
        return reply
    status, payload = reply
    return json_response(status, payload, headers)


def parse_json_body(raw: bytes) -> tuple[Any, str | None]:
    """The request body as JSON (None when empty), or the parse error's text."""
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, str(exc)
    except RecursionError:  # BodyLimit refuses deep bodies first; this is the last line
        return None, "the JSON is nested too deeply"


def is_form(content_type: str) -> bool:
    return "application/x-www-form-urlencoded" in content_type.lower()


def parse_form(raw: bytes, content_type: str) -> dict[str, str]:
    """An OAuth-style request body as a dict of strings: a form (what the vendors document), or a
    JSON object when the request says JSON; ``{}`` when it is neither."""
    if "json" in content_type.lower():
        parsed, error = parse_json_body(raw)
        if error is not None or not isinstance(parsed, dict):
            return {}
        return {str(k): str(v) for k, v in parsed.items()}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
