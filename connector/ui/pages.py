"""The pages that read: the run list, a run, the queue, connections, id links, the live stream.

Each function takes the :class:`~connector.ui.web.UI` and returns the handler its route calls.
The database is read in a worker thread (the event loop keeps answering webhooks meanwhile).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from connector.persistence.runs import AmbiguousRunId
from connector.ui.live import Changes
from connector.ui.queries import STATUSES, Filters, bad_time

if TYPE_CHECKING:
    from connector.records import RunRecord
    from connector.ui.web import UI, Ctx

__all__ = [
    "connections",
    "events",
    "find_run",
    "links",
    "queue",
    "recipes",
    "recipes_page",
    "run",
    "run_page",
    "runs",
]

Handler = Callable[[Request, "Ctx"], Awaitable[Response]]


def runs(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        filters = Filters.from_query(request.query_params)
        before = request.query_params.get("before") or None
        problems = [
            f"{name} {value!r} is not a time: use 2026-07-01 or 2026-07-01T10:00 (UTC)"
            for name, value in (("since", filters.since), ("until", filters.until))
            if bad_time(value)
        ]
        page = await run_in_threadpool(ui.history.page, filters, before)
        recipes = sorted({*await run_in_threadpool(ui.history.recipes), *ui.plans})
        triggers = sorted({f"{p.trigger_app} {p.trigger_event}" for p in ui.plans.values()})
        return ui.render(
            "runs.html",
            ctx,
            page=page,
            filters=filters,
            statuses=STATUSES,
            recipes=recipes,
            triggers=triggers,
            problems=problems,
            first_page=before is None,
        )

    return handler


def run(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        return await run_page(ui, request.path_params["run_id"], ctx)

    return handler


async def find_run(ui: UI, run_id: str, ctx: Ctx) -> RunRecord | Response:
    """The run ``run_id`` (or a unique prefix of it), or the page that says why there is none."""
    try:
        record = await run_in_threadpool(ui.runtime.store.get, run_id)
    except AmbiguousRunId as exc:
        return ui.problem(ctx, 400, str(exc))
    if record is None:
        return ui.problem(ctx, 404, f"no run {run_id!r}: it may have been pruned")
    return record


async def run_page(
    ui: UI, run_id: str, ctx: Ctx, *, status: int = 200, notice: str = "", error: str = ""
) -> Response:
    """The page of one run (also shown, with ``error``, when an action on it was refused)."""
    record = await find_run(ui, run_id, ctx)
    if isinstance(record, Response):
        return record

    def relatives() -> dict[str, Any]:
        history = ui.history
        terms = history.terms(record.id)
        recipe = ui.runtime.store.get_recipe(record.recipe_hash)
        fixed_by, fixes = history.fixed(record.id)
        return {
            "fixed_by": fixed_by,  # the later retry or replay that succeeded
            "fixes": fixes,  # the failed runs this one fixed
            "kind": history.fork_kind(record.id),
            "run_person": history.person(record.id),
            "children": history.children(record.id),
            "mark": history.mark(record.id),
            "terms": terms,
            "links": history.links_among(terms),
            "recipe_text": recipe[1] if recipe else None,
        }

    extra = await run_in_threadpool(relatives)
    return ui.render(
        "run.html",
        ctx,
        status,
        run=record,
        notice=notice,
        error=error,
        step_ids=[s.id for s in record.steps],
        **extra,
    )


def queue(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        before = request.query_params.get("before") or None
        page = await run_in_threadpool(ui.history.queue, before)
        return ui.render("queue.html", ctx, page=page, first_page=before is None)

    return handler


def _plain_url(url: str) -> str:
    """A base URL without any user or password in it."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _state(conn: Any, now: float) -> tuple[str, str]:
    """A connection's state as a word and a sentence (never its secret)."""
    if conn.needs_login:
        return "needs-login", f"needs a new login: {conn.needs_login}"
    if conn.refresh_until and conn.refresh_until > now:
        return "refreshing", "a token refresh is under way"
    if conn.expires_at is not None and conn.expires_at <= now:
        return "expired", "the access token expired; it is refreshed on its next use"
    return "ok", "ready"


