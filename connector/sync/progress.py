"""How far a reconcile is, and how long the rest takes at the vendors' rate budgets.

A reconcile's time is not its own: every request waits for its app's rate budget (GoHighLevel
100 per 10 s and 200,000 a day; Connecteam 100 a minute and 10,000 a day on most plans). So the
time left is the requests still to send, spread over each budget's windows: ``n`` requests under
a limit of ``c`` per ``w`` seconds need ``(n - 1) // c`` more windows after the first, and an
app's requests wait for the tightest of its limits. Requests still to send are estimated from
the walk so far: the requests each record cost on average, per app, times the records left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Progress", "estimate", "time_for"]

Limits = Sequence[tuple[int, float]]  # (requests, per seconds)


def time_for(requests: int, limits: Limits) -> float:
    """Seconds ``requests`` requests need under ``limits`` (from a full budget; 0 for none)."""
    if requests <= 0:
        return 0.0
    return max((float((requests - 1) // count) * window for count, window in limits), default=0.0)


def estimate(left: Mapping[str, int], limits: Mapping[str, Limits]) -> float:
    """Seconds the requests ``left`` (per app) need at the apps' ``limits``: one after the other,
    as a reconcile sends them."""
    return sum(time_for(n, limits.get(app, ())) for app, n in left.items())


@dataclass
class Progress:
    """A reconcile's progress: records walked, of how many (None: not known yet), requests sent
    per app, and the estimate of the time left at the rate budgets (None: not known yet)."""

    done: int = 0
    total: int | None = None
    requests: dict[str, int] = field(default_factory=dict)
    seconds_left: float | None = None

    def left(self) -> dict[str, int]:
        """Requests still to send per app: each record's average so far, times the records left."""
        if self.total is None or self.done <= 0:
            return {}
        remaining = max(0, self.total - self.done)
        return {app: round(n / self.done * remaining) for app, n in self.requests.items()}

    def said(self) -> str:
        """``3,000 of 8,000 records; about 12 min left at the rate budgets``."""
        of = f" of {self.total:,}" if self.total is not None else ""
        text = f"{self.done:,}{of} records"
        if self.seconds_left is not None:
            text += f"; about {duration(self.seconds_left)} left at the rate budgets"
        return text


def duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``, ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
