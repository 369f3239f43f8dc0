"""Authentication for app clients, as httpx auth flows (request/response generators, no I/O).

OAuth 2.0 with rotating refresh tokens will be one more ``httpx.Auth`` here: it yields the request,
receives a 401, refreshes and yields it again.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

__all__ = ["APIKeyAuth", "BearerAuth"]


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` (a GoHighLevel Private Integration or access token)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "BearerAuth(***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class APIKeyAuth(httpx.Auth):
    """A static API key in a header (Connecteam's ``X-API-KEY``)."""

    def __init__(self, header: str, key: str) -> None:
        self._header = header
        self._key = key

    def __repr__(self) -> str:
        return f"APIKeyAuth({self._header}: ***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self._key
        yield request
