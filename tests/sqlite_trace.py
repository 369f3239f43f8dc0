"""Every statement SQLite runs, counted by SQLite itself: its trace callback sees what any
connection runs (ours and DBOS's, ``BEGIN`` and ``COMMIT`` included), on every connection opened
while the ``trace`` fixture (tests/conftest.py) is in use.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import Counter
from typing import Any

__all__ = ["Trace"]


# DBOS's own housekeeping threads: about twice a second they look at their queues and
# schedules and move delayed or timed-out workflows (a transaction of their own, committed), whether
# or not anything runs; a count of what runs cost leaves them out
DBOS_BACKGROUND = ("dbos-", "queue-worker-")  # the names it gives them
DBOS_UNNAMED = ("(queue_thread)", "(dynamic_scheduler_loop)")  # Python's: "Thread-4 (target)"


class Trace:
    """The first word of every statement run while :attr:`on`, except DBOS's background
    threads' (:data:`DBOS_BACKGROUND`, :data:`DBOS_UNNAMED`); of :attr:`thread` alone, when set."""

    def __init__(self) -> None:
        self.on = False
        self.thread: int | None = None
        self.seen: Counter[str] = Counter()

    def __call__(self, dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.set_trace_callback(self.statement)

    def statement(self, sql: str) -> None:
        if not self.on:
            return
        if self.thread is not None and self.thread != threading.get_ident():
            return
        name = threading.current_thread().name
        if self.thread is None and (
            name.startswith(DBOS_BACKGROUND) or name.endswith(DBOS_UNNAMED)
        ):
            return
        self.seen[sql.split(None, 1)[0].upper()] += 1

    @property
    def commits(self) -> int:
        return self.seen["COMMIT"]

    @property
    def statements(self) -> int:
        return sum(n for word, n in self.seen.items() if word not in ("BEGIN", "COMMIT"))
