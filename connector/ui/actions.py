"""The page's actions: on a run, retry, replay from a step, mark resolved; on a recipe, run now,
pause, resume (each a POST that :meth:`~connector.ui.web.UI.gate` has checked for its CSRF
token).

Retry and replay go through the runtime's own :meth:`~connector.runtime.durable.Runtime.rerun`,
the one ``connector runs retry`` and ``runs replay`` use: the new run is a fork of the old one
(the steps before the chosen one keep their recorded results; a retry goes on with the old run's
write claims, so nothing it wrote is written again). It runs in a thread of its own; the answer
waits up to :data:`WAIT_SECONDS` for it and then shows the new run, or, when it is still going
(waiting out a rate limit, say), the old run's page, where the new one appears as it is made.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from connector.errors import ConnectorError
from connector.ui.pages import conflicts_page, find_run, recipes_page, run_page

if TYPE_CHECKING:
    from connector.records import RunRecord
    from connector.ui.web import UI, Ctx

__all__ = [
    "WAIT_SECONDS",
    "pause",
    "replay",
    "resolve",
    "resolve_conflict",
    "resume",
    "retry",
    "run_now",
]

log = logging.getLogger("connector.ui")

WAIT_SECONDS = 8.0
Handler = Callable[[Request, "Ctx"], Awaitable[Response]]


def _in_thread(func: Callable[[], RunRecord]) -> concurrent.futures.Future[RunRecord]:
    """``func()`` on a daemon thread (a run that outlives the request must not hold the
    process open when it stops: it is finished on the next start)."""
    future: concurrent.futures.Future[RunRecord] = concurrent.futures.Future()

    def work() -> None:
        try:
            future.set_result(func())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, name="connector-ui-again", daemon=True).start()
    return future


async def _again(ui: UI, ctx: Ctx, old: RunRecord, step: str | None) -> Response:
    verb = "retry" if step is None else "replay"
    future = _in_thread(lambda: ui.runtime.rerun(old, step))
    try:
        record = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), WAIT_SECONDS)
    except TimeoutError:
        future.add_done_callback(_log_failure)
        return await run_page(
            ui,
            old.id,
            ctx,
            status=202,
            notice=f"the {verb} started and is still going; it appears below when it ends",
        )
    except ConnectorError as exc:
        return await run_page(ui, old.id, ctx, status=409, error=f"could not {verb}: {exc}")
    return RedirectResponse(f"/ui/runs/{record.id}", status_code=303)


async def _refused(ui: UI, ctx: Ctx, old: RunRecord, why: str) -> Response:
    """The run's page, saying why the action on it was refused (409)."""
    return await run_page(ui, old.id, ctx, status=409, error=f"run {old.id} {why}")


