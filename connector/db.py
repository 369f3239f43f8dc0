"""The one database: DBOS's tables, the run records, the id links, the journal, the rate budgets.

``CONNECTOR_DATABASE_URL`` names it (``sqlite:///PATH`` or ``postgresql://...``); the default is
the SQLite file ``connector.sqlite3`` under ``CONNECTOR_HOME``. :func:`open_database` gives the one
SQLAlchemy engine a process uses for it, with our own tables created or migrated.

SQLite runs in WAL mode with ``synchronous=NORMAL`` and a busy timeout, so several processes and
threads share it; its folder is made 0700 and its files 0600, because the database holds personal
data. Our tables are declared on :data:`metadata` by the modules that own them (the run store, the
id-link store, the journal, the budgets); :func:`upgrade` creates what is missing and records the
schema version in ``connector_schema``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connector.config import connector_home
from connector.errors import StoreError

__all__ = [
    "DATABASE_FILENAME",
    "SCHEMA_VERSION",
    "Database",
    "database_url",
    "metadata",
    "open_database",
    "upgrade",
]

DATABASE_FILENAME = "connector.sqlite3"
SCHEMA_VERSION = 1

metadata = sa.MetaData()

schema_table = sa.Table(
    "connector_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)


def database_url(env: Mapping[str, str] | None = None) -> str:
    """``CONNECTOR_DATABASE_URL``, or SQLite under ``CONNECTOR_HOME``.

    ``postgres://`` and ``postgresql://`` both mean PostgreSQL through psycopg.
    """
    env = os.environ if env is None else env
    url = (env.get("CONNECTOR_DATABASE_URL") or "").strip()
    if not url:
        return "sqlite:///" + str(connector_home(env) / DATABASE_FILENAME)
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for other databases and in-memory SQLite)."""
    if not url.startswith("sqlite:///"):
        return None
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _private_file(path: Path) -> None:
    """Make the database's folder 0700 and its files 0600 (it holds personal data)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(
        OSError
    ):  # a folder we do not own (a shared volume): its owner decides
        os.chmod(path.parent, 0o700)
    for suffix in ("", "-wal", "-shm", "-journal"):
        target = path.with_name(path.name + suffix)
        if suffix == "":
            # create it 0600 before SQLite does, so it is never readable by others
            fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
        if target.exists():
            os.chmod(target, 0o600)


def _pragmas(dbapi_conn: Any) -> None:
    # Wait for locks, and keep the WAL: a commit is then a write to the log, not an fsync of the
    # database. Every connection to the file has these, ours and DBOS's.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    # switching a new file to WAL takes an exclusive lock without waiting for it: two processes
    # opening a new database at once meet "database is locked" here; try again for a while
    for attempt in range(200):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 199:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # transactions begin as writers (``_sqlite_begin``): no lock upgrades that deadlock
    dbapi_conn.isolation_level = None
    _pragmas(dbapi_conn)


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    """An engine for ``url``: SQLite tuned for several processes, PostgreSQL with a sized pool."""
    path = sqlite_path(url)
    if url.startswith("sqlite"):
        if path is not None:
            _private_file(path)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=False,
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    return sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, future=True
    )


def _system_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # DBOS's own setting for its SQLite connections (writes begin IMMEDIATE), and ours
    dbapi_conn.isolation_level = "IMMEDIATE"
    _pragmas(dbapi_conn)


def make_system_engine(url: str, *, pool_size: int = 20) -> sa.Engine | None:
    """The engine for DBOS's tables on SQLite (None on PostgreSQL: DBOS makes its own).

    DBOS's default SQLite engine leaves ``synchronous`` at FULL (an fsync of the WAL at every
    checkpoint, about 1.5 ms each) and pings the file before every checkout; this one commits as
    the rest of the database does. The caller disposes of it after ``DBOS.destroy()``.
    """
    if not url.startswith("sqlite"):
        return None
    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=False,  # a local file does not drop connections
    )
    sa.event.listen(engine, "connect", _system_pragmas)
    return engine


def insert(dialect: str, table: sa.Table) -> Any:
    """An ``INSERT`` into ``table`` that can say ``ON CONFLICT`` (``on_conflict_do_nothing`` or
    ``_do_update``), in the words of ``dialect``: PostgreSQL, or SQLite."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


def upgrade(engine: sa.Engine) -> int:
    """Create our tables where missing and record the schema version; returns the version.

    A database written by a newer connector (a higher version) is refused rather than changed.
    """
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            row = conn.execute(sa.select(schema_table.c.version)).first()
            if row is None:
                conn.execute(sa.insert(schema_table).values(id=1, version=SCHEMA_VERSION))
                return SCHEMA_VERSION
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database was written by a newer connector (schema {version}, this one"
                    f" knows {SCHEMA_VERSION}): upgrade connector"
                )
            if version < SCHEMA_VERSION:
                conn.execute(sa.update(schema_table).values(version=SCHEMA_VERSION))
            return SCHEMA_VERSION
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot prepare the database: {_plain_error(exc)}") from None


def _plain_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]


class Database:
    """The process's handle on the one database: its URL and engine."""

    def __init__(self, url: str, engine: sa.Engine) -> None:
        self.url = url
        self.engine = engine

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def close(self) -> None:
        self.engine.dispose()


_open: dict[str, Database] = {}
_open_lock = threading.Lock()


def open_database(env: Mapping[str, str] | None = None, *, url: str | None = None) -> Database:
    """The database for ``env`` (one engine per URL per process), upgraded to our schema."""
    # importing the owners declares their tables on `metadata`, so that every table is created
    # with the first open, whichever command opens it
    import connector.links
    import connector.runtime.budget
    import connector.runtime.journal
    import connector.serve.cursors
    import connector.serve.deliveries
    import connector.serve.echoes
    import connector.store  # noqa: F401

    url = url or database_url(env)
    with _open_lock:
        db = _open.get(url)
        if db is None:
            try:
                engine = make_engine(url)
            except (OSError, sa.exc.SQLAlchemyError, ModuleNotFoundError) as exc:
                raise StoreError(f"cannot open the database {_safe_url(url)}: {exc}") from None
            upgrade(engine)
            db = _open[url] = Database(url, engine)
        return db


def close_all() -> None:
    """Dispose of every engine this process opened (tests, and the end of a command)."""
    with _open_lock:
        for db in _open.values():
            db.close()
        _open.clear()


def _safe_url(url: str) -> str:
    """The URL without its password."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"
