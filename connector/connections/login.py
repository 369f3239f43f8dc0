"""``connector auth login``: GoHighLevel's authorization-code flow over a loopback redirect, and
Connecteam's API key or client credentials; what each stores.

The GoHighLevel flow:

1. a one-shot HTTP server listens on ``127.0.0.1`` (a free port, or ``--port``), at ``/callback``;
2. the authorize page (``GHL_AUTH_URL``) is opened in the browser, or its URL printed;
3. the page redirects to the loopback server with ``code`` and ``state``; Authlib checks the
   state and exchanges the code at ``{GHL_BASE_URL}/oauth/token`` (``user_type`` Location or
   Company);
4. a ``Location`` install is stored as that location's connection; a ``Company`` (agency) install
   as the agency's, with the locations ``/oauth/installedLocations`` lists (their tokens are
   obtained when a run first needs them).
"""

from __future__ import annotations

import html
import http.server
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from connector.connections import grants
from connector.errors import ConnectorError
from connector.persistence.connections import Connection, ConnectionStore, connection_id

__all__ = [
    "DEFAULT_GHL_SCOPES",
    "LoginError",
    "Loopback",
    "connecteam_client_login",
    "describe_expiry",
    "ghl_login",
    "scopes_of",
    "store_connecteam_key",
]

DEFAULT_GHL_AUTH_URL = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
DEFAULT_GHL_SCOPES = (
    "contacts.readonly",
    "contacts.write",
    "users.readonly",
    "calendars.readonly",
    "calendars/events.readonly",
    "calendars/events.write",
)
AGENCY_SCOPES = ("oauth.readonly", "oauth.write")  # installedLocations, locationToken


class LoginError(ConnectorError):
    """A login could not be completed; nothing was stored."""


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>connector</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto"><h1>{title}</h1><p>{text}</p>
</body></html>"""


@dataclass
class Loopback:
    """A one-shot server on 127.0.0.1 that waits for the authorize page's redirect."""

    port: int = 0
    path: str = "/callback"

    def __post_init__(self) -> None:
        self._answer: str | None = None
        self._done = threading.Event()
        loopback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != loopback.path:
                    self.send_error(404)
                    return
                query = parse_qs(url.query)
                if "error" in query:
                    title, text = (
                        "Not connected",
                        "The sign-in was refused: "
                        + html.escape(query.get("error_description", query["error"])[0]),
                    )
                else:
                    title, text = (
                        "Connected",
                        "You can close this window and go back to the terminal.",
                    )
                body = _PAGE.format(title=title, text=text).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                loopback._answer = f"http://127.0.0.1:{loopback.port}{self.path}"
                loopback._done.set()

            def log_message(self, format: str, *args: Any) -> None:  # the code is in the URL
                return

        try:
            self._server = http.server.HTTPServer(("127.0.0.1", self.port), Handler)
        except OSError as exc:
            raise LoginError(f"cannot listen on 127.0.0.1:{self.port}: {exc.strerror}") from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def wait(self, timeout: float) -> str:
        """The URL the browser was sent back to (with ``code`` and ``state``)."""
        try:
            if not self._done.wait(timeout):
                raise LoginError(
                    f"no answer from the authorize page within {timeout:.0f} s: run the login again"
                )
            assert self._answer is not None
            return self._answer
        finally:
            self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _app_id(client_id: str) -> str:
    """GoHighLevel's app id: a client id is ``<appId>-<suffix>``."""
    return client_id.split("-", 1)[0]


