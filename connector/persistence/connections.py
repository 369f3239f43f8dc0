"""Connections: the credentials connector holds for an app account, sealed in the one database.

A connection is one row of ``connections``:

- ``ghl:location:<locationId>``: a GoHighLevel sub-account's OAuth tokens (a ``Location`` install,
  or a location token obtained from an agency connection, its ``parent``);
- ``ghl:company:<companyId>``: an agency (``Company``) install's tokens, from which location tokens
  are obtained as they are needed;
- ``connecteam:account:<name>``: a Connecteam API key, or OAuth client credentials and the 24-hour
  token they gave.

What is secret (tokens, refresh tokens, client secrets, API keys) is sealed by
:class:`~connector.persistence.sealing.SecretBox`; the rest (scopes, expiry, the token endpoint,
the agency's locations) is plain, so ``auth status`` and ``validate`` read it without the key.

A refresh is taken by one process at a time through a *lease* on the row (``refresh_owner``,
``refresh_until``): a conditional ``UPDATE`` that succeeds for one caller only, on SQLite and
PostgreSQL alike, across threads, processes and machines. The rotated tokens are written in the
same ``UPDATE`` that ends the lease and bumps ``version``, before anyone uses them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector.errors import StoreError
from connector.persistence.dialects import insert
from connector.persistence.sealing import SecretBox
from connector.persistence.tables import connections_table

__all__ = [
    "Connection",
    "ConnectionStore",
    "agency_for",
    "connection_id",
    "connections_table",
    "used_for",
]


def connection_id(app: str, kind: str, account: str) -> str:
    """The id of a connection: ``ghl:location:<id>``, ``ghl:company:<id>``,
    ``connecteam:account:<name>``."""
    scope = "account" if app == "connecteam" else kind
    return f"{app}:{scope}:{account}"


@dataclass(frozen=True)
class Connection:
    """A connection's plain facts (its secret stays sealed until :meth:`ConnectionStore.secret`)."""

    id: str
    app: str
    kind: str
    account: str
    parent: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: float | None = None
    needs_login: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    refresh_owner: str | None = None
    refresh_until: float | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        """What ``auth status --json`` prints: never a secret."""
        now = time.time() if now is None else now
        out: dict[str, Any] = {
            "id": self.id,
            "app": self.app,
            "kind": self.kind,
            "account": self.account,
            "parent": self.parent,
            "scopes": list(self.scopes),
            "expires_at": self.expires_at,
            "expires_in": None if self.expires_at is None else round(self.expires_at - now),
            "needs_login": self.needs_login is not None,
            "reason": self.needs_login,
        }
        if self.meta.get("locations") is not None:
            out["locations"] = list(self.meta["locations"])
        return out


