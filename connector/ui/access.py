"""Who may see the run history page, and the CSRF token every action carries.

The page shows what the runs sent and received, which is personal data, and it can retry and
replay runs; so:

- Bound to a loopback address (``connector serve``'s default, 127.0.0.1), the page is open to
  whoever can reach that address, that is, the people on this machine. Requests whose ``Host``
  is not a loopback name are refused (a web page cannot reach the server by DNS rebinding).
- Bound to any other address, the page needs ``CONNECTOR_UI_PASSWORD``: the login form sets a
  signed session cookie (12 hours), or a script sends ``Authorization: Bearer <password>``. Both
  are compared in constant time; a wrong password waits a second before it is answered. With no
  password set, the page is refused with a message that says so; the webhook routes are not
  behind this gate and keep working.
- Every POST (retry, replay, mark resolved, log in, log out) carries a CSRF token: an HMAC of a
  random per-browser cookie (``connector_csrf``), checked against that cookie; a POST without it
  is refused 403. A POST whose ``Origin`` is another site is refused as well.

Sessions are signed with a key derived from the password, so several serving processes behind one
address accept each other's sessions, and changing the password ends every session.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.requests import Request

__all__ = ["SESSION_SECONDS", "Access", "Decision", "is_loopback"]

SESSION_COOKIE = "connector_ui"
CSRF_COOKIE = "connector_csrf"
SESSION_SECONDS = 12 * 3600
LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")


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
    ``login``: a login would let it in (a GET is sent to the login form)."""

    allowed: bool
    status: int = 200
    message: str = ""
    login: bool = False


def _sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


@dataclass
class Access:
    """The gate of the page: ``password`` (``CONNECTOR_UI_PASSWORD``) and the address ``host``
    that ``connector serve`` is bound to (None until it is known: then each connection's own
    local address is judged)."""

    password: str | None = None
    host: str | None = None
    clock: Callable[[], float] = time.time
    _local_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @property
    def open(self) -> bool:
        """Whether the page needs no login: the server listens on loopback only."""
        return is_loopback(self.host)

    def _key(self, purpose: str) -> bytes:
        base = (
            hashlib.sha256(b"connector-ui:" + self.password.encode()).digest()
            if self.password
            else self._local_key
        )
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
        if self.bearer_ok(request.headers.get("authorization", "")) or self.session_ok(
            request.cookies.get(SESSION_COOKIE, "")
        ):
            return Decision(True)
        return Decision(False, 401, "log in to see the run history", login=True)

    def password_ok(self, given: str) -> bool:
        if not self.password:
            return False
        return hmac.compare_digest(given.encode(), self.password.encode())

    def bearer_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.password_ok(value.strip())

    def session_cookie(self) -> str:
        """A new session: its expiry and a signature of it."""
        until = str(int(self._now()) + SESSION_SECONDS)
        nonce = secrets.token_urlsafe(12)
        return f"{until}.{nonce}.{_sign(self._key('session'), until + '.' + nonce)}"

    def session_ok(self, cookie: str) -> bool:
        until, _, rest = cookie.partition(".")
        nonce, _, signature = rest.partition(".")
        if not (until.isdigit() and nonce and signature):
            return False
        expected = _sign(self._key("session"), until + "." + nonce)
        return hmac.compare_digest(signature, expected) and int(until) > self._now()

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
