"""``GET /metrics``: what a serving process has done, in Prometheus' text format.

Each process has its own registry (tests run several apps in one process); names follow
Prometheus' conventions (``_total`` counters, ``_seconds`` durations).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "connector_events_received",
            "Events received, by source (ghl, connecteam, hook, poll, schedule).",
            ["source"],
            registry=r,
        )
        self.refused = Counter(
            "connector_events_refused",
            "Deliveries refused or not run, by source and reason (signature, stale, malformed, "
            "too_large, secret, token, unknown_recipe, duplicate, echo, burst, no_recipe, filtered).",
            ["source", "reason"],
            registry=r,
        )
        self.runs_started = Counter(
            "connector_runs_started", "Runs started from events, by recipe.", ["recipe"], registry=r
        )
        self.runs = Counter(
            "connector_runs_finished",
            "Runs finished in this process, by recipe and status.",
            ["recipe", "status"],
            registry=r,
        )
        self.step_attempts = Counter(
            "connector_step_attempts",
            "HTTP attempts made by finished runs' steps, by recipe.",
            ["recipe"],
            registry=r,
        )
        self.waits = Counter(
            "connector_rate_limit_waits",
            "Waits before a retry or for the request budget, by reason (throttled, retry, ...).",
            ["reason"],
            registry=r,
        )
        self.wait_seconds = Counter(
            "connector_wait_seconds",
            "Seconds runs waited before retries and for the request budget.",
            registry=r,
        )
        self.answer_seconds = Histogram(
            "connector_webhook_answer_seconds",
            "How long a webhook took to be answered (after the event was stored).",
            ["source"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.queue_depth = Gauge(
            "connector_queue_depth", "Runs waiting on the run queue.", registry=r
        )

    def watch_queue(self, depth: Callable[[], int]) -> None:
        """Read the queue's depth when the metrics are read."""
        self.queue_depth.set_function(lambda: float(depth()))

    def text(self) -> bytes:
        return generate_latest(self.registry)
