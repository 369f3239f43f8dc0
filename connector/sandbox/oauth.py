"""GoHighLevel's OAuth 2.0 authorization-code flow, faked end to end.

- ``GET /ghl/oauth/chooselocation?response_type=code&client_id=&redirect_uri=&scope=&state=``
  (the marketplace's authorize page) approves at once for the first seeded location (or
  ``locationId=`` when given) and redirects (302) to ``redirect_uri?code=...&state=...``.
- ``POST /ghl/oauth/token`` (form-encoded ``client_id``, ``client_secret``, ``grant_type``, and
  ``code`` + ``redirect_uri`` or ``refresh_token``) answers ``GetAccessCodeSuccessfulResponseDto``.
  Codes are single-use and live 10 minutes; refresh tokens rotate: each is accepted once, and a
  used one is refused with 400 ``invalid_grant``. Access tokens live ``expires_in`` (86,399 s) by
  the sandbox clock, are accepted by every ``/ghl`` route and carry the granted scopes.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connector.sandbox.common import json_response
from connector.sandbox.state import SandboxState, TokenInfo

__all__ = ["ACCESS_TOKEN_LIFETIME", "DEFAULT_SCOPES", "issue_tokens", "routes"]

ACCESS_TOKEN_LIFETIME = 86399
CODE_LIFETIME = 600
DEFAULT_SCOPES = (
    "contacts.readonly contacts.write users.readonly calendars.readonly "
    "calendars/events.readonly calendars/events.write"
)


def _error(status: int, error: str, description: str) -> Response:
    body = {
        "statusCode": status,
        "message": description,
        "error": error,
        "error_description": description,
    }
    return json_response(status, body)


def issue_tokens(
    state: SandboxState, client_id: str, location_id: str, scope: str, user_id: str
) -> dict[str, Any]:
    """A fresh access token and refresh token for a client and location."""
    access = "sbx-at-" + state.hex_id(40)
    refresh = "sbx-rt-" + state.hex_id(40)
    with state.lock:
        state.ghl.tokens[access] = TokenInfo(
            token=access,
            location_id=location_id,
            kind="oauth",
            client_id=client_id,
            scopes=frozenset(scope.split()),
            expires_at=state.now() + ACCESS_TOKEN_LIFETIME,
            user_id=user_id,
        )
        state.ghl.refresh_tokens[refresh] = {
            "client_id": client_id,
            "location_id": location_id,
            "scope": scope,
            "user_id": user_id,
            "used": False,
        }
        company = state.ghl.locations[location_id]["companyId"]
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "refresh_token": refresh,
        "scope": scope,
        "userType": "Location",
        "locationId": location_id,
        "companyId": company,
        "userId": user_id,
        "isBulkInstallation": False,
    }


def _form(raw: bytes, content_type: str) -> dict[str, str]:
    if "json" in content_type:
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def routes(state: SandboxState) -> list[Route]:
    async def choose_location(request: Request) -> Response:
        q = request.query_params
        client = state.ghl.oauth_clients.get(q.get("client_id", ""))
        redirect_uri = q.get("redirect_uri", "")
        if client is None or not urlparse(redirect_uri).scheme:
            return HTMLResponse(
                "<h1>Sandbox authorization failed</h1><p>Unknown client_id or missing redirect_uri.</p>",
                status_code=400,
            )
        location_id = q.get("locationId") or state.default_location_id
        if location_id not in state.ghl.locations:
            return HTMLResponse("<h1>Unknown locationId</h1>", status_code=400)
        code = "sbx-code-" + state.hex_id(32)
        user_id = next(iter(state.ghl.users), "sandbox-user")
        with state.lock:
            state.ghl.oauth_codes[code] = {
                "client_id": client["client_id"],
                "redirect_uri": redirect_uri,
                "scope": q.get("scope") or client.get("scope") or DEFAULT_SCOPES,
                "location_id": location_id,
                "user_id": user_id,
                "expires_at": state.now() + CODE_LIFETIME,
            }
        params = {"code": code}
        if q.get("state") is not None:
            params["state"] = q["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)

    async def token(request: Request) -> Response:
        # GoHighLevel's token endpoint takes application/x-www-form-urlencoded (JSON accepted too).
        raw = await request.body()
        data = _form(raw, request.headers.get("content-type", ""))
        missing = [k for k in ("client_id", "client_secret", "grant_type") if not data.get(k)]
        if missing:
            body = {
                "statusCode": 422,
                "message": [f"{k} should not be empty" for k in missing],
                "error": "Unprocessable Entity",
            }
            return json_response(422, body)
        client = state.ghl.oauth_clients.get(data["client_id"])
        if client is None or client.get("client_secret") != data["client_secret"]:
            return _error(401, "invalid_client", "Invalid client credentials")
        grant = data["grant_type"]
        with state.lock:
            if grant == "authorization_code":
                record = state.ghl.oauth_codes.pop(data.get("code", ""), None)
                if record is None or record["client_id"] != data["client_id"]:
                    return _error(
                        400, "invalid_grant", "Invalid grant: authorization code is invalid"
                    )
                if record["expires_at"] <= state.now():
                    return _error(
                        400, "invalid_grant", "Invalid grant: authorization code has expired"
                    )
                if data.get("redirect_uri") and data["redirect_uri"] != record["redirect_uri"]:
                    return _error(
                        400, "invalid_grant", "Invalid grant: redirect_uri does not match"
                    )
            elif grant == "refresh_token":
                record = state.ghl.refresh_tokens.get(data.get("refresh_token", ""))
                if record is None or record["client_id"] != data["client_id"]:
                    return _error(400, "invalid_grant", "Invalid grant: refresh token is invalid")
                if record["used"]:
                    return _error(
                        400, "invalid_grant", "Invalid grant: refresh token was already used"
                    )
                record["used"] = True
            else:
                return _error(
                    400, "unsupported_grant_type", f"grant_type {grant!r} is not supported"
                )
        issued = issue_tokens(
            state, data["client_id"], record["location_id"], record["scope"], record["user_id"]
        )
        return json_response(200, issued, {"Cache-Control": "no-store"})

    return [
        Route("/oauth/chooselocation", choose_location, methods=["GET"]),
        Route("/oauth/token", token, methods=["POST"]),
    ]
