"""Webhook deliveries with the vendors' retries, on one background thread, on the sandbox clock.

Both emitters (GoHighLevel's :class:`~connector.sandbox.webhooks.WebhookEmitter` and
:class:`~connector.sandbox.connecteam_webhooks.ConnecteamWebhooks`) hand a :class:`Delivery` to the
shared :class:`Dispatcher`. Its thread POSTs the body; any answer that is not 2xx, and no answer
at all (refused, reset, timed out), is a failure, retried as the delivery's :class:`RetryPolicy`
says, with the same body and headers (so the same ``webhookId`` or ``requestId`` and the same
signatures) on every attempt. A retry is due at a time on the sandbox clock: with the real clock it
waits, and ``POST /_sandbox/clock {"advance": N}`` (or a test's fake clock) makes it due at once.
The thread looks at the clock every :attr:`Dispatcher.poll` seconds (50 ms), and wakes at once when
the sandbox clock is advanced.

Every attempt is logged (``GET /_sandbox/webhooks``): vendor, URL, event, delivery id, attempt
number, status or error name, sandbox time, and when the next attempt is due; never the body.
:meth:`Dispatcher.flush` waits until nothing is due or in flight (retries scheduled later do not
count), for tests.

For tests of what receives them, deliveries can be disordered (:meth:`Dispatcher.disorder`: a
share of them sent twice, a share of them late by up to a spread of seconds, so later ones
overtake them) and held back (:meth:`Dispatcher.hold`: nothing is sent until released).
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from connector.config import tls_context
from connector.sandbox.state import Clock

__all__ = ["CONNECTEAM_RETRY", "GHL_RETRY", "Delivery", "Dispatcher", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and when a failed delivery is tried again.

    Retry ``n`` (1 for the first) waits ``min(cap, base * factor ** (n - 1))`` seconds after the
    attempt that failed, less a random part of up to ``jitter`` of it (0: exact; 0.5: between half
    and all of it).
    """

    retries: int
    base: float
    cap: float
    factor: float = 2.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.base < 0 or self.cap < 0 or self.factor < 1:
            raise ValueError("retries, base and cap must be at least 0 and factor at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1-based)."""
        exact = min(self.cap, self.base * self.factor ** min(retry - 1, 64))
        return exact * (1.0 - self.jitter * rng.random()) if self.jitter else exact


# GoHighLevel (vendor facts 1.4): up to 12 retries on any non-2xx or no response, "exponential
# backoff with random jitter"; the intervals are not published: 5 s doubling, capped at 10 minutes,
# each shortened by up to half at random.
GHL_RETRY = RetryPolicy(retries=12, base=5.0, cap=600.0, factor=2.0, jitter=0.5)
# Connecteam (vendor facts 5.2): "retried up to 3 times, with 60 seconds between attempts".
CONNECTEAM_RETRY = RetryPolicy(retries=3, base=60.0, cap=60.0, factor=1.0)


@dataclass
class Delivery:
    """One webhook to one URL, with its attempts so far."""

    vendor: str  # "ghl" | "connecteam"
    url: str
    event: str
    delivery_id: str  # webhookId (GoHighLevel) or requestId (Connecteam)
    body: bytes
    policy: RetryPolicy
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    sign: Callable[[bytes], dict[str, str]] | None = None  # extra headers, made once, first attempt
    attempt: int = 0
    due: float = 0.0

    def request_headers(self) -> dict[str, str]:
        if self.sign is not None:
            self.headers = {**self.headers, **self.sign(self.body)}
            self.sign = None  # every attempt carries the same signatures
        return self.headers


_DELIVERY_IDS = {"ghl": "webhookId", "connecteam": "requestId"}


def _fresh(delivery: Delivery) -> Delivery:
    """``delivery`` as a delivery of its own: the same news under a new delivery id (signed
    anew when it is sent)."""
    field_name = _DELIVERY_IDS.get(delivery.vendor)
    try:
        body = json.loads(delivery.body)
    except ValueError:
        return delivery
    if field_name is None or not isinstance(body, dict) or field_name not in body:
        return delivery
    body[field_name] = new_id = str(uuid.uuid4())
    raw = json.dumps(body, separators=(",", ":")).encode()
    return replace(delivery, body=raw, delivery_id=new_id)


class Dispatcher:
    """The delivery thread and its schedule; started by the first delivery, stopped by close()."""

    def __init__(
        self,
        clock: Clock,
        *,
        timeout: float = 5.0,
        poll: float = 0.05,
        log_size: int = 2000,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.poll = poll
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._busy = 0
        self._closed = False
        self._thread: threading.Thread | None = None
        self._log: deque[dict[str, Any]] = deque(maxlen=log_size)
        # whether a delivery is lost before its first attempt (the ``lose-webhook`` fault)
        self.loses: Callable[[Delivery], bool] | None = None
        self._held = False
        self._twice = self._late = self._spread = 0.0
        self._fresh = False
        self._disorder_rng = random.Random(0)

    def disorder(
        self,
        twice: float = 0.0,
        late: float = 0.0,
        spread: float = 0.0,
        seed: int = 0,
        *,
        fresh: bool = False,
    ) -> None:
        """From now on, send each new delivery a second time with probability ``twice`` (the
        copy due up to ``spread`` seconds later; ``fresh``: as a delivery of its own, with a new
        ``webhookId`` or ``requestId``, as a vendor reporting one change twice does), and make it
        late by up to ``spread`` seconds with probability ``late`` (0, 0, 0: as it came)."""
        if not (0.0 <= twice <= 1.0 and 0.0 <= late <= 1.0) or spread < 0:
            raise ValueError("twice and late must be between 0 and 1, spread at least 0")
        with self._cond:
            self._twice, self._late, self._spread = twice, late, spread
            self._fresh = fresh
            self._disorder_rng = random.Random(seed)

    def hold(self, held: bool = True) -> None:
        """Send nothing while held (deliveries wait, due); ``hold(False)`` lets them go."""
        with self._cond:
            self._held = held
            self._cond.notify_all()

    def submit(self, delivery: Delivery) -> None:
        """Schedule the first attempt, due now (dropped once the dispatcher is closed, or lost
        when a ``lose-webhook`` fault says so: logged with ``lost: true`` and never sent)."""
        lost = self.loses is not None and self.loses(delivery)
        with self._cond:
            if self._closed:
                return
            if lost:
                self._log.append(
                    {
                        "vendor": delivery.vendor,
                        "url": delivery.url,
                        "event": delivery.event,
                        "deliveryId": delivery.delivery_id,
                        "attempt": 0,
                        "time": self.clock(),
                        "lost": True,
                    }
                )
                return
            delivery.due = self.clock()
            rng = self._disorder_rng
            if self._late and rng.random() < self._late:
                delivery.due += rng.uniform(0, self._spread)
            heapq.heappush(self._heap, (delivery.due, next(self._order), delivery))
            if self._twice and rng.random() < self._twice:
                copy = replace(delivery, due=self.clock() + rng.uniform(0, self._spread))
                if self._fresh:
                    copy = _fresh(copy)
                heapq.heappush(self._heap, (copy.due, next(self._order), copy))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-webhooks", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def wake(self) -> None:
        """Look at the clock again now (the sandbox clock calls this when it is advanced)."""
        with self._cond:
            self._cond.notify_all()

    def _take_due(self) -> Delivery | None:
        if self._heap and not self._held and self._heap[0][0] <= self.clock():
            self._busy += 1
            return heapq.heappop(self._heap)[2]
        return None

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout, verify=tls_context()) as client:
            while True:
                with self._cond:
                    item = self._take_due()
                    while item is None and not self._closed:
                        self._cond.wait(self.poll)
                        item = self._take_due()
                    if self._closed or item is None:
                        if item is not None:
                            self._busy -= 1
                        self._cond.notify_all()
                        return
                retry = None
                try:
                    retry = self._attempt(client, item)
                finally:
                    with self._cond:
                        if retry is not None and not self._closed:
                            heapq.heappush(self._heap, (retry.due, next(self._order), retry))
                        self._busy -= 1
                        self._cond.notify_all()

    def _attempt(self, client: httpx.Client, item: Delivery) -> Delivery | None:
        """One POST; the delivery back when it must be tried again."""
        item.attempt += 1
        entry: dict[str, Any] = {
            "vendor": item.vendor,
            "url": item.url,
            "event": item.event,
            "deliveryId": item.delivery_id,
            "attempt": item.attempt,
            "time": self.clock(),
        }
        ok = False
        try:
            response = client.post(item.url, content=item.body, headers=item.request_headers())
            entry["status"] = response.status_code
            ok = 200 <= response.status_code < 300
        except httpx.HTTPError as exc:
            entry["error"] = type(exc).__name__
        retry = None
        if not ok and item.attempt <= item.policy.retries:
            with self._cond:
                item.due = self.clock() + item.policy.delay(item.attempt, self._rng)
            entry["nextAttemptAt"] = item.due
            retry = item
        with self._cond:
            self._log.append(entry)
        return retry

    def log(self) -> list[dict[str, Any]]:
        """Every attempt so far (the latest ``log_size``), oldest first."""
        with self._cond:
            return [dict(e) for e in self._log]

    def pending(self) -> list[dict[str, Any]]:
        """The retries scheduled for later: vendor, event, delivery id, next attempt, due time."""
        with self._cond:
            items = sorted(self._heap, key=lambda h: (h[0], h[1]))
            return [
                {
                    "vendor": d.vendor,
                    "url": d.url,
                    "event": d.event,
                    "deliveryId": d.delivery_id,
                    "attempt": d.attempt + 1,
                    "due": due,
                }
                for due, _, d in items
            ]

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until nothing is due or in flight (retries due later do not count); False if
        ``timeout`` (real seconds) passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._busy or (self._heap and self._heap[0][0] <= self.clock()):
                if self._closed or self._thread is None:
                    return not self._busy
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(self.poll, remaining))
            return True

    def close(self) -> None:
        """Stop the thread after the attempt in flight; retries not yet made are dropped."""
        with self._cond:
            self._closed = True
            thread, self._thread = self._thread, None
            self._heap.clear()
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout=self.timeout + 5)
