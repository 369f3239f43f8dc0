"""Who may see the run history page, and the CSRF token every action carries.

The page shows what the runs sent and received, which is personal data, and it can retry and
replay runs; so:

- Bound to a loopback address (``connector serve``'s default, 127.0.0.1), the page is open to
  whoever can reach that address, that is, the people on this machine. Requests whose ``Host``
  is not a loopback name are refused (a web page cannot reach the server by DNS rebinding).
- Bound to any other address, the page needs ``CONNECTOR_UI_PASSWORD``: the login form sets a
  session cookie (12 hours; ``Secure`` under https, ``SameSite=Lax``), or a script sends
  ``Authorization: Bearer <password>``. Both are compared in constant time. With no password
  set, the page is refused with a message that says so; the webhook routes are not behind this
  gate and keep working.
- Wrong passwords (the form's and the Bearer header's alike) are answered later and later (half a
  second, then twice as long each time, at most :data:`MAX_DELAY` seconds), and counted (the
  ``limits`` library's moving window) per client address (:data:`PER_ADDRESS`) and overall
  (:data:`OVERALL`): past either, a login is refused (429, with ``Retry-After``) without the
  password being looked at. A right password from another address still works while one
  address is refused, until the overall bound is reached; a session already open is never
  refused. The counts are per serving process.
- Every POST (retry, replay, mark resolved, log in, log out) carries a CSRF token: an HMAC of a
  random per-browser cookie (``connector_csrf``), checked against that cookie; a POST without it
  is refused 403. A POST whose ``Origin`` is another site is refused as well.

Cookies and CSRF tokens are signed with a random key kept sealed in the database
(:mod:`connector.persistence.page_sessions`), so several serving processes behind one address
accept each other's sessions, and the key cannot be derived from the password. Each session is
a row there too: logging out ends it for every process (a copied cookie is refused after), and
a new password ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.requests import Request

__all__ = ["SESSION_SECONDS", "Access", "Decision", "LoginGuard", "is_loopback"]

SESSION_COOKIE = "connector_ui"
CSRF_COOKIE = "connector_csrf"
SESSION_SECONDS = 12 * 3600
LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")
PER_ADDRESS = "10/15 minutes"  # wrong passwords from one client address
OVERALL = "100/15 minutes"  # wrong passwords from every address together
FIRST_DELAY = 0.5  # seconds before a first wrong password is answered; doubled each time
MAX_DELAY = 8.0


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (an address or a name, maybe with a port or brackets) is this machine."""
    if not host:
        return False
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else name[1:]
    elif name.count(":") == 1:  # 127.0.0.1:8000, localhost:8000
        name = name.split(":", 1)[0]
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Decision:
    """What the gate says about one request: ``allowed``, or why not (``status``, ``message``);
    ``login``: a login would let it in (a GET is sent to the login form); ``delay``: how long to
    wait before answering (a wrong password); ``retry_after``: refused for that long."""

    allowed: bool
    status: int = 200
    message: str = ""
    login: bool = False
    delay: float = 0.0
    retry_after: float = 0.0


class LoginGuard:
    """Wrong passwords counted per client address and overall, in a moving window (``limits``),
    and the growing delay before each is answered."""

    def __init__(self, per_address: str = PER_ADDRESS, overall: str | None = OVERALL) -> None:
        self.per_address: RateLimitItem = parse(per_address)
        self.overall: RateLimitItem | None = parse(overall) if overall else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def _bounds(self, address: str) -> list[tuple[RateLimitItem, str]]:
        bounds = [(self.per_address, address)]
        if self.overall is not None:
            bounds.append((self.overall, "*"))
        return bounds

    def refused_for(self, address: str) -> float:
        """Seconds until ``address`` may try a password again (0: it may now)."""
        for item, key in self._bounds(address):
            if not self._limiter.test(item, "login", key):
                reset, _ = self._limiter.get_window_stats(item, "login", key)
                return max(1.0, reset - time.time())
        return 0.0

    def failed(self, address: str) -> float:
        """Count a wrong password from ``address``; the seconds to wait before answering it."""
        for item, key in self._bounds(address):
            self._limiter.hit(item, "login", key)
        _, remaining = self._limiter.get_window_stats(self.per_address, "login", address)
        wrong = max(1, self.per_address.amount - remaining)
        return float(min(MAX_DELAY, FIRST_DELAY * 2 ** (wrong - 1)))

    def succeeded(self, address: str) -> None:
        self._limiter.clear(self.per_address, "login", address)


class SessionStore(Protocol):
    """Where the page's key and sessions are kept (:class:`~connector.persistence.page_sessions.
    PageSessions`)."""

    def key(self, password: str) -> bytes: ...
    def start(self, nonce: str, expires_at: float) -> None: ...
    def alive(self, nonce: str) -> bool: ...
    def end(self, nonce: str) -> None: ...


