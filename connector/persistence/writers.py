"""SQLite's writers, queued in this process: one at a time, handed over in order, webhooks first.

SQLite lets one connection write at a time. A connection that finds the writer lock taken waits
in SQLite's busy handler, which sleeps between looks (1, 2, 5, 10 ... 100 ms) and never learns
when the lock was freed: under load the lock sat free while its waiters slept, and a waiter that
had slept longest looked least often. py-spy dumps of `connector serve` at 64 runs at once
against an API answering in 250 ms: of the intake's threads not idle, every one was waiting for
the lock, and webhooks were answered after 3.1 to 6.8 s (p99 of three runs) while the runs'
writes kept taking it.

Here every connection to a database file (ours and DBOS's, :func:`gated_connect_args`) passes
that file's :class:`WriterGate` before it writes: threads queue in Python and the next one goes
the moment the last one commits. The threads answering a webhook (:func:`urgent`) are handed
the gate before the runs' threads, so a webhook is answered soon under any backlog; after
:data:`URGENT_IN_A_ROW` of them, one waiting run goes, so runs never starve. SQLite's own lock
still decides between processes, and a thread that waits longer than :data:`GATE_WAIT_SECONDS`
goes on to SQLite's own wait, so the gate never turns SQLite's "database is locked" into a hang.
"""

from __future__ import annotations

import collections
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "GATE_WAIT_SECONDS",
    "URGENT_IN_A_ROW",
    "WriterGate",
    "gated_connect_args",
    "is_urgent",
    "set_gate",
    "urgent",
    "writer_gate",
]

GATE_WAIT_SECONDS = 30.0  # as long as SQLite's own busy timeout (database.py); then SQLite decides
URGENT_IN_A_ROW = 4  # urgent writers handed the gate in a row while a run's writer waits

# what takes SQLite's writer lock: pysqlite begins a transaction before these (isolation_level
# set, as DBOS's connections are), and our connections begin theirs IMMEDIATE (database.py)
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE")

_local = threading.local()


@contextlib.contextmanager
def urgent() -> Iterator[None]:
    """This thread's writes meanwhile go before the runs' (a webhook waits for its answer)."""
    before = getattr(_local, "urgent", False)
    _local.urgent = True
    try:
        yield
    finally:
        _local.urgent = before


def is_urgent() -> bool:
    """Whether this thread's writes go first now (inside :func:`urgent`)."""
    return bool(getattr(_local, "urgent", False))


class WriterGate:
    """One holder at a time, reentrant per thread, handed to the next waiter in order (urgent
    waiters first, see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._urgent: collections.deque[tuple[threading.Lock, int]] = collections.deque()
        self._waiting: collections.deque[tuple[threading.Lock, int]] = collections.deque()
        self._urgent_run = 0  # urgent hand-overs since a run's writer last had it

    @property
    def owner(self) -> int | None:
        """The thread holding the gate (its ``threading.get_ident()``), None when free."""
        return self._owner

    def waiting(self) -> int:
        """How many threads wait for the gate."""
        with self._lock:
            return len(self._urgent) + len(self._waiting)

    def enter(self, timeout: float = GATE_WAIT_SECONDS) -> int | None:
        """Wait for the gate. Returns the holder's id to :meth:`leave` with, or None when it
        was not had within ``timeout`` seconds (the caller then goes on without it)."""
        me = threading.get_ident()
        with self._lock:
            if self._owner == me or self._owner is None:
                self._owner = me
                self._depth += 1
                return me
            waiter = threading.Lock()
            waiter.acquire()
            entry = (waiter, me)
            queue = self._urgent if is_urgent() else self._waiting
            queue.append(entry)
        if waiter.acquire(timeout=timeout):
            return me  # handed over by leave(): the gate is this thread's
        with self._lock:
            if self._owner == me:  # handed over just as the wait ended
                return me
            queue.remove(entry)
            return None

    def leave(self, owner: int) -> None:
        """Give the gate back (once per :meth:`enter` that returned ``owner``); at the last, the
        next waiter has it."""
        with self._lock:
            if self._owner != owner:
                return
            self._depth -= 1
            if self._depth > 0:
                return
            queue = self._urgent
            if not queue or (self._waiting and self._urgent_run >= URGENT_IN_A_ROW):
                queue = self._waiting
            if not queue:
                self._owner = None
                return
            self._urgent_run = self._urgent_run + 1 if queue is self._urgent else 0
            waiter, self._owner = queue.popleft()
            self._depth = 1
            waiter.release()


_gates: dict[str, WriterGate] = {}
_gates_lock = threading.Lock()


def writer_gate(path: Path) -> WriterGate:
    """The gate of the database file at ``path`` in this process."""
    key = str(path.resolve())
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = WriterGate()
        return gate


class _GatedCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        connection: GatedConnection = self.connection  # type: ignore[assignment]
        connection.before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            connection.after()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        connection: GatedConnection = self.connection  # type: ignore[assignment]
        connection.before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            connection.after()


class GatedConnection(sqlite3.Connection):
    """A sqlite3 connection that passes its file's :class:`WriterGate` before a statement that
    takes the writer lock, and gives it back when its transaction ends (commit, rollback, close,
    or a write outside any transaction once done)."""

    gate: WriterGate | None = None  # set when the engine connects (set_gate)
    _held: int | None = None

    def cursor(self, factory: Any = _GatedCursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, seq_of_parameters)

    def before(self, sql: str) -> None:
        if (
            self._held is None
            and self.gate is not None
            and sql.lstrip()[:16].upper().startswith(_WRITES)
        ):
            self._held = self.gate.enter()

    def after(self) -> None:
        if self._held is not None and not self.in_transaction:
            self._give_back()  # a write outside a transaction, or a BEGIN that failed

    def _give_back(self) -> None:
        held, self._held = self._held, None
        if held is not None and self.gate is not None:
            self.gate.leave(held)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()

    def __exit__(self, *exc_info: Any) -> Any:  # ``with connection:`` commits or rolls back
        try:
            return super().__exit__(*exc_info)
        finally:
            self._give_back()


def gated_connect_args(path: Path | None) -> dict[str, Any]:
    """sqlite3's ``connect`` arguments for an engine on the file at ``path``: its connections
    pass the file's gate (:func:`set_gate` gives each its gate). An in-memory database has none."""
    args: dict[str, Any] = {"check_same_thread": False, "timeout": 30}
    if path is not None:
        args["factory"] = GatedConnection
    return args


def set_gate(path: Path | None) -> Callable[[Any, Any], None]:
    """The engine's ``connect`` listener that gives each new connection the gate of ``path``."""
    gate = writer_gate(path) if path is not None else None

    def listener(dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, GatedConnection):
            dbapi_conn.gate = gate

    return listener
