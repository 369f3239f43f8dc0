"""The GoHighLevel fake, served under ``/ghl``: the request pipeline and the app assembly.

Every API request goes through the same steps, in the order the real API answers them:

1. ``Authorization: Bearer <token>``: a seeded Private Integration token or an OAuth access token
   issued by ``/ghl/oauth/token`` or ``/ghl/oauth/locationToken``. Missing, unknown or expired:
   401 ``UnauthorizedDTO``.
2. The kind of token: an agency (Company) token is accepted only by the agency routes
   (:mod:`connector.sandbox.ghl_agency`), which accept nothing else (they are
   ``Agency-Access-Only``). Otherwise 401 ``This AuthClass is not yet supported!`` (the words
   GoHighLevel answers with), followed by what to use instead.
3. Rate limit per app and location (per company for an agency token; see
   :mod:`connector.sandbox.ratelimit`): 429 past the limit; the ``X-RateLimit-*`` headers are on
   every response from here on.
4. ``Version`` header, checked against the catalog's versions of the operation (the contacts
   routes take ``2021-07-28`` and ``v3``, see :mod:`connector.sandbox.ghl_v3`): missing is 401
   ``Version header was not found``; another value is 400 ``BadRequestDTO``. From here on the
   request is checked against, and answered in the shapes of, that version's document.
5. Scopes of an OAuth token against the operation's scopes: 401 ``The token is not authorized for
   this scope.``
6. Parameters and body (JSON; a form where the document says form-encoded) validated against the
   catalog's schemas: 422 ``UnprocessableDTO`` (``{statusCode: 422, message: [...], error:
   "Unprocessable Entity"}``) with class-validator style messages; unknown top-level body
   properties are refused (``property x should not exist``) as GoHighLevel's whitelisting
   validation does.
7. ``locationId`` (query or body) other than the token's location: 403; on the agency routes,
   ``companyId`` other than the token's company: 403.
8. The handler.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp

from connector.sandbox import ghl_v3
from connector.sandbox.common import (
    ApiError,
    Call,
    Handler,
    is_form,
    json_response,
    parse_form,
    parse_json_body,
    reply_response,
    route_sort_key,
)
from connector.sandbox.ratelimit import RateLimiter
from connector.sandbox.state import SandboxState, TokenInfo
from connector.sandbox.validation import Issue, OperationIndex, check_request

__all__ = ["bearer", "build_ghl_app", "ghl_error"]

_ERROR_NAMES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
}


def ghl_error(status: int, message: str | list[str], **extra: Any) -> dict[str, Any]:
    """GoHighLevel's error body (``BadRequestDTO``, ``UnauthorizedDTO``, ``UnprocessableDTO``)."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if status in (401, 403, 404, 413, 422):
        body["error"] = _ERROR_NAMES[status]
    body.update(extra)
    return body


def _type_word(expected: str) -> str:
    return {"integer": "an integer number", "object": "an object", "array": "an array"}.get(
        expected, f"a {expected}"
    )


def issue_messages(issues: list[Issue]) -> list[str]:
    """class-validator's wording, which GoHighLevel's 422 ``message`` list uses."""
    out: list[str] = []
    for i in issues:
        name = i.field
        if i.kind == "missing":
            out.append(f"{name} should not be empty")
        elif i.kind == "type":
            if len(i.loc) >= 2 and isinstance(i.loc[-1], int):
                parent = ".".join(str(p) for p in i.loc[:-1])
                out.append(f"each value in {parent} must be {_type_word(i.expected)}")
            else:
                out.append(f"{name} must be {_type_word(i.expected)}")
        elif i.kind == "enum":
            out.append(f"{name} must be one of the following values: {i.expected}")
        elif i.kind == "extra":
            out.append(f"property {name} should not exist")
        else:
            out.append(f"{name}: {i.message}")
    return out


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def authenticate(state: SandboxState, request: Request) -> TokenInfo:
    token = bearer(request)
    if token is None:
        raise ApiError(401, "Invalid JWT: the Authorization header must be 'Bearer <token>'")
    with state.lock:
        info = state.ghl.tokens.get(token)
    if info is None:
        raise ApiError(401, "Invalid token: access token is invalid")
    if info.expires_at is not None and state.now() >= info.expires_at:
        raise ApiError(401, "Invalid JWT: access token has expired")
    return info


AGENCY_REFUSED = (
    "This AuthClass is not yet supported! An agency (Company) token cannot call this route: "
    "exchange it for a location token with POST /oauth/locationToken."
)
AGENCY_ONLY = (
    "This AuthClass is not yet supported! This route takes an agency (Company) access token "
    "(user_type=Company at /oauth/token)."
)


def _field_in(call_query: dict[str, Any], body: Any, name: str) -> str | None:
    if isinstance(body, dict) and isinstance(body.get(name), str):
        return str(body[name])
    value = call_query.get(name)
    return value if isinstance(value, str) else None


