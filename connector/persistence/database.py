"""The one database: DBOS's tables, the run records, the id links, the journal, the rate budgets.

``CONNECTOR_DATABASE_URL`` names it (``sqlite:///PATH`` or ``postgresql://...``); the default is
the SQLite file ``connector.sqlite3`` under ``CONNECTOR_HOME``. :func:`open_database` gives the one
SQLAlchemy engine a process uses for it, with our own tables created or migrated
(:mod:`connector.persistence.migrations`; the tables are in :mod:`connector.persistence.tables`).

SQLite runs in WAL mode with ``synchronous=NORMAL`` and a busy timeout, so several processes and
threads share it; its folder is made 0700 and its files 0600, because the database holds personal
data.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from connector.config import connector_home
from connector.errors import StoreError
from connector.persistence.migrations import upgrade

__all__ = [
    "DATABASE_FILENAME",
    "Database",
    "close_all",
    "database_url",
    "make_engine",
    "make_system_engine",
    "open_database",
    "pool_size_for",
    "reading",
    "retrying",
    "sqlite_path",
    "unavailable",
]

DATABASE_FILENAME = "connector.sqlite3"


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
    # a read (``reading``) takes no writer lock: in WAL mode it sees one snapshot either way;
    # sent to sqlite3 directly: through SQLAlchemy, this statement cost more than the writes
    read = conn.get_execution_options().get(READ_OPTION)
    conn.connection.driver_connection.execute("BEGIN" if read else "BEGIN IMMEDIATE")


READ_OPTION = "connector_read"


@contextlib.contextmanager
def reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection for reads only: on SQLite its transaction begins deferred (``BEGIN``), so a
    read never waits for, nor holds, the writer lock the transactions of writes take."""
    with engine.connect() as conn:
        yield conn.execution_options(**{READ_OPTION: True})


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


def _plain_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]


DB_WAIT_SECONDS = 120.0  # how long work waits for a database that went away (a restart)
T = TypeVar("T")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) says the database could not be reached: a
    connection refused or cut (PostgreSQL restarting), or SQLite's file locked past its busy
    timeout. Errors of the statement itself are not: waiting would not mend them."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, sa.exc.DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, sa.exc.OperationalError | sa.exc.InterfaceError):
            orig = seen.orig
            if isinstance(orig, sqlite3.Error):
                text = str(orig).lower()
                return "locked" in text or "unable to open" in text
            return True  # psycopg's OperationalError: the connection, not the statement
        if type(seen).__name__ == "OperationalError" and type(seen).__module__.startswith(
            "psycopg"
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retrying(
    func: Callable[[], T],
    *,
    wait: float = DB_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``func()``, called again while the database is :func:`unavailable`, for up to ``wait``
    seconds (0.1 s doubling to 2 s between tries); then its error is raised."""
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return func()
        except Exception as exc:
            if not unavailable(exc) or time.monotonic() + delay > deadline:
                raise
        sleep(delay)
        delay = min(delay * 2, 2.0)


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


def pool_size_for(workers: int) -> int:
    """Connections a process's engine keeps for ``workers`` runs at once: one each while it
    talks to the database, and some for intake, the ticker and commands (doubled by overflow)."""
    return max(10, workers + 4)


def open_database(
    env: Mapping[str, str] | None = None, *, url: str | None = None, workers: int = 0
) -> Database:
    """The database for ``env`` (one engine per URL per process), upgraded to our schema; its
    pool sized for ``workers`` runs at once (:func:`pool_size_for`)."""
    url = url or database_url(env)
    with _open_lock:
        db = _open.get(url)
        if db is None:
            try:
                engine = make_engine(url, pool_size=pool_size_for(workers))
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
