"""The retry verdicts: what the runtime does after each attempt, with the clock and dice injected.

Every test here passes ``now`` and a seeded ``random.Random``; nothing sleeps and nothing reads the
wall clock.
"""

from __future__ import annotations

import email.utils
import random
from typing import Any

import httpx
import pytest

from connector.builtins import connecteam, ghl
from connector.sending.http import api_message
from connector.sending.retry import (
    RetryPolicy,
    Verdict,
    backoff,
    classify_error,
    classify_response,
    is_idempotent,
    is_throttled,
    parse_retry_after,
    rate_limit_wait,
)

# the rate-limit headers each built-in app declares, by app name
RULES = {"ghl": ghl.RATE_LIMIT_HEADERS, "connecteam": connecteam.RATE_LIMIT_HEADERS}
NOW = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC
MIDNIGHT = 1_790_035_200.0  # the next UTC midnight after NOW
POLICY = RetryPolicy()


def respond(
    status: int,
    *,
    method: str = "GET",
    app: str = "ghl",
    headers: dict[str, str] | None = None,
    body: Any = None,
    attempt: int = 1,
    policy: RetryPolicy = POLICY,
    write_safe: bool | None = None,
    seed: int = 1,
) -> Verdict:
    return classify_response(
        rules=RULES[app],
        method=method,
        status=status,
        headers=headers or {},
        body=body,
        attempt=attempt,
        policy=policy,
        write_safe=is_idempotent(method) if write_safe is None else write_safe,
        now=NOW,
        rng=random.Random(seed),
    )


def fail_with(
    error: BaseException,
    *,
    method: str = "GET",
    attempt: int = 1,
    write_safe: bool | None = None,
    policy: RetryPolicy = POLICY,
) -> Verdict:
    return classify_error(
        app="ghl",
        method=method,
        error=error,
        attempt=attempt,
        policy=policy,
        write_safe=is_idempotent(method) if write_safe is None else write_safe,
        rng=random.Random(1),
    )


# Retry-After ------------------------------------------------------------------------------------


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 120 ", NOW) == 120.0


def test_retry_after_as_an_http_date_is_relative_to_now() -> None:
    date = email.utils.formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(date, NOW) == pytest.approx(90.0)
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT", 1_792_567_640.0) == 40.0


def test_retry_after_in_the_past_is_zero_never_negative() -> None:
    assert parse_retry_after(email.utils.formatdate(NOW - 300, usegmt=True), NOW) == 0.0
    assert parse_retry_after("-5", NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "Wed, 99 Foo 2026", "nan"])
def test_retry_after_absent_or_unparseable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_429_waits_what_retry_after_says_plus_at_most_ten_percent() -> None:
    delays = [respond(429, headers={"Retry-After": "7"}, seed=s).delay for s in range(500)]
    assert min(delays) >= 7.0
    assert max(delays) <= 7.7
    assert len(set(delays)) > 400  # spread out, so waiters do not all return at once
    verdict = respond(429, headers={"Retry-After": "7"})
    assert verdict.action == "retry"
    assert verdict.reason == "429 Retry-After 7 s"


def test_429_with_an_http_date_waits_until_then() -> None:
    date = email.utils.formatdate(NOW + 30, usegmt=True)
    verdict = respond(429, headers={"retry-after": date})
    assert verdict.action == "retry"
    assert 30.0 <= verdict.delay <= 33.0


def test_429_with_a_date_in_the_past_retries_at_once() -> None:
    date = email.utils.formatdate(NOW - 30, usegmt=True)
    assert respond(429, headers={"Retry-After": date}) == Verdict(
        "retry", 0.0, reason="429 Retry-After 0 s"
    )


def test_429_without_any_hint_backs_off() -> None:
    verdict = respond(429, attempt=3)
    assert verdict.action == "retry"
    assert 1.0 <= verdict.delay <= 2.0  # 0.5 * 2 ** 2 = 2, halved at least
    assert verdict.reason == "429"


def test_429_asking_longer_than_max_wait_fails_saying_how_long() -> None:
    verdict = respond(429, headers={"Retry-After": "7200"})
    assert verdict.action == "fail"
    assert "7200 s" in verdict.message
    assert "3600 s" in verdict.message
    short = RetryPolicy(max_wait=5)
    assert respond(429, headers={"Retry-After": "7"}, policy=short).action == "fail"
    assert respond(429, headers={"Retry-After": "5"}, policy=short).action == "retry"


