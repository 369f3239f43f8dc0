"""Checking a run against a test's ``expect``: each failure located at its expectation's line.

A :class:`Failure` is one thing that did not happen as stated: where the statement is
(``FILE:LINE:COL`` of the test file, or of the recipe when the recipe itself is at fault), a
one-line message, and detail lines: the difference of expected and actual for nested values, the
request that came closest to an expected one, the requests that were sent.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from connector.language.plan import Plan
from connector.records import RunRecord, StepRecord
from connector.testing.compare import (
    Difference,
    Sent,
    differences,
    match_requests,
    request_differences,
    shown,
)
from connector.testing.spec import ABSENT, TestCase, TestFile

__all__ = ["Failure", "check"]

MAX_LISTED = 20  # sent requests listed under a missing one


@dataclass(frozen=True)
class Failure:
    where: str
    message: str
    detail: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        return [f"{self.where}: {self.message}", *(f"    {line}" for line in self.detail)]

    def to_json(self) -> dict[str, Any]:
        file, line, column = _split(self.where)
        return {
            "file": file,
            "line": line,
            "column": column,
            "message": self.message,
            "detail": list(self.detail),
        }


def _split(where: str) -> tuple[str, int | None, int | None]:
    parts = where.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return parts[0], int(parts[1]), int(parts[2])
    return where, None, None


def _position(failure: Failure) -> tuple[int, int]:
    _file, line, column = _split(failure.where)
    return (line or 0, column or 0)


def _dump(value: Any) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=90)
    return text.removesuffix("...\n").rstrip("\n").splitlines()


def diff_lines(expected: Any, actual: Any) -> tuple[str, ...]:
    """A unified diff of two nested values (as YAML); nothing for scalars (the message says)."""
    if not isinstance(expected, dict | list) and not isinstance(actual, dict | list):
        return ()
    if actual is ABSENT:
        return tuple("- " + line for line in _dump(expected))
    diff = difflib.unified_diff(_dump(expected), _dump(actual), "expected", "actual", lineterm="")
    return tuple(list(diff)[2:])


def _failures(tests: TestFile, at: str, subject: str, found: list[Difference]) -> list[Failure]:
    out = []
    for d in found:
        where = tests.where(at + d.where if d.where.startswith(("[", ".")) else at)
        detail = diff_lines(d.expected, d.actual) if d.expected is not ABSENT else ()
        out.append(Failure(where, f"{subject}{d.where}: {d.message}", detail))
    return out


def _step_note(step: StepRecord) -> tuple[str, ...]:
    notes = []
    if step.error:
        notes.append(f"its error: {step.error}")
    if step.note:
        notes.append(f"its note: {step.note}")
    return tuple(notes)


def check(
    tests: TestFile, case: TestCase, plan: Plan, record: RunRecord, sent: Sequence[Sent]
) -> list[Failure]:
    """Every way ``record`` (and the requests ``sent``) differs from ``case.expect``."""
    expect = case.expect
    out: list[Failure] = []
    where = tests.where
    if expect.status is not None and record.status != expect.status:
        detail: tuple[str, ...] = (f"the run's error: {record.error}",) if record.error else ()
        failed = [s for s in record.steps if s.status == "failed"]
        detail += tuple(f"step {s.id} failed: {s.error}" for s in failed[:3])
        message = f"run status: expected {expect.status}, got {record.status}"
        out.append(Failure(where(f"{expect.at}.status"), message, detail))
    if expect.error is not None and expect.error not in (record.error or ""):
        message = f"run error: expected it to contain {expect.error!r}, got {shown(record.error)}"
        out.append(Failure(where(f"{expect.at}.error"), message))
    out.extend(_steps(tests, case, plan, record))
    if expect.output is not ABSENT:
        found = differences(expect.output, record.output, exact="output" in expect.exact)
        out.extend(_failures(tests, f"{expect.at}.output", "output", found))
    if expect.requests is not None:
        out.extend(_requests(tests, case, sent))
    for match in expect.not_sent:
        for index, one in enumerate(sent):
            if not request_differences(match, one):
                message = f"sent, but must not be: request {index + 1}, {one.describe()}"
                body = (f"its body: {shown(one.body)}",) if one.body is not None else ()
                out.append(Failure(where(match.at), message, body))
    return sorted(out, key=_position)


def _steps(tests: TestFile, case: TestCase, plan: Plan, record: RunRecord) -> list[Failure]:
    expect = case.expect
    out = []
    steps = {s.id: s for s in record.steps}
    known = [s.id for s in plan.steps]
    for step_id, wanted in expect.steps.items():
        here = tests.where(wanted.at)
        step = steps.get(step_id)
        if step is None:
            message = f"the recipe has no step {step_id!r} (its steps: {', '.join(known)})"
            out.append(Failure(str(tests.loaded.location(wanted.at, key=True)), message))
            continue
        if wanted.status is not None and step.status != wanted.status:
            message = f"step {step_id}: expected {wanted.status}, got {step.status}"
            out.append(Failure(here, message, _step_note(step)))
        if wanted.error is not None and wanted.error not in (step.error or ""):
            message = f"step {step_id} error: expected it to contain {wanted.error!r}, got {shown(step.error)}"
            out.append(Failure(here, message))
        if wanted.output is not ABSENT:
            # a foreach step's output is the list of its items' outputs, as templates see it
            output = step.output if step.items is None else [i.output for i in step.items]
            found = differences(wanted.output, output, exact="steps" in expect.exact)
            at = f"{wanted.at}.output"
            out.extend(_failures(tests, at, f"step {step_id} output", found))
    if "steps" in expect.exact:
        for step in record.steps:
            if step.id not in expect.steps:
                message = f"step {step.id} ({step.status}) is not named (exact: steps)"
                out.append(Failure(tests.where(f"{expect.at}.steps"), message))
    return out


def _sent_list(sent: Sequence[Sent]) -> tuple[str, ...]:
    if not sent:
        return ("no request was sent",)
    lines = [f"sent ({len(sent)} requests):"]
    lines += [f"  {i + 1:>2}. {one.describe()}" for i, one in enumerate(sent[:MAX_LISTED])]
    if len(sent) > MAX_LISTED:
        lines.append(f"  ... and {len(sent) - MAX_LISTED} more")
    return tuple(lines)


def _requests(tests: TestFile, case: TestCase, sent: Sequence[Sent]) -> list[Failure]:
    expect = case.expect
    assert expect.requests is not None
    exact = "requests" in expect.exact
    missing, extra = match_requests(expect.requests, sent, exact=exact)
    out = []
    for gap in missing:
        detail: list[str] = []
        if gap.closest is not None:
            index, one, found = gap.closest
            detail.append(f"the closest sent was request {index + 1}, {one.describe()}:")
            detail += [f"  {d.where.lstrip('.')}: {d.message}" for d in found]
            if not found:
                detail.append("  it matches, but comes before an earlier expected request")
        detail += _sent_list(sent)
        message = f"request not sent: {gap.match.describe()}"
        out.append(Failure(tests.where(gap.match.at), message, tuple(detail)))
    for index, one in extra:
        message = f"request {index + 1} is not expected (exact: requests): {one.describe()}"
        body = (f"its body: {shown(one.body)}",) if one.body is not None else ()
        out.append(Failure(tests.where(f"{expect.at}.requests"), message, body))
    return out