def _log_failure(future: concurrent.futures.Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.warning("a retry or replay from the page failed: %s", exc)


def retry(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        old = await find_run(ui, request.path_params["run_id"], ctx)
        if isinstance(old, Response):
            return old
        if old.status != "failed":
            return await _refused(ui, ctx, old, f"is {old.status}; only a failed run is retried")
        return await _again(ui, ctx, old, None)

    return handler


def replay(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        old = await find_run(ui, request.path_params["run_id"], ctx)
        if isinstance(old, Response):
            return old
        if old.status == "running":
            return await _refused(ui, ctx, old, "is still running; replay it when it ends")
        return await _again(ui, ctx, old, ctx.form.get("step", "").strip())

    return handler


def resolve(ui: UI) -> Handler:
    async def handler(request: Request, ctx: Ctx) -> Response:
        old = await find_run(ui, request.path_params["run_id"], ctx)
        if isinstance(old, Response):
            return old
        if ctx.form.get("reopen"):
            await run_in_threadpool(ui.history.reopen, old.id)
        else:
            note = ctx.form.get("note", "").strip()[:2000] or None
            await run_in_threadpool(ui.history.mark_resolved, old.id, note)
        back = ctx.form.get("back", "")
        target = "/ui/queue" if back == "queue" else f"/ui/runs/{old.id}"
        return RedirectResponse(target, status_code=303)

    return handler


def resolve_conflict(ui: UI) -> Handler:
    """A person decides a conflict that waits (``winner``: ghl or connecteam): the pair's sync
    runs from the winner's side, so the other app gets its value now."""

    async def handler(request: Request, ctx: Ctx) -> Response:
        from connector.language.sync_spec import load_sync_text
        from connector.sync.resolve import resolve_conflict as decide

        winner = ctx.form.get("winner", "")
        try:
            conflict_id = int(request.path_params["conflict_id"])
        except ValueError:
            return await conflicts_page(ui, ctx, "open", code=404, error="no such conflict")
        if winner not in ("ghl", "connecteam"):
            return await conflicts_page(ui, ctx, "open", code=400, error="choose a side")
        runtime = ui.runtime

        def load(text: str, path: str) -> Any:
            spec, _problems = load_sync_text(text, path, runtime.registry)
            if spec is not None:
                runtime.keep_sync(spec)
            return spec

        future = _in_thread(lambda: decide(runtime, conflict_id, winner, load))
        try:
            record = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(future)), WAIT_SECONDS
            )
        except TimeoutError:
            future.add_done_callback(_log_failure)
            return await conflicts_page(
                ui, ctx, None, code=202, notice=f"conflict #{conflict_id}: the sync is still going"
            )
        except ConnectorError as exc:
            return await conflicts_page(ui, ctx, "open", code=409, error=str(exc))
        if record.status != "succeeded":
            return RedirectResponse(f"/ui/runs/{record.id}", status_code=303)
        return await conflicts_page(
            ui,
            ctx,
            None,
            notice=f"conflict #{conflict_id} resolved: run {record.id} brought it along",
        )

    return handler


async def _served(ui: UI, ctx: Ctx, name: str) -> Response | None:
    """None when ``name`` is a recipe served here, else the page that says it is not."""
    if name in ui.plans:
        return None
    return ui.problem(ctx, 404, f"no recipe named {name!r} is served here")


def run_now(ui: UI) -> Handler:
    """Run a recipe now, with its sample or the event pasted in the form, paused or not: the
    run is queued as a served event's is, and the recipes page shows it as it goes."""

    async def handler(request: Request, ctx: Ctx) -> Response:
        name = request.path_params["name"]
        if (refused := await _served(ui, ctx, name)) is not None:
            return refused
        start = ui.start
        text = ctx.form.get("event", "").strip()

        async def again(code: int, error: str) -> Response:
            return await recipes_page(ui, ctx, code=code, error=error, failed=name, event_text=text)

        if start is None:
            return await again(409, "this page does not start runs: it is not served with them")
        if text:
            try:
                payload = json.loads(text)
            except ValueError as exc:
                return await again(400, f"the event is not JSON: {exc}")
            if not isinstance(payload, dict):
                return await again(400, "the event must be a JSON object, as a trigger event is")
        else:
            payload = dict(ui.plans[name].sample or {})
        try:
            run_id = await run_in_threadpool(start, name, payload)
        except ConnectorError as exc:
            return await again(409, f"could not start {name}: {exc}")
        return RedirectResponse(
            f"/ui/recipes?started={quote(run_id)}#recipe-{quote(name)}", status_code=303
        )

    return handler


def pause(ui: UI) -> Handler:
    """Pause a recipe: its events are accepted and held, not run, until it is resumed."""

    async def handler(request: Request, ctx: Ctx) -> Response:
        name = request.path_params["name"]
        if (refused := await _served(ui, ctx, name)) is not None:
            return refused
        await run_in_threadpool(ui.pauses.pause, name, "page")
        return RedirectResponse(f"/ui/recipes#recipe-{quote(name)}", status_code=303)

    return handler


def resume(ui: UI) -> Handler:
    """Resume a recipe: the serving processes run what it held, each event once."""

    async def handler(request: Request, ctx: Ctx) -> Response:
        name = request.path_params["name"]
        if (refused := await _served(ui, ctx, name)) is not None:
            return refused
        await run_in_threadpool(ui.pauses.resume, name)
        return RedirectResponse(f"/ui/recipes#recipe-{quote(name)}", status_code=303)

    return handler