# Rate-limit headers -----------------------------------------------------------------------------


def ghl_headers(remaining: int = 99, daily: int = 199_000) -> dict[str, str]:
    return {
        "X-RateLimit-Limit-Daily": "200000",
        "X-RateLimit-Daily-Remaining": str(daily),
        "X-RateLimit-Interval-Milliseconds": "10000",
        "X-RateLimit-Max": "100",
        "X-RateLimit-Remaining": str(remaining),
    }


def connecteam_headers(minute: int = 50, day: int = 9000) -> dict[str, str]:
    return {
        "x-ratelimit-minute-limit": "100",
        "x-ratelimit-minute-remaining": str(minute),
        "x-ratelimit-minute-reset": str(int(NOW) + 40),
        "x-ratelimit-day-limit": "10000",
        "x-ratelimit-day-remaining": str(day),
        "x-ratelimit-day-reset": str(int(MIDNIGHT)),
    }


def test_ghl_burst_spent_waits_the_interval() -> None:
    assert rate_limit_wait(RULES["ghl"], ghl_headers(remaining=0), NOW) == 10.0
    lower = {k.lower(): v for k, v in ghl_headers(remaining=0).items()}
    assert rate_limit_wait(RULES["ghl"], lower, NOW) == 10.0


def test_ghl_daily_spent_waits_until_utc_midnight() -> None:
    assert rate_limit_wait(RULES["ghl"], ghl_headers(daily=0), NOW) == MIDNIGHT - NOW


def test_connecteam_spent_waits_until_the_reset() -> None:
    assert rate_limit_wait(RULES["connecteam"], connecteam_headers(minute=0), NOW) == 40.0
    assert rate_limit_wait(RULES["connecteam"], connecteam_headers(day=0), NOW) == MIDNIGHT - NOW
    past = {**connecteam_headers(minute=0), "x-ratelimit-minute-reset": str(int(NOW) - 5)}
    assert rate_limit_wait(RULES["connecteam"], past, NOW) == 0.0


def test_headers_with_room_left_say_nothing() -> None:
    assert rate_limit_wait(RULES["ghl"], ghl_headers(), NOW) is None
    assert rate_limit_wait(RULES["connecteam"], connecteam_headers(), NOW) is None
    assert rate_limit_wait(RULES["ghl"], {}, NOW) is None


def test_429_without_retry_after_waits_for_the_ghl_reset() -> None:
    verdict = respond(429, headers=ghl_headers(remaining=0))
    assert verdict.action == "retry"
    assert 10.0 <= verdict.delay <= 11.0
    assert verdict.reason == "429 rate-limit reset 10 s"


def test_429_when_the_ghl_day_is_spent_fails_rather_than_wait_hours() -> None:
    verdict = respond(429, headers=ghl_headers(daily=0))
    assert verdict.action == "fail"
    assert f"{int(MIDNIGHT - NOW)} s" in verdict.message


def test_retry_after_wins_over_the_reset_headers() -> None:
    headers = {**connecteam_headers(minute=0), "Retry-After": "3"}
    verdict = respond(429, app="connecteam", headers=headers)
    assert 3.0 <= verdict.delay <= 3.3


# Connecteam's throttling in disguise ------------------------------------------------------------


def test_connecteam_200_too_many_requests_is_a_429() -> None:
    body = {"detail": "Too many requests"}
    assert is_throttled(RULES["connecteam"], 200, body)
    assert is_throttled(RULES["connecteam"], 200, {"detail": "TOO MANY REQUESTS, slow down"})
    verdict = respond(200, app="connecteam", method="POST", body=body, headers={"Retry-After": "2"})
    assert verdict.action == "retry"
    assert 2.0 <= verdict.delay <= 2.2


def test_a_real_200_is_done() -> None:
    assert respond(200, app="connecteam", body={"data": {"users": []}}).action == "done"
    assert respond(201, method="POST", body={"detail": "Too many requests"}).action == "done"
    assert not is_throttled(RULES["ghl"], 200, {"detail": "Too many requests"})
    assert not is_throttled(RULES["connecteam"], 200, {"detail": "created"})


# Write safety -----------------------------------------------------------------------------------


def test_post_503_is_unknown() -> None:
    verdict = respond(503, method="POST")
    assert verdict.action == "unknown"
    assert verdict.message == "outcome unknown: HTTP 503 after the request was sent"


