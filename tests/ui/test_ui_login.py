"""The page's login on a public address: wrong passwords slowed and then refused (per client
address and overall, the form and the Bearer header alike), a random key kept sealed in the
database, sessions that end on the server at logout and with a new password, and cookies that
are ``Secure`` under https."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from connector.persistence.database import close_all
from connector.ui import UI, mount
from connector.ui.access import SESSION_COOKIE, Access
from tests.ui.conftest import Page, TestClient

PASSWORD = "correct horse battery staple"


class Waits:
    """The page's waits before answering a wrong password, recorded instead of slept."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture()
def waits(page: Page) -> Waits:
    recorded = Waits()
    page.ui.sleep = recorded
    page.ui.access = Access(password=PASSWORD, host="0.0.0.0", sessions=page.ui.access.sessions)
    return recorded


def _client(page: Page, address: str, base: str = "http://10.0.0.5:8000") -> TestClient:
    return TestClient(page.client.app, base_url=base, client=(address, 40000))


def _csrf(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/ui/login").text)
    assert found
    return found.group(1)


def _log_in(client: TestClient, password: str = PASSWORD) -> int:
    answer = client.post(
        "/ui/login",
        data={"csrf": _csrf(client), "password": password},
        follow_redirects=False,
    )
    return answer.status_code


def test_wrong_passwords_from_one_address_are_slowed_then_refused(page: Page, waits: Waits) -> None:
    with _client(page, "203.0.113.9") as attacker:
        csrf = _csrf(attacker)
        answers = [
            attacker.post("/ui/login", data={"csrf": csrf, "password": f"guess {n}"})
            for n in range(100)
        ]
    codes = [a.status_code for a in answers]
    wrong = codes.count(401)
    assert 0 < wrong < 20  # a few are looked at, and answered later and later
    assert codes[wrong:] == [429] * (100 - wrong)  # then every one is refused unread
    assert waits.seconds == sorted(waits.seconds) and waits.seconds[-1] > waits.seconds[0]
    assert int(answers[-1].headers["retry-after"]) > 0
    # the right password is refused from that address too, but works from another one
    with _client(page, "203.0.113.9") as attacker:
        assert _log_in(attacker) == 429
    with _client(page, "198.51.100.4") as owner:
        assert _log_in(owner) == 303
        assert owner.get("/ui/queue").status_code == 200


def test_wrong_bearer_passwords_are_slowed_then_refused(page: Page, waits: Waits) -> None:
    with _client(page, "203.0.113.10") as script:
        codes = [
            script.get(
                "/ui/queue", headers={"Authorization": f"Bearer guess {n}"}, follow_redirects=False
            ).status_code
            for n in range(30)
        ]
        assert (
            script.get("/ui/queue", headers={"Authorization": f"Bearer {PASSWORD}"}).status_code
            == 429
        )
    wrong = codes.count(303)
    assert 0 < wrong < 20 and codes[wrong:] == [429] * (30 - wrong)
    assert waits.seconds == sorted(waits.seconds) and waits.seconds[-1] > waits.seconds[0]
    with _client(page, "198.51.100.5") as other:
        answer = other.get("/ui/queue", headers={"Authorization": f"Bearer {PASSWORD}"})
        assert answer.status_code == 200


def test_too_many_wrong_passwords_overall_refuse_every_address(page: Page, waits: Waits) -> None:
    guard = page.ui.access.guard
    assert guard.overall is not None
    per_address = guard.per_address.amount
    addresses = [f"192.0.2.{n}" for n in range(guard.overall.amount // per_address + 1)]
    for address in addresses:
        for _ in range(per_address):
            guard.failed(address)
    with _client(page, "198.51.100.6") as newcomer:
        assert _log_in(newcomer) == 429


def test_a_cookie_copied_before_logout_is_refused_after_it(page: Page, waits: Waits) -> None:
    with _client(page, "198.51.100.7") as browser:
        assert _log_in(browser) == 303
        copied = browser.cookies.get(SESSION_COOKIE)
        assert copied and browser.get("/ui/queue").status_code == 200
        page_csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/ui/queue").text)
        assert page_csrf
        out = browser.post("/ui/logout", data={"csrf": page_csrf.group(1)}, follow_redirects=False)
        assert out.status_code == 303
    with _client(page, "203.0.113.11") as thief:
        thief.cookies.set(SESSION_COOKIE, copied)
        assert thief.get("/ui/queue", follow_redirects=False).status_code == 303  # to the login


def _page_on(home: Path, password: str) -> tuple[UI, TestClient]:
    from connector.apps.plugins import default_registry
    from connector.runtime.durable import Runtime

    registry, _ = default_registry([], home=Path("/nonexistent"))
    env = {"CONNECTOR_HOME": str(home), "CONNECTOR_UI_PASSWORD": password}
    runtime = Runtime(registry, env)
    app = Starlette()
    ui = mount(app, runtime, {})
    ui.access.host = "0.0.0.0"
    ui.sleep = Waits()
    return ui, TestClient(app, base_url="http://10.0.0.5:8000", client=("198.51.100.8", 1))


def test_the_session_key_is_random_sealed_and_a_new_password_ends_every_session(
    tmp_path: Path,
) -> None:
    try:
        ui, browser = _page_on(tmp_path / "one", PASSWORD)
        with browser:
            assert _log_in(browser) == 303
            cookie = browser.cookies.get(SESSION_COOKIE)
            assert cookie and browser.get("/ui/queue").status_code == 200
        key = ui.access._shared_key
        assert key is not None
        derived = hashlib.sha256(b"connector-ui:" + PASSWORD.encode()).digest()
        assert key != derived
        stored = b"".join(p.read_bytes() for p in (tmp_path / "one").rglob("connector.sqlite3*"))
        assert key not in stored and PASSWORD.encode() not in stored
        # the same password on another database: another key, the cookie means nothing there
        _, elsewhere = _page_on(tmp_path / "two", PASSWORD)
        with elsewhere:
            elsewhere.cookies.set(SESSION_COOKIE, cookie)
            assert elsewhere.get("/ui/queue", follow_redirects=False).status_code == 303
        # the same database and password (another process): the session holds
        _, again = _page_on(tmp_path / "one", PASSWORD)
        with again:
            again.cookies.set(SESSION_COOKIE, cookie)
            assert again.get("/ui/queue").status_code == 200
        # a new password: every session ends
        _, changed = _page_on(tmp_path / "one", "a brand new password")
        with changed:
            changed.cookies.set(SESSION_COOKIE, cookie)
            assert changed.get("/ui/queue", follow_redirects=False).status_code == 303
    finally:
        close_all()


def test_cookies_are_secure_and_samesite_under_https(page: Page, waits: Waits) -> None:
    with _client(page, "198.51.100.9", base="https://10.0.0.5") as browser:
        form = browser.get("/ui/login")
        csrf_cookie = form.headers["set-cookie"].lower()
        assert "secure" in csrf_cookie and "samesite=strict" in csrf_cookie
        found = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert found
        answer = browser.post(
            "/ui/login", data={"csrf": found.group(1), "password": PASSWORD}, follow_redirects=False
        )
        assert answer.status_code == 303
        session = answer.headers["set-cookie"].lower()
        assert "secure" in session and "samesite=lax" in session and "httponly" in session


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    yield
    close_all()
