"""One serving process per executor id: a second `connector serve` under the same
``CONNECTOR_EXECUTOR_ID`` on the same database would recover, and run, the first one's runs while
it is still running them. So a serving process holds a lock named by its executor id, for as
long as it serves: a file lock beside a SQLite database, a session advisory lock on PostgreSQL.
Both go with the process, however it ends (a SIGKILL too), so a restart takes the lock again.

``connector runs resume`` asks :func:`held` before resuming a run that a serving executor
began: that process is still working on it (and a new start of it finishes what it left).
:class:`Recovery` is how the serving processes on PostgreSQL finish the runs of one that died.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from connector.errors import ConnectorError

__all__ = ["RECOVERY_GRACE_SECONDS", "ExecutorLock", "held"]

# How long an executor's liveness lock must be free before its runs are recovered by another
# process (a live process whose session broke takes its lock again within a tick).
RECOVERY_GRACE_SECONDS = 10.0


def _key(executor_id: str) -> int:
    """A PostgreSQL advisory lock key (a signed 64-bit integer) for ``executor_id``."""
    digest = hashlib.sha256(f"connector-executor:{executor_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _lock_path(engine: sa.Engine, executor_id: str) -> Path:
    database = engine.url.database or "connector"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in executor_id)
    return Path(f"{database}.{safe}.lock")


class ExecutorLock:
    def __init__(self, engine: sa.Engine, executor_id: str) -> None:
        self.engine = engine
        self.executor_id = executor_id
        self._fd: int | None = None
        self._conn: Any = None

    def acquire(self) -> None:
        """Take the lock; ConnectorError if another process holds it."""
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(self.executor_id)}
            ).scalar()
            if not got:
                conn.close()
                raise self._taken()
            conn.commit()
            self._conn = conn
            return
        import fcntl

        path = _lock_path(self.engine, self.executor_id)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self._taken() from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def _taken(self) -> ConnectorError:
        return ConnectorError(
            f"another `connector serve` is running as executor {self.executor_id!r} on this "
            "database; stop it first, or (on PostgreSQL) give each process its own "
            "CONNECTOR_EXECUTOR_ID"
        )

    def alive(self) -> bool:
        """Whether the lock is still held (on PostgreSQL: its session is still there)."""
        if self._conn is None:
            return self._fd is not None
        try:
            self._conn.execute(sa.text("SELECT 1"))
            self._conn.commit()
        except Exception:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                # unlocked explicitly: closing gives the session back to the pool, lock and all
                self._conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _key(self.executor_id)}
                )
                self._conn.commit()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # and the file lock with the descriptor
            self._fd = None


def held(engine: sa.Engine, executor_id: str) -> bool:
    """Whether a live process serves as ``executor_id`` on this database."""
    if engine.dialect.name != "postgresql" and not _lock_path(engine, executor_id).exists():
        return False
    probe = ExecutorLock(engine, executor_id)
    try:
        probe.acquire()
    except ConnectorError:
        return True
    except OSError:
        return False
    probe.release()
    return False
