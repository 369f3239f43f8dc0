"""The levels of the whole deployment that call a person when they cross a threshold: the backlog
(runs queued, not yet taken by a process) and the failure rate of the runs of the last minutes.

Each is off unless its variable is set:

- ``CONNECTOR_ALERT_BACKLOG=500``: one alert when 500 or more runs wait on the queue;
- ``CONNECTOR_ALERT_FAILURE_RATE=0.2``: one alert when a fifth or more of the runs that started
  in the window (``CONNECTOR_ALERT_FAILURE_WINDOW``, seconds, default 300) and ended, failed;
  counted once at least ``CONNECTOR_ALERT_FAILURE_MIN_RUNS`` (default 10) runs ended in it.

A level over its threshold is an incident (``level:backlog``, ``level:failure rate``): every
serving process looks, the first to see it opens it and sends the one alert. It is back to normal
when it falls below 80% of its threshold (so a level that hovers at the threshold is not an alert
a minute); the incident then closes, and its "back to normal" message goes out once
(:meth:`connector.serve.alerts.Alerts.announce`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from connector import clock as wall
from connector.errors import ConnectorError
from connector.persistence.tables import runs_table
from connector.serve.alerts import Alerts

__all__ = ["BACK_TO_NORMAL", "CHECK_SECONDS", "Levels", "outcomes"]

log = logging.getLogger("connector.alerts")

CHECK_SECONDS = 15.0  # how often the levels are measured
BACK_TO_NORMAL = 0.8  # a level is back to normal below this share of its threshold
BACKLOG = "backlog"
FAILURE_RATE = "failure rate"


def outcomes(engine: sa.Engine, since: str) -> dict[str, int]:
    """How many runs (not dry runs) started at or after ``since`` (ISO) and ended, by status."""
    r = runs_table.c
    query = (
        sa.select(r.status, sa.func.count())
        .where(r.started_at >= since, r.status.in_(("failed", "succeeded")), ~r.dry_run)
        .group_by(r.status)
    )
    with engine.connect() as conn:
        return {str(status): int(count) for status, count in conn.execute(query)}


def _number(env: Mapping[str, str], name: str, kind: type, low: float, high: float | None) -> Any:
    text = (env.get(name) or "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise ConnectorError(f"{name}={text!r} is not a valid value: give a number {bound}")
    return value


@dataclass
class Levels:
    """Measures the levels every :data:`CHECK_SECONDS` and tells ``alerts`` when one crosses
    its threshold or is back to normal."""

    backlog: int | None
    failure_rate: float | None
    queued: Callable[[], int]  # runs waiting on the queue
    engine: sa.Engine | None  # where the runs are (for the failure rate)
    window: float = 300.0
    min_runs: int = 10
    every: float = CHECK_SECONDS
    clock: Callable[[], float] = time.monotonic
    _last: float | None = None
    _over: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str], runtime: Any) -> Levels | None:
        """The thresholds the environment sets (None: none); a value that is not a number
        in range is a :class:`ConnectorError` naming the variable."""
        backlog = _number(env, "CONNECTOR_ALERT_BACKLOG", int, 1, None)
        rate = _number(env, "CONNECTOR_ALERT_FAILURE_RATE", float, 0.0, 1.0)
        window = _number(env, "CONNECTOR_ALERT_FAILURE_WINDOW", float, 10.0, 86400.0)
        least = _number(env, "CONNECTOR_ALERT_FAILURE_MIN_RUNS", int, 1, None)
        if backlog is None and rate is None:
            return None
        return cls(
            backlog,
            rate,
            queued=runtime.queued,
            engine=runtime.db.engine,
            window=window or 300.0,
            min_runs=least or 10,
        )

    def check(self, alerts: Alerts, *, force: bool = False) -> None:
        """Measure (when :attr:`every` seconds have passed, or ``force``) and tell ``alerts``."""
        now = self.clock()
        if not force and self._last is not None and now - self._last < self.every:
            return
        self._last = now
        if self.backlog is not None:
            try:
                queued = int(self.queued())
            except Exception as exc:  # the database is away: measured next time
                log.warning("the backlog could not be measured: %s", type(exc).__name__)
            else:
                self._tell(
                    alerts,
                    BACKLOG,
                    over=queued >= self.backlog,
                    normal=queued < self.backlog * BACK_TO_NORMAL,
                    what=f"{queued} runs wait on the queue (threshold {self.backlog})",
                )
        if self.failure_rate is not None and self.engine is not None:
            since = wall.now() - timedelta(seconds=self.window)
            stamp = since.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            try:
                counts = outcomes(self.engine, stamp)
            except Exception as exc:
                log.warning("the failure rate could not be measured: %s", type(exc).__name__)
                return
            failed, ended = counts.get("failed", 0), sum(counts.values())
            rate = failed / ended if ended else 0.0
            enough = ended >= self.min_runs
            minutes = f"{self.window / 60:g} minutes"
            self._tell(
                alerts,
                FAILURE_RATE,
                over=enough and rate >= self.failure_rate,
                normal=not enough or rate < self.failure_rate * BACK_TO_NORMAL,
                what=(
                    f"{failed} of the {ended} runs of the last {minutes} failed ({rate:.0%};"
                    f" threshold {self.failure_rate:.0%})"
                ),
            )

    def _tell(self, alerts: Alerts, name: str, *, over: bool, normal: bool, what: str) -> None:
        was = self._over.get(name)
        if over and was is not True:
            self._over[name] = True
            alerts.level(name, True, what)
        elif normal and was is not False:
            self._over[name] = False  # closes an incident a process before this one left open
            alerts.level(name, False, f"back to normal: {what}")