def test_put_503_is_retried_with_backoff() -> None:
    verdict = respond(503, method="PUT")
    assert verdict.action == "retry"
    assert 0.25 <= verdict.delay <= 0.5
    assert verdict.reason == "HTTP 503"


def test_post_408_is_unknown_and_safe_post_500_is_retried() -> None:
    assert respond(408, method="POST").action == "unknown"
    assert respond(500, method="POST", write_safe=True).action == "retry"


def test_a_get_is_never_unknown() -> None:
    assert respond(502, method="GET", write_safe=False).action == "retry"


def test_a_retryable_503_does_not_come_back_before_its_retry_after() -> None:
    verdict = respond(503, method="GET", headers={"Retry-After": "20"})
    assert 20.0 <= verdict.delay <= 22.0


def test_post_429_is_retried() -> None:
    assert respond(429, method="POST", headers={"Retry-After": "1"}).action == "retry"


def test_post_connect_error_is_retried() -> None:
    for error in (httpx.ConnectError("x"), httpx.ConnectTimeout("x"), httpx.PoolTimeout("x")):
        verdict = fail_with(error, method="POST")
        assert verdict.action == "retry", error
        assert verdict.reason == type(error).__name__


def test_post_read_timeout_is_unknown() -> None:
    verdict = fail_with(httpx.ReadTimeout("x"), method="POST")
    assert verdict.action == "unknown"
    assert verdict.message == (
        "outcome unknown: the connection failed after the request was sent (ReadTimeout)"
    )
    assert fail_with(httpx.RemoteProtocolError("x"), method="PATCH").action == "unknown"


def test_write_safe_post_read_timeout_is_retried() -> None:
    verdict = fail_with(httpx.ReadTimeout("x"), method="POST", write_safe=True)
    assert verdict.action == "retry"
    assert verdict.reason == "ReadTimeout"


def test_an_error_that_is_not_a_transport_error_fails() -> None:
    verdict = fail_with(ValueError("bad JSON"))
    assert verdict == Verdict("fail", reason="ValueError", message="ValueError: bad JSON")
    assert fail_with(httpx.UnsupportedProtocol("ftp://")).action == "fail"


def test_idempotent_methods() -> None:
    assert all(is_idempotent(m) for m in ("GET", "head", "OPTIONS", "PUT", "delete"))
    assert not any(is_idempotent(m) for m in ("POST", "PATCH"))


# Client errors ----------------------------------------------------------------------------------


def test_a_4xx_fails_at_once_naming_the_field() -> None:
    body = {"detail": [{"loc": ["body", 0, "phoneNumber"], "msg": "str type expected"}]}
    verdict = respond(422, app="connecteam", method="POST", body=body)
    assert verdict.action == "fail"
    assert verdict.message == "HTTP 422: phoneNumber: str type expected"
    assert verdict.reason == "HTTP 422"


def test_a_4xx_fails_even_on_the_first_of_many_attempts() -> None:
    body = {"statusCode": 404, "message": "Contact not found"}
    verdict = respond(404, body=body, policy=RetryPolicy(attempts=50))
    assert verdict == Verdict("fail", reason="HTTP 404", message="HTTP 404: Contact not found")


# api_message ------------------------------------------------------------------------------------


def test_api_message_names_a_nested_field_with_its_path() -> None:
    item = {"loc": ["body", "customFields", 2, "value"], "msg": "str type expected"}
    assert api_message({"detail": [item]}) == "customFields[2].value: str type expected"


def test_api_message_joins_several_items() -> None:
    body = {
        "detail": [
            {"loc": ["query", "limit"], "msg": "value is not a valid integer", "type": "x"},
            {"loc": ["body"], "msg": "field required", "type": "value_error.missing"},
        ]
    }
    assert api_message(body) == "limit: value is not a valid integer; field required"


def test_api_message_keeps_ghl_messages_and_raw_text() -> None:
    ghl = {"statusCode": 422, "message": ["phone must be a string", "email must be an email"]}
    assert api_message(ghl) == "phone must be a string; email must be an email"
    assert api_message({"message": "Unauthorized"}) == "Unauthorized"
    assert api_message({"error": "invalid_grant"}) == "invalid_grant"
    assert api_message("x" * 900) == "x" * 500
    assert api_message({"unexpected": 1}) == '{"unexpected": 1}'
    assert api_message(None) == ""


