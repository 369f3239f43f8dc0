"""GoHighLevel's OAuth 2.0 authorization-code flow, faked end to end, for location and agency
(Company) installs.

- ``GET /ghl/oauth/chooselocation?response_type=code&client_id=&redirect_uri=&scope=&state=``
  (the marketplace's authorize page) approves at once for the first seeded location (or
  ``locationId=`` when given) and redirects (302) to ``redirect_uri?code=...&state=...``.
- ``POST /ghl/oauth/token`` (form-encoded ``client_id``, ``client_secret``, ``grant_type``, and
  ``code`` + ``redirect_uri`` or ``refresh_token``; ``user_type`` ``Location``, the default, or
  ``Company``) answers ``GetAccessCodeSuccessfulResponseDto``. A location grant carries
  ``userType: "Location"``, ``locationId`` and ``companyId``; a Company grant (``user_type=Company``
  with a code) carries ``userType: "Company"``, ``companyId`` and ``approvedLocations`` (every
  location of the company) and no ``locationId``. Codes are single-use and live 10 minutes;
  refresh tokens rotate: each is accepted once, and a used one is refused with 400
  ``invalid_grant``. Refreshing gives a token of the same kind as the refresh token's (the request's
  ``user_type`` is ignored). Access tokens live ``expires_in`` (86,399 s) by the sandbox clock and
  carry the granted scopes; a location token is accepted by the location routes, an agency token
  only by :mod:`connector.sandbox.ghl_agency`'s routes (see :mod:`connector.sandbox.ghl`).

Every answer of ``/oauth/token`` is noted in the grants log (``GET /_sandbox/oauth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlparse

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from connector.sandbox.common import json_response, parse_form
from connector.sandbox.state import SandboxState, TokenInfo

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "DEFAULT_SCOPES",
    "app_id",
    "company_locations",
    "issue_agency_tokens",
    "issue_location_token",
    "issue_tokens",
    "routes",
]

ACCESS_TOKEN_LIFETIME = 86399
CODE_LIFETIME = 600
DEFAULT_SCOPES = (
    "contacts.readonly contacts.write users.readonly calendars.readonly "
    "calendars/events.readonly calendars/events.write oauth.readonly oauth.write"
)
USER_TYPES = ("Company", "Location")


def app_id(client_id: str) -> str:
    """GoHighLevel's ``appId`` of an OAuth client: the client id's part before the first ``-``."""
    return client_id.split("-", 1)[0]


def company_locations(state: SandboxState, company_id: str) -> list[str]:
    """The ids of the company's locations, in seed order."""
    with state.lock:
        return [lid for lid, loc in state.ghl.locations.items() if loc["companyId"] == company_id]


def _error_body(status: int, error: str, description: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "message": description,
        "error": error,
        "error_description": description,
    }


def _new_pair(state: SandboxState) -> tuple[str, str]:
    return "sbx-at-" + state.hex_id(40), "sbx-rt-" + state.hex_id(40)


def _store_refresh(state: SandboxState, refresh: str, info: TokenInfo) -> None:
    state.ghl.refresh_tokens[refresh] = {
        "client_id": info.client_id,
        "user_type": info.user_type,
        "location_id": info.location_id or None,
        "company_id": info.company_id,
        "scope": info.scope,
        "user_id": info.user_id,
        "used": False,
    }


def _location_token(
    state: SandboxState, client_id: str, location_id: str, scope: str, user_id: str
) -> tuple[TokenInfo, str]:
    access, refresh = _new_pair(state)
    with state.lock:
        info = TokenInfo(
            token=access,
            location_id=location_id,
            kind="oauth",
            client_id=client_id,
            scopes=frozenset(scope.split()),
            expires_at=state.now() + ACCESS_TOKEN_LIFETIME,
            user_id=user_id,
            company_id=state.ghl.locations[location_id]["companyId"],
            scope=scope,
        )
        state.ghl.tokens[access] = info
        _store_refresh(state, refresh, info)
    return info, refresh


def issue_tokens(
    state: SandboxState, client_id: str, location_id: str, scope: str, user_id: str
) -> dict[str, Any]:
    """A fresh location access token and refresh token, as ``/oauth/token`` answers them."""
    info, refresh = _location_token(state, client_id, location_id, scope, user_id)
    return {
        "access_token": info.token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "refresh_token": refresh,
        "scope": scope,
        "userType": "Location",
        "locationId": location_id,
        "companyId": info.company_id,
        "userId": user_id,
        "isBulkInstallation": False,
    }


