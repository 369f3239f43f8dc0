"""``connector recipes``: the recipes the database knows, paused or not.

A pause is kept in the one database (CONNECTOR_DATABASE_URL), so every ``connector serve`` on it
sees it at once: a paused recipe's events are accepted and held, not run, and resuming it runs
each of them once.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from connector.persistence.pauses import Pauses

__all__ = ["recipes"]

T = TypeVar("T")


@click.group()
def recipes() -> None:
    """The recipes served or run on this database: list them, pause and resume them.

    \b
    A paused recipe keeps its events: `connector serve` accepts them and holds
    them (the webhook is answered as usual) without running them. Resuming it
    runs each held event once, in the serving processes, in the order they
    came. The pause is stored in the database, so every serving process on it
    sees it, and so does the run history page (its Recipes tab). `connector
    serve --sandbox` keeps its state in a scratch database of its own: pause
    its recipes on its page.

    \b
      connector recipes list
      connector recipes pause tag-contact-on-activity
      connector recipes resume tag-contact-on-activity
    """


def _with_pauses(work: Callable[[Pauses], T]) -> T:
    from connector.errors import ConnectorError
    from connector.persistence.database import open_database
    from connector.persistence.pauses import Pauses

    try:
        return work(Pauses(open_database(os.environ).engine))
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def _known(pauses: Pauses, name: str) -> None:
    known = pauses.known()
    if name not in known:
        shown = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        click.echo(
            f"error: no recipe named {name!r} is known to this database (a recipe is known once"
            f" `connector serve` serves it or a run of it is recorded)"
            + (f"; known: {shown}" if known else ""),
            err=True,
        )
        sys.exit(1)


@recipes.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def list_recipes(as_json: bool) -> None:
    """Every recipe (and sync) the database knows: paused or running, the events it holds, its
    last run."""

    def read(pauses: Pauses) -> list[dict[str, Any]]:
        paused, held = pauses.all_paused(), pauses.counts()
        rows = []
        for name in pauses.known():
            last = pauses.last_runs(name, 1)
            rows.append(
                {
                    "name": name,
                    "paused": name in paused,
                    "paused_at": paused.get(name),
                    "held": held.get(name, 0),
                    "last_run": (
                        {"id": last[0][0], "status": last[0][1], "started_at": last[0][2]}
                        if last
                        else None
                    ),
                }
            )
        return rows

    rows = _with_pauses(read)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no recipe yet: `connector serve recipes/` serves a folder of them")
        return
    width = max(len(r["name"]) for r in rows)
    click.echo(f"{'RECIPE':<{width}}  {'STATE':<7}  {'HELD':>4}  LAST RUN")
    for r in rows:
        state = "paused" if r["paused"] else "active"
        last = r["last_run"]
        shown = f"{last['status']} {last['started_at']} {last['id']}" if last else "-"
        click.echo(f"{r['name']:<{width}}  {state:<7}  {r['held']:>4}  {shown}")


@recipes.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Pause the recipe NAME: its events are accepted and held, not run, until it is resumed
    (in every serving process on this database)."""

    def work(pauses: Pauses) -> bool:
        _known(pauses, name)
        return pauses.pause(name, "cli")

    if _with_pauses(work):
        click.echo(f"paused {name}: its events are held until `connector recipes resume {name}`")
    else:
        click.echo(f"{name} was paused already")


@recipes.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Resume the recipe NAME: the events it held run, each once, in the serving processes."""

    def work(pauses: Pauses) -> tuple[bool, int]:
        _known(pauses, name)
        return pauses.resume(name), pauses.counts().get(name, 0)

    was_paused, held = _with_pauses(work)
    if not was_paused:
        click.echo(f"{name} was not paused")
        if held:
            click.echo(f"{held} held event(s) of it run as soon as `connector serve` serves it")
        return
    if held:
        click.echo(f"resumed {name}: its {held} held event(s) run now in `connector serve`")
    else:
        click.echo(f"resumed {name}: it held no event")
