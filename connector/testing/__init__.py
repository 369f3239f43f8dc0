"""``connector test``: recipes tested against recorded responses, sending nothing; sync
declarations tested on the embedded sandbox.

A recipe ``NAME.yaml`` has its tests in ``NAME.test.yaml``, in a ``tests/`` folder beside it (or
beside it in the same folder). Each test gives a trigger event, the responses the APIs give
(inline, or a cassette recorded by ``connector test --record``), and what must happen: the
requests sent, the steps' statuses, the recipe's output. The format is
``connector/schemas/recipe-test.schema.json``; ``docs/testing.md`` explains it.

The modules, in the order data flows through them::

    spec      test files and cassettes: YAML with positions -> frozen values (TestFile, TestCase)
    cassette  the HTTP seam: a transport that answers from recordings, or records
    runner    one test: a fresh home, the real durable run, then the checks -> Outcome
    checks    expected vs actual, each failure at its expectation's file:line
    compare   partial / exact matching of values and requests

A sync declaration ``NAME.sync.yaml`` has its tests in ``NAME.sync.test.yaml``
(``connector/schemas/sync-test.schema.json``): records made and changed through the sandboxed
apps' APIs, the events they send delivered in the order the test says, both apps compared after
(:mod:`sync_cases` reads them, :mod:`sync_runner` runs one).

This module finds the test files that paths name and runs them (:func:`run_paths`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from connector.apps.registry import Registry
from connector.errors import Problem, UsageError
from connector.testing.runner import Outcome, Recording, run_test
from connector.testing.spec import SpecError, TestFile, load_test_file
from connector.testing.sync_cases import SyncTestFile, is_sync_test, load_sync_test_file

__all__ = ["Outcome", "Recording", "Report", "find_test_files", "run_paths"]

TEST_SUFFIXES = (".test.yaml", ".test.yml")


def _is_test(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


def find_test_files(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The test files ``paths`` name: test files as given, a recipe's tests (``NAME.test.yaml``
    beside it or in ``tests/``), and every test file in a folder (recursively, sorted).
    Raises :class:`UsageError` for a path that does not exist or names no tests."""
    if not paths:
        raise UsageError("give at least one recipe, test file or folder")
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(p for p in sorted(path.rglob("*")) if _is_test(p) and p.is_file())
        elif path.is_file() and _is_test(path):
            found.append(path)
        elif path.is_file():
            stem = path.name.rsplit(".", 1)[0]  # a declaration NAME.sync.yaml: NAME.sync
            beside = [path.parent / f"{stem}{s}" for s in TEST_SUFFIXES]
            nested = [path.parent / "tests" / f"{stem}{s}" for s in TEST_SUFFIXES]
            candidates = [p for p in (*beside, *nested) if p.is_file()]
            if not candidates:
                raise UsageError(f"no tests for {path}: looked for {beside[0]} and {nested[0]}")
            found.extend(candidates)
        else:
            raise UsageError(f"no such file or folder: {path}")
    unique = list(dict.fromkeys(found))
    if not unique:
        shown = ", ".join(os.fspath(p) for p in paths)
        raise UsageError(f"no tests found in {shown} (test files are named NAME.test.yaml)")
    return unique


@dataclass
class Report:
    """What a whole ``connector test`` found: each test's outcome, and the files that could not
    be read (each with its located problems)."""

    outcomes: list[Outcome] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for o in self.outcomes if o.passed)

    @property
    def failed(self) -> int:
        return sum(1 for o in self.outcomes if not o.passed)

    @property
    def exit_code(self) -> int:
        if self.problems:
            return 2
        return 1 if self.failed else 0


def run_paths(
    paths: Sequence[str | os.PathLike[str]],
    registry: Registry,
    *,
    record: Recording | None = None,
    select: str | None = None,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_problems: Callable[[list[Problem]], None] | None = None,
) -> Report:
    """Run every test the ``paths`` name (those whose name contains ``select``, if given)."""
    from connector.runtime.prepare import prepare

    report = Report()
    for path in find_test_files(paths):
        if is_sync_test(path):
            _run_sync_file(path, registry, report, select, on_outcome, on_problems)
            continue
        try:
            tests: TestFile = load_test_file(path)
        except SpecError as exc:
            report.problems.extend(exc.problems)
            if on_problems is not None:
                on_problems(exc.problems)
            continue
        prepared = prepare(tests.recipe, registry)
        for case in tests.tests:
            if select is not None and select not in case.name:
                continue
            outcome = run_test(tests, case, prepared, registry, record)
            report.outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    return report


def _run_sync_file(
    path: Path,
    registry: Registry,
    report: Report,
    select: str | None,
    on_outcome: Callable[[Outcome], None] | None,
    on_problems: Callable[[list[Problem]], None] | None,
) -> None:
    from connector.testing.sync_runner import run_sync_test

    try:
        tests: SyncTestFile = load_sync_test_file(path)
    except SpecError as exc:
        report.problems.extend(exc.problems)
        if on_problems is not None:
            on_problems(exc.problems)
        return
    for case in tests.tests:
        if select is not None and select not in case.name:
            continue
        outcome = run_sync_test(tests, case, registry)
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