# Attempts ---------------------------------------------------------------------------------------


def test_the_last_attempt_gives_up_with_the_last_reason() -> None:
    assert respond(503, method="PUT", attempt=7).action == "retry"
    verdict = respond(503, method="PUT", attempt=8)
    assert verdict == Verdict(
        "fail",
        reason="gave up after 8 attempts: HTTP 503",
        message="gave up after 8 attempts: HTTP 503",
    )
    error = fail_with(httpx.ConnectError("x"), attempt=3, policy=RetryPolicy(attempts=3))
    assert error.action == "fail"
    assert error.message == "gave up after 3 attempts: ConnectError"
    throttled = respond(429, headers={"Retry-After": "1"}, attempt=8)
    assert throttled.message == "gave up after 8 attempts: 429 Retry-After 1 s"


def test_unknown_stays_unknown_on_the_last_attempt() -> None:
    assert respond(502, method="POST", attempt=8).action == "unknown"
    assert fail_with(httpx.ReadTimeout("x"), method="POST", attempt=8).action == "unknown"


def test_one_attempt_means_no_retry() -> None:
    assert respond(500, policy=RetryPolicy(attempts=1)).action == "fail"


# Backoff ----------------------------------------------------------------------------------------


def test_backoff_stays_between_half_and_all_of_the_capped_exponential() -> None:
    rng = random.Random(42)
    policy = RetryPolicy(base_delay=0.5, max_delay=60.0)
    for attempt in range(1, 20):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        draws = [backoff(attempt, policy, rng) for _ in range(300)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws), attempt
        assert max(draws) - min(draws) > ceiling / 4  # jittered, not a constant


def test_backoff_is_capped_and_reproducible() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=10.0)
    assert 5.0 <= backoff(1000, policy, random.Random(7)) <= 10.0
    assert backoff(3, policy, random.Random(7)) == backoff(3, policy, random.Random(7))
    assert backoff(1, RetryPolicy(base_delay=0), random.Random(7)) == 0.0


# RetryPolicy.from_mapping -----------------------------------------------------------------------


def test_from_mapping_keeps_the_defaults_it_does_not_override() -> None:
    assert RetryPolicy.from_mapping(None) == RetryPolicy()
    assert RetryPolicy.from_mapping({"attempts": 3}) == RetryPolicy(attempts=3)
    default = RetryPolicy(attempts=2, max_wait=10)
    assert RetryPolicy.from_mapping({"base_delay": 1}, default) == RetryPolicy(
        attempts=2, base_delay=1, max_wait=10
    )
    assert RetryPolicy.from_mapping(None, default) is default


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"attempt": 3}, "unknown key 'attempt'"),
        ({"attempts": 0}, "retry.attempts must be an integer >= 1"),
        ({"attempts": 2.5}, "retry.attempts must be an integer >= 1"),
        ({"attempts": True}, "retry.attempts must be an integer >= 1"),
        ({"base_delay": -1}, "retry.base_delay must be a number of seconds >= 0"),
        ({"max_delay": "60"}, "retry.max_delay must be a number of seconds >= 0"),
        ({"max_wait": float("inf")}, "retry.max_wait must be a number of seconds >= 0"),
    ],
)
def test_from_mapping_rejects_bad_keys_and_values(data: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("[", r"\[")) as caught:
        RetryPolicy.from_mapping(data)
    assert repr(next(iter(data.values()))) in str(caught.value) or "unknown key" in words


def test_from_mapping_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError, match="retry must be a mapping"):
        RetryPolicy.from_mapping([3])  # type: ignore[arg-type]


def test_giving_up_on_a_connection_names_the_host_it_could_not_reach() -> None:
    """Issue: a base URL on a closed port ended in a bare `ConnectError: [Errno 111]`."""
    request = httpx.Request("GET", "http://127.0.0.1:1/ghl/contacts/c1")
    error = httpx.ConnectError("[Errno 111] Connection refused", request=request)
    assert fail_with(error, attempt=1, policy=RetryPolicy(attempts=3)).action == "retry"
    spent = fail_with(error, attempt=3, policy=RetryPolicy(attempts=3))
    assert spent.action == "fail"
    assert spent.message == (
        "gave up after 3 attempts: ConnectError: could not reach 127.0.0.1:1 (connection refused)"
    )
