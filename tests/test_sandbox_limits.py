"""Rate limits with their headers, OAuth with rotating refresh tokens, and scopes, over real HTTP.
Time is a fake clock, so nothing sleeps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from connector.sandbox import RateLimitConfig, RunningSandbox, start_in_thread

if TYPE_CHECKING:
    from sandbox.fixtures import FakeClock

pytest_plugins = ["sandbox.fixtures"]

JORDAN = "ocQHyuzHvysMo5N5VsXc"
CLIENT = {"client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret"}


def test_ghl_rate_limit_headers_count_down_and_429_past_the_burst(
    ghl: httpx.Client, clock: FakeClock
) -> None:
    first = ghl.get(f"/contacts/{JORDAN}")
    assert first.headers["X-RateLimit-Max"] == "100"
    assert first.headers["X-RateLimit-Interval-Milliseconds"] == "10000"
    assert first.headers["X-RateLimit-Limit-Daily"] == "200000"
    assert first.headers["X-RateLimit-Remaining"] == "99"
    assert first.headers["X-RateLimit-Daily-Remaining"] == "199999"
    for _ in range(99):
        last = ghl.get(f"/contacts/{JORDAN}")
    assert last.headers["X-RateLimit-Remaining"] == "0"
    refused = ghl.get(f"/contacts/{JORDAN}")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    clock.advance(10)
    again = ghl.get(f"/contacts/{JORDAN}")
    assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "99"
    assert again.headers["X-RateLimit-Daily-Remaining"] == "199899"


def test_limits_are_per_location(make_client: Any, clock: FakeClock) -> None:
    limits = RateLimitConfig(ghl_burst_max=2, ghl_daily=3)
    with start_in_thread(clock=clock, limits=limits) as sb:
        one = make_client(
            sb.env["GHL_BASE_URL"],
            {"Authorization": f"Bearer {sb.env['GHL_TOKEN']}", "Version": "2021-07-28"},
        )
        two = make_client(
            sb.env["GHL_BASE_URL"],
            {
                "Authorization": "Bearer pit-sandbox-51b0d7e4-C2QujeCh8ZnC7al2InWR",
                "Version": "2021-07-28",
            },
        )
        assert [one.get(f"/contacts/{JORDAN}").status_code for _ in range(3)] == [200, 200, 429]
        assert two.get("/contacts/FDEEtfjgVvVqE1SkHbn8").status_code == 200
        clock.advance(10)
        assert one.get(f"/contacts/{JORDAN}").status_code == 200  # third of the day
        clock.advance(10)
        daily = one.get(f"/contacts/{JORDAN}")
        assert daily.status_code == 429 and daily.headers["X-RateLimit-Daily-Remaining"] == "0"
        clock.advance(86400)
        assert one.get(f"/contacts/{JORDAN}").status_code == 200
        one.close()
        two.close()


def test_connecteam_minute_and_day_limits(make_client: Any, clock: FakeClock) -> None:
    limits = RateLimitConfig(connecteam_minute=2, connecteam_day=3)
    with start_in_thread(clock=clock, limits=limits) as sb:
        c = make_client(sb.env["CONNECTEAM_BASE_URL"], {"X-API-KEY": sb.env["CONNECTEAM_API_KEY"]})
        r = c.get("/tasks/v1/taskboards")
        assert (
            r.headers["x-ratelimit-minute-limit"] == "2"
            and r.headers["x-ratelimit-minute-remaining"] == "1"
        )
        assert (
            r.headers["x-ratelimit-day-limit"] == "3"
            and r.headers["x-ratelimit-day-remaining"] == "2"
        )
        assert int(r.headers["x-ratelimit-minute-reset"]) == int(clock.now) + 60
        c.get("/tasks/v1/taskboards")
        refused = c.get("/tasks/v1/taskboards")
        assert refused.status_code == 429 and refused.json() == {"detail": "Too Many Requests"}
        clock.advance(60)
        assert c.get("/tasks/v1/taskboards").status_code == 200
        clock.advance(60)
        assert c.get("/tasks/v1/taskboards").status_code == 429  # the day's 3 are used
        c.close()


def _authorize(anon: httpx.Client, state: str = "xyz") -> str:
    r = anon.get(
        "/ghl/oauth/chooselocation",
        params={
            "response_type": "code",
            "client_id": CLIENT["client_id"],
            "redirect_uri": "http://localhost:9/cb",
            "scope": "contacts.readonly",
            "state": state,
        },
    )
    assert r.status_code == 302
    target = urlparse(r.headers["location"])
    query = parse_qs(target.query)
    assert target.netloc == "localhost:9" and query["state"] == [state]
    return query["code"][0]


def test_oauth_code_flow_with_rotating_refresh_tokens(anon: httpx.Client, clock: FakeClock) -> None:
    code = _authorize(anon)
    grant = {
        **CLIENT,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": "http://localhost:9/cb",
    }
    tokens = anon.post("/ghl/oauth/token", data=grant).json()
    assert tokens["locationId"] == "ve9EPM428h8vShlRW1KT" and tokens["userType"] == "Location"
    assert tokens["expires_in"] == 86399 and tokens["scope"] == "contacts.readonly"
    assert anon.post("/ghl/oauth/token", data=grant).status_code == 400  # codes are single-use
    api = {"Authorization": f"Bearer {tokens['access_token']}", "Version": "2021-07-28"}
    assert anon.get(f"/ghl/contacts/{JORDAN}", headers=api).status_code == 200
    denied = anon.post(f"/ghl/contacts/{JORDAN}/tags", headers=api, json={"tags": ["x"]})
    assert denied.status_code == 401 and "scope" in denied.json()["message"]
    refresh = {**CLIENT, "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    rotated = anon.post("/ghl/oauth/token", data=refresh)
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != tokens["refresh_token"]
    reused = anon.post("/ghl/oauth/token", data=refresh)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    clock.advance(86400)
    expired = anon.get(f"/ghl/contacts/{JORDAN}", headers=api)
    assert expired.status_code == 401
    fresh = {"Authorization": f"Bearer {rotated.json()['access_token']}", "Version": "2021-07-28"}
    assert anon.get(f"/ghl/contacts/{JORDAN}", headers=fresh).status_code == 401  # also a day old
    newest = anon.post(
        "/ghl/oauth/token", data={**refresh, "refresh_token": rotated.json()["refresh_token"]}
    )
    newest_api = {
        "Authorization": f"Bearer {newest.json()['access_token']}",
        "Version": "2021-07-28",
    }
    assert anon.get(f"/ghl/contacts/{JORDAN}", headers=newest_api).status_code == 200


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({**CLIENT, "client_secret": "wrong", "grant_type": "refresh_token"}, 401),
        ({"client_id": "sandbox-client-id", "grant_type": "refresh_token"}, 422),
        ({**CLIENT, "grant_type": "refresh_token", "refresh_token": "made-up"}, 400),
        ({**CLIENT, "grant_type": "password"}, 400),
    ],
)
def test_oauth_token_errors(anon: httpx.Client, form: dict[str, str], status: int) -> None:
    assert anon.post("/ghl/oauth/token", data=form).status_code == status


def test_authorize_refuses_an_unknown_client(anon: httpx.Client, sandbox: RunningSandbox) -> None:
    r = anon.get(
        "/ghl/oauth/chooselocation",
        params={"client_id": "nope", "redirect_uri": "http://localhost:9/cb"},
    )
    assert r.status_code == 400
