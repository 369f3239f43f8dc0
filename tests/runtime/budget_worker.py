"""One process spending one rate budget, for the two-process test in ``test_budget.py``.

Usage: ``budget_worker.py DATABASE_URL KEY OUTPUT SECONDS START_AT``

From the wall time ``START_AT`` (waiting at most 5 s for it) the worker asks the budget for
``LIMIT`` for ``SECONDS``, sleeping each wait it is given, for at most ``MAX_ROUNDS`` rounds, so it
always ends by itself. After each grant it spends ``REQUEST_SECONDS`` on the request the grant was
for, as a real caller does: a loop that asks again at once rides every burst of freed places while
its peer backs off in SQLite's busy handler, and can starve it.

It writes the time of every granted request, one a line, to ``OUTPUT``: the time the budget
counted it (the clock's reading inside :meth:`Budget.reserve`), so the test checks exactly what
was stored.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from connector.persistence.budgets import Budget, Limit
from connector.persistence.database import make_engine

__all__ = ["LIMIT", "MAX_ROUNDS", "REQUEST_SECONDS", "main"]

LIMIT = Limit(20, 1.0, "burst")
MAX_ROUNDS = 10_000
MAX_START_DELAY = 5.0
REQUEST_SECONDS = 0.005
CLOCK_SECONDS = 0.0005


class _RecordingClock:
    """``time.time`` that remembers its readings since the last :meth:`clear`."""

    def __init__(self) -> None:
        self.readings: list[float] = []

    def __call__(self) -> float:
        time.sleep(CLOCK_SECONDS)
        now = time.time()
        self.readings.append(now)
        return now

    def clear(self) -> None:
        self.readings.clear()


def _spend(budget: Budget, clock: _RecordingClock, key: str, seconds: float) -> list[float]:
    grants: list[float] = []
    end = time.monotonic() + seconds
    for _ in range(MAX_ROUNDS):
        if time.monotonic() >= end:
            break
        clock.clear()
        wait = budget.reserve(key, [LIMIT])
        if wait == 0.0:
            grants.append(clock.readings[0])
            time.sleep(REQUEST_SECONDS)
        else:
            time.sleep(min(wait, LIMIT.window + 0.01))
    return grants


def main(argv: list[str]) -> int:
    url, key, output, seconds, start_at = argv
    engine = make_engine(url)
    clock = _RecordingClock()
    budget = Budget(engine, clock)
    delay = float(start_at) - time.time()
    if delay > 0:
        time.sleep(min(delay, MAX_START_DELAY))
    try:
        grants = _spend(budget, clock, key, float(seconds))
    finally:
        engine.dispose()
    Path(output).write_text("".join(f"{at!r}\n" for at in grants), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
