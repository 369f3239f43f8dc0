"""The steps of a run that walk pages (``pages:``; see :mod:`connector.sending.paging`): a paged
step, and the ``foreach`` that walks its pages as they come. Each function takes the run as a
:class:`PagedRun`: what these steps need of the engine's run, and nothing of its insides.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from connector.catalog.model import Operation
from connector.errors import step_failure
from connector.language.plan import Plan, StepPlan
from connector.records import StepRecord, ms_since, now_iso
from connector.sending.paging import PageCount, walk

__all__ = ["KEPT_FAILED_ITEMS", "PagedRun", "fetch_pages", "walk_pages"]

KEPT_FAILED_ITEMS = 100  # item records a streamed foreach keeps (its failed items, the first)


class PagedRun(Protocol):
    """What a paged step needs of the run it is part of (the engine's run implements it)."""

    plan: Plan
    context: dict[str, Any]
    dry_run: bool

    def send(
        self,
        step: StepPlan,
        op: Operation,
        params: dict[str, Any],
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
    ) -> None:
        """Send one request of ``step`` as journal unit ``unit``, recording it in ``result``."""

    def item(self, step: StepPlan, context: Mapping[str, Any], index: int | None) -> StepRecord:
        """Run ``step`` for one item (``context`` has ``item`` and ``index``)."""

    def keep_stream(
        self, step_id: str, record: StepRecord, items: Iterator[Any], count: PageCount
    ) -> None:
        """Leave the items of ``step_id``'s pages to the next step, as they come."""

    def walked(self, step_id: str, source: StepPlan, paged: StepRecord) -> None:
        """Say that ``step_id`` walked the pages of ``source``: both outputs are summaries."""

    def redact(self, text: str) -> str:
        """``text`` with the run's secrets masked."""


def fetch_pages(
    run: PagedRun,
    step: StepPlan,
    op: Operation,
    params: dict[str, Any],
    result: StepRecord,
    context: Mapping[str, Any],
    unit: str,
) -> None:
    """``pages:``: every page, each a request of its own (journal unit ``UNIT@pN``). The
    output is the items of all pages; for a step the next one walks, the items are left to
    that step (:func:`walk_pages`) as they come."""
    assert step.pages is not None
    count = PageCount()
    bound = f"every page, up to {step.pages.max_items} items"

    def fetch(page_params: dict[str, Any], n: int) -> Any:
        page = StepRecord(step.id, step.action)
        try:
            run.send(step, op, page_params, page, context, f"{unit}@p{n}")
        finally:
            result.attempts += page.attempts
            result.waits.extend(page.waits)
            result.status_code = page.status_code
            if n == 1:
                result.method, result.url = page.method, page.url
                result.request_body = page.request_body
                result.request_headers = page.request_headers
        return page.raw

    items = walk(op, step.pages, params, fetch, step.id, count)
    if run.dry_run:  # the first page's request, as it would go
        next(items, None)
        result.status, result.note = "planned", f"pages: {bound}"
        return
    if step.streams_to is not None and unit == step.id:
        run.keep_stream(step.id, result, items, count)
        result.status = "succeeded"
        return
    result.raw = list(items)
    result.status = "succeeded"
    result.note = str(count)


def walk_pages(
    run: PagedRun, step: StepPlan, paged: StepRecord, items: Iterator[Any], count: PageCount
) -> StepRecord:
    """A ``foreach`` over the pages of the step before, one page at a time: each item's
    record is dropped once counted (but for the first failed ones), and both steps' outputs
    are summaries (``{pages, items}``; ``{items, succeeded, failed, skipped}``)."""
    source = next(s for s in run.plan.steps if s.id == step.stream_of)
    result = StepRecord(step.id, step.action, "succeeded", started_at=now_iso())
    start = time.perf_counter()
    tally = {"items": 0, "succeeded": 0, "failed": 0, "skipped": 0}
    kept: list[StepRecord] = []
    stopped = False
    try:
        for index, item in enumerate(items):
            one = run.item(step, dict(run.context, item=item, index=index), index)
            tally["items"] += 1
            tally[one.status if one.status in tally else "succeeded"] += 1
            if one.status == "failed":
                if len(kept) < KEPT_FAILED_ITEMS:  # redacted with the step's record
                    kept.append(one)
                result.status = "failed"
                result.error = f"item {index}: {one.error}"
                if step.on_error == "fail":
                    stopped = True
                    break
    except Exception as exc:  # a page failed (or the bound was hit): the paged step did
        paged.status = "failed"
        paged.error = run.redact(step_failure(source.id, exc))
        result.status = "failed"
        result.error = f"stopped after {tally['items']} items: step {source.id!r} failed"
    paged.raw = {"pages": count.pages, "items": count.items}
    paged.duration_ms = ms_since(start) + (paged.duration_ms or 0.0)
    if paged.status != "failed":
        paged.note = f"{count}, walked by step {step.id!r}"
        if stopped:
            paged.note += f" (stopped: step {step.id!r} failed)"
    result.items = kept
    result.raw = tally
    result.note = (
        f"{tally['items']} items of step {source.id!r}: {tally['succeeded']} succeeded, "
        f"{tally['failed']} failed, {tally['skipped']} skipped (the records of the first "
        f"{KEPT_FAILED_ITEMS} failed items are kept)"
    )
    if result.status != "failed" and tally["skipped"] == tally["items"]:
        result.status = "skipped"
    run.walked(step.id, source, paged)
    result.duration_ms = ms_since(start)
    return result
