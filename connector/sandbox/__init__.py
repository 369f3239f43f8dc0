"""The embedded sandbox: stateful fakes of GoHighLevel (``/ghl``) and Connecteam (``/connecteam``)
served over real HTTP, so recipes run for real with no vendor account.

``start_in_thread()`` serves a fresh sandbox on a free loopback port and gives back its URL and the
environment (``GHL_BASE_URL``, ``GHL_TOKEN``, ``GHL_LOCATION_ID``, ``CONNECTEAM_BASE_URL``,
``CONNECTEAM_API_KEY``) that points a run at it. See docs/sandbox.md.
"""

from __future__ import annotations

from connector.sandbox.clock import SandboxClock
from connector.sandbox.delivery import RetryPolicy
from connector.sandbox.faults import FaultConfig, FaultRule, parse_fault
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.server import RunningSandbox, SandboxError, create_app, start_in_thread
from connector.sandbox.state import SandboxState, SeedError

__all__ = [
    "FaultConfig",
    "FaultRule",
    "RateLimitConfig",
    "RetryPolicy",
    "RunningSandbox",
    "SandboxClock",
    "SandboxError",
    "SandboxState",
    "SeedError",
    "create_app",
    "parse_fault",
    "start_in_thread",
]
