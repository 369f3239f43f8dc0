"""The id-link store: which GoHighLevel record is which Connecteam record.

Connecteam has no "contact": the flows pair a GoHighLevel contact with a Connecteam user, a
GoHighLevel task with a Connecteam quick task, a GoHighLevel note with a Connecteam user note. Each
pair is a *link* of some ``kind`` (``contact``, ``task``, ``note``, or any other string a recipe
chooses), kept in a SQLite file under ``CONNECTOR_HOME`` (``links.sqlite3``) so that it survives
restarts and a rerun of a flow finds what an earlier run created instead of creating it again.

Within one kind, a GoHighLevel id is linked to at most one Connecteam id and the other way round.
:meth:`LinkStore.put` is an idempotent upsert: putting the same pair twice changes nothing but the
metadata and ``updated_at``; putting a pair that reuses one side of an older link replaces that
older link, because the newest pairing is the truth.

Ids keep their JSON type: Connecteam user and note ids are integers, GoHighLevel ids are strings.
Lookups match either form (``9001`` finds a link stored as ``"9001"`` and the other way round), and
what comes back has the type it was stored with, so a recipe can pass ``connecteam_id`` straight to
an integer parameter.

The database runs in WAL mode with a busy timeout and every operation is one short transaction, so
several processes (``connector serve`` and a ``connector run`` in a shell) can share the file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector.errors import StoreError

__all__ = ["LINKS_FILENAME", "Link", "LinkError", "LinkId", "LinkStore", "links_path"]

LINKS_FILENAME = "links.sqlite3"
SCHEMA_VERSION = 1
MAX_KIND_LENGTH = 64
MAX_ID_LENGTH = 256
MAX_META_BYTES = 64 * 1024
BUSY_TIMEOUT_SECONDS = 10.0

LinkId = str | int

_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    kind TEXT NOT NULL,
    ghl_id TEXT NOT NULL,
    connecteam_id TEXT NOT NULL,
    ghl_id_is_int INTEGER NOT NULL DEFAULT 0,
    connecteam_id_is_int INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, ghl_id),
    UNIQUE (kind, connecteam_id)
);
"""


class LinkError(StoreError):
    """A link operation was asked for something impossible (a bad id, kind or metadata)."""


def links_path(home: Path) -> Path:
    """Where the id-link store of ``home`` (a ``CONNECTOR_HOME``) lives."""
    return home / LINKS_FILENAME


@dataclass(frozen=True)
class Link:
    """One pairing of a GoHighLevel id with a Connecteam id."""

    kind: str
    ghl_id: LinkId
    connecteam_id: LinkId
    meta: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""

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
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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


def _row_to_link(row: sqlite3.Row) -> Link:
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


def _one_side(ghl_id: LinkId | None, connecteam_id: LinkId | None, verb: str) -> tuple[str, str]:
    """The column and stored key for a lookup by exactly one of the two ids."""
    if (ghl_id is None) == (connecteam_id is None):
        raise LinkError(f"{verb} by ghl_id or by connecteam_id (exactly one of them)")
    column = "ghl_id" if ghl_id is not None else "connecteam_id"
    text, _ = _key(ghl_id if ghl_id is not None else connecteam_id, column)
    return column, text


