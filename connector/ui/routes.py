"""Where the page's routes are put together and mounted on the serve app (:func:`mount`), and
told where they are served (:func:`serving`). The handlers are in :mod:`connector.ui.pages` and
:mod:`connector.ui.actions`; the page's state and its gate in :mod:`connector.ui.web`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from connector.runtime.api import RunClient
from connector.ui import actions, pages
from connector.ui.web import EVENTS, UI

__all__ = ["mount", "routes", "serving"]


def routes(ui: UI) -> list[BaseRoute]:
    """The page's routes, each through :meth:`UI.gate`."""
    gate = ui.gate
    return [
        Route("/", gate(pages.runs(ui)), methods=["GET"]),
        Route("/ui/runs/{run_id}", gate(pages.run(ui)), methods=["GET"]),
        Route("/ui/runs/{run_id}/retry", gate(actions.retry(ui)), methods=["POST"]),
        Route("/ui/runs/{run_id}/replay", gate(actions.replay(ui)), methods=["POST"]),
        Route("/ui/runs/{run_id}/resolve", gate(actions.resolve(ui)), methods=["POST"]),
        Route("/ui/queue", gate(pages.queue(ui)), methods=["GET"]),
        Route("/ui/connections", gate(pages.connections(ui)), methods=["GET"]),
        Route("/ui/links", gate(pages.links(ui)), methods=["GET"]),
        Route("/ui/conflicts", gate(pages.conflicts(ui)), methods=["GET"]),
        Route(
            "/ui/conflicts/{conflict_id}/resolve",
            gate(actions.resolve_conflict(ui)),
            methods=["POST"],
        ),
        Route("/ui/recipes", gate(pages.recipes(ui)), methods=["GET"]),
        Route("/ui/recipes/{name}/run", gate(actions.run_now(ui)), methods=["POST"]),
        Route("/ui/recipes/{name}/pause", gate(actions.pause(ui)), methods=["POST"]),
        Route("/ui/recipes/{name}/resume", gate(actions.resume(ui)), methods=["POST"]),
        Route(EVENTS, gate(pages.events(ui)), methods=["GET"]),
        Route("/ui/login", ui.login, methods=["GET", "POST"]),
        Route("/ui/logout", gate(ui.logout), methods=["POST"]),
        Mount("/ui/static", StaticFiles(packages=[("connector.ui", "static")]), name="static"),
    ]


def mount(
    app: Starlette,
    runtime: RunClient,
    plans: Mapping[str, Any],
    *,
    start: Callable[[str, dict[str, Any]], str] | None = None,
    syncs: Sequence[Any] = (),
) -> UI:
    """Add the page's routes to ``app`` (the serve app) and return the page; ``start`` queues a
    run of a recipe by hand (the serve intake's "run now"), ``syncs`` the loaded syncs."""
    ui = UI(runtime, plans, start=start, syncs=syncs)
    app.router.routes.extend(routes(ui))
    app.state.ui = ui
    return ui


def serving(app: Starlette, host: str, server: Any) -> None:
    """Tell the page of ``app`` the address it is served on (loopback or not decides whether a
    login is needed) and the server (its live streams end when it stops)."""
    ui: UI | None = getattr(app.state, "ui", None)
    if ui is None:
        return
    ui.access.host = host
    ui.stopping = lambda: bool(getattr(server, "should_exit", False))
