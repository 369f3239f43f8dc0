"""Walking the pages of a list operation: the step key ``pages:``.

The catalog says how each list operation pages (``pagination``, see
:func:`connector.catalog.generate.pagination`): a cursor taken from the response (GoHighLevel's
``startAfter``/``startAfterId``), an offset (``skip``, or Connecteam's ``offset`` with the next one in
``paging.offset``), a page number, or ``POST /contacts/search``'s ``searchAfter`` (the value its last
contact carries) with ``page`` as the alternative. :func:`walk` requests one page after another
through a ``fetch`` callback (the engine's request path, so each page is a journaled request of its
own: a resumed run replays the pages it has and asks for the next) and yields each page's items.

A recipe writes ``pages: all`` (every page, up to :data:`DEFAULT_MAX_ITEMS` items) or
``pages: {max_items: N, by: PARAM}``; more items than the bound fail the step.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connector.catalog.model import Operation
from connector.errors import StepError

__all__ = [
    "DEFAULT_MAX_ITEMS",
    "PageCount",
    "PagesPlan",
    "paged_streams",
    "pages_plan",
    "pages_problems",
    "walk",
]

DEFAULT_MAX_ITEMS = 10_000


@dataclass(frozen=True)
class PagesPlan:
    """A step's ``pages:``: at most ``max_items`` items, paged by ``by`` (None: the operation's
    own style; ``page`` or ``searchAfter`` for an operation that has both)."""

    max_items: int = DEFAULT_MAX_ITEMS
    by: str | None = None


def pages_plan(raw: Any) -> PagesPlan | None:
    """The plan of a step's ``pages:`` value as validated (``all`` or an object)."""
    if raw is None or raw is False:
        return None
    if isinstance(raw, Mapping):
        most = raw.get("max_items")
        by = raw.get("by")
        return PagesPlan(
            max_items=int(most) if isinstance(most, int) else DEFAULT_MAX_ITEMS,
            by=str(by) if by else None,
        )
    return PagesPlan()


def _choices(spec: Mapping[str, Any]) -> list[str]:
    """The paging parameters ``by`` may name for an operation paging as ``spec`` says."""
    style = spec.get("style")
    if style == "search_after":
        return [p for p in (spec.get("search_after_param"), spec.get("page_param")) if p]
    if style == "cursor":
        return list(spec.get("cursor_params") or {})[:1]
    return [p for p in (spec.get(f"{style}_param"),) if p]


def pages_problems(target: Any, raw: Any) -> list[tuple[str, str]]:
    """What is wrong with ``pages:`` (value ``raw``) on a step calling ``target``, as
    (path below the step, message) pairs; the schema has checked the value's shape."""
    if raw is None or raw is False:
        return []
    name = getattr(target, "name", "this action")
    if isinstance(raw, str) and raw != "all":
        return [(".pages", f"pages: write `all` or {{max_items: N}}, not {raw!r}")]
    if isinstance(raw, str) and raw != "all":
        return [(".pages", f"pages: write `all` or {{max_items: N}}, not {raw!r}")]
    if not isinstance(target, Operation):
        return [(".pages", f"pages: {name} is not an API operation; only list operations page")]
    spec = target.pagination
    if not spec:
        return [
            (
                ".pages",
                f"pages: {name} does not page (`connector catalog show {name}` says pagination: -)",
            )
        ]
    if not spec.get("items"):
        return [(".pages", f"pages: the catalog does not know where {name} returns its items")]
    plan = pages_plan(raw)
    assert plan is not None
    out: list[tuple[str, str]] = []
    choices = _choices(spec)
    if plan.by is not None and plan.by not in choices:
        shown = " or ".join(repr(c) for c in choices)
        out.append((".pages.by", f"pages.by: {name} pages by {shown}, not {plan.by!r}"))
    page_max = spec.get("page_max_items")
    by_page = plan.by is not None and plan.by == spec.get("page_param")
    if by_page and isinstance(page_max, int) and plan.max_items > page_max:
        out.append(
            (
                ".pages.max_items",
                f"pages.max_items: {name} reaches at most {page_max} items by "
                f"{plan.by!r}; page by {spec.get('search_after_param')!r} for more",
            )
        )
    return out


@dataclass
class PageCount:
    """What a walk has done so far."""

    pages: int = 0
    items: int = 0

    def __str__(self) -> str:
        """``2500 items in 25 pages``, ``1 item in 1 page``."""
        items = "item" if self.items == 1 else "items"
        pages = "page" if self.pages == 1 else "pages"
        return f"{self.items} {items} in {self.pages} {pages}"