class LinkStore:
    """The id-link store in one SQLite file. Thread-safe; close it when done (or use ``with``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # we open every transaction ourselves
                check_same_thread=False,
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise LinkError(
                        f"{self.path} was written by a newer connector (schema {version}); "
                        "upgrade connector to use it"
                    )
                db.execute(_SCHEMA)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the id-link store {self.path}: {exc}") from None

    @classmethod
    def for_home(cls, home: Path) -> LinkStore:
        return cls(links_path(home))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> LinkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One short transaction; ``BEGIN IMMEDIATE`` for writes so writers queue, never deadlock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _run(self, write: bool, func: Any) -> Any:
        try:
            with self._transaction(write) as db:
                return func(db)
        except sqlite3.Error as exc:
            raise StoreError(f"id-link store {self.path}: {exc}") from None

    def get(
        self, kind: str, *, ghl_id: LinkId | None = None, connecteam_id: LinkId | None = None
    ) -> Link | None:
        """The link of ``kind`` with this GoHighLevel id or this Connecteam id, or ``None``.

        Give exactly one of the two ids.
        """
        kind = check_kind(kind)
        column, text = _one_side(ghl_id, connecteam_id, "look a link up")

        def _get(db: sqlite3.Connection) -> Link | None:
            row = db.execute(
                f"SELECT * FROM links WHERE kind = ? AND {column} = ?", (kind, text)
            ).fetchone()
            return _row_to_link(row) if row else None

        result: Link | None = self._run(False, _get)
        return result

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
        are replaced.
        """
        kind = check_kind(kind)
        ghl, ghl_int = _key(ghl_id, "ghl_id")
        ct, ct_int = _key(connecteam_id, "connecteam_id")
        meta_text = _meta_text(meta)

        def _put(db: sqlite3.Connection) -> Link:
            now = _now()
            row = db.execute(
                "SELECT * FROM links WHERE kind = ? AND ghl_id = ? AND connecteam_id = ?",
                (kind, ghl, ct),
            ).fetchone()
            if row is not None:
                merged = {**_row_to_link(row).meta, **json.loads(meta_text)}
                db.execute(
                    "UPDATE links SET meta = ?, updated_at = ?, ghl_id_is_int = ?,"
                    " connecteam_id_is_int = ? WHERE kind = ? AND ghl_id = ?",
                    (_meta_text(merged), now, ghl_int, ct_int, kind, ghl),
                )
            else:
                db.execute(
                    "DELETE FROM links WHERE kind = ? AND (ghl_id = ? OR connecteam_id = ?)",
                    (kind, ghl, ct),
                )
                db.execute(
                    "INSERT INTO links (kind, ghl_id, connecteam_id, ghl_id_is_int,"
                    " connecteam_id_is_int, meta, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (kind, ghl, ct, ghl_int, ct_int, meta_text, now, now),
                )
            stored = db.execute(
                "SELECT * FROM links WHERE kind = ? AND ghl_id = ?", (kind, ghl)
            ).fetchone()
            return _row_to_link(stored)

        result: Link = self._run(True, _put)
        return result

    def delete(
        self, kind: str, *, ghl_id: LinkId | None = None, connecteam_id: LinkId | None = None
    ) -> Link | None:
        """Remove the link with this GoHighLevel id or this Connecteam id; the removed link or None."""
        kind = check_kind(kind)
        column, text = _one_side(ghl_id, connecteam_id, "delete a link")

        def _delete(db: sqlite3.Connection) -> Link | None:
            row = db.execute(
                f"SELECT * FROM links WHERE kind = ? AND {column} = ?", (kind, text)
            ).fetchone()
            if row is None:
                return None
            db.execute(f"DELETE FROM links WHERE kind = ? AND {column} = ?", (kind, text))
            return _row_to_link(row)

        result: Link | None = self._run(True, _delete)
        return result

    def find(
        self,
        kind: str,
        *,
        ghl_ids: list[LinkId] | None = None,
        connecteam_ids: list[LinkId] | None = None,
    ) -> list[Link]:
        """The links of ``kind`` for any of these ids (of one side), in the order asked."""
        kind = check_kind(kind)
        if (ghl_ids is None) == (connecteam_ids is None):
            raise LinkError("find links by ghl_ids or by connecteam_ids (exactly one of them)")
        column = "ghl_id" if ghl_ids is not None else "connecteam_id"
        asked = ghl_ids if ghl_ids is not None else connecteam_ids or []
        wanted = [_key(v, column)[0] for v in asked]

        def _find(db: sqlite3.Connection) -> list[Link]:
            found: dict[str, Link] = {}
            for start in range(0, len(wanted), 500):  # stay under SQLite's variable limit
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for row in db.execute(
                    f"SELECT * FROM links WHERE kind = ? AND {column} IN ({marks})",
                    (kind, *chunk),
                ):
                    found[row[column]] = _row_to_link(row)
            return [found[w] for w in dict.fromkeys(wanted) if w in found]

        result: list[Link] = self._run(False, _find)
        return result

    def list_links(self, kind: str | None = None, limit: int | None = None) -> list[Link]:
        """Every link (of ``kind``), newest first."""
        sql = "SELECT * FROM links"
        args: list[Any] = []
        if kind is not None:
            sql += " WHERE kind = ?"
            args.append(check_kind(kind))
        sql += " ORDER BY updated_at DESC, rowid DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))

        def _list(db: sqlite3.Connection) -> list[Link]:
            return [_row_to_link(r) for r in db.execute(sql, args)]

        result: list[Link] = self._run(False, _list)
        return result
