"""What happens after one attempt of an HTTP request: done, wait and retry, fail, or "unknown".

This module decides; it does nothing. There is no I/O and no sleeping here, and the clock
(``now``, epoch seconds) and the randomness (``rng``) are passed in, so every verdict can be
tested exactly. The durable runtime calls :func:`classify_response` or :func:`classify_error`
after each attempt, then sleeps durably for ``Verdict.delay`` and sends again, or stops.

The rules, in short:

* 2xx is done, except a rate-limit refusal the app declares with another status (Connecteam's
  200 with ``{"detail": "Too many requests"}``), which counts as a 429.
* 429 is retried for any method, since nothing was written. The wait is what the server asked for
  (``Retry-After``, else the app's rate-limit headers, see :func:`rate_limit_wait`) plus at most
  10 % jitter, else :func:`backoff`. A server asking for more than ``RetryPolicy.max_wait`` fails.
* 5xx and 408 are retried with backoff when a repeat is harmless (``write_safe``); otherwise the
  request may have been applied and the verdict is "unknown": the runtime must find out before
  sending again.
* Any other 4xx fails at once, with the API's message naming the field it is about.
* A connection that never got going (connect error or timeout, no free connection in the pool) is
  retried for any method; one that broke after the request was sent is treated like a 5xx.
* When a retry would be due but the policy's attempts are used up, the verdict is "fail" ("gave up
  after N attempts: ..."), except that "unknown" stays "unknown".
"""

from __future__ import annotations

import email.utils
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC
from typing import Any, Literal

import httpx

from connector.apps import model as apps
from connector.apps.limits import RateLimitHeaders, RateWindow
from connector.sending.http import api_message

__all__ = [
    "IDEMPOTENT_METHODS",
    "RetryPolicy",
    "Verdict",
    "backoff",
    "classify_error",
    "classify_response",
    "is_idempotent",
    "is_throttled",
    "parse_retry_after",
    "rate_limit_wait",
]

IDEMPOTENT_METHODS = apps.IDEMPOTENT_METHODS
JITTER = 0.10  # at most this fraction is added on top of a wait the server asked for
DAY = 86400.0
_MAX_EXPONENT = 64  # 2 ** 64 * any sane base delay is far past any max_delay

# The connection was never made, so the request never left: repeating it is always safe.
_NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# A transport error no repeat can fix (a URL scheme httpx cannot send at all).
_HOPELESS: tuple[type[httpx.TransportError], ...] = (httpx.UnsupportedProtocol,)

