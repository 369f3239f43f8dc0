"""The run history page's routes, mounted beside the webhook routes of ``connector serve``.

``GET /`` is the list of runs; everything else of the page lives under ``/ui/``: a run
(``/ui/runs/ID``), the queue of failed and waiting runs (``/ui/queue``), connections, id links,
the live-update stream (``/ui/events``), login and logout, and the static files. Each route goes
through :meth:`UI.gate` (:mod:`connector.ui.access`): who may see the page, the CSRF token of
every POST, and errors as a page that says what went wrong, never a traceback. The webhook
routes are not touched by any of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from connector.errors import ConnectorError
from connector.persistence.page_sessions import PageSessions
from connector.persistence.pauses import Pauses
from connector.persistence.sealing import SecretBox, load_key
from connector.runtime.api import RunClient
from connector.ui.access import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Access,
    client_address,
)
from connector.ui.present import Shown, environment
from connector.ui.queries import History, RunRow

__all__ = ["UI", "Ctx"]

log = logging.getLogger("connector.ui")

MAX_FORM_BYTES = 64 * 1024
FORM_SECONDS = 10.0  # a form sent more slowly than this is read as empty (refused)
EVENTS = "/ui/events"  # the live stream: refused with 401, not sent to the login form


@dataclass
class Ctx:
    """What a handler is given beside the request: the CSRF token for its forms, and its form
    fields (a POST's, already checked)."""

    csrf: str
    form: dict[str, str]


Handler = Callable[[Request, Ctx], Awaitable[Response]]


class UI:
    """The page of one serving process: its runtime (the database, retry and replay), the
    recipes it serves (and the syncs), how it starts a run by hand (``start(recipe, event)``:
    the new run's id; None: the page cannot), and who may see it."""

    def __init__(
        self,
        runtime: RunClient,
        plans: Mapping[str, Any],
        *,
        start: Callable[[str, dict[str, Any]], str] | None = None,
        syncs: Sequence[Any] = (),
    ) -> None:
        self.runtime = runtime
        self.plans = plans
        self.start = start
        self.syncs = list(syncs)
        self.history = History(runtime.db.engine)
        self.pauses = Pauses(runtime.db.engine)
        env, db = runtime.env, runtime.db
        self.access = Access(
            password=env.get("CONNECTOR_UI_PASSWORD") or None,
            sessions=PageSessions(db.engine, lambda: SecretBox(*load_key(env, db.url))),
        )
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep  # a wrong password's wait
        self.templates = environment(Shown(runtime.redactor))
        self.stopping: Callable[[], bool] = lambda: False

    # rendering -----------------------------------------------------------------------------------

    def render(self, name: str, ctx: Ctx | None, status: int = 200, **values: Any) -> Response:
        html = self.templates.get_template(name).render(
            csrf=ctx.csrf if ctx else "",
            login_required=not self.access.open,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def row(self, row: RunRow) -> str:
        return self.templates.get_template("_row.html").render(run=row)

    def problem(self, ctx: Ctx | None, status: int, message: str) -> Response:
        return self.render("problem.html", ctx, status, code=status, message=message)

    # the gate ------------------------------------------------------------------------------------

    def gate(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the access rules, the CSRF check, and the error page."""

        async def endpoint(request: Request) -> Response:
            decision = await run_in_threadpool(self.access.decide, request)
            if not decision.allowed:
                if decision.delay:
                    await self.sleep(decision.delay)  # a wrong password costs time
                if decision.retry_after:
                    refused = self.problem(None, decision.status, decision.message)
                    refused.headers["Retry-After"] = str(int(decision.retry_after) + 1)
                    return refused
                if decision.login and request.method == "GET" and request.url.path != EVENTS:
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)
                return self.problem(None, decision.status, decision.message)
            cookie = request.cookies.get(CSRF_COOKIE) or ""
            fresh = not cookie
            if fresh:
                cookie = self.access.new_csrf_cookie()
            ctx = Ctx(self.access.csrf_token(cookie), {})
            if request.method == "POST":
                ctx.form = await _form(request)
                if fresh or not self.access.csrf_ok(request, ctx.form.get("csrf", "")):
                    return self.problem(
                        ctx,
                        403,
                        "refused: this action needs the page's CSRF token; reload the page and try again",
                    )
            try:
                response = await handler(request, ctx)
            except ConnectorError as exc:
                response = self.problem(ctx, 503, str(exc))
            except Exception as exc:  # a bug: said plainly, one log line by its type
                request_id = getattr(request.state, "request_id", "-")
                log.error(
                    "request %s: the run history page failed: %s: %s",
                    request_id,
                    type(exc).__name__,
                    self.runtime.redactor.text(str(exc))[:200],
                )
                response = self.problem(
                    ctx,
                    500,
                    f"the page failed ({type(exc).__name__}); the server's log has a line with"
                    f" the request id {request_id}",
                )
            if fresh:
                response.set_cookie(
                    CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=_https(request)
                )
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("X-Frame-Options", "DENY")
            response.headers.setdefault("Referrer-Policy", "same-origin")
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
            )
            return response

        return endpoint

    # login ---------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        cookie = request.cookies.get(CSRF_COOKIE) or self.access.new_csrf_cookie()
        ctx = Ctx(self.access.csrf_token(cookie), {})
        target = _local(request.query_params.get("next", "/"))
        if self.access.open:
            return RedirectResponse(target, status_code=303)
        if not self.access.password:
            return self.problem(ctx, 403, self.access.decide(request).message)
        status, error = 200, ""
        retry_after = 0.0
        if request.method == "POST":
            ctx.form = await _form(request)
            target = _local(ctx.form.get("next", "/"))
            address = client_address(request)
            guard = self.access.guard
            if not self.access.csrf_ok(request, ctx.form.get("csrf", "")):
                status, error = 403, "the form expired: try again"
            elif retry_after := guard.refused_for(address):
                status, error = 429, self.access.too_many(retry_after).message
            elif self.access.password_ok(ctx.form.get("password", "")):
                guard.succeeded(address)
                session = await run_in_threadpool(self.access.session_cookie)
                done = RedirectResponse(target, status_code=303)
                done.set_cookie(
                    SESSION_COOKIE,
                    session,
                    max_age=SESSION_SECONDS,
                    httponly=True,
                    samesite="lax",
                    secure=_https(request),
                )
                return done
            else:
                await self.sleep(guard.failed(address))  # each wrong guess waits longer
                status, error = 401, "wrong password"
        response = self.render("login.html", ctx, status, next=target, error=error)
        if retry_after:
            response.headers["Retry-After"] = str(int(retry_after) + 1)
        response.set_cookie(
            CSRF_COOKIE, cookie, httponly=True, samesite="strict", secure=_https(request)
        )
        return response

    async def logout(self, request: Request, ctx: Ctx) -> Response:
        response: Response = RedirectResponse(
            "/ui/login" if not self.access.open else "/", status_code=303
        )
        # ended here for every process: a copy of the cookie is refused from now on
        await run_in_threadpool(self.access.end_session, request.cookies.get(SESSION_COOKIE, ""))
        response.delete_cookie(
            SESSION_COOKIE, httponly=True, samesite="lax", secure=_https(request)
        )
        return response


async def _form(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form (at most 64 KiB; the last value of a repeated name)."""
    body = b""
    with anyio.move_on_after(FORM_SECONDS) as deadline:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return {}
    if deadline.cancelled_caught:  # sent too slowly
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _local(target: str) -> str:
    """``target`` if it is a path on this server, else ``/`` (no open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _https(request: Request) -> bool:
    return request.url.scheme == "https"
