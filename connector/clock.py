"""The wall clock that run records and the id-link store read, and a way to fix it.

Everything that stamps a time into what a run records or returns (a step's ``started_at``, a
link's ``created_at`` / ``updated_at``) reads :func:`now`. ``connector test`` fixes it with
:func:`fixed` so that a test's run is the same byte for byte each time. Durations, timeouts,
retry waits and rate-limit windows use monotonic clocks of their own and are not affected; under
``connector test`` a run's waits (:class:`connector.runtime.durable.RuntimeOptions` ``sleep``)
:func:`advance` the fixed moment instead of sleeping.

The fixed moment is process-wide (a run's steps execute on DBOS's worker threads, which a
context variable would not reach); ``connector test`` runs one test at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

__all__ = ["advance", "fixed", "now", "parse_moment"]

_lock = threading.Lock()
_fixed: datetime | None = None


def now() -> datetime:
    """The current time (UTC, aware), or the moment :func:`fixed` set."""
    moment = _fixed
    return moment if moment is not None else datetime.now(UTC)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 moment (``2024-03-15T12:00:00Z``; a date alone is its midnight) as an aware
    UTC datetime. Raises ``ValueError`` for anything else."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def advance(seconds: float) -> None:
    """Move the moment :func:`fixed` set ``seconds`` forward: ``connector test``'s runs wait so
    instead of sleeping. Outside :func:`fixed` it does nothing."""
    global _fixed
    with _lock:
        if _fixed is not None:
            _fixed += timedelta(seconds=max(seconds, 0.0))


@contextmanager
def fixed(moment: datetime) -> Iterator[None]:
    """Within this block :func:`now` answers ``moment``."""
    global _fixed
    with _lock:
        previous, _fixed = _fixed, moment
    try:
        yield
    finally:
        with _lock:
            _fixed = previous
