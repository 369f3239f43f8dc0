"""The sandbox clock: a base clock (``time.time``, or a test's fake) plus an offset that only grows.

Everything in the sandbox reads the same :class:`SandboxClock`: the state (timestamps, token and
code expiry), the rate limiter (windows), the fault injector (``Retry-After`` dates) and the webhook
dispatcher (when a retry is due). ``POST /_sandbox/clock {"advance": SECONDS}`` calls
:meth:`SandboxClock.advance`, so a test can roll a rate-limit window or make a webhook retry due
without sleeping; :meth:`SandboxClock.watch` lets the dispatcher wake at once when that happens.
The offset is never reset (``POST /_sandbox/reset`` leaves time alone): time does not go back.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from connector.sandbox.state import Clock

__all__ = ["SandboxClock"]


class SandboxClock:
    """Epoch seconds: ``base()`` plus :attr:`offset`; callable like ``time.time``."""

    def __init__(self, base: Clock = time.time) -> None:
        self.base = base
        self._offset = 0.0
        self._lock = threading.Lock()
        self._watchers: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self.base() + self._offset

    @property
    def offset(self) -> float:
        """How far :meth:`advance` has moved the clock past its base, in seconds."""
        return self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock ``seconds`` (finite, at least 0) forward; the new reading."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError("advance must be a number of seconds")
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("advance must be a finite number of seconds, at least 0")
        with self._lock:
            self._offset += float(seconds)
            watchers = list(self._watchers)
        for wake in watchers:
            wake()
        return self()

    def watch(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` (from the advancing thread) each time the clock is advanced."""
        with self._lock:
            self._watchers.append(wake)

    def to_json(self) -> dict[str, float]:
        return {"now": self(), "offset": self._offset}
