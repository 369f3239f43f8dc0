"""GoHighLevel's agency (Company) routes: the only ones an agency access token may call.

Both are ``Agency-Access-Only`` in oauth.json: a location token or a Private Integration token is
refused with 401 (see :mod:`connector.sandbox.ghl`), and so is an agency token on every other
route. Both want ``Version: 2021-07-28``, and a ``companyId`` other than the token's company is
403 ``The token does not have access to this company.``

- ``GET /oauth/installedLocations?companyId=&appId=&skip=&limit=&isInstalled=&query=&locationId=``
  (scope ``oauth.readonly``) answers ``GetInstalledLocationsSuccessfulResponseDto``: the
  company's locations where the app is installed (every seeded location of the company, for every
  OAuth client), ``{locations: [{_id, name, address, isInstalled}], count,
  installToFutureLocations: false}``, paged by ``skip`` (default 0) and ``limit`` (default 20);
  ``count`` is the number that matched before paging. ``appId`` is the client id or its part
  before the first ``-``; another app's id is 400. ``isInstalled=false`` matches none,
  ``query`` matches names (case-insensitive), ``locationId`` one location.
- ``POST /oauth/locationToken`` (scope ``oauth.write``; form-encoded ``companyId``,
  ``locationId``) answers ``GetLocationAccessTokenSuccessfulResponseDto`` plus ``refresh_token``
  (GoHighLevel staff confirmed it is returned) and ``userType: "Location"``: a location token
  with the agency grant's scopes, for that location only. A location that is not among the
  agency token's ``approvedLocations`` is 400. Every answer of this route, refusals included, is
  noted in the grants log (``GET /_sandbox/oauth``) as grant type ``location_token``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from connector.sandbox.common import ApiError, Call, Reply, Routes, json_response, parse_form
from connector.sandbox.oauth import app_id, issue_location_token
from connector.sandbox.state import SandboxState, TokenInfo

__all__ = ["LOCATION_TOKEN", "logged", "routes"]

routes = Routes()
LOCATION_TOKEN = ("POST", "/oauth/locationToken")
Endpoint = Callable[[Request], Awaitable[Response]]


def _agency(call: Call) -> TokenInfo:
    assert call.token is not None and call.token.is_agency  # the pipeline let only these in
    return call.token


def _count(query: dict[str, Any], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    text = str(raw)
    if not text.isdigit():
        raise ApiError(422, f"{name} must be a number string")
    return int(text)


@routes("GET", "/oauth/installedLocations")
def installed_locations(call: Call) -> Reply:
    token, q = _agency(call), call.query
    client_id = token.client_id or ""
    if q["appId"] not in (client_id, app_id(client_id)):
        raise ApiError(
            400,
            f"appId {q['appId']!r} is not the app this token was issued to "
            f"(appId {app_id(client_id)!r})",
        )
    skip, limit = _count(q, "skip", 0), _count(q, "limit", 20)
    with call.state.lock:
        found = [
            call.state.ghl.locations[lid]
            for lid in token.approved_locations
            if lid in call.state.ghl.locations
        ]
    if q.get("isInstalled") is False:
        found = []  # the app is installed on every location of the company
    if q.get("query"):
        found = [loc for loc in found if str(q["query"]).lower() in loc["name"].lower()]
    if q.get("locationId"):
        found = [loc for loc in found if loc["id"] == q["locationId"]]
    page = [
        {"_id": loc["id"], "name": loc["name"], "address": loc["address"], "isInstalled": True}
        for loc in found[skip : skip + limit]
    ]
    return 200, {"locations": page, "count": len(found), "installToFutureLocations": False}


@routes(*LOCATION_TOKEN)
def location_token(call: Call) -> Reply:
    token = _agency(call)
    location_id = str(call.body["locationId"])
    if location_id not in token.approved_locations or location_id not in call.state.ghl.locations:
        raise ApiError(
            400,
            f"Location {location_id} is not a location of company {token.company_id} "
            "where the app is installed",
        )
    body = issue_location_token(call.state, token, location_id)
    return json_response(200, body, {"Cache-Control": "no-store"})


def _error_code(response: Response) -> str | None:
    """The grants log's ``error`` for a refused ``/oauth/locationToken``, OAuth's words."""
    status = response.status_code
    if 200 <= status < 300:
        return None
    try:
        message = str(json.loads(bytes(response.body)).get("message", ""))
    except (ValueError, AttributeError):
        message = ""
    if status == 401:
        return "insufficient_scope" if "scope" in message else "invalid_token"
    return {400: "invalid_request", 403: "access_denied", 422: "invalid_request"}.get(
        status, "rate_limited" if status == 429 else "server_error"
    )


def logged(state: SandboxState, endpoint: Endpoint) -> Endpoint:
    """``endpoint`` (``/oauth/locationToken`` through the pipeline), noting every answer in the
    grants log: the client of the agency token, the ``companyId`` and ``locationId`` asked."""
    from connector.sandbox.ghl import bearer  # circular: ghl assembles these routes

    async def answer(request: Request) -> Response:
        response = await endpoint(request)
        form = parse_form(await request.body(), request.headers.get("content-type", ""))
        with state.lock:
            token = state.ghl.tokens.get(bearer(request) or "")
        state.record_grant(
            "ghl",
            "location_token",
            response.status_code,
            _error_code(response),
            client_id=token.client_id if token is not None else None,
            user_type="Location",
            location_id=form.get("locationId") or None,
            company_id=form.get("companyId") or None,
        )
        return response

    return answer
