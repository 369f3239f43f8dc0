"""The built-in apps' request budgets as :mod:`connector.persistence.budgets` counts them: each
declared window with the response headers that report it (what the throttle builds per app, as
constants for tests and tools; importing this loads the database layer)."""

from __future__ import annotations

from connector.builtins import connecteam, ghl
from connector.persistence.budgets import Limit, app_limits

__all__ = ["CONNECTEAM_LIMITS", "GHL_LIMITS"]

GHL_LIMITS: tuple[Limit, ...] = tuple(
    app_limits(ghl.RATE_LIMITS, reported_by=ghl.RATE_LIMIT_HEADERS.reported_by())
)
CONNECTEAM_LIMITS: tuple[Limit, ...] = tuple(
    app_limits(connecteam.RATE_LIMITS, reported_by=connecteam.RATE_LIMIT_HEADERS.reported_by())
)