class _InProcess:
    """Sessions kept by this process only (an :class:`Access` given no store: tests)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._key = secrets.token_bytes(32)
        self._live: dict[str, float] = {}
        self.clock = clock

    def key(self, password: str) -> bytes:
        return self._key

    def start(self, nonce: str, expires_at: float) -> None:
        self._live[nonce] = expires_at

    def alive(self, nonce: str) -> bool:
        return self._live.get(nonce, 0.0) > self.clock()

    def end(self, nonce: str) -> None:
        self._live.pop(nonce, None)


def client_address(request: Request) -> str:
    """The client's address (the proxy's ``X-Forwarded-For`` only where it is trusted:
    ``CONNECTOR_FORWARDED_ALLOW_IPS``)."""
    client = request.client
    return client.host if client is not None else "-"


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Access:
    """The gate of the page: ``password`` (``CONNECTOR_UI_PASSWORD``) and the address ``host``
    that ``connector serve`` is bound to (None until it is known: then each connection's own
    local address is judged); ``sessions``: where the key and the sessions are kept (None: in
    this process only)."""

    password: str | None = None
    host: str | None = None
    clock: Callable[[], float] = time.time
    sessions: SessionStore | None = None
    guard: LoginGuard = field(default_factory=LoginGuard)
    _local_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    _shared_key: bytes | None = None

    def __post_init__(self) -> None:
        if self.sessions is None:
            self.sessions = _InProcess(lambda: self._now())

    @property
    def open(self) -> bool:
        """Whether the page needs no login: the server listens on loopback only."""
        return is_loopback(self.host)

    def _store(self) -> SessionStore:
        assert self.sessions is not None
        return self.sessions

    def _key(self, purpose: str) -> bytes:
        if self.password:
            if self._shared_key is None:
                self._shared_key = self._store().key(self.password)
            base = self._shared_key
        else:
            base = self._local_key
        return hmac.new(base, purpose.encode(), hashlib.sha256).digest()

    def _now(self) -> float:
        return float(self.clock())

    # who -----------------------------------------------------------------------------------------

    def decide(self, request: Request) -> Decision:
        host = self.host
        if host is None:  # not told where it listens: the address this connection came to
            server = request.scope.get("server")
            host = str(server[0]) if server else None
        if is_loopback(host):
            if not is_loopback(request.headers.get("host", "")):
                return Decision(
                    False,
                    421,
                    "this page answers only to localhost and 127.0.0.1 addresses; connector "
                    "serve is bound to a loopback address",
                )
            return Decision(True)
        if not self.password:
            return Decision(
                False,
                403,
                f"the run history page is refused: connector serve is bound to {host}, not"
                " 127.0.0.1, and CONNECTOR_UI_PASSWORD is not set. Set CONNECTOR_UI_PASSWORD to"
                " a long random password (then log in), or serve on --host 127.0.0.1. The webhook"
                " routes are not affected.",
            )
        if self.session_ok(request.cookies.get(SESSION_COOKIE, "")):
            return Decision(True)
        header = request.headers.get("authorization", "")
        if header:
            address = client_address(request)
            wait = self.guard.refused_for(address)
            if wait:
                return self.too_many(wait)
            if self.bearer_ok(header):
                return Decision(True)
            delay = self.guard.failed(address)
            return Decision(False, 401, "log in to see the run history", login=True, delay=delay)
        return Decision(False, 401, "log in to see the run history", login=True)

    @staticmethod
    def too_many(wait: float) -> Decision:
        return Decision(
            False,
            429,
            f"too many wrong passwords: try again in {int(wait) + 1} s",
            retry_after=wait,
        )

    def password_ok(self, given: str) -> bool:
        if not self.password:
            return False
        return hmac.compare_digest(given.encode(), self.password.encode())

    def bearer_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.password_ok(value.strip())

    def session_cookie(self) -> str:
        """A new session (kept in the store until it expires or ends): its expiry, a nonce,
        and a signature of both."""
        until_at = int(self._now()) + SESSION_SECONDS
        until = str(until_at)
        nonce = secrets.token_urlsafe(18)
        signature = _sign(self._key("session"), until + "." + nonce)
        self._store().start(nonce, float(until_at))
        return f"{until}.{nonce}.{signature}"

    def _parts(self, cookie: str) -> tuple[str, str] | None:
        """The expiry and nonce of a well-signed ``cookie``."""
        until, _, rest = cookie.partition(".")
        nonce, _, signature = rest.partition(".")
        if not (until.isdigit() and nonce and signature):
            return None
        expected = _sign(self._key("session"), until + "." + nonce)
        return (until, nonce) if hmac.compare_digest(signature, expected) else None

    def session_ok(self, cookie: str) -> bool:
        parts = self._parts(cookie) if cookie else None
        if parts is None or int(parts[0]) <= self._now():
            return False
        return self._store().alive(parts[1])

    def end_session(self, cookie: str) -> None:
        """End the session of ``cookie`` for every process (logging out)."""
        parts = self._parts(cookie) if cookie else None
        if parts is not None:
            self._store().end(parts[1])

    # CSRF ----------------------------------------------------------------------------------------

    @staticmethod
    def new_csrf_cookie() -> str:
        return secrets.token_urlsafe(24)

    def csrf_token(self, cookie: str) -> str:
        """The token the forms carry for the browser that holds ``cookie``."""
        return _sign(self._key("csrf"), cookie)

    def csrf_ok(self, request: Request, given: str) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not given:
            return False
        if not hmac.compare_digest(given, self.csrf_token(cookie)):
            return False
        return self.same_origin(request)

    @staticmethod
    def same_origin(request: Request) -> bool:
        """False when the request says it comes from a page of another site."""
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return origin != "null"
        host = request.headers.get("host", "")
        return urlsplit(origin).netloc.lower() == host.lower()
