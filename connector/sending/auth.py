"""Authentication for app clients, as httpx auth flows (request/response generators).

:class:`BearerAuth` and :class:`APIKeyAuth` carry a credential from the environment (``GHL_TOKEN``,
``CONNECTEAM_API_KEY``), which overrides stored connections. :class:`StoredAuth` takes the
credential of the stored connection for the account a request acts on (the request's
:data:`ACCOUNT` extension, set by the engine: a GoHighLevel location), and on a 401 asks for the
refreshed one and sends the request once more: a 401 means the API did nothing with it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from connector.connections.tokens import Tokens

__all__ = ["ACCOUNT", "APIKeyAuth", "BearerAuth", "StoredAuth"]

# the request extension naming the account (GoHighLevel location) a request acts on
ACCOUNT = "connector.account"


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


class StoredAuth(httpx.Auth):
    """The stored connection's credential for ``app`` (see the module docstring). ``tokens`` is
    called on the first request, so a command that sends nothing opens no database."""

    def __init__(self, app: str, tokens: Callable[[], Tokens]) -> None:
        self.app = app
        self._factory = tokens
        self._tokens: Tokens | None = None
        self._watchers: list[Callable[[str], None]] = []

    def __repr__(self) -> str:
        return f"StoredAuth({self.app})"

    def watch(self, learn: Callable[[str], None]) -> None:
        """Tell ``learn`` every token this auth sends (a redactor learns them)."""
        self._watchers.append(learn)
        if self._tokens is not None:
            self._tokens.watch(learn)

    def tokens(self) -> Tokens:
        if self._tokens is None:
            tokens = self._factory()
            for learn in self._watchers:
                tokens.watch(learn)
            self._tokens = tokens
        return self._tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        tokens = self.tokens()
        account = str(request.extensions.get(ACCOUNT) or "")
        used = tokens.credential(self.app, account)
        request.headers[used.header] = used.value
        response = yield request
        if response.status_code != 401:
            return
        fresh = tokens.refreshed(used)
        if fresh is None or fresh.value == used.value:
            return
        request.headers[fresh.header] = fresh.value
        yield request
