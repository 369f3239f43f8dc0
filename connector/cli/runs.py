"""``connector runs``: the run history."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from connector.store import RunStore


def _store() -> RunStore:
    from connector.config import connector_home
    from connector.store import RunStore

    home = connector_home()
    return RunStore.open(home)


@click.group()
def runs() -> None:
    """The run history kept in CONNECTOR_HOME: every run, its steps, requests and responses.

    \b
      connector runs list                 the latest runs
      connector runs list --recipe NAME   the latest runs of one recipe
      connector runs show ID              one run, step by step (a unique id prefix is enough)
    """


@runs.command("list")
@click.option("--limit", default=20, show_default=True, help="How many runs to show.")
@click.option("--recipe", help="Only runs of this recipe.")
@click.option(
    "--status",
    type=click.Choice(["succeeded", "failed", "running"]),
    help="Only runs with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_runs(limit: int, recipe: str | None, status: str | None, as_json: bool) -> None:
    """The latest runs, newest first."""
    with _store() as store:
        records = store.list(limit=limit, recipe=recipe, status=status)
    if as_json:
        click.echo(json.dumps({"runs": [r.to_json() for r in records]}, indent=2, default=str))
        return
    if not records:
        click.echo("no runs yet: try `connector run RECIPE --sandbox`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("id", "recipe", "trigger", "status", "started", "ms"):
        table.add_column(col, justify="right" if col == "ms" else "left")
    colours = {"succeeded": "green", "failed": "red", "running": "yellow"}
    for r in records:
        table.add_row(
            r.id,
            r.recipe,
            f"{r.trigger_app} {r.trigger_event}",
            f"[{colours.get(r.status, 'white')}]{r.status}[/]",
            r.started_at,
            f"{r.duration_ms:.0f}" if r.duration_ms is not None else "",
        )
    Console().print(table)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as one JSON document.")
def show_run(run_id: str, as_json: bool) -> None:
    """One run: its trigger, each step's request and response, its output."""
    from connector.cli.render import print_run

    with _store() as store:
        record = store.get(run_id)
    if record is None:
        click.echo(f"error: no run {run_id!r} (see `connector runs list`)", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(record.to_json(), indent=2, default=str))
        return
    click.echo(f"trigger: {json.dumps(record.trigger, default=str)[:500]}")
    print_run(record)
