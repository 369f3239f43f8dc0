"""The caller's request budget (:class:`connector.sending.caller.RateGate`) on :class:`Budget`: wait for a
place in every window an app declares (with CONNECTOR_RATE_LIMITS applied), and after the answer,
let the rate-limit headers correct what the budget believed."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from connector.persistence.budgets import Budget, Limit, app_limits, budget_key

__all__ = ["Throttle"]

# app name -> (the app, its overrides, its limits): what Throttle._limits worked out last
_known: dict[str, tuple[Any, Any, tuple[Limit, ...]]] = {}


class Throttle:
    def __init__(
        self,
        budget: Budget,
        sleep: Callable[[float], None],
        overrides: Mapping[str, Mapping[str, tuple[int, float]]] | None = None,
    ) -> None:
        self.budget = budget
        self.sleep = sleep
        self.overrides = overrides or {}
        self._granted = threading.local()  # (key, row, at) of this thread's request on its way

    def _limits(self, app: Any) -> tuple[Limit, ...]:
        """The app's limits, worked out once per app and overrides (an app does not change; a
        replaced one, ``dataclasses.replace``, is another object and is worked out again)."""
        overrides = self.overrides.get(app.name)
        known = _known.get(app.name)
        if known is not None and known[0] is app and known[1] is overrides:
            return known[2]
        reported_by = app.rate_limit_headers.reported_by()
        limits = tuple(app_limits(app.rate_limits, overrides, reported_by))
        _known[app.name] = (app, overrides, limits)
        return limits

    def acquire(self, app: Any, credential: str, location: str) -> float:
        limits = self._limits(app)
        if not limits:
            return 0.0
        key = budget_key(app.name, credential, location)
        waited = 0.0
        while True:
            wait, row, at = self.budget.take(key, limits)
            if wait <= 0:
                self._granted.request = (key, row, at)
                return waited
            wait = min(wait, 30.0)
            self.sleep(wait)
            waited += wait

    def observe(self, app: Any, credential: str, location: str, headers: Mapping[str, str]) -> None:
        limits = self._limits(app)
        if limits:
            key = budget_key(app.name, credential, location)
            granted, self._granted.request = getattr(self._granted, "request", None), None
            row = None
            # answered after the time its row counts it at: the row moves to now (see Budget)
            if granted is not None and granted[0] == key and self.budget.now() > granted[2]:
                row = granted[1]
            self.budget.observe(key, limits, headers, answered=row)
