"""Rate limits as the vendors publish them, with the vendors' response headers.

GoHighLevel: a burst limit of 100 requests per 10 s and 200,000 a day, per app (OAuth client or
Private Integration token) and per location, reported on every response as
``X-RateLimit-Limit-Daily``, ``X-RateLimit-Daily-Remaining``, ``X-RateLimit-Interval-Milliseconds``,
``X-RateLimit-Max`` and ``X-RateLimit-Remaining``.

Connecteam: 100 requests per minute and 10,000 a day per account (the Expert plan), reported as
``x-ratelimit-{minute,day}-{limit,remaining,reset}`` (reset in UTC epoch seconds).

Windows are fixed: a burst window opens with the first request and lasts its interval; minute
windows are aligned to the clock's minutes; day windows end at UTC midnight. The clock is
injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from connector.sandbox.state import Clock

__all__ = ["Decision", "RateLimitConfig", "RateLimiter"]

DAY = 86400.0


@dataclass(frozen=True)
class RateLimitConfig:
    """The limits the sandbox enforces; the defaults are the vendors' published numbers."""

    ghl_burst_max: int = 100
    ghl_burst_interval_ms: int = 10_000
    ghl_daily: int = 200_000
    connecteam_minute: int = 100
    connecteam_day: int = 10_000
    # False: nothing is refused, and the headers say so (nothing spent), so that a client that
    # reads them does not wait for a budget the sandbox does not keep
    enabled: bool = True


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: int  # seconds until the window that refused the request reopens (0 if allowed)


class _Window:
    __slots__ = ("count", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0


class RateLimiter:
    """Counts requests per key in two windows (short and daily) and decides allow or refuse."""

    def __init__(self, config: RateLimitConfig | None = None, clock: Clock = time.time) -> None:
        self.config = config or RateLimitConfig()
        self.clock = clock
        self._lock = threading.Lock()
        self._short: dict[str, _Window] = {}
        self._day: dict[str, _Window] = {}

    def reset(self) -> None:
        with self._lock:
            self._short.clear()
            self._day.clear()

    def _windows(self, key: str, short_start: float, now: float) -> tuple[_Window, _Window]:
        day_start = math.floor(now / DAY) * DAY
        day = self._day.get(key)
        if day is None or day.start != day_start:
            day = self._day[key] = _Window(day_start)
        short = self._short.get(key)
        return day, short or _Window(short_start)

    def check_ghl(self, key: str) -> Decision:
        """Count one GoHighLevel request for ``key`` (app and location)."""
        cfg = self.config
        interval = cfg.ghl_burst_interval_ms / 1000.0
        with self._lock:
            now = self.clock()
            day, short = self._windows(key, now, now)
            if now - short.start >= interval:
                short = _Window(now)
            self._short[key] = short
            allowed = not cfg.enabled or (
                short.count < cfg.ghl_burst_max and day.count < cfg.ghl_daily
            )
            if allowed:
                short.count += 1
                day.count += 1
            retry = 0
            if not allowed:
                ends = (
                    short.start + interval if short.count >= cfg.ghl_burst_max else day.start + DAY
                )
                retry = max(1, math.ceil(ends - now))
            spent_short, spent_day = (short.count, day.count) if cfg.enabled else (0, 0)
            headers = {
                "X-RateLimit-Limit-Daily": str(cfg.ghl_daily),
                "X-RateLimit-Daily-Remaining": str(max(0, cfg.ghl_daily - spent_day)),
                "X-RateLimit-Interval-Milliseconds": str(cfg.ghl_burst_interval_ms),
                "X-RateLimit-Max": str(cfg.ghl_burst_max),
                "X-RateLimit-Remaining": str(max(0, cfg.ghl_burst_max - spent_short)),
            }
            return Decision(allowed, headers, retry)

    def check_connecteam(self, key: str) -> Decision:
        """Count one Connecteam request for ``key`` (the account)."""
        cfg = self.config
        with self._lock:
            now = self.clock()
            minute_start = math.floor(now / 60.0) * 60.0
            day, minute = self._windows(key, minute_start, now)
            if minute.start != minute_start:
                minute = _Window(minute_start)
            self._short[key] = minute
            allowed = not cfg.enabled or (
                minute.count < cfg.connecteam_minute and day.count < cfg.connecteam_day
            )
            if allowed:
                minute.count += 1
                day.count += 1
            retry = 0
            if not allowed:
                ends = (
                    minute_start + 60 if minute.count >= cfg.connecteam_minute else day.start + DAY
                )
                retry = max(1, math.ceil(ends - now))
            spent_minute, spent_day = (minute.count, day.count) if cfg.enabled else (0, 0)
            headers = {
                "x-ratelimit-minute-limit": str(cfg.connecteam_minute),
                "x-ratelimit-minute-remaining": str(max(0, cfg.connecteam_minute - spent_minute)),
                "x-ratelimit-minute-reset": str(int(minute_start + 60)),
                "x-ratelimit-day-limit": str(cfg.connecteam_day),
                "x-ratelimit-day-remaining": str(max(0, cfg.connecteam_day - spent_day)),
                "x-ratelimit-day-reset": str(int(day.start + DAY)),
            }
            return Decision(allowed, headers, retry)