def ghl_login(
    store: ConnectionStore,
    *,
    client_id: str,
    client_secret: str,
    authorize_url: str,
    base_url: str,
    scopes: Sequence[str],
    user_type: str,
    show: Callable[[str], None],
    port: int = 0,
    timeout: float = 300.0,
) -> list[Connection]:
    """The whole GoHighLevel login; ``show`` is given the authorize URL (to open or print).
    Returns the connections stored."""
    base_url = base_url.rstrip("/")
    token_url = base_url + "/oauth/token"
    wanted = list(dict.fromkeys([*scopes, *(AGENCY_SCOPES if user_type == "Company" else ())]))
    loopback = Loopback(port)
    try:
        url, state = grants.ghl_authorization_url(
            authorize_url, client_id, loopback.redirect_uri, wanted
        )
        show(url)
    except BaseException:
        loopback.close()
        raise
    answer = loopback.wait(timeout)
    query = parse_qs(urlparse(answer).query)
    if "error" in query:
        raise LoginError(
            f"the sign-in was refused: {query.get('error_description', query['error'])[0]}"
        )
    if query.get("state", [""])[0] != state:
        raise LoginError(
            "the sign-in answer's state does not match this login (a forged or stale redirect): run the login again"
        )
    try:
        grant = grants.ghl_exchange_code(
            token_url,
            client_id,
            client_secret,
            callback_url=answer,
            state=state,
            redirect_uri=loopback.redirect_uri,
            user_type=user_type,
        )
    except grants.GrantRefused as exc:
        raise LoginError(f"GoHighLevel refused the code: {exc}") from None
    except grants.GrantFailed as exc:
        raise LoginError(str(exc)) from None
    secret = {
        "access_token": grant.access_token,
        "refresh_token": grant.refresh_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    meta: dict[str, Any] = {"token_url": token_url, "base_url": base_url, **grant.plain}
    meta.pop("approvedLocations", None)
    kind = "company" if str(grant.plain.get("userType", user_type)) == "Company" else "location"
    if kind == "location":
        account = str(grant.plain.get("locationId") or "")
        if not account:
            raise LoginError("GoHighLevel gave a Location token that names no locationId")
    else:
        account = str(grant.plain.get("companyId") or "")
        if not account:
            raise LoginError("GoHighLevel gave a Company token that names no companyId")
        try:
            installed = grants.ghl_installed_locations(
                base_url, grant.access_token, account, _app_id(client_id)
            )
        except grants.GrantFailed as exc:
            raise LoginError(f"cannot list the agency's locations: {exc}") from None
        ids = [
            str(loc.get("_id") or loc.get("id"))
            for loc in installed
            if loc.get("_id") or loc.get("id")
        ]
        approved = grant.plain.get("approvedLocations") or []
        meta["locations"] = list(dict.fromkeys([*ids, *map(str, approved)]))
    conn = Connection(
        id=connection_id("ghl", kind, account),
        app="ghl",
        kind=kind,
        account=account,
        scopes=grant.scopes or tuple(wanted),
        expires_at=grant.expires_at,
        meta=meta,
    )
    stored = store.put(conn, secret)
    if kind == "company":  # location tokens of an older login came from the old agency tokens
        for old in store.find("ghl"):
            if old.parent == conn.id:
                store.delete(old.id)
    return [stored]


def store_connecteam_key(
    store: ConnectionStore, api_key: str, name: str, location: str | None
) -> Connection:
    """Store a Connecteam API key (it does not expire and has every scope of its account)."""
    meta: dict[str, Any] = {"location": location} if location else {}
    conn = Connection(
        id=connection_id("connecteam", "api_key", name),
        app="connecteam",
        kind="api_key",
        account=name,
        meta=meta,
    )
    return store.put(conn, {"api_key": api_key})


def connecteam_client_login(
    store: ConnectionStore,
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    name: str,
    location: str | None,
) -> Connection:
    """Connecteam OAuth client credentials: the first 24-hour token now, the next when it nears
    expiry (there is no refresh token; the client credentials are stored to ask again)."""
    token_url = base_url.rstrip("/") + "/oauth/v1/token"
    try:
        grant = grants.connecteam_client_credentials(token_url, client_id, client_secret)
    except grants.GrantRefused as exc:
        raise LoginError(f"Connecteam refused the client credentials: {exc}") from None
    except grants.GrantFailed as exc:
        raise LoginError(str(exc)) from None
    meta: dict[str, Any] = {"token_url": token_url, "base_url": base_url.rstrip("/")}
    if location:
        meta["location"] = location
    conn = Connection(
        id=connection_id("connecteam", "client_credentials", name),
        app="connecteam",
        kind="client_credentials",
        account=name,
        scopes=grant.scopes,
        expires_at=grant.expires_at,
        meta=meta,
    )
    secret = {
        "access_token": grant.access_token,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    return store.put(conn, secret)


def describe_expiry(expires_at: float | None, now: float | None = None) -> str:
    """``in 23 h 59 min``, ``expired 5 min ago``, ``never``."""
    if expires_at is None:
        return "never"
    left = expires_at - (time.time() if now is None else now)
    span = abs(left)
    text = (
        f"{int(span // 3600)} h {int(span % 3600 // 60)} min"
        if span >= 3600
        else f"{max(int(span // 60), 0)} min"
    )
    return f"in {text}" if left >= 0 else f"expired {text} ago"


def scopes_of(plans: Sequence[Any], app: str) -> list[str]:
    """The scopes the steps (and look-ups) of ``plans`` need from ``app``, in order."""
    from connector.catalog.model import Operation

    out: list[str] = []
    for plan in plans:
        for step in plan.steps:
            targets = [step.target]
            if step.once is not None and step.once.lookup is not None:
                targets.append(step.once.lookup.target)
            for target in targets:
                if isinstance(target, Operation) and target.app == app and target.scopes:
                    out.append(target.scopes[0])
    return list(dict.fromkeys(out))