def issue_agency_tokens(
    state: SandboxState, client_id: str, company_id: str, scope: str, user_id: str
) -> dict[str, Any]:
    """A fresh agency (Company) access token and refresh token, approved for every location of
    the company, as ``/oauth/token`` answers them."""
    access, refresh = _new_pair(state)
    approved = company_locations(state, company_id)
    with state.lock:
        info = TokenInfo(
            token=access,
            location_id="",
            kind="agency",
            client_id=client_id,
            scopes=frozenset(scope.split()),
            expires_at=state.now() + ACCESS_TOKEN_LIFETIME,
            user_id=user_id,
            company_id=company_id,
            approved_locations=tuple(approved),
            scope=scope,
        )
        state.ghl.tokens[access] = info
        _store_refresh(state, refresh, info)
    return {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "refresh_token": refresh,
        "scope": scope,
        "userType": "Company",
        "companyId": company_id,
        "approvedLocations": approved,
        "userId": user_id,
        "isBulkInstallation": False,
    }


def issue_location_token(
    state: SandboxState, agency: TokenInfo, location_id: str
) -> dict[str, Any]:
    """A location token exchanged for an agency token (``/oauth/locationToken``): the agency
    grant's scopes, and a refresh token that refreshes like any location refresh token."""
    client_id = agency.client_id or ""
    info, refresh = _location_token(state, client_id, location_id, agency.scope, agency.user_id)
    return {
        "access_token": info.token,
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME,
        "refresh_token": refresh,
        "scope": agency.scope,
        "userType": "Location",
        "locationId": location_id,
        "userId": agency.user_id,
        "appId": app_id(client_id),
    }


@dataclass
class _Outcome:
    """How one ``/oauth/token`` request ended, for the response and the grants log."""

    status: int
    body: dict[str, Any]
    error: str | None = None
    user_type: str | None = None
    location_id: str | None = None
    company_id: str | None = None


def _refused(
    status: int,
    error: str,
    description: str,
    user_type: str | None = None,
    location_id: str | None = None,
    company_id: str | None = None,
) -> _Outcome:
    body = _error_body(status, error, description)
    return _Outcome(status, body, error, user_type, location_id, company_id)


def _unprocessable(messages: list[str]) -> _Outcome:
    body = {"statusCode": 422, "message": messages, "error": "Unprocessable Entity"}
    return _Outcome(422, body, "invalid_request")


def _grant(state: SandboxState, data: dict[str, str]) -> _Outcome:
    missing = [k for k in ("client_id", "client_secret", "grant_type") if not data.get(k)]
    if missing:
        return _unprocessable([f"{k} should not be empty" for k in missing])
    asked = data.get("user_type") or None
    if asked is not None and asked not in USER_TYPES:
        return _unprocessable(["user_type must be one of the following values: Company, Location"])
    client = state.ghl.oauth_clients.get(data["client_id"])
    if client is None or client.get("client_secret") != data["client_secret"]:
        return _refused(401, "invalid_client", "Invalid client credentials", asked)
    grant, client_id = data["grant_type"], data["client_id"]
    with state.lock:
        if grant == "authorization_code":
            user_type = asked or "Location"
            record = state.ghl.oauth_codes.pop(data.get("code", ""), None)
            if record is None or record["client_id"] != client_id:
                why = "Invalid grant: authorization code is invalid"
                return _refused(400, "invalid_grant", why, user_type)
            company = state.ghl.locations[record["location_id"]]["companyId"]
            location = record["location_id"] if user_type == "Location" else None
            if record["expires_at"] <= state.now():
                why = "Invalid grant: authorization code has expired"
                return _refused(400, "invalid_grant", why, user_type, location, company)
            if data.get("redirect_uri") and data["redirect_uri"] != record["redirect_uri"]:
                why = "Invalid grant: redirect_uri does not match"
                return _refused(400, "invalid_grant", why, user_type, location, company)
        elif grant == "refresh_token":
            record = state.ghl.refresh_tokens.get(data.get("refresh_token", ""))
            if record is None or record["client_id"] != client_id:
                why = "Invalid grant: refresh token is invalid"
                return _refused(400, "invalid_grant", why, asked)
            user_type = record["user_type"]
            location, company = record["location_id"], record["company_id"]
            if record["used"]:
                why = "Invalid grant: refresh token was already used"
                return _refused(400, "invalid_grant", why, user_type, location, company)
            record["used"] = True
        else:
            why = f"grant_type {grant!r} is not supported"
            return _refused(400, "unsupported_grant_type", why, asked)
    scope, user_id = record["scope"], record["user_id"]
    if user_type == "Company":
        body = issue_agency_tokens(state, client_id, company, scope, user_id)
    else:
        body = issue_tokens(state, client_id, str(location), scope, user_id)
    return _Outcome(200, body, None, user_type, location, company)


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
        data = parse_form(await request.body(), request.headers.get("content-type", ""))
        outcome = _grant(state, data)
        state.record_grant(
            "ghl",
            data.get("grant_type") or None,
            outcome.status,
            outcome.error,
            client_id=data.get("client_id") or None,
            user_type=outcome.user_type,
            location_id=outcome.location_id,
            company_id=outcome.company_id,
        )
        headers = {"Cache-Control": "no-store"} if outcome.status == 200 else None
        return json_response(outcome.status, outcome.body, headers)

    return [
        Route("/oauth/chooselocation", choose_location, methods=["GET"]),
        Route("/oauth/token", token, methods=["POST"]),
    ]