Action = Literal["done", "retry", "fail", "unknown"]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: the attempts in all, the backoff, and the longest wait worth waiting."""

    attempts: int = 8  # total attempts, the first included
    base_delay: float = 0.5  # seconds, first backoff
    max_delay: float = 60.0  # cap of one backoff wait
    max_wait: float = 3600.0  # a 429 asking for longer than this fails instead of waiting

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool):
            raise ValueError(f"retry.attempts must be an integer >= 1, got {self.attempts!r}")
        if self.attempts < 1:
            raise ValueError(f"retry.attempts must be an integer >= 1, got {self.attempts!r}")
        for name in ("base_delay", "max_delay", "max_wait"):
            value = getattr(self, name)
            if not _is_number(value) or value < 0:
                raise ValueError(f"retry.{name} must be a number of seconds >= 0, got {value!r}")

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any] | None, default: RetryPolicy | None = None
    ) -> RetryPolicy:
        """The policy of a recipe step's ``retry:`` block; keys it leaves out keep ``default``.

        Raises ValueError for an unknown key or a bad value.
        """
        base = default if default is not None else cls()
        if data is None:
            return base
        if not isinstance(data, Mapping):
            raise ValueError(f"retry must be a mapping, got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        for key in data:
            if key not in known:
                raise ValueError(f"retry: unknown key {key!r} (expected one of {', '.join(known)})")
        return replace(base, **dict(data))


@dataclass(frozen=True)
class Verdict:
    """What to do after an attempt; ``delay`` is for "retry", ``message`` for "fail"/"unknown"."""

    action: Action
    delay: float = 0.0  # for "retry": seconds to wait first
    reason: str = ""  # short, for people: "429 Retry-After 7 s", "HTTP 503", "ReadTimeout"
    message: str = ""  # for "fail"/"unknown": the error a user reads


def is_idempotent(method: str) -> bool:
    """Whether sending ``method`` twice has the effect of sending it once (RFC 9110)."""
    return method.upper() in IDEMPOTENT_METHODS


def _seconds(value: float) -> str:
    """``7`` or ``0.5``, for reasons and messages."""
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """The seconds a ``Retry-After`` header asks to wait: delta-seconds or an HTTP-date.

    A date is relative to ``now`` (epoch seconds); one in the past gives 0. None when the header
    is absent or unparseable; never negative.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        return _retry_after_date(text, now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _retry_after_date(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" and the obsolete forms: HTTP-dates are always UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _number(headers: Mapping[str, str], name: str) -> float | None:
    try:
        value = float(headers[name])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _until_utc_midnight(now: float) -> float:
    return (math.floor(now / DAY) + 1) * DAY - now


def _window_wait(window: RateWindow, headers: Mapping[str, str], now: float) -> float | None:
    """The wait a spent ``window`` asks for; None when it is not spent or says no reset."""
    if _number(headers, window.remaining.lower()) != 0:
        return None
    if window.resets == "at-utc-midnight":
        return _until_utc_midnight(now)
    value = _number(headers, window.reset.lower()) if window.reset else None
    if value is None:
        return None
    if window.resets == "after-milliseconds":
        return max(0.0, value / 1000.0)
    if window.resets == "after-seconds":
        return max(0.0, value)
    return max(0.0, value - now)  # at-epoch-seconds


def rate_limit_wait(
    rules: RateLimitHeaders, headers: Mapping[str, str], now: float
) -> float | None:
    """The seconds the app's rate-limit headers say to wait, or None when none say to.

    Each of the app's :class:`~connector.apps.limits.RateWindow` rules is spent when its
    ``remaining`` header reads 0; it then asks to wait until its reset (GoHighLevel:
    ``X-RateLimit-Interval-Milliseconds``, or the next UTC midnight for the daily window;
    Connecteam: ``x-ratelimit-{minute,day}-reset`` in UTC epoch seconds). Header names are
    case-insensitive; when several windows are spent, the longest wait wins.
    """
    lowered = _lower(headers)
    waits = [w for window in rules.windows if (w := _window_wait(window, lowered, now)) is not None]
    return max(waits) if waits else None


def is_throttled(rules: RateLimitHeaders, status: int, body: Any) -> bool:
    """Whether the response is a rate-limit refusal: a 429, or a refusal the app sends with
    another status (Connecteam's 200 that says ``{"detail": "Too many requests"}``)."""
    if status == 429:
        return True
    if not isinstance(body, Mapping):
        return False
    for rule in rules.throttled:
        text = body.get(rule.field)
        said = isinstance(text, str) and text.strip().lower().startswith(rule.starts_with.lower())
        if status == rule.status and said:
            return True
    return False


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with jitter after attempt number ``attempt`` (1-based): a uniform draw
    between half and all of ``min(max_delay, base_delay * 2 ** (attempt - 1))``."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    ceiling = min(policy.max_delay, policy.base_delay * 2**exponent)
    return rng.uniform(ceiling / 2, ceiling)


def _server_wait(
    rules: RateLimitHeaders, headers: Mapping[str, str], now: float
) -> tuple[float, str] | None:
    """What the server asked to wait, and where it said so: ``Retry-After`` (or the app's own
    header for it), else the rate-limit headers."""
    lowered = _lower(headers)
    for name in rules.retry_after:
        asked = parse_retry_after(lowered.get(name.lower()), now)
        if asked is not None:
            return asked, "Retry-After" if name.lower() == "retry-after" else name
    asked = rate_limit_wait(rules, lowered, now)
    if asked is not None:
        return asked, "rate-limit reset"
    return None


def _jittered(wait: float, rng: random.Random) -> float:
    """``wait`` and up to 10 % more, never less."""
    return wait + rng.uniform(0.0, JITTER * wait)


def _give_up_if_spent(verdict: Verdict, attempt: int, policy: RetryPolicy) -> Verdict:
    if verdict.action != "retry" or attempt < policy.attempts:
        return verdict
    text = f"gave up after {attempt} attempts: {verdict.reason}"
    return Verdict("fail", reason=text, message=text)


def _too_long(label: str, wait: float, where: str, policy: RetryPolicy) -> Verdict:
    message = (
        f"{label}: the server asked to wait {_seconds(wait)} s ({where}), "
        f"more than the {_seconds(policy.max_wait)} s this step may wait"
    )
    return Verdict("fail", reason=f"{label} {where} {_seconds(wait)} s", message=message)


def _throttled(
    *,
    rules: RateLimitHeaders,
    label: str,
    headers: Mapping[str, str],
    attempt: int,
    policy: RetryPolicy,
    now: float,
    rng: random.Random,
) -> Verdict:
    asked = _server_wait(rules, headers, now)
    if asked is None:
        return Verdict("retry", backoff(attempt, policy, rng), reason=label)
    wait, where = asked
    if wait > policy.max_wait:
        return _too_long(label, wait, where, policy)
    return Verdict("retry", _jittered(wait, rng), reason=f"{label} {where} {_seconds(wait)} s")


def _server_error(
    *,
    rules: RateLimitHeaders,
    status: int,
    headers: Mapping[str, str],
    attempt: int,
    policy: RetryPolicy,
    safe: bool,
    now: float,
    rng: random.Random,
) -> Verdict:
    label = f"HTTP {status}"
    if not safe:
        message = f"outcome unknown: {label} after the request was sent"
        return Verdict("unknown", reason=label, message=message)
    delay = backoff(attempt, policy, rng)
    asked = _server_wait(rules, headers, now)
    if asked is not None and asked[0] > policy.max_wait:
        return _too_long(label, asked[0], asked[1], policy)
    if asked is not None:  # a 503's Retry-After: never come back sooner than asked
        delay = max(delay, _jittered(asked[0], rng))
    return Verdict("retry", delay, reason=label)


def _client_error(status: int, body: Any) -> Verdict:
    text = api_message(body)
    message = f"HTTP {status}: {text}" if text else f"HTTP {status}"
    return Verdict("fail", reason=f"HTTP {status}", message=message)


def classify_response(
    *,
    rules: RateLimitHeaders,
    method: str,
    status: int,
    headers: Mapping[str, str],
    body: Any,
    attempt: int,
    policy: RetryPolicy,
    write_safe: bool,
    now: float,
    rng: random.Random,
) -> Verdict:
    """The verdict on a response with ``status``, after attempt number ``attempt`` (1-based).

    ``rules`` are the rate-limit headers of the app that answered (:attr:`App.rate_limit_headers
    <connector.apps.App.rate_limit_headers>`). ``write_safe`` says a repeat is harmless (the runtime passes ``is_idempotent(method)`` or
    whether the effect's identity is known); an idempotent ``method`` is safe regardless.
    """
    if is_throttled(rules, status, body):
        label = "429" if status == 429 else f"429 (sent as {status})"
        verdict = _throttled(
            rules=rules,
            label=label,
            headers=headers,
            attempt=attempt,
            policy=policy,
            now=now,
            rng=rng,
        )
    elif 200 <= status < 300:
        return Verdict("done", reason=f"HTTP {status}")
    elif status == 408 or 500 <= status < 600:
        safe = write_safe or is_idempotent(method)
        verdict = _server_error(
            rules=rules,
            status=status,
            headers=headers,
            attempt=attempt,
            policy=policy,
            safe=safe,
            now=now,
            rng=rng,
        )
    else:
        return _client_error(status, body)
    return _give_up_if_spent(verdict, attempt, policy)


def classify_error(
    *,
    app: str,
    method: str,
    error: BaseException,
    attempt: int,
    policy: RetryPolicy,
    write_safe: bool,
    rng: random.Random,
) -> Verdict:
    """The verdict on an attempt that raised ``error`` instead of giving a response.

    A connection never made is retried for any method; one that failed after the request was sent
    is retried only when ``write_safe`` (or ``method`` is idempotent), else the outcome is
    "unknown". Anything that is not a transport error fails.
    """
    name = type(error).__name__
    if not isinstance(error, httpx.TransportError) or isinstance(error, _HOPELESS):
        return Verdict("fail", reason=name, message=f"{name}: {error}")
    if not isinstance(error, _NOT_SENT) and not (write_safe or is_idempotent(method)):
        message = f"outcome unknown: the connection failed after the request was sent ({name})"
        return Verdict("unknown", reason=name, message=message)
    verdict = _give_up_if_spent(
        Verdict("retry", backoff(attempt, policy, rng), reason=name), attempt, policy
    )
    where = _unreachable(error)
    if verdict.action == "fail" and where:
        text = f"{verdict.message}: {where}"
        return Verdict("fail", reason=verdict.reason, message=text)
    return verdict


def _unreachable(error: BaseException) -> str:
    """``could not reach HOST:PORT (connection refused)`` for an error that names its request."""
    try:
        url = error.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when none was set
        return ""
    port = f":{url.port}" if url.port else ""
    detail = re.sub(r"^\[Errno -?\d+\]\s*", "", str(error)).strip()
    return f"could not reach {url.host}{port}" + (f" ({detail.lower()})" if detail else "")
