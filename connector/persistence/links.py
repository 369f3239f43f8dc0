"""The id-link store: which GoHighLevel record is which Connecteam record.

Connecteam has no "contact": the flows pair a GoHighLevel contact with a Connecteam user, a
GoHighLevel task with a Connecteam quick task, a GoHighLevel note with a Connecteam user note. Each
pair is a *link* of some ``kind`` (``contact``, ``task``, ``note``, or any other string a recipe
chooses), kept in the ``links`` table of the one database (:mod:`connector.persistence.database`:
``CONNECTOR_DATABASE_URL``, by default ``connector.sqlite3`` under ``CONNECTOR_HOME``) so that it
survives restarts and a rerun of a flow finds what an earlier run created instead of creating it
again.

Within one kind, a GoHighLevel id is linked to at most one Connecteam id and the other way round.
:meth:`LinkStore.put` is an idempotent upsert: putting the same pair twice changes nothing but the
metadata and ``updated_at``; putting a pair that reuses one side of an older link replaces that
older link, because the newest pairing is the truth. The links it replaced come back in
:attr:`Link.replaced`.

Ids keep their JSON type: Connecteam user and note ids are integers, GoHighLevel ids are strings.
Lookups match either form (``9001`` finds a link stored as ``"9001"`` and the other way round), and
what comes back has the type it was stored with, so a recipe can pass ``connecteam_id`` straight to
an integer parameter.

The store is written with SQLAlchemy Core, so the same code runs on SQLite and PostgreSQL. It holds
only an engine and takes a connection per operation, so one store serves many threads; several
processes (``connector serve`` and a ``connector run`` in a shell) share the database. Every
operation is one short transaction; :meth:`LinkStore.put_in` and :meth:`LinkStore.get_in` work
inside a transaction the caller already holds, so that "this write happened" and "these two ids are
linked" commit together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from connector import clock
from connector.errors import StoreError
from connector.persistence.database import database_url, open_database, sqlite_path
from connector.persistence.tables import links_table

__all__ = ["Link", "LinkError", "LinkId", "LinkStore", "check_kind", "links_table"]

MAX_KIND_LENGTH = 64
MAX_ID_LENGTH = 256
MAX_META_BYTES = 64 * 1024
FIND_CHUNK = 500  # ids per query in find(): well under SQLite's bound-variable limit

LinkId = str | int

"""One row per link; the primary key and the unique constraint make each side linked at most once
per kind."""


class LinkError(StoreError):
    """A link operation was asked for something impossible (a bad id, kind or metadata)."""


@dataclass(frozen=True)
class Link:
    """One pairing of a GoHighLevel id with a Connecteam id.

    ``replaced`` is set only on what :meth:`LinkStore.put` / :meth:`LinkStore.put_in` return: the
    older links of the kind that reused one of the two ids and were removed by this put (empty when
    the pair was new or already there). It is not part of the link itself: not compared, not in
    :meth:`to_json`.
    """

    kind: str
    ghl_id: LinkId
    connecteam_id: LinkId
    meta: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    replaced: tuple[Link, ...] = field(default=(), compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ghl_id": self.ghl_id,
            "connecteam_id": self.connecteam_id,
            "meta": dict(self.meta),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _now() -> str:
    return clock.now().isoformat(timespec="seconds").replace("+00:00", "Z")


def check_kind(kind: object) -> str:
    """A kind is any non-empty string of at most 64 characters."""
    if not isinstance(kind, str) or not kind.strip():
        raise LinkError("a link kind must be a non-empty string (contact, task, note, ...)")
    if len(kind) > MAX_KIND_LENGTH:
        raise LinkError(f"a link kind is at most {MAX_KIND_LENGTH} characters")
    return kind


def _key(value: object, side: str) -> tuple[str, bool]:
    """The stored text of an id and whether it was an integer."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise LinkError(f"{side} must be a string or an integer, not {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise LinkError(f"{side} must not be empty")
    if len(text) > MAX_ID_LENGTH:
        raise LinkError(f"{side} is longer than {MAX_ID_LENGTH} characters")
    return text, isinstance(value, int)


def _meta_text(meta: Mapping[str, Any] | None) -> str:
    if meta is None:
        return "{}"
    if not isinstance(meta, Mapping):
        raise LinkError("link metadata must be an object")
    try:
        text = json.dumps(dict(meta), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise LinkError(f"link metadata must be plain JSON: {exc}") from None
    if len(text.encode("utf-8")) > MAX_META_BYTES:
        raise LinkError(f"link metadata is larger than {MAX_META_BYTES // 1024} KiB")
    return text


def _row_to_link(row: Mapping[Any, Any]) -> Link:
    ghl: LinkId = int(row["ghl_id"]) if row["ghl_id_is_int"] else row["ghl_id"]
    ct: LinkId = int(row["connecteam_id"]) if row["connecteam_id_is_int"] else row["connecteam_id"]
    try:
        meta = json.loads(row["meta"])
    except ValueError:
        meta = {}
    return Link(
        kind=row["kind"],
        ghl_id=ghl,
        connecteam_id=ct,
        meta=meta if isinstance(meta, dict) else {},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _one_side(
    ghl_id: LinkId | None, connecteam_id: LinkId | None, verb: str
) -> tuple[sa.Column[Any], str]:
    """The column and stored key for a lookup by exactly one of the two ids."""
    if (ghl_id is None) == (connecteam_id is None):
        raise LinkError(f"{verb} by ghl_id or by connecteam_id (exactly one of them)")
    name = "ghl_id" if ghl_id is not None else "connecteam_id"
    text, _ = _key(ghl_id if ghl_id is not None else connecteam_id, name)
    return links_table.c[name], text


def _lock_key(kind: str, side: str, text: str) -> int:
    """A signed 64-bit PostgreSQL advisory-lock key for one id of one kind."""
    digest = hashlib.blake2b(
        "\0".join(("connector.persistence.links", kind, side, text)).encode("utf-8"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_sides(conn: sa.Connection, kind: str, ghl: str, ct: str) -> None:
    """Serialise the puts that touch either id (PostgreSQL; SQLite's writers are serial already).

    Two puts conflict only through an id they share: both would insert a row under the same
    primary key or unique key, and at READ COMMITTED neither sees the other's row until it commits,
    so the later one would fail on the constraint. A transaction-scoped advisory lock on each id
    (taken in a fixed order, so two puts never wait on each other in a circle) makes the later put
    wait, then see the earlier one's row and replace or update it. The locks go with the commit or
    rollback of the transaction, the caller's one for :meth:`LinkStore.put_in`.

    On SQLite the engine of :func:`connector.persistence.database.make_engine` starts every transaction with
    ``BEGIN IMMEDIATE``, the database's one writer lock, so nothing is needed here.
    """
    if conn.dialect.name != "postgresql":
        return
    for key in sorted({_lock_key(kind, "ghl", ghl), _lock_key(kind, "connecteam", ct)}):
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))


# the statements of a put, built once (a reconcile puts thousands of links in a row)
_REPLACED = (
    sa.delete(links_table)
    .where(
        links_table.c.kind == sa.bindparam("kind"),
        sa.or_(
            links_table.c.ghl_id == sa.bindparam("ghl"),
            links_table.c.connecteam_id == sa.bindparam("ct"),
        ),
        sa.not_(
            sa.and_(
                links_table.c.ghl_id == sa.bindparam("ghl"),
                links_table.c.connecteam_id == sa.bindparam("ct"),
            )
        ),
    )
    .returning(*links_table.c)
)
_EXISTING = sa.select(links_table).where(
    links_table.c.kind == sa.bindparam("kind"),
    links_table.c.ghl_id == sa.bindparam("ghl"),
    links_table.c.connecteam_id == sa.bindparam("ct"),
)
_UPDATE = (
    sa.update(links_table)
    .where(
        links_table.c.kind == sa.bindparam("b_kind"), links_table.c.ghl_id == sa.bindparam("b_ghl")
    )
    .values(
        meta=sa.bindparam("new_meta"),
        updated_at=sa.bindparam("now"),
        ghl_id_is_int=sa.bindparam("ghl_int"),
        connecteam_id_is_int=sa.bindparam("ct_int"),
    )
)
_INSERT = sa.insert(links_table)


def _plain(exc: BaseException) -> str:
    """The database's own message, first line only (no SQL, no bound parameters)."""
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]


class LinkStore:
    """The id-link store on one SQLAlchemy engine: thread-safe, a connection per operation.

    ``LinkStore.for_env(env)`` is the store of the process's one database; ``LinkStore(engine)``
    uses any engine whose database has the ``links`` table (see :func:`connector.persistence.database.upgrade`).
    The store does not own its engine: :meth:`close` leaves it to whoever made it.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @classmethod
    def for_env(cls, env: Mapping[str, str]) -> LinkStore:
        """The store in the database of ``env`` (created and upgraded if need be)."""
        try:
            return cls(open_database(env).engine)
        except StoreError as exc:
            raise StoreError(f"cannot open the id-link store: {exc}") from None

    @classmethod
    def existing_for_env(cls, env: Mapping[str, str]) -> LinkStore | None:
        """The store of ``env`` for reading: ``None`` when its SQLite file does not exist yet.

        Reading then answers "no link" without creating a database (a ``--dry-run``, or
        ``connector links list`` on a fresh home, leaves no file behind). A database that is not
        a SQLite file (PostgreSQL) is always opened.
        """
        path = sqlite_path(database_url(env))
        if path is not None and not path.exists():
            return None
        return cls.for_env(env)

    def close(self) -> None:
        """Nothing to release: connections go back to the engine's pool after each operation.

        Kept so that a store can sit in ``RunContext.services`` (whose owner closes what is there)
        and be used with ``with``. The engine of :meth:`for_env` is the process's
        (``connector.persistence.database.close_all`` disposes of it); a caller that made its own engine disposes
        of it itself.
        """

    def __enter__(self) -> LinkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _error(self, exc: sa.exc.SQLAlchemyError) -> StoreError:
        return StoreError(f"id-link store ({self._where()}): {_plain(exc)}")

    # --- inside a caller's transaction ------------------------------------------------------------

    def get_in(
        self,
        conn: sa.Connection,
        kind: str,
        *,
        ghl_id: LinkId | None = None,
        connecteam_id: LinkId | None = None,
    ) -> Link | None:
        """:meth:`get` on ``conn``, inside whatever transaction it has open."""
        kind = check_kind(kind)
        column, text = _one_side(ghl_id, connecteam_id, "look a link up")
        try:
            row = (
                conn.execute(
                    sa.select(links_table).where(links_table.c.kind == kind, column == text)
                )
                .mappings()
                .first()
            )
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from None
        return _row_to_link(row) if row is not None else None

    def put_in(
        self,
        conn: sa.Connection,
        kind: str,
        ghl_id: LinkId,
        connecteam_id: LinkId,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """:meth:`put` on ``conn``, inside the transaction the caller holds (and will commit).

        Nothing is committed here: the link is there when the caller's transaction commits and
        gone if it rolls back. On PostgreSQL the transaction should be READ COMMITTED (the
        default); the locks this takes on the two ids are held until it ends, so keep it short,
        and a transaction that puts several links can, rarely, be chosen as a deadlock's victim
        (then retry it). Errors are :class:`StoreError`; after one the caller's transaction
        should be rolled back.
        """
        kind = check_kind(kind)
        ghl, ghl_int = _key(ghl_id, "ghl_id")
        ct, ct_int = _key(connecteam_id, "connecteam_id")
        meta_text = _meta_text(meta)
        try:
            _lock_sides(conn, kind, ghl, ct)
            # Older links that reuse one of the ids with another partner go first. A write is
            # the first statement, so even a deferred SQLite transaction takes the writer lock
            # before it reads anything.
            ids = {"kind": kind, "ghl": ghl, "ct": ct}
            gone = conn.execute(_REPLACED, ids).mappings().all()
            replaced = tuple(sorted((_row_to_link(r) for r in gone), key=lambda x: str(x.ghl_id)))
            now = _now()
            existing = conn.execute(_EXISTING, ids).mappings().first()
            values: dict[str, Any] = {
                "kind": kind,
                "ghl_id": ghl,
                "connecteam_id": ct,
                "ghl_id_is_int": int(ghl_int),
                "connecteam_id_is_int": int(ct_int),
                "updated_at": now,
            }
            if existing is not None:
                merged = {**_row_to_link(existing).meta, **json.loads(meta_text)}
                values["meta"] = _meta_text(merged)
                values["created_at"] = existing["created_at"]
                conn.execute(
                    _UPDATE,
                    {
                        "b_kind": kind,
                        "b_ghl": ghl,
                        "new_meta": values["meta"],
                        "now": now,
                        "ghl_int": values["ghl_id_is_int"],
                        "ct_int": values["connecteam_id_is_int"],
                    },
                )
            else:
                values["meta"] = meta_text
                values["created_at"] = now
                conn.execute(_INSERT, values)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from None
        stored = _row_to_link(values)
        return Link(
            kind=stored.kind,
            ghl_id=stored.ghl_id,
            connecteam_id=stored.connecteam_id,
            meta=stored.meta,
            created_at=stored.created_at,
            updated_at=stored.updated_at,
            replaced=replaced,
        )

    # --- one transaction each -----------------------------------------------------------------------

    def get(
        self, kind: str, *, ghl_id: LinkId | None = None, connecteam_id: LinkId | None = None
    ) -> Link | None:
        """The link of ``kind`` with this GoHighLevel id or this Connecteam id, or ``None``.

        Give exactly one of the two ids.
        """
        kind = check_kind(kind)
        _one_side(ghl_id, connecteam_id, "look a link up")  # bad input fails before connecting
        try:
            with self.engine.begin() as conn:
                return self.get_in(conn, kind, ghl_id=ghl_id, connecteam_id=connecteam_id)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from None

    def put(
        self,
        kind: str,
        ghl_id: LinkId,
        connecteam_id: LinkId,
        meta: Mapping[str, Any] | None = None,
    ) -> Link:
        """Link ``ghl_id`` and ``connecteam_id`` (idempotent) and return the stored link.

        When the same pair exists, ``meta`` is merged into its metadata (new keys win) and
        ``created_at`` is kept. Older links of this kind that use either id with another partner
        are replaced; they come back in the result's :attr:`Link.replaced`.
        """
        check_kind(kind)
        _key(ghl_id, "ghl_id")
        _key(connecteam_id, "connecteam_id")
        _meta_text(meta)  # bad input fails before connecting
        try:
            with self.engine.begin() as conn:
                return self.put_in(conn, kind, ghl_id, connecteam_id, meta)
        except sa.exc.SQLAlchemyError as exc:  # the commit itself
            raise self._error(exc) from None

    def delete(
        self, kind: str, *, ghl_id: LinkId | None = None, connecteam_id: LinkId | None = None
    ) -> Link | None:
        """Remove the link with this GoHighLevel id or this Connecteam id; the removed link or None."""
        kind = check_kind(kind)
        column, text = _one_side(ghl_id, connecteam_id, "delete a link")
        t = links_table
        try:
            with self.engine.begin() as conn:
                row = (
                    conn.execute(
                        sa.delete(t).where(t.c.kind == kind, column == text).returning(*t.c)
                    )
                    .mappings()
                    .first()
                )
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from None
        return _row_to_link(row) if row is not None else None

    def find(
        self,
        kind: str,
        *,
        ghl_ids: Sequence[LinkId] | None = None,
        connecteam_ids: Sequence[LinkId] | None = None,
    ) -> list[Link]:
        """The links of ``kind`` for any of these ids (of one side), in the order asked."""
        kind = check_kind(kind)
        if (ghl_ids is None) == (connecteam_ids is None):
            raise LinkError("find links by ghl_ids or by connecteam_ids (exactly one of them)")
        name = "ghl_id" if ghl_ids is not None else "connecteam_id"
        asked = ghl_ids if ghl_ids is not None else connecteam_ids or []
        wanted = list(dict.fromkeys(_key(v, name)[0] for v in asked))
        column = links_table.c[name]
        found: dict[str, Link] = {}
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(wanted), FIND_CHUNK):
                    chunk = wanted[start : start + FIND_CHUNK]
                    rows = conn.execute(
                        sa.select(links_table).where(links_table.c.kind == kind, column.in_(chunk))
                    ).mappings()
                    for row in rows:
                        found[row[name]] = _row_to_link(row)
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from None
        return [found[w] for w in wanted if w in found]

    def list_links(self, kind: str | None = None, limit: int | None = None) -> list[Link]:
        """Every link (of ``kind``), newest first (by ``updated_at``; see :func:`_newest_first`)."""
        t = links_table
        query = sa.select(t)
        if kind is not None:
            query = query.where(t.c.kind == check_kind(kind))
        if limit is not None:
            query = query.limit(int(limit))
        try:
            with self.engine.begin() as conn:
                query = query.order_by(t.c.updated_at.desc(), *_newest_first(conn.dialect.name))
                rows = conn.execute(query).mappings().all()
        except sa.exc.SQLAlchemyError as exc:
            raise self._error(exc) from None
        return [_row_to_link(r) for r in rows]


def _newest_first(dialect: str) -> list[sa.ColumnElement[Any]]:
    """How links with the same ``updated_at`` (written in the same second) are ordered.

    The table has no sequence column, so each database's own row order is used: SQLite's
    ``rowid`` (the latest inserted first) and PostgreSQL's ``xmin`` (the transaction that last
    wrote the row: the latest written first; only around a transaction-id wraparound, once in
    billions of transactions, could two same-second links swap). Elsewhere the order is by kind and
    GoHighLevel id.
    """
    if dialect == "sqlite":
        return [sa.literal_column("links.rowid").desc()]
    if dialect == "postgresql":
        xmin = sa.cast(sa.cast(sa.literal_column("links.xmin"), sa.Text), sa.BigInteger)
        return [xmin.desc()]
    return [links_table.c.kind, links_table.c.ghl_id]
