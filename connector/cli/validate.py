"""``connector validate PATH...``: check recipes and print every problem the way compilers do."""

from __future__ import annotations

import json
import os

import click

from connector.cli.common import get_registry, plugins_dir_option
from connector.errors import Problem, UsageError

__all__ = ["validate"]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@click.command("validate")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of lines.")
@plugins_dir_option
@click.pass_context
def validate(ctx: click.Context, paths: tuple[str, ...], as_json: bool) -> None:
    """Check recipes: schema, catalog, templates, references.

    PATH is a recipe file or a folder (searched for *.yaml and *.yml). Every
    problem is one line on stdout, FILE:LINE:COL: error: JSONPATH: message,
    and all problems are reported in one pass:

    \b
      recipes/pull.yaml:14:9: error: $.steps[2].with.email: 'emial' is undefined

    Warnings (a deprecated operation, a response field the API document does
    not list) print the same way with "warning:" and leave the exit status 0.
    Event files (*.event.yaml, *.event.json, events/) in a folder are skipped.
    A summary goes to stderr. --json prints {"valid", "files", "problems"}.

    \b
    Exit status: 0 all recipes valid, 1 problems found, 2 usage error
    (no path given, or a path that does not exist).
    """
    from connector.language.validate import find_recipe_files, validate_files

    try:
        files = find_recipe_files(paths)
    except UsageError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    registry, _report = get_registry(ctx)
    problems: list[Problem] = []
    bad_files: set[str] = set()

    def on_file(name: str, found: list[Problem]) -> None:
        if found:
            bad_files.add(name)
        if not as_json:
            for problem in found:
                click.echo(str(problem))

    from connector.connections.scopes import granted_scopes, scope_warnings

    granted = granted_scopes(os.environ)
    found = validate_files(
        files, registry, on_file, warn=lambda loaded: scope_warnings(loaded, registry, granted)
    )
    warnings = [p for p in found if p.severity == "warning"]
    problems = [p for p in found if p.severity != "warning"]
    bad_files.difference_update(p.location.file for p in warnings)
    bad_files.update(p.location.file for p in problems)
    if as_json:
        doc = {
            "valid": not problems,
            "files": files,
            "problems": [p.to_json() for p in found],
        }
        click.echo(json.dumps(doc, indent=2))
    if problems:
        also = f", {_plural(len(warnings), 'warning')}" if warnings else ""
        counted = f"{_plural(len(problems), 'error')}{also}"
        click.echo(f"{counted} in {_plural(len(bad_files), 'file')}", err=True)
        ctx.exit(1)
    also = f" ({_plural(len(warnings), 'warning')})" if warnings else ""
    click.echo(f"{_plural(len(files), 'recipe')} valid{also}", err=True)
