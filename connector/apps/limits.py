"""How an app's API says "slow down", as data: :class:`RateLimitHeaders` on :class:`~connector.apps.App`.

The retry policy (:mod:`connector.sending.retry`) reads a response with the rules of the app
that sent it: which headers ask for a wait (``Retry-After``), which report a window's requests
left and when it refills (:class:`RateWindow`), and which answers are a rate-limit refusal
although their status is not 429 (:class:`ThrottledBody`). The shared rate budget
(:mod:`connector.persistence.budgets`) reads the same windows to learn what the API counts as
spent. Nothing here reads a clock or sends anything; the rules are evaluated by those modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["RateLimitHeaders", "RateWindow", "Resets", "ThrottledBody"]

#: How a :class:`RateWindow`'s ``reset`` header reads: a wait in seconds or milliseconds, a
#: moment in UTC epoch seconds, or no header at all (the window refills at the next UTC midnight).
Resets = Literal["after-seconds", "after-milliseconds", "at-epoch-seconds", "at-utc-midnight"]


@dataclass(frozen=True)
class RateWindow:
    """One rate-limit window, as the API reports it in its response headers.

    When ``remaining`` reads 0 the window is spent, and a throttled request waits until it
    refills, as ``reset`` and ``resets`` say. ``limit`` names the header with the window's size
    and ``budget`` the :attr:`App.rate_limits <connector.apps.App.rate_limits>` window it reports,
    so the shared budget can count what the API says is spent (size minus ``remaining``).
    Header names are case-insensitive.
    """

    remaining: str
    reset: str | None = None
    resets: Resets = "after-seconds"
    limit: str | None = None
    budget: str | None = None

    def __post_init__(self) -> None:
        if self.reset is None and self.resets != "at-utc-midnight":
            raise ValueError(
                f"rate window {self.remaining!r}: a reset header is needed unless it resets"
                " at-utc-midnight"
            )


@dataclass(frozen=True)
class ThrottledBody:
    """A rate-limit refusal sent with another status than 429: a response with ``status`` whose
    JSON body has, at ``field``, text starting with ``starts_with`` (case-insensitive).
    Connecteam answers 200 ``{"detail": "Too many requests"}``."""

    status: int
    field: str
    starts_with: str


@dataclass(frozen=True)
class RateLimitHeaders:
    """What an app's responses say about its rate limits.

    ``retry_after``: headers that give the wait itself (delta-seconds or an HTTP-date);
    ``windows``: the windows the API reports (the longest wait of the spent ones wins);
    ``throttled``: the refusals that come with another status than 429.
    """

    retry_after: tuple[str, ...] = ("retry-after",)
    windows: tuple[RateWindow, ...] = ()
    throttled: tuple[ThrottledBody, ...] = ()

    def header_names(self) -> frozenset[str]:
        """Every header these rules read, in lower case (what a recorded attempt must keep)."""
        names = {name.lower() for name in self.retry_after}
        for window in self.windows:
            names.update(
                n.lower() for n in (window.remaining, window.reset, window.limit) if n is not None
            )
        return frozenset(names)

    def reported_by(self) -> dict[str, tuple[tuple[str, str | None], ...]]:
        """Per budget window name, the (remaining, limit) headers that report it, lower case."""
        out: dict[str, tuple[tuple[str, str | None], ...]] = {}
        for window in self.windows:
            if window.budget is not None:
                pair = (window.remaining.lower(), window.limit.lower() if window.limit else None)
                out[window.budget] = (*out.get(window.budget, ()), pair)
        return out