def _get(data: Any, dotted: str | None) -> Any:
    if not dotted:
        return None
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _first(spec: Mapping[str, Any], plan: PagesPlan, params: Mapping[str, Any]) -> dict[str, Any]:
    """The first page's parameters: the step's, with the largest page size when it gives none."""
    first = dict(params)
    limit = spec.get("limit_param")
    if limit and first.get(limit) is None and spec.get("max_limit"):
        first[limit] = spec["max_limit"]
    if spec.get("style") == "search_after":
        if plan.by == spec.get("page_param"):
            first.pop(str(spec.get("search_after_param")), None)
            first.setdefault(spec["page_param"], 1)
        else:
            first.pop(str(spec.get("page_param")), None)
    elif spec.get("style") == "page":
        first.setdefault(spec["page_param"], 1)
    return first


def _next(
    spec: Mapping[str, Any], plan: PagesPlan, params: dict[str, Any], output: Any, items: list[Any]
) -> dict[str, Any] | None:
    """The next page's parameters, or None after the last page."""
    if not items:
        return None
    size = _int(params.get(spec.get("limit_param") or ""))
    if size is not None and len(items) < size:
        return None
    style = spec.get("style")
    out = dict(params)
    if style == "cursor":
        moved = False
        for param, field in (spec.get("cursor_params") or {}).items():
            value = _get(output, field)
            if value is not None and value != params.get(param):
                out[param] = value
                moved = True
        return out if moved else None
    if style == "search_after" and plan.by != spec.get("page_param"):
        last = items[-1]
        after = _get(last, spec.get("search_after_field"))
        if after is None or after == params.get(spec["search_after_param"]):
            return None
        out[spec["search_after_param"]] = after
        return out
    if style in ("page", "search_after"):
        param = spec["page_param"]
        out[param] = (_int(params.get(param)) or 1) + 1
        return out
    # offset: the response's next offset (Connecteam), or the current one plus what came
    param = spec["offset_param"]
    current = _int(params.get(param)) or 0
    given = _int(_get(output, spec.get("next_offset")))
    following = given if given is not None else current + len(items)
    if following <= current:
        return None
    out[param] = following
    return out


def walk(
    op: Operation,
    plan: PagesPlan,
    params: Mapping[str, Any],
    fetch: Callable[[dict[str, Any], int], Any],
    step_id: str,
    count: PageCount,
) -> Iterator[Any]:
    """Yield the items of every page of ``op`` for ``params``, in order; ``fetch(params, n)``
    requests page ``n`` (1-based) and returns its output. ``count`` is kept up to date.

    Raises :class:`StepError` naming ``step_id`` when more than ``plan.max_items`` items come
    (those up to the bound are yielded first) or when a page holds no list where the catalog
    says its items are."""
    spec = op.pagination or {}
    page: dict[str, Any] | None = _first(spec, plan, params)
    while page is not None:
        output = fetch(page, count.pages + 1)
        count.pages += 1
        items = _get(output, spec.get("items"))
        if items is None:
            items = []
        if not isinstance(items, list):
            raise StepError(
                step_id,
                f"page {count.pages}: expected a list at {spec.get('items')}, "
                f"got {type(items).__name__}",
            )
        room = plan.max_items - count.items
        for item in items[:room]:
            count.items += 1
            yield item
        if len(items) > room:
            raise StepError(
                step_id,
                f"step {step_id!r} has more than {plan.max_items} items (pages.max_items) "
                f"after {count.pages} pages; raise pages.max_items or narrow the request",
            )
        page = _next(spec, plan, page, output, items)


_WHOLE_OUTPUT = re.compile(r"^\s*\{\{\s*steps\.([A-Za-z_][A-Za-z0-9_]*)\.output\s*\}\}\s*$")


def paged_streams(raw_steps: Any) -> dict[str, str]:
    """Paged steps whose pages the next step walks as they come: {paged step: next step}.

    That is a step with ``pages:`` followed at once by a step whose ``foreach`` is exactly
    ``{{ steps.PAGED.output }}``."""
    out: dict[str, str] = {}
    if not isinstance(raw_steps, list):
        return out
    for before, after in itertools.pairwise(raw_steps):
        if not (isinstance(before, Mapping) and isinstance(after, Mapping)):
            continue
        if not before.get("pages") or before.get("foreach"):
            continue
        if not isinstance(after.get("foreach"), str):
            continue
        found = _WHOLE_OUTPUT.match(after["foreach"])
        if found and found.group(1) == str(before.get("id")) and after.get("id"):
            out[str(before["id"])] = str(after["id"])
    return out
