"""Faults on purpose: errors, slowness and dropped connections at a given rate, reproducibly.

A rule is written ``KIND[:RATE][,key=value...]`` (``--fault`` on the command line, ``;``-separated
in ``CONNECTOR_SANDBOX_FAULTS``, or JSON on ``POST /_sandbox/faults``):

=============  ==================================================================================
kind           what the client sees
=============  ==================================================================================
``429``        429 with ``Retry-After`` (``retry_after=S`` seconds, default 1; ``retry_form=date``
               sends an HTTP-date instead of seconds)
``500``        500, 502 or 503 with the vendor's error body
``502``
``503``
``slow``       the response, ``delay=S`` seconds late (default 1)
``drop-before`` the connection closed with no response, before the request reaches the fake
``drop-after`` the connection closed with no response, after the fake applied the request
``lose-webhook`` not a request: a webhook delivery the vendor never sends (no attempt, no retry),
               as deliveries are lost in the real world; ``path=/ghl`` or ``path=/connecteam``
               names the vendor whose webhooks are lost (default: both)
=============  ==================================================================================

Keys: ``path=/ghl/contacts`` (a path prefix), ``method=POST``. RATE is a probability (0 to 1,
default 1). Every matching request draws one number per rule from a ``random.Random(seed)``, so
the same requests in the same order meet the same faults. Rules apply in order: ``slow`` rules add
their delay and go on; the first other rule that fires decides the outcome. Only ``/ghl`` and
``/connecteam`` requests meet faults (never ``/_sandbox``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connector.errors import UsageError
from connector.sandbox.state import Clock

__all__ = ["KINDS", "FaultConfig", "FaultInjector", "FaultRule", "parse_fault"]

KINDS = ("429", "500", "502", "503", "slow", "drop-before", "drop-after", "lose-webhook")
_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class FaultRule:
    kind: str
    rate: float = 1.0
    path: str = ""
    method: str = ""
    delay: float = 1.0
    retry_after: int = 1
    retry_form: str = "seconds"  # or "date"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UsageError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise UsageError(f"fault rate must be between 0 and 1, not {self.rate}")
        if self.retry_form not in ("seconds", "date"):
            raise UsageError("retry_form must be 'seconds' or 'date'")

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path or "/") and (
            not self.method or self.method.upper() == method
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultRule:
        try:
            return cls(
                kind=str(data["kind"]),
                rate=float(data.get("rate", 1.0)),
                path=str(data.get("path", "")),
                method=str(data.get("method", "")).upper(),
                delay=float(data.get("delay", 1.0)),
                retry_after=int(data.get("retry_after", 1)),
                retry_form=str(data.get("retry_form", "seconds")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"bad fault rule {dict(data)!r}: {exc}") from exc


def parse_fault(spec: str) -> FaultRule:
    """``503:0.2,path=/ghl/contacts,method=GET`` -> FaultRule."""
    head, *options = [p.strip() for p in spec.split(",") if p.strip()]
    kind, _, rate = head.partition(":")
    data: dict[str, Any] = {"kind": kind.strip(), "rate": rate.strip() or 1.0}
    for opt in options:
        key, sep, value = opt.partition("=")
        if not sep or key.strip() not in ("path", "method", "delay", "retry_after", "retry_form"):
            raise UsageError(f"bad fault option {opt!r} in {spec!r}")
        data[key.strip()] = value.strip()
    return FaultRule.from_json(data)


@dataclass
class FaultConfig:
    rules: list[FaultRule] = field(default_factory=list)
    seed: int = 0

    @classmethod
    def from_specs(cls, specs: list[str], seed: int = 0) -> FaultConfig:
        return cls([parse_fault(s) for s in specs], seed)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FaultConfig:
        specs = [s for s in env.get("CONNECTOR_SANDBOX_FAULTS", "").split(";") if s.strip()]
        try:
            seed = int(env.get("CONNECTOR_SANDBOX_FAULT_SEED", "0") or 0)
        except ValueError as exc:
            raise UsageError("CONNECTOR_SANDBOX_FAULT_SEED must be an integer") from exc
        return cls.from_specs(specs, seed)

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "rules": [asdict(r) for r in self.rules]}


class FaultInjector:
    """ASGI middleware around the whole sandbox; its configuration can change at run time."""

    def __init__(
        self, app: ASGIApp, config: FaultConfig | None = None, clock: Clock = time.time
    ) -> None:
        self.app = app
        self.clock = clock
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())
        self.counts: dict[str, int] = {}

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self.counts = {}

    def _decide(self, method: str, path: str) -> tuple[float, FaultRule | None]:
        delay, chosen = 0.0, None
        with self._lock:
            for rule in self.config.rules:
                if rule.kind == "lose-webhook" or not rule.matches(method, path):
                    continue
                fires = self._rng.random() < rule.rate
                if not fires or chosen is not None:
                    continue
                self.counts[rule.kind] = self.counts.get(rule.kind, 0) + 1
                if rule.kind == "slow":
                    delay += rule.delay
                else:
                    chosen = rule
        return delay, chosen

    def loses_webhook(self, vendor: str) -> bool:
        """Whether a ``lose-webhook`` rule loses this delivery of ``vendor``'s (``ghl`` or
        ``connecteam``): one draw per matching rule, from the same reproducible sequence."""
        lost = False
        with self._lock:
            for rule in self.config.rules:
                if rule.kind != "lose-webhook" or not f"/{vendor}".startswith(rule.path or "/"):
                    continue
                if self._rng.random() < rule.rate and not lost:
                    lost = True
                    self.counts[rule.kind] = self.counts.get(rule.kind, 0) + 1
        return lost

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (
            path.startswith("/ghl") or path.startswith("/connecteam")
        ):
            await self.app(scope, receive, send)
            return
        delay, rule = self._decide(scope["method"], path)
        if delay:
            await asyncio.sleep(delay)
        if rule is None:
            await self.app(scope, receive, send)
        elif rule.kind == "drop-before":
            await _drop(send)
        elif rule.kind == "drop-after":

            async def swallow(message: Message) -> None:
                return None

            await self.app(scope, receive, swallow)
            await _drop(send)
        else:
            await self._error(rule, path, send)

    async def _error(self, rule: FaultRule, path: str, send: Send) -> None:
        status = int(rule.kind)
        reason = _REASONS[status]
        if path.startswith("/ghl"):
            body: dict[str, Any] = {"statusCode": status, "message": reason}
        else:
            body = {"detail": reason}
        headers = [(b"content-type", b"application/json")]
        if status == 429:
            if rule.retry_form == "date":
                value = email.utils.formatdate(self.clock() + rule.retry_after, usegmt=True)
            else:
                value = str(rule.retry_after)
            headers.append((b"retry-after", value.encode()))
        payload = json.dumps(body).encode()
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def _drop(send: Send) -> None:
    """Close the client's connection without a response.

    Uvicorn's ``send`` is a bound method of the request cycle, which holds the transport; aborting
    it resets the connection, and waiting a moment lets uvicorn see the disconnect, so it does not
    answer 500 for a response never started. Under another server the request fails instead.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: dropped connection")
    transport.abort()
    for _ in range(10):
        await asyncio.sleep(0)
        if getattr(cycle, "disconnected", True):
            break
