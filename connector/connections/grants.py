"""Token grants, spoken through Authlib's httpx client: GoHighLevel's authorization-code and
rotating refresh-token grants, its agency-to-location exchange, Connecteam's client credentials.

Each function makes one request and returns a :class:`Grant`, or raises :class:`GrantRefused`
(the server said no for good: ``invalid_grant``, ``invalid_client``; a new login is needed) or
:class:`GrantFailed` (the server could not be reached or answered badly; try again later). Nothing
here stores anything or prints a token.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

with warnings.catch_warnings():
    # Authlib 1.9 warns, on import, that it would rather have the httpx2 package: httpx works.
    # Its deprecate module asks for every such warning to be shown: imported first, then muted.
    import authlib.deprecate  # noqa: F401

    warnings.simplefilter("ignore")
    from authlib.common.errors import AuthlibBaseError
    from authlib.integrations.httpx_client import OAuth2Client

from connector.config import tls_context
from connector.errors import ConnectorError

__all__ = [
    "GHL_VERSION",
    "Grant",
    "GrantFailed",
    "GrantRefused",
    "connecteam_client_credentials",
    "ghl_authorization_url",
    "ghl_exchange_code",
    "ghl_installed_locations",
    "ghl_location_token",
    "ghl_refresh",
]

GHL_VERSION = "2021-07-28"  # the version of GoHighLevel's OAuth API our documents describe
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# the fields of a token answer that are not secret, kept with the connection
PLAIN_FIELDS = ("userType", "locationId", "companyId", "userId", "approvedLocations", "planId")


class GrantRefused(ConnectorError):
    """The token endpoint refused the grant for good (a used refresh token, a revoked app)."""

    def __init__(self, error: str, description: str) -> None:
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}" if description else error)


class GrantFailed(ConnectorError):
    """The token endpoint could not be reached, or gave an answer that is not a token."""


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str | None
    expires_at: float | None
    scopes: tuple[str, ...]
    plain: Mapping[str, Any] = field(default_factory=dict)  # userType, locationId, companyId, ...

    def __repr__(self) -> str:
        return f"Grant(scopes={self.scopes!r}, expires_at={self.expires_at!r}, plain={dict(self.plain)!r})"


def _grant(data: Mapping[str, Any], where: str) -> Grant:
    access = data.get("access_token")
    if not isinstance(access, str) or not access:
        message = data.get("message") or data.get("error_description") or "no access_token"
        if isinstance(message, list):
            message = "; ".join(str(m) for m in message)
        raise GrantFailed(f"{where} answered without a token: {message}")
    refresh = data.get("refresh_token")
    expires_in = data.get("expires_in")
    try:
        expires_at = time.time() + float(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_at = None
    scope = data.get("scope") or ""
    scopes = tuple(str(scope).split()) if isinstance(scope, str) else tuple(map(str, scope))
    plain = {k: data[k] for k in PLAIN_FIELDS if data.get(k) is not None}
    return Grant(
        access, refresh if isinstance(refresh, str) and refresh else None, expires_at, scopes, plain
    )


def _call(where: str, fn: Any) -> Grant:
    try:
        data = fn()
    except AuthlibBaseError as exc:
        error = str(getattr(exc, "error", "") or "refused")
        description = str(getattr(exc, "description", "") or "")
        if error in ("invalid_grant", "invalid_client", "unauthorized_client", "access_denied"):
            raise GrantRefused(error, description) from None
        raise GrantFailed(f"{where} refused the grant: {error} {description}".strip()) from None
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        if status in (400, 401, 403):
            raise GrantRefused(f"HTTP {status}", _message(exc.response)) from None
        raise GrantFailed(f"{where} answered HTTP {status}") from None
    except httpx.HTTPError as exc:
        raise GrantFailed(f"cannot reach {where}: {type(exc).__name__}") from None
    return _grant(data, where)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        message = body.get("error_description") or body.get("message") or body.get("error")
        if isinstance(message, list):
            return "; ".join(map(str, message))
        return str(message or "")
    return ""


def _where(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.host}{parsed.path}"


def _client(
    client_id: str,
    client_secret: str,
    method: str,
    transport: httpx.BaseTransport | None,
    **kw: Any,
) -> OAuth2Client:
    return OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=method,
        timeout=TIMEOUT,
        transport=transport,
        **kw,
    )


def ghl_authorization_url(
    authorize_url: str, client_id: str, redirect_uri: str, scopes: list[str]
) -> tuple[str, str]:
    """GoHighLevel's authorize page for this client, and the ``state`` it must come back with."""
    with OAuth2Client(client_id=client_id, redirect_uri=redirect_uri, scope=" ".join(scopes)) as c:
        url, state = c.create_authorization_url(authorize_url)
    return str(url), str(state)


