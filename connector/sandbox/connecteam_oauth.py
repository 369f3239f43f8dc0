"""Connecteam's credentials: the API key, and OAuth 2.0 client credentials.

- ``POST /connecteam/oauth/v1/token``: HTTP Basic ``client_id:client_secret`` (a seeded
  ``connecteam.oauth_clients`` entry), form body ``grant_type=client_credentials`` (the default
  when absent) and optionally ``scope`` (space-separated; by default every scope of the client).
  Answers ``OAuthTokenResponse``, ``{"access_token", "token_type": "Bearer", "expires_in": 86400,
  "scope"}``; there is no refresh token: ask again. Refusals are OAuth-style
  ``{"error", "error_description"}``: bad or missing client credentials 401 ``invalid_client``
  (with ``WWW-Authenticate: Basic``), another grant type 400 ``unsupported_grant_type``, a scope
  the client does not have 403 ``invalid_scope`` (the statuses the document lists). Every answer
  is noted in the grants log (``GET /_sandbox/oauth``).
- :func:`authenticate`: every other Connecteam route takes ``X-API-KEY`` or ``Authorization:
  Bearer <access token>``; both reach the same account, under the same per-account rate limit. An
  unknown or expired (by the sandbox clock) token is 401 ``{"detail": ...}``. A token whose
  scopes do not include the operation's (the document's ``OAuth2`` security) is 403, which is the
  sandbox's choice: Connecteam does not document the refusal.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from connector.sandbox.common import ApiError, json_response, parse_form
from connector.sandbox.state import ConnecteamToken, SandboxState

__all__ = ["TOKEN_LIFETIME", "authenticate", "token_endpoint"]

TOKEN_LIFETIME = 86400


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _refusal(status: int, error: str, description: str) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="Connecteam"'} if status == 401 else None
    return json_response(status, {"error": error, "error_description": description}, headers)


def _grant(state: SandboxState, request: Request, form: dict[str, str]) -> tuple[Response, str]:
    """The answer to one token request, and its OAuth error code ("" on success)."""
    creds = _basic(request)
    client = state.ct.oauth_clients.get(creds[0]) if creds else None
    if creds is None or client is None or client["client_secret"] != creds[1]:
        why = "Invalid client credentials: send HTTP Basic client_id:client_secret"
        return _refusal(401, "invalid_client", why), "invalid_client"
    grant = form.get("grant_type") or "client_credentials"
    if grant != "client_credentials":
        why = f"Invalid grant type {grant!r}: use client_credentials"
        return _refusal(400, "unsupported_grant_type", why), "unsupported_grant_type"
    allowed: list[str] = client["scopes"]
    asked = form.get("scope", "").split() or allowed
    extra = [s for s in asked if s not in allowed]
    if extra:
        why = f"Unauthorized scopes requested: {' '.join(extra)}"
        return _refusal(403, "invalid_scope", why), "invalid_scope"
    access = "sbx-ct-at-" + state.hex_id(40)
    with state.lock:
        state.ct.tokens[access] = ConnecteamToken(
            account=client["account"],
            client_id=client["client_id"],
            scopes=frozenset(asked),
            expires_at=state.now() + TOKEN_LIFETIME,
        )
    body = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME,
        "scope": " ".join(asked),
    }
    return json_response(200, body, {"Cache-Control": "no-store"}), ""


def token_endpoint(state: SandboxState) -> Callable[[Request], Awaitable[Response]]:
    """The ``POST /oauth/v1/token`` endpoint."""

    async def token(request: Request) -> Response:
        form = parse_form(await request.body(), request.headers.get("content-type", ""))
        response, error = _grant(state, request, form)
        creds = _basic(request)
        state.record_grant(
            "connecteam",
            form.get("grant_type") or "client_credentials",
            response.status_code,
            error or None,
            client_id=creds[0] if creds else None,
        )
        return response

    return token


def authenticate(state: SandboxState, request: Request) -> tuple[str, frozenset[str] | None]:
    """The account a request reaches and its scopes (None: an API key, every scope); raises
    :class:`ApiError` 401 when neither an API key nor a live access token is given."""
    key = request.headers.get("x-api-key")
    if key:
        with state.lock:
            account = state.ct.api_keys.get(key)
        if account is None:
            raise ApiError(401, "Invalid API key")
        return account, None
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "Missing X-API-KEY header or Authorization: Bearer token")
    with state.lock:
        info = state.ct.tokens.get(value.strip())
    if info is None:
        raise ApiError(401, "Invalid access token")
    if state.now() >= info.expires_at:
        raise ApiError(401, "Access token has expired")
    return info.account, info.scopes