def _row(row: Any) -> Connection:
    try:
        meta = json.loads(row.meta or "{}")
    except ValueError:
        meta = {}
    return Connection(
        id=row.id,
        app=row.app,
        kind=row.kind,
        account=row.account,
        parent=row.parent,
        scopes=tuple(s for s in (row.scopes or "").split() if s),
        expires_at=row.expires_at,
        needs_login=row.needs_login,
        meta=meta if isinstance(meta, dict) else {},
        version=int(row.version),
        refresh_owner=row.refresh_owner,
        refresh_until=row.refresh_until,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def agency_for(conns: Sequence[Connection], location: str) -> Connection | None:
    """The agency connection that gives ``location`` its token: one that lists the location
    (from ``/oauth/installedLocations``), else the first there is."""
    companies = [c for c in conns if c.app == "ghl" and c.kind == "company"]
    listed = [c for c in companies if location in (c.meta.get("locations") or ())]
    return next(iter(listed or companies), None)


def used_for(
    conns: Sequence[Connection], app: str, account: str, env: Mapping[str, str]
) -> Connection | None:
    """Which of ``conns`` a request of ``app`` on ``account`` would carry the credential of (a
    location's own connection, else the agency's that gives it one), as :class:`~connector.connections.tokens.Tokens` chooses;
    None when none would, or which is not certain."""
    if app == "ghl":
        if account:
            own = connection_id("ghl", "location", account)
            return next((c for c in conns if c.id == own), None) or agency_for(conns, account)
        locations = [c for c in conns if c.app == "ghl" and c.kind == "location"]
        return locations[0] if len(locations) == 1 else None
    named = env.get("CONNECTEAM_CONNECTION")
    found = [c for c in conns if c.app == app and (not named or c.account == named)]
    return found[0] if len(found) == 1 else None


class ConnectionStore:
    """The ``connections`` table; one short transaction per call, safe from any thread."""

    def __init__(self, engine: sa.Engine, box: SecretBox | None) -> None:
        self.engine = engine
        self.box = box  # None: the plain facts only (auth status, validate)

    def _box(self) -> SecretBox:
        if self.box is None:
            raise StoreError("this connection store was opened without its key")
        return self.box

    def _run(self, what: str, stmt: Any) -> Any:
        try:
            with self.engine.begin() as conn:
                return conn.execute(stmt)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot {what}: {type(exc).__name__}") from None

    # reading -------------------------------------------------------------------------------------

    def _rows(self, what: str, query: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(query).all())
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot read {what}: {type(exc).__name__}") from None

    def get(self, conn_id: str) -> Connection | None:
        t = connections_table
        rows = self._rows(f"the connection {conn_id}", sa.select(t).where(t.c.id == conn_id))
        return _row(rows[0]) if rows else None

    def find(self, app: str | None = None) -> list[Connection]:
        t = connections_table
        query = sa.select(t).order_by(t.c.app, t.c.kind, t.c.account)
        if app is not None:
            query = query.where(t.c.app == app)
        return [_row(r) for r in self._rows("the connections", query)]

    def secret(self, connection: Connection) -> dict[str, Any]:
        """The connection's secret, opened (tokens, keys)."""
        t = connections_table
        query = sa.select(t.c.secret).where(t.c.id == connection.id)
        rows = self._rows(f"the connection {connection.id}", query)
        if not rows:
            raise StoreError(f"the connection {connection.id} is gone (logged out)")
        return self._box().open(rows[0].secret, connection.id)

    # writing -------------------------------------------------------------------------------------

    def put(
        self,
        connection: Connection,
        secret: Mapping[str, Any],
        *,
        only_if_absent: bool = False,
    ) -> Connection:
        """Store ``connection`` with ``secret`` (a new login replaces what was there and clears
        "needs login"); returns the row as stored. ``only_if_absent``: keep a row another process
        stored first (and return that one)."""
        now = time.time()
        values = {
            "id": connection.id,
            "app": connection.app,
            "kind": connection.kind,
            "account": connection.account,
            "parent": connection.parent,
            "scopes": " ".join(connection.scopes),
            "expires_at": connection.expires_at,
            "needs_login": None,
            "meta": json.dumps(dict(connection.meta), sort_keys=True),
            "secret": self._box().seal(secret),
            "version": 1,
            "refresh_owner": None,
            "refresh_until": None,
            "created_at": now,
            "updated_at": now,
        }
        t = connections_table
        stmt = insert(self.engine.dialect.name, t).values(**values)
        if only_if_absent:
            stmt = stmt.on_conflict_do_nothing(index_elements=[t.c.id])
        else:
            changed = {k: v for k, v in values.items() if k not in ("id", "created_at", "version")}
            stmt = stmt.on_conflict_do_update(
                index_elements=[t.c.id], set_={**changed, "version": t.c.version + 1}
            )
        self._run(f"store the connection {connection.id}", stmt)
        stored = self.get(connection.id)
        if stored is None:  # removed (logged out) in between
            raise StoreError(f"the connection {connection.id} was removed while it was stored")
        return stored

    def delete(self, conn_id: str) -> list[str]:
        """Forget a connection and the location connections obtained through it."""
        t = connections_table
        gone = [c.id for c in self.find() if c.id == conn_id or c.parent == conn_id]
        if gone:
            self._run(f"delete the connection {conn_id}", sa.delete(t).where(t.c.id.in_(gone)))
        return gone

    # the refresh lease ---------------------------------------------------------------------------

    def take_lease(self, conn_id: str, version: int, owner: str, seconds: float) -> bool:
        """Become the one refresher of ``conn_id`` at ``version``: False when another holds a
        live lease, the version moved on (someone refreshed), or a new login is needed."""
        now = time.time()
        t = connections_table
        stmt = (
            sa.update(t)
            .where(t.c.id == conn_id)
            .where(t.c.version == version)
            .where(t.c.needs_login.is_(None))
            .where(sa.or_(t.c.refresh_owner.is_(None), t.c.refresh_until < now))
            .values(refresh_owner=owner, refresh_until=now + seconds)
        )
        return bool(self._run(f"lock the connection {conn_id}", stmt).rowcount)

    def finish_refresh(
        self,
        conn_id: str,
        owner: str,
        secret: Mapping[str, Any],
        *,
        expires_at: float | None,
        scopes: Sequence[str] | None = None,
    ) -> bool:
        """Write the new tokens, end the lease and bump the version, in one statement; False when
        the lease was lost meanwhile (nothing is written)."""
        t = connections_table
        values: dict[str, Any] = {
            "secret": self._box().seal(secret),
            "expires_at": expires_at,
            "version": t.c.version + 1,
            "refresh_owner": None,
            "refresh_until": None,
            "needs_login": None,
            "updated_at": time.time(),
        }
        if scopes is not None:
            values["scopes"] = " ".join(scopes)
        stmt = sa.update(t).where(t.c.id == conn_id, t.c.refresh_owner == owner).values(**values)
        return bool(self._run(f"store the refreshed tokens of {conn_id}", stmt).rowcount)

    def fail_refresh(self, conn_id: str, owner: str, reason: str) -> None:
        """The refresh was refused for good: the connection needs a new login."""
        t = connections_table
        stmt = (
            sa.update(t)
            .where(t.c.id == conn_id, t.c.refresh_owner == owner)
            .values(
                needs_login=reason, refresh_owner=None, refresh_until=None, updated_at=time.time()
            )
        )
        self._run(f"mark the connection {conn_id}", stmt)

    def release_lease(self, conn_id: str, owner: str) -> None:
        """Give the lease back without a change (the refresh failed for now; try again later)."""
        t = connections_table
        stmt = (
            sa.update(t)
            .where(t.c.id == conn_id, t.c.refresh_owner == owner)
            .values(refresh_owner=None, refresh_until=None)
        )
        self._run(f"unlock the connection {conn_id}", stmt)