def _check_reach(token: TokenInfo, query: dict[str, Any], body: Any, agency: bool) -> None:
    """The location (or, on agency routes, the company) a request names is the token's."""
    if agency:
        company = _field_in(query, body, "companyId")
        if company is not None and company != token.company_id:
            raise ApiError(403, "The token does not have access to this company.")
        return
    location = _field_in(query, body, "locationId")
    if location is not None and location != token.location_id:
        raise ApiError(403, "The token does not have access to this location.")


def _endpoint(
    state: SandboxState,
    limiter: RateLimiter,
    index: OperationIndex,
    method: str,
    path: str,
    fn: Handler,
    *,
    agency: bool = False,
) -> Any:
    """The pipeline in front of handler ``fn``; ``agency``: the route takes agency tokens only."""
    default = index.get(method, path)
    versions = index.versions(method, path)
    form = default is not None and is_form(default.body_content_type)

    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            token = authenticate(state, request)
            if token.is_agency != agency:
                raise ApiError(401, AGENCY_REFUSED if token.is_agency else AGENCY_ONLY)
            decision = limiter.check_ghl(token.rate_key)
            headers.update(decision.headers)
            if not decision.allowed:
                headers["Retry-After"] = str(decision.retry_after)
                refusal = ghl_error(429, "Too many requests. Please try again later.")
                return json_response(429, refusal, headers)
            op = default
            if default is not None and default.version:
                given = request.headers.get("version")
                if given is None:
                    raise ApiError(401, "Version header was not found")
                op = versions.get(given)
                if op is None:
                    use = " or ".join(versions)
                    raise ApiError(400, f"Invalid Version header {given!r}: use {use}")
            scopes = op.scopes if op is not None else ()
            if token.scopes is not None and scopes and not any(s in token.scopes for s in scopes):
                raise ApiError(401, "The token is not authorized for this scope.")
            raw, content_type = await request.body(), request.headers.get("content-type", "")
            body: Any
            error: str | None
            if form and is_form(content_type):
                body, error = parse_form(raw, content_type) or None, None
            else:
                body, error = parse_json_body(raw)
            if error is not None:
                raise ApiError(400, f"Unexpected token in JSON body: {error}")
            query_lists = {k: request.query_params.getlist(k) for k in request.query_params}
            typed: dict[str, Any] = {k: v[-1] for k, v in query_lists.items()}
            if op is not None:
                issues, typed_params = check_request(
                    op, request.path_params, query_lists, body, forbid_extra_body=True
                )
                if issues:
                    return json_response(422, ghl_error(422, issue_messages(issues)), headers)
                typed.update(typed_params)
                if body is None and op.body_schema is not None:
                    body = {}
            _check_reach(token, typed, body, agency)
            body = ghl_v3.stored_input(op, body)
            call = Call(request, state, op, dict(request.path_params), typed, body, token=token)
            reply = ghl_v3.shaped_reply(op, fn(call))
        except ApiError as exc:
            extra = dict(exc.extra)
            message: str | list[str] = extra.pop("messages", None) or exc.message
            if exc.status == 422 and isinstance(message, str):
                message = [message]
            return json_response(exc.status, ghl_error(exc.status, message, **extra), headers)
        return reply_response(reply, headers)

    return endpoint


class _Route(Route):
    """A route that does not match another method on its path: GoHighLevel (NestJS on Express)
    answers ``DELETE /users/ID``, where only ``GET`` is served, with its 404 ``Cannot DELETE
    ...``, where Starlette would answer 405."""

    def matches(self, scope: Any) -> tuple[Match, Any]:
        match, child = super().matches(scope)
        return (Match.NONE, {}) if match is Match.PARTIAL else (match, child)


async def _not_found(scope: Any, receive: Any, send: Any) -> None:
    request = Request(scope, receive)
    body = ghl_error(404, f"Cannot {request.method} {request.url.path}")
    await json_response(404, body)(scope, receive, send)


def build_ghl_app(state: SandboxState, limiter: RateLimiter) -> ASGIApp:
    """The ``/ghl`` app: the contacts document's 32 operations, users, calendars and OAuth
    (location and agency)."""
    from connector.sandbox import ghl_agency, ghl_contacts, ghl_items, ghl_other, oauth

    index = OperationIndex("ghl")
    routes: list[Any] = list(oauth.routes(state))
    for method, path, fn in ghl_agency.routes.sorted():
        endpoint = _endpoint(state, limiter, index, method, path, fn, agency=True)
        if (method, path) == ghl_agency.LOCATION_TOKEN:
            endpoint = ghl_agency.logged(state, endpoint)
        routes.append(_Route(path, endpoint, methods=[method]))
    table = [*ghl_contacts.routes.items, *ghl_items.routes.items, *ghl_other.routes.items]
    for method, path, fn in sorted(table, key=lambda item: route_sort_key(item[1])):
        endpoint = _endpoint(state, limiter, index, method, path, fn)
        routes.append(_Route(path, endpoint, methods=[method]))
        if path.endswith("/") and path != "/":  # NestJS answers with or without the slash
            routes.append(_Route(path.rstrip("/"), endpoint, methods=[method]))
    return Router(routes=routes, default=_not_found, redirect_slashes=False)