def connections(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        from connector.persistence.connections import ConnectionStore

        store = ConnectionStore(ui.runtime.db.engine, None)  # no key: plain facts only
        found = await run_in_threadpool(store.find)
        now = time.time()
        rows = [
            {
                "conn": c,
                "state": _state(c, now),
                "locations": list(c.meta.get("locations") or [])[:50],
            }
            for c in found
        ]
        env = ui.runtime.env
        apps = [
            {
                "name": app.name,
                "title": app.title,
                "base_url": _plain_url(env.get(app.base_url_env or "") or app.default_base_url),
                "set": [n for n in app.secret_env if env.get(n)],
                "location": env.get(app.location_env or "") if app.location_env else None,
            }
            for app in ui.runtime.registry.apps.values()
            if app.secret_env or app.base_url_env
        ]
        return ui.render("connections.html", ctx, rows=rows, apps=apps, now=now)

    return handler


def links(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        kind = request.query_params.get("kind") or None
        q = (request.query_params.get("q") or "").strip() or None
        before = request.query_params.get("before") or None

        def read() -> tuple[tuple[list[dict[str, Any]], str | None], list[str]]:
            return ui.history.links(kind, q, before), ui.history.link_kinds()

        (rows, older), kinds = await run_in_threadpool(read)
        shown = {k: v for k, v in (("q", q), ("kind", kind)) if v}
        return ui.render(
            "links.html",
            ctx,
            rows=rows,
            kinds=kinds,
            kind=kind,
            q=q or "",
            newest=shown if before else None,
            older={**shown, "before": older} if older else None,
        )

    return handler


def recipes(ui: UI) -> Handler:
    """The recipes (and syncs) this process serves: each with its trigger, whether it is
    paused and what it holds, its last runs, "run now"; the newest of their runs, live."""

    async def handler(request: Request, ctx: Ctx) -> Response:
        return await recipes_page(ui, ctx, started=request.query_params.get("started") or "")

    return handler


def _sample(plan: Any) -> str:
    sample = getattr(plan, "sample", None)
    return json.dumps(sample, indent=2, ensure_ascii=False, default=str) if sample else ""


async def recipes_page(
    ui: UI,
    ctx: Ctx,
    *,
    code: int = 200,
    started: str = "",
    error: str = "",
    failed: str = "",
    event_text: str = "",
) -> Response:
    """The recipes page (also shown, with ``error`` about the recipe ``failed`` and the event
    text that was sent, when a "run now" was refused)."""
    plans = [ui.plans[name] for name in sorted(ui.plans)]
    names = [p.name for p in plans] + [s.name for s in ui.syncs]

    def read() -> dict[str, Any]:
        return {
            "paused": ui.pauses.all_paused(),
            "held": ui.pauses.counts(),
            "last": {name: ui.history.recipe_runs(name, 5) for name in names},
            "newest": ui.history.newest_of(names, 20),
        }

    found = await run_in_threadpool(read)
    return ui.render(
        "recipes.html",
        ctx,
        code,
        plans=plans,
        syncs=ui.syncs,
        samples={p.name: _sample(p) for p in plans},
        can_start=ui.start is not None,
        started=started,
        error=error,
        failed=failed,
        event_text=event_text,
        **found,
    )


def events(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        watch = [w for w in request.query_params.getlist("watch") if w][:50]
        changes = Changes(ui.history, ui.row, ui.stopping)
        return StreamingResponse(
            changes.stream(watch),
            media_type="text/event-stream",
            headers={"X-Accel-Buffering": "no"},
        )

    return handler


TITLES = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}


def conflicts(ui: UI) -> Handler:
    """The sync's conflicts, newest first (``?status=open|decided|resolved``)."""

    async def handler(request: Request, ctx: Ctx) -> Response:
        return await conflicts_page(ui, ctx, request.query_params.get("status") or None)

    return handler


async def conflicts_page(
    ui: UI,
    ctx: Ctx,
    status: str | None,
    *,
    code: int = 200,
    notice: str | None = None,
    error: str | None = None,
) -> Response:
    from connector.persistence.sync import SyncStore

    if status not in (None, "open", "decided", "resolved"):
        status = None
    store = SyncStore(ui.runtime.db.engine)
    rows = await run_in_threadpool(lambda: store.conflicts(status=status, limit=500))
    return ui.render(
        "conflicts.html",
        ctx,
        code,
        rows=rows,
        shown=status or "",
        titles=TITLES,
        notice=notice,
        error=error,
    )
