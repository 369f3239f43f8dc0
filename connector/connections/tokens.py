"""Access tokens for requests: from the stored connections, refreshed ahead of expiry and on a
401, one refresh per connection at a time across threads, processes and machines.

:class:`Tokens` is what :class:`connector.sending.auth.StoredAuth` asks for a credential (the app, and the
account a request acts on: a GoHighLevel location). It keeps what it read in memory, so a request
costs no database read until its token nears expiry or is refused. A refresh:

1. takes the connection's lease (:meth:`ConnectionStore.take_lease`), unless another process has
   it or has already refreshed (the row's ``version`` moved on: that token is used, no grant);
2. asks the token endpoint once; the rotated refresh token and the new access token are written
   in one statement, ending the lease, before the new token is used;
3. on ``invalid_grant`` (a refresh token used twice, an app uninstalled) marks the connection as
   needing a new login: every run that needs it then fails with that message, not with 401s.

A GoHighLevel location with no connection of its own gets one from an agency (``Company``)
connection through ``POST /oauth/locationToken``, stored as that location's connection.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connector.connections import grants
from connector.errors import NotConnected
from connector.persistence.connections import Connection, ConnectionStore, agency_for, connection_id

__all__ = ["REFRESH_AHEAD_SECONDS", "Credential", "Tokens"]

REFRESH_AHEAD_SECONDS = 300.0  # refresh a token this long before it expires
LEASE_SECONDS = 60.0  # a refresher that died gives its lease up after this long
WAIT_SECONDS = 60.0  # how long a request waits for another process's refresh
POLL_SECONDS = 0.05

_TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}


@dataclass(frozen=True)
class Credential:
    """What one request carries: a header, from one version of one connection."""

    connection: str
    version: int
    header: str
    value: str

    def __repr__(self) -> str:
        return f"Credential({self.connection} v{self.version}, {self.header}: ***)"


def _login_hint(app: str) -> str:
    return f"`connector auth login {app}`"


def _needs_login(conn: Connection) -> NotConnected:
    return NotConnected(
        f"the {_TITLES.get(conn.app, conn.app)} connection {conn.id} needs a new login"
        f" ({conn.needs_login}): run {_login_hint(conn.app)}"
    )


class Tokens:
    """Credentials for requests, from a :class:`ConnectionStore` (see the module docstring)."""

    def __init__(
        self,
        store: ConnectionStore,
        env: Mapping[str, str],
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.env = dict(env)
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._cache: dict[str, tuple[Connection, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str], None]] = []

    # what requests ask for -----------------------------------------------------------------------

    def watch(self, learn: Callable[[str], None]) -> None:
        """Call ``learn`` with every token and key this object hands out or stores (a redactor)."""
        self._listeners.append(learn)
        with self._lock:
            cached = list(self._cache.values())
        for _conn, secret in cached:
            self._learn(secret)

    def credential(self, app: str, account: str = "") -> Credential:
        """The credential for a request of ``app`` acting on ``account``; refreshed first when it
        expires within :data:`REFRESH_AHEAD_SECONDS`. Raises :class:`NotConnected`."""
        conn_id = self._connection_id(app, account)
        with self._lock:
            cached = self._cache.get(conn_id)
        if cached is not None and not self._expiring(cached[0]):
            return self._credential(*cached)
        conn, secret = self._current(conn_id, app, account)
        return self._credential(conn, secret)

    def refreshed(self, used: Credential) -> Credential | None:
        """After a 401 for ``used``: the connection's newer credential (refreshing it if nobody
        has), or None when there is nothing to refresh (an API key)."""
        conn = self.store.get(used.connection)
        if conn is None:
            raise NotConnected(
                f"the connection {used.connection} was removed (`connector auth logout`)"
            )
        if conn.kind == "api_key":
            return None
        conn, secret = self._refresh(conn, used.version)
        return self._credential(conn, secret)

    # finding the connection ----------------------------------------------------------------------

    def _connection_id(self, app: str, account: str) -> str:
        if app == "ghl":
            if account:
                return connection_id("ghl", "location", account)
            locations = [c for c in self.store.find("ghl") if c.kind == "location"]
            if len(locations) == 1:
                return locations[0].id
            raise NotConnected(
                "GoHighLevel: the request names no location (set GHL_LOCATION_ID, or give"
                " locationId in the step)"
                + ("" if locations else f"; and no location is connected: run {_login_hint('ghl')}")
            )
        named = self.env.get("CONNECTEAM_CONNECTION", "")
        if named:
            return connection_id(app, "account", named)
        found = self.store.find(app)
        if len(found) == 1:
            return found[0].id
        title = _TITLES.get(app, app)
        if not found:
            raise NotConnected(
                f"{title} is not connected: run {_login_hint(app)}"
                + (" or set CONNECTEAM_API_KEY" if app == "connecteam" else "")
            )
        names = ", ".join(c.account for c in found)
        raise NotConnected(
            f"{title} has several connections ({names}): set CONNECTEAM_CONNECTION to one"
        )

    def _current(self, conn_id: str, app: str, account: str) -> tuple[Connection, dict[str, Any]]:
        conn = self.store.get(conn_id)
        if conn is None:
            if app == "ghl" and account:
                return self._from_agency(account)
            raise NotConnected(
                f"{_TITLES.get(app, app)} is not connected for {account or 'this account'}:"
                f" run {_login_hint(app)}"
            )
        if conn.needs_login:
            raise _needs_login(conn)
        if self._expiring(conn):
            return self._refresh(conn, conn.version)
        return self._remember(conn, self.store.secret(conn))

    def _expiring(self, conn: Connection) -> bool:
        return (
            conn.expires_at is not None and conn.expires_at - self.clock() < REFRESH_AHEAD_SECONDS
        )

    # refreshing ----------------------------------------------------------------------------------

    def _refresh(self, conn: Connection, used_version: int) -> tuple[Connection, dict[str, Any]]:
        """The connection's credential newer than ``used_version``: another process's, or one
        this process obtains under the connection's lease."""
        deadline = self.clock() + WAIT_SECONDS
        while True:
            row = self.store.get(conn.id)
            if row is None:
                raise NotConnected(
                    f"the connection {conn.id} was removed (`connector auth logout`)"
                )
            if row.needs_login:
                raise _needs_login(row)
            if row.version != used_version and not self._expiring(row):
                return self._remember(row, self.store.secret(row))
            if self.store.take_lease(row.id, row.version, self.owner, LEASE_SECONDS):
                return self._grant_under_lease(row)
            if self.clock() > deadline:
                raise httpx.ConnectError(
                    f"waited {WAIT_SECONDS:.0f} s for another process to refresh {row.id}"
                )
            self.sleep(POLL_SECONDS)

    def _grant_under_lease(self, row: Connection) -> tuple[Connection, dict[str, Any]]:
        try:
            secret = self.store.secret(row)
            self._learn(secret)
            grant = self._grant(row, secret)
        except grants.GrantRefused as exc:
            reason = f"the token endpoint refused the refresh: {exc}"
            self.store.fail_refresh(row.id, self.owner, reason)
            raise _needs_login(
                Connection(row.id, row.app, row.kind, row.account, needs_login=reason)
            ) from None
        except grants.GrantFailed as exc:
            self.store.release_lease(row.id, self.owner)
            # nothing was sent to the API: the request is retried like a refused connection
            raise httpx.ConnectError(f"cannot refresh {row.id}: {exc}") from None
        except BaseException:
            self.store.release_lease(row.id, self.owner)
            raise
        new_secret = {
            **secret,
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token or secret.get("refresh_token"),
        }
        self._learn(new_secret)
        if not self.store.finish_refresh(
            row.id, self.owner, new_secret, expires_at=grant.expires_at, scopes=grant.scopes or None
        ):
            raise httpx.ConnectError(f"lost the refresh lease of {row.id}; try again")
        fresh = self.store.get(row.id)
        assert fresh is not None
        return self._remember(fresh, new_secret)

    def _grant(self, row: Connection, secret: Mapping[str, Any]) -> grants.Grant:
        client_id = str(secret.get("client_id") or "")
        client_secret = str(secret.get("client_secret") or "")
        token_url = str(row.meta.get("token_url") or "")
        if row.kind == "client_credentials":
            return grants.connecteam_client_credentials(
                token_url, client_id, client_secret, transport=self.transport
            )
        if row.kind == "api_key":
            raise grants.GrantRefused("invalid_key", "an API key cannot be refreshed")
        refresh_token = secret.get("refresh_token")
        if refresh_token:
            try:
                return grants.ghl_refresh(
                    token_url,
                    client_id,
                    client_secret,
                    str(refresh_token),
                    user_type="Company" if row.kind == "company" else "Location",
                    transport=self.transport,
                )
            except grants.GrantRefused:
                if row.parent is None:
                    raise
        if row.parent is None:
            raise grants.GrantRefused("invalid_grant", "no refresh token is stored")
        # a location token from an agency: ask the agency connection for a new one
        return self._exchange(row.parent, row.account)

    # agency installs -----------------------------------------------------------------------------

    def _from_agency(self, location: str) -> tuple[Connection, dict[str, Any]]:
        company = agency_for(self.store.find("ghl"), location)
        if company is None:
            raise NotConnected(
                f"GoHighLevel is not connected for location {location}: run"
                f" {_login_hint('ghl')} (a Location install), or log in an agency (--user-type"
                " Company) that has the app installed there"
            )
        try:
            grant = self._exchange(company.id, location)
        except grants.GrantRefused as exc:
            raise NotConnected(
                f"the agency connection {company.id} cannot give a token for location"
                f" {location}: {exc.description or exc.error}"
            ) from None
        except grants.GrantFailed as exc:
            raise httpx.ConnectError(f"cannot get a token for location {location}: {exc}") from None
        agency_secret = self.store.secret(company)
        secret = {
            "access_token": grant.access_token,
            "refresh_token": grant.refresh_token,
            "client_id": agency_secret.get("client_id"),
            "client_secret": agency_secret.get("client_secret"),
        }
        self._learn(secret)
        conn = Connection(
            id=connection_id("ghl", "location", location),
            app="ghl",
            kind="location",
            account=location,
            parent=company.id,
            scopes=grant.scopes or company.scopes,
            expires_at=grant.expires_at,
            meta={
                "token_url": company.meta.get("token_url"),
                "base_url": company.meta.get("base_url"),
                "companyId": company.account,
            },
        )
        stored = self.store.put(conn, secret, only_if_absent=True)  # another's, if it was first
        return self._remember(stored, self.store.secret(stored))

    def _exchange(self, company_id: str, location: str) -> grants.Grant:
        """A location token from the agency connection ``company_id`` (its token refreshed first
        when it is refused)."""
        company = self.store.get(company_id)
        if company is None:
            raise grants.GrantRefused(
                "invalid_grant", f"the agency connection {company_id} was removed"
            )
        conn, secret = self._current(company.id, "ghl", "")
        base_url = str(conn.meta.get("base_url") or "")
        try:
            return grants.ghl_location_token(
                base_url,
                str(secret["access_token"]),
                conn.account,
                location,
                transport=self.transport,
            )
        except grants.GrantRefused as exc:
            if exc.error != "HTTP 401":
                raise
        conn, secret = self._refresh(conn, conn.version)  # the agency token itself expired
        return grants.ghl_location_token(
            base_url, str(secret["access_token"]), conn.account, location, transport=self.transport
        )

    # memory --------------------------------------------------------------------------------------

    def _remember(
        self, conn: Connection, secret: dict[str, Any]
    ) -> tuple[Connection, dict[str, Any]]:
        self._learn(secret)
        with self._lock:
            self._cache[conn.id] = (conn, secret)
        return conn, secret

    def _learn(self, secret: Mapping[str, Any]) -> None:
        for key in ("access_token", "refresh_token", "api_key", "client_secret"):
            value = secret.get(key)
            if isinstance(value, str) and value:
                for learn in self._listeners:
                    learn(value)

    def _credential(self, conn: Connection, secret: Mapping[str, Any]) -> Credential:
        if conn.kind == "api_key":
            return Credential(conn.id, conn.version, "X-API-KEY", str(secret.get("api_key") or ""))
        return Credential(
            conn.id, conn.version, "Authorization", f"Bearer {secret.get('access_token') or ''}"
        )
