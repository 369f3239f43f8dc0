"""Live updates: new runs and status changes, sent to open pages as server-sent events.

Each open page's stream looks at the newest runs once a second (an index read of 100 rows; the
runs may be written by another process on the same database, so the database is the one
source) and sends what changed since its last look: a run it had not seen, or a run whose
status is not what it was. A page asks for the runs it shows beyond the newest ones
(``?watch=ID``). Each message is one ``run`` event whose data is the run's row as JSON, plus its
rendered HTML for the list. A stream ends when the page goes away or the server stops, and
``EventSource`` connects again by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from starlette.concurrency import run_in_threadpool

from connector.ui.queries import History, RunRow

__all__ = ["POLL_SECONDS", "Changes"]

log = logging.getLogger("connector.ui")

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0


class Changes:
    """Compares the newest runs with what each listener saw, and yields what changed."""

    def __init__(
        self,
        history: History,
        render_row: Callable[[RunRow], str],
        stopping: Callable[[], bool] = lambda: False,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.history = history
        self.render_row = render_row
        self.stopping = stopping
        self.poll = poll

    async def _look(self, watch: Sequence[str]) -> dict[str, RunRow]:
        rows = await run_in_threadpool(self.history.newest, 100, list(watch))
        return {row.id: row for row in rows}

    def _event(self, row: RunRow) -> str:
        data = {**row.to_json(), "row": self.render_row(row)}
        return f"event: run\ndata: {json.dumps(data, default=str)}\n\n"

    async def stream(self, watch: Sequence[str]) -> AsyncIterator[str]:
        """The event stream of one page: what changed after it connected. (Starlette ends it
        when the page goes away.)"""
        try:
            seen = {k: v.status for k, v in (await self._look(watch)).items()}
        except Exception as exc:  # the database is away: the page connects again later
            log.warning("live updates: %s", type(exc).__name__)
            return
        yield "retry: 2000\n: connected\n\n"
        quiet = 0.0
        while not self.stopping():
            await asyncio.sleep(self.poll)
            try:
                now = await self._look(watch)
            except Exception as exc:
                log.warning("live updates: %s", type(exc).__name__)
                continue
            changed = [row for key, row in now.items() if seen.get(key) != row.status]
            for row in sorted(changed, key=lambda r: (r.started_at, r.id)):
                seen[row.id] = row.status
                yield self._event(row)
            quiet = 0.0 if changed else quiet + self.poll
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield ": still here\n\n"
