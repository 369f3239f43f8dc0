"""Who may see the run history page: open on loopback (to loopback names only), a login when
bound elsewhere (the password, a signed session cookie, or a bearer header), refused with a
clear message without a password; the webhook routes are never behind it."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest

from connector.serve.app import ServeSettings, build_app
from connector.serve.intake import Intake
from connector.serve.metrics import Metrics
from connector.ui.access import SESSION_COOKIE, Access, is_loopback
from tests.ui.conftest import Page, TestClient

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("[::1]:8000", True), ("localhost:8000", True),
     ("127.0.0.2", True), ("0.0.0.0", False), ("::", False), ("10.0.0.5", False),
     ("example.com", False), ("", False), (None, False)],
)  # fmt: skip
def test_loopback_addresses(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_on_loopback_the_page_answers_only_to_loopback_names(page: Page) -> None:
    assert page.client.get("/").status_code == 200
    rebound = page.client.get("/", headers={"Host": "attacker.example:8000"})
    assert rebound.status_code == 421


def test_bound_elsewhere_without_a_password_the_page_is_refused(page: Page) -> None:
    page.ui.access.host = "0.0.0.0"
    for path in ("/", "/ui/queue", "/ui/connections", "/ui/events", "/ui/login"):
        answer = page.client.get(path)
        assert answer.status_code == 403, path
        assert "CONNECTOR_UI_PASSWORD is not set" in unescape(answer.text)


def test_bound_elsewhere_the_page_needs_a_login(page: Page) -> None:
    page.ui.access = Access(password=PASSWORD, host="0.0.0.0")
    client = page.client
    first = client.get("/ui/queue?x=1", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == "/ui/login?next=/ui/queue%3Fx%3D1"
    assert client.get("/ui/events").status_code == 401  # no stream either
    assert client.get("/", headers={"Authorization": f"Bearer {PASSWORD}"}).status_code == 200
    wrong = client.get("/", headers={"Authorization": "Bearer guess"}, follow_redirects=False)
    assert wrong.status_code == 303
    form = client.get("/ui/login?next=/ui/queue").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    bad = client.post("/ui/login", data={"csrf": csrf.group(1), "password": "nope"})
    assert bad.status_code == 401 and "wrong password" in bad.text
    no_token = client.post("/ui/login", data={"password": PASSWORD}, follow_redirects=False)
    assert no_token.status_code == 403
    good = client.post(
        "/ui/login",
        data={"csrf": csrf.group(1), "password": PASSWORD, "next": "/ui/queue"},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == "/ui/queue"
    assert client.get("/ui/queue").status_code == 200  # the session cookie
    session = client.cookies.get(SESSION_COOKIE)
    assert session
    client.cookies.set(SESSION_COOKIE, session[:-2] + "00")  # tampered with
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_login_goes_back_only_to_this_server(page: Page) -> None:
    page.ui.access = Access(password=PASSWORD, host="0.0.0.0")
    form = page.client.get("/ui/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        answer = page.client.post(
            "/ui/login",
            data={"csrf": csrf.group(1), "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/", target


def test_sessions_expire_and_end_with_a_new_password() -> None:
    now = [1_000_000.0]
    access = Access(password=PASSWORD, host="0.0.0.0", clock=lambda: now[0])
    cookie = access.session_cookie()
    assert access.session_ok(cookie)
    assert not Access(password="another one", host="0.0.0.0").session_ok(cookie)
    now[0] += 13 * 3600
    assert not access.session_ok(cookie)


def test_the_webhook_routes_are_not_behind_the_page(page: Page) -> None:
    intake = Intake(page.runtime, [], metrics=Metrics())
    apps = page.runtime.registry.apps.values()
    settings = ServeSettings.from_env(apps, {"CONNECTEAM_WEBHOOK_SECRET": "s3cret"})
    app = build_app(intake, settings)
    app.state.ui.access.host = "0.0.0.0"  # bound elsewhere, no password: the page is refused
    with TestClient(app, base_url="http://10.0.0.5:8000") as client:
        assert client.get("/").status_code == 403
        hook: Any = client.post("/hooks/anything", json={})
        assert hook.status_code == 401 and "CONNECTOR_HOOK_TOKEN" in hook.json()["error"]
        assert client.post("/webhooks/connecteam/wrong", json={}).status_code == 404
        assert client.get("/healthz").status_code == 503  # not started: but answered
        assert client.get("/metrics").status_code == 200


def test_a_failing_page_is_a_500_with_a_request_id_and_one_log_line(
    page: Page, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    intake = Intake(page.runtime, [], metrics=Metrics())
    app = build_app(intake, ServeSettings.from_env(page.runtime.registry.apps.values(), {}))
    ui = app.state.ui
    ui.access.host = "127.0.0.1"

    def broken(*args: Any) -> Any:
        raise RuntimeError(f"a bug near {page.runtime.env['GHL_TOKEN']}")

    monkeypatch.setattr(ui.history, "page", broken)
    with caplog.at_level("DEBUG"), TestClient(app, base_url="http://127.0.0.1:8000") as client:
        answer = client.get("/")
    assert answer.status_code == 500
    request_id = answer.headers["x-request-id"]
    assert request_id in unescape(answer.text) and "RuntimeError" in answer.text
    mine = [r for r in caplog.records if request_id in r.getMessage()]
    assert len(mine) == 1 and mine[0].exc_info is None and "\n" not in mine[0].getMessage()
    assert page.runtime.env["GHL_TOKEN"] not in caplog.text  # the message is redacted
    assert "Traceback" not in caplog.text
