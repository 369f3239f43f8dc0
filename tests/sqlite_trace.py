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


class Trace:
    """The first word of every statement run while :attr:`on` (of :attr:`thread` alone, when
    set: DBOS's background threads look at their tables whenever they like)."""

    def __init__(self) -> None:
        self.on = False
        self.thread: int | None = None
        self.seen: Counter[str] = Counter()

    def __call__(self, dbapi_conn: Any, _record: Any) -> None:
        if isinstance(dbapi_conn, sqlite3.Connection):
            dbapi_conn.set_trace_callback(self.statement)

    def statement(self, sql: str) -> None:
        if self.on and self.thread in (None, threading.get_ident()):
            self.seen[sql.split(None, 1)[0].upper()] += 1

    @property
    def commits(self) -> int:
        return self.seen["COMMIT"]

    @property
    def statements(self) -> int:
        return sum(n for word, n in self.seen.items() if word not in ("BEGIN", "COMMIT"))
