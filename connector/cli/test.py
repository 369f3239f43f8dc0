"""``connector test PATH...``: run the tests declared with recipes, against recorded responses.

Output is like pytest's: one ``PASS`` / ``FAIL`` line per test (``FILE::NAME``), then each
failure with the ``FILE:LINE:COL`` of the expectation and how the run differed, then a summary
line. ``--json`` prints one document instead. See :mod:`connector.testing` and docs/testing.md.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import click

from connector.cli.common import get_registry, plugins_dir_option
from connector.errors import Problem, UsageError

if TYPE_CHECKING:
    from connector.apps.registry import Registry

__all__ = ["test"]

EPILOG = """\b
Examples:
  connector test recipes/                       every NAME.test.yaml under recipes/
  connector test recipes/pull-contact-on-select.yaml    that recipe's tests
  connector test recipes/tests/x.test.yaml -k rerun     the tests named *rerun*
  connector test --record recipes/              record the cassettes from the sandbox

\b
Exit codes: 0 all tests passed, 1 a test failed, 2 no tests found, a test
file that cannot be read, or the command was used wrongly.
"""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _uncovered(paths: tuple[str, ...], registry: Registry, select: str | None) -> list[Problem]:
    """The steps the sandbox does not answer, in the recipes of the tests that --record would
    record (those that name a cassette). Test files that cannot be read are reported later."""
    from connector.runtime.prepare import prepare
    from connector.sandbox.coverage import uncovered_steps
    from connector.testing import find_test_files
    from connector.testing.spec import SpecError, load_test_file

    found: list[Problem] = []
    seen: set[str] = set()
    for path in find_test_files(paths):
        try:
            tests = load_test_file(path)
        except SpecError:
            continue
        chosen = [c for c in tests.tests if select is None or select in c.name]
        if str(tests.recipe) in seen or not any(c.cassette is not None for c in chosen):
            continue
        seen.add(str(tests.recipe))
        prepared = prepare(tests.recipe, registry)
        if prepared.plan is not None:
            found.extend(uncovered_steps(prepared.plan))
    return found


@click.command("test", epilog=EPILOG)
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of lines.")
@click.option(
    "--record",
    is_flag=True,
    help="First run each test that names a cassette against the embedded sandbox and write the"
    " cassette (secrets redacted), then test against it.",
)
@click.option(
    "--live",
    is_flag=True,
    help="With --record: record from the accounts this environment names (GHL_TOKEN,"
    " CONNECTEAM_API_KEY, ...) instead of the sandbox. The tests' writes are really made.",
)
@click.option("-k", "select", metavar="TEXT", help="Only the tests whose name contains TEXT.")
@click.option("-v", "--verbose", is_flag=True, help="Also list the requests each test sent.")
@plugins_dir_option
@click.pass_context
def test(
    ctx: click.Context,
    paths: tuple[str, ...],
    as_json: bool,
    record: bool,
    live: bool,
    select: str | None,
    verbose: bool,
) -> None:
    """Run the tests declared with recipes, against recorded responses.

    PATH is a test file (NAME.test.yaml), a recipe (its tests are
    NAME.test.yaml beside it or in tests/), or a folder (searched for
    *.test.yaml). Each test runs the recipe durably, as `connector run` does,
    in a fresh home of its own (no id links unless the test seeds them), with a
    fixed clock and its own environment. Every request is answered from the
    test's responses or its cassette; nothing is sent, and a request nothing
    answers fails the test, naming it.
    """
    from connector.testing import Recording, find_test_files, run_paths

    if live and not record:
        raise click.UsageError("--live goes with --record")
    try:
        find_test_files(paths)
    except UsageError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    registry, _report = get_registry(ctx)
    recording = None
    if record and not live:
        gaps = _uncovered(paths, registry, select)
        for problem in gaps:
            click.echo(str(problem), err=True)
        if gaps:
            click.echo(
                "error: the tests to record run steps the sandbox does not answer; nothing was"
                " recorded (give those tests their responses: inline, or record them with --live)",
                err=True,
            )
            ctx.exit(2)
    if record:
        recording = Recording(live=live, environ=dict(os.environ))
        if live:
            click.echo(
                "warning: recording against live accounts: every write these tests make is"
                " really made (GHL_LOCATION_ID, CONNECTEAM_API_KEY of this environment)",
                err=True,
            )

    def on_problems(problems: list[Problem]) -> None:
        if not as_json:
            for problem in problems:
                click.echo(str(problem))

    def on_outcome(outcome: object) -> None:
        if as_json:
            return
        from connector.testing import Outcome

        assert isinstance(outcome, Outcome)
        label = f"{outcome.file}::{outcome.name}"
        mark = "PASS" if outcome.passed else "FAIL"
        took = f" ({outcome.duration_ms / 1000:.2f}s)" if outcome.duration_ms > 1000 else ""
        if outcome.recorded is not None:
            click.echo(f"REC  {label}: {_plural(outcome.recorded, 'response')} recorded")
        click.echo(f"{mark} {label}{took}")
        if verbose and outcome.actual:
            for sent in outcome.actual.get("requests", []):
                click.echo(f"       {sent['method']} {sent['path']}")

    report = run_paths(
        paths,
        registry,
        record=recording,
        select=select,
        on_outcome=on_outcome,
        on_problems=on_problems,
    )
    if as_json:
        doc = {
            "passed": report.passed,
            "failed": report.failed,
            "problems": [p.to_json() for p in report.problems],
            "tests": [o.to_json() for o in report.outcomes],
        }
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        failed = [o for o in report.outcomes if not o.passed]
        if failed:
            click.echo("")
            click.echo("=" * 30 + " failures " + "=" * 30)
        for outcome in failed:
            click.echo(f"\n___ {outcome.file}::{outcome.name} ___")
            for failure in outcome.failures:
                for line in failure.lines():
                    click.echo(line)
        parts = [f"{report.passed} passed", f"{report.failed} failed"]
        if report.problems:
            files = {p.location.file for p in report.problems}
            parts.append(f"{_plural(len(files), 'test file')} with problems")
        if not report.outcomes and not report.problems:
            click.echo("error: no tests were selected", err=True)
            ctx.exit(2)
        click.echo("")
        click.echo(", ".join(parts))
    if not report.outcomes and not report.problems:
        ctx.exit(2)
    sys.stdout.flush()
    ctx.exit(report.exit_code)
