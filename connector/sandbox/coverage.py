"""Which catalog operations the embedded sandbox answers, read from its routes.

The sandbox fakes part of each vendor's API. :func:`covered_routes` builds the sandbox's
Starlette app once and reads the routes it serves under ``/ghl`` and ``/connecteam``; an
operation is covered when one of those routes has its method and its path template (parameter
names aside, and a trailing slash, which GoHighLevel answers either way). Nothing here is a hand
list: a route added to the sandbox is covered as soon as it is served.

:func:`uncovered_steps` is what ``connector run --sandbox``, ``connector serve --sandbox`` and
``connector test --record`` check before they send anything: the steps (and the reads that
settle a write's unknown outcome) whose operation the sandbox would answer with its
unknown-route 404.

``connector catalog`` reads the same list from ``connector/catalog/data/sandbox.json``
(:mod:`connector.catalog.sandbox`) rather than start the sandbox for it; ``python -m
connector.sandbox.coverage`` writes that file from the routes (``--check``: exit 1 if it is out of
date), and a test fails when the two differ.
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from connector.catalog.model import Operation
from connector.errors import Problem

if TYPE_CHECKING:
    from connector.language.plan import Plan

__all__ = [
    "SANDBOXED_APPS",
    "coverage_json",
    "covered_routes",
    "covers",
    "uncovered_steps",
]

#: The apps the sandbox stands in for (``RunningSandbox.env`` points these at it).
SANDBOXED_APPS = ("ghl", "connecteam")

_PARAM = re.compile(r"\{[^}]*\}")


def _shape(path: str) -> str:
    """A path template with its parameter names (and convertors) and trailing slash dropped."""
    return _PARAM.sub("{}", path).rstrip("/") or "/"


def _router_of(app: Any) -> Any:
    """The router inside a mount's app (under middleware such as ``BodyLimit``), or None."""
    seen = 0
    while app is not None and not hasattr(app, "routes") and seen < 8:
        app, seen = getattr(app, "app", None), seen + 1
    return app


@cache
def covered_routes() -> frozenset[tuple[str, str, str]]:
    """``(app, METHOD, path shape)`` of every API route the sandbox serves."""
    from starlette.routing import Mount

    from connector.sandbox.server import create_app

    app = create_app()
    try:
        found: set[tuple[str, str, str]] = set()
        for mount in app.router.routes:
            if not isinstance(mount, Mount):
                continue
            name = mount.path.strip("/")
            router = _router_of(mount.app)
            if name not in SANDBOXED_APPS or router is None:
                continue
            for route in router.routes:
                path = getattr(route, "path", None)
                for method in getattr(route, "methods", None) or ():
                    if path is not None and method != "HEAD":
                        found.add((name, method, _shape(path)))
        return frozenset(found)
    finally:
        app.close()


def covers(op: Operation) -> bool | None:
    """Whether the sandbox answers ``op``; None when its app is not one the sandbox fakes."""
    if op.app not in SANDBOXED_APPS:
        return None
    return (op.app, op.method.upper(), _shape(op.path)) in covered_routes()


def uncovered_steps(plan: Plan) -> list[Problem]:
    """A problem for each step of ``plan`` that calls an operation of a sandboxed app that the
    sandbox does not answer (its own call, or the read that settles its write's outcome)."""
    problems: list[Problem] = []
    for i, step in enumerate(plan.steps):
        at = f"$.steps[{i}]"
        calls = [(f"{at}.action", step.action, step.target, "")]
        lookup = step.once.lookup if step.once is not None else None
        if lookup is not None:
            calls.append((f"{at}.once.lookup.action", lookup.action, lookup.target, "once.lookup"))
        for path, action, target, part in calls:
            if isinstance(target, Operation) and covers(target) is False:
                which = f"step `{step.id}` ({part})" if part else f"step `{step.id}`"
                message = (
                    f"{which}: {action} is not in the sandbox, which would answer it 404"
                    " (`connector catalog list --sandbox` lists what it answers)"
                )
                problems.append(Problem(plan.location(path), message))
    return problems


def coverage_json() -> str:
    """The text of ``connector/catalog/data/sandbox.json``: the covered operations by name."""
    from connector.catalog import load_operations

    names = sorted(
        op.name for app in SANDBOXED_APPS for op in load_operations(app).values() if covers(op)
    )
    doc = {
        "about": "written by `python -m connector.sandbox.coverage` from the sandbox's routes",
        "apps": list(SANDBOXED_APPS),
        "operations": names,
    }
    return json.dumps(doc, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) ``connector/catalog/data/sandbox.json``."""
    from connector.catalog.sandbox import SANDBOX_FILE

    args = sys.argv[1:] if argv is None else argv
    text = coverage_json()
    current = SANDBOX_FILE.read_text(encoding="utf-8") if SANDBOX_FILE.exists() else ""
    if "--check" in args:
        if current != text:
            print(
                f"{SANDBOX_FILE} is out of date: run `python -m connector.sandbox.coverage`",
                file=sys.stderr,
            )
            return 1
        print(f"{SANDBOX_FILE} is up to date")
        return 0
    SANDBOX_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SANDBOX_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