def ghl_exchange_code(
    token_url: str,
    client_id: str,
    client_secret: str,
    *,
    callback_url: str,
    state: str,
    redirect_uri: str,
    user_type: str,
    transport: httpx.BaseTransport | None = None,
) -> Grant:
    """The tokens for the code in ``callback_url`` (whose ``state`` must be ``state``)."""
    with _client(
        client_id, client_secret, "client_secret_post", transport, redirect_uri=redirect_uri
    ) as c:
        return _call(
            _where(token_url),
            lambda: c.fetch_token(
                token_url, authorization_response=callback_url, state=state, user_type=user_type
            ),
        )


def ghl_refresh(
    token_url: str,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    user_type: str,
    transport: httpx.BaseTransport | None = None,
) -> Grant:
    """New tokens for a refresh token (which is then used up: GoHighLevel rotates them)."""
    with _client(client_id, client_secret, "client_secret_post", transport) as c:
        return _call(
            _where(token_url),
            lambda: c.refresh_token(token_url, refresh_token=refresh_token, user_type=user_type),
        )


def _agency(token: str) -> dict[str, str]:
    """The headers of GoHighLevel's agency-only OAuth routes."""
    return {
        "Authorization": f"Bearer {token}",
        "Version": GHL_VERSION,
        "Accept": "application/json",
    }


def ghl_location_token(
    base_url: str,
    agency_token: str,
    company_id: str,
    location_id: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Grant:
    """A location's token from an agency token (``POST /oauth/locationToken``)."""
    url = base_url.rstrip("/") + "/oauth/locationToken"

    def post() -> Any:
        with httpx.Client(timeout=TIMEOUT, transport=transport, verify=tls_context()) as client:
            response = client.post(
                url,
                data={"companyId": company_id, "locationId": location_id},
                headers=_agency(agency_token),
            )
        response.raise_for_status()
        return response.json()

    return _call(_where(url), post)


def ghl_installed_locations(
    base_url: str,
    agency_token: str,
    company_id: str,
    app_id: str,
    *,
    transport: httpx.BaseTransport | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The locations where the app is installed (``GET /oauth/installedLocations``, every page)."""
    url = base_url.rstrip("/") + "/oauth/installedLocations"
    out: list[dict[str, Any]] = []
    with httpx.Client(timeout=TIMEOUT, transport=transport, verify=tls_context()) as client:
        while True:
            try:
                response = client.get(
                    url,
                    params={
                        "companyId": company_id,
                        "appId": app_id,
                        "isInstalled": "true",
                        "skip": str(len(out)),
                        "limit": str(limit),
                    },
                    headers=_agency(agency_token),
                )
            except httpx.HTTPError as exc:
                raise GrantFailed(f"cannot reach {_where(url)}: {type(exc).__name__}") from None
            if response.status_code != 200:
                raise GrantFailed(
                    f"{_where(url)} answered HTTP {response.status_code}: {_message(response)}"
                )
            try:
                body = response.json()
            except ValueError:
                raise GrantFailed(f"{_where(url)} answered something that is not JSON") from None
            page = body.get("locations") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise GrantFailed(f"{_where(url)} answered without a list of locations")
            out.extend(p for p in page if isinstance(p, dict))
            total = body.get("count") if isinstance(body, dict) else None
            if not page or len(page) < limit or (isinstance(total, int) and len(out) >= total):
                return out


def connecteam_client_credentials(
    token_url: str,
    client_id: str,
    client_secret: str,
    *,
    transport: httpx.BaseTransport | None = None,
) -> Grant:
    """A 24-hour Connecteam token for OAuth client credentials (HTTP Basic, no refresh token)."""
    with _client(client_id, client_secret, "client_secret_basic", transport) as c:
        return _call(
            _where(token_url), lambda: c.fetch_token(token_url, grant_type="client_credentials")
        )
