"""``connector sync``: the state of two-way syncs, and the conflicts that wait for a person."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click

from connector.cli.common import get_registry, plugins_dir_option

__all__ = ["sync"]


@click.group()
def sync() -> None:
    """Two-way syncs (NAME.sync.yaml, served by `connector serve`): what they hold, and the
    conflicts they met.

    \b
      connector sync reconcile recipes/ --dry-run   what a reconcile would do
      connector sync reconcile recipes/       pair, create and repair, both apps
      connector sync status                   pairs kept and conflicts, per kind
      connector sync conflicts --open         the conflicts waiting for a person
      connector sync resolve 7 --connecteam   Connecteam's value wins conflict 7

    See docs/sync.md.
    """


def _store() -> Any:
    from connector.errors import StoreError
    from connector.persistence.database import open_database
    from connector.persistence.sync import SyncStore

    try:
        return SyncStore(open_database(os.environ).engine)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@sync.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def status(as_json: bool) -> None:
    """How many pairs each kind keeps and its conflicts by status; when each sync's last
    reconcile ran, what it found and did, and the ambiguous and unmatched records it met."""
    from connector.persistence.cursors import Cursors
    from connector.sync.reconcile import about, last_summaries, said

    store = _store()
    summary = store.summary()
    reconciles = last_summaries(Cursors(store.engine).named("reconcile:"))
    if as_json:
        click.echo(json.dumps({**summary, "reconciles": reconciles}, indent=2))
        return
    if not summary["kinds"]:
        click.echo("no pairs yet: serve a sync declaration (connector serve PATH...)")
    for kind, counts in sorted(summary["kinds"].items()):
        conflicts = counts["conflicts"]
        shown = ", ".join(f"{n} {s}" for s, n in sorted(conflicts.items())) or "none"
        click.echo(f"{kind}: {counts['pairs']} pairs; conflicts: {shown}")
    waiting = sum(c["conflicts"].get("open", 0) for c in summary["kinds"].values())
    if waiting:
        click.echo(f"{waiting} conflict(s) wait for a person: connector sync conflicts --open")
    if not reconciles:
        click.echo("no reconcile yet: connector sync reconcile PATH --dry-run")
    for name, last in reconciles.items():
        click.echo(f"last reconcile of {name}: {_when(last.get('at'))}")
        click.echo(f"  {said(last)}")
        for key, what in (("ambiguous_records", "ambiguous"), ("unmatched_records", "unmatched")):
            records = last.get(key) or []
            for record in records:
                click.echo(f"  {what}: {about(record)}")
            count = int(last.get(what) or 0)
            if count > len(records):
                click.echo(f"  ... and {count - len(records)} more {what}")


def _when(at: Any) -> str:
    """``2026-12-07 02:00 UTC (12 min ago)``."""
    import time

    from connector.sync.progress import duration

    if not isinstance(at, int | float):
        return "at an unknown time"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
    return f"{stamp} ({duration(max(0.0, time.time() - at))} ago)"


@sync.command("conflicts")
@click.option("--open", "only_open", is_flag=True, help="Only those waiting for a person.")
@click.option("--kind", default=None, help="Only this pair kind (contact).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def conflicts(only_open: bool, kind: str | None, limit: int, as_json: bool) -> None:
    """The conflicts met, newest first: the field, both sides' values, the rule and who won."""
    found = _store().conflicts(status="open" if only_open else None, kind=kind, limit=limit)
    if as_json:
        click.echo(json.dumps([c.to_json() for c in found], indent=2, default=str))
        return
    if not found:
        click.echo("no conflicts")
        return
    for c in found:
        winner = {"ghl": "GoHighLevel", "connecteam": "Connecteam"}.get(c.winner or "", "")
        decided = f"{winner} won ({c.rule})" if c.winner else "waits for a person (manual)"
        if c.status == "resolved":
            decided = f"resolved: {winner} won"
        click.echo(
            f"#{c.id} {c.kind} {c.ghl_id} <-> {c.connecteam_id} {c.field}: "
            f"GoHighLevel {c.ghl!r}, Connecteam {c.connecteam!r}; {decided}"
        )


@sync.command("resolve")
@click.argument("conflict_id", type=int)
@click.option("--ghl", "winner", flag_value="ghl", help="GoHighLevel's value wins.")
@click.option("--connecteam", "winner", flag_value="connecteam", help="Connecteam's value wins.")
@plugins_dir_option
def resolve(conflict_id: int, winner: str | None) -> None:
    """Decide a conflict that waits for a person, and bring the other side along now."""
    if winner is None:
        raise click.UsageError("say who wins: --ghl or --connecteam")
    from connector.errors import ConnectorError
    from connector.language.sync_spec import load_sync_text
    from connector.runtime.durable import Runtime
    from connector.sync.resolve import resolve_conflict

    registry, _ = get_registry()

    def load(text: str, path: str) -> Any:
        spec, _problems = load_sync_text(text, path, registry)
        if spec is not None:
            runtime.keep_sync(spec)
        return spec

    try:
        with Runtime(registry, dict(os.environ)) as runtime:
            record = resolve_conflict(runtime, conflict_id, winner, load)
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"conflict #{conflict_id} resolved; run {record.id} {record.status}")
    if record.status != "succeeded":
        click.echo(f"error: {record.error}", err=True)
        sys.exit(1)


@sync.command("reconcile")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--dry-run", is_flag=True, help="Read both apps, write nothing, say what would be done."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every change.")
@click.option(
    "--restart", is_flag=True, help="Start over instead of going on where the last stopped."
)
@plugins_dir_option
def reconcile(paths: tuple[str, ...], dry_run: bool, as_json: bool, restart: bool) -> None:
    """Compare both apps for every pair the declarations in PATH... make.

    \b
    Every record is brought together with its counterpart by the same rules
    the live sync uses: paired by the match keys when it is not yet (two
    candidates: left alone and reported), its counterpart created when the
    pair creates from that side, drift repaired, conflicts decided or left
    for a person. The first reconcile of a new install is the initial sync
    (`initial:` in the declaration says which side wins a field paired
    records differ on); run again, it changes nothing. Stopped, even by
    SIGKILL, it goes on from the page where it stopped.

    
    In a terminal a progress bar shows how far it is; otherwise a line per
    1,000 records goes to stderr; both with the time left at the rate
    budgets (CONNECTOR_RATE_LIMITS sets your plan's). `connector sync status`
    shows the last reconcile; `reconcile: {every: 6h}` in a declaration has
    `connector serve` run it on a schedule once a first one was run here.
    Exit 0 done, 1 something needs a person (ambiguous matches, failures).
    """
    from connector.errors import ConnectorError
    from connector.language.sync_spec import is_sync_file, load_sync
    from connector.language.validate import find_recipe_files
    from connector.runtime.durable import Runtime
    from connector.runtime.reconciling import reconcile as reconcile_sync
    from connector.sync.reconcile import Tally

    registry, _ = get_registry()
    specs = []
    for path in find_recipe_files(paths):
        if not is_sync_file(path):
            continue
        spec, problems = load_sync(path, registry)
        for problem in problems:
            click.echo(str(problem), err=True)
        if spec is None:
            sys.exit(2)
        specs.append(spec)
    if not specs:
        raise click.UsageError("no sync declaration (NAME.sync.yaml) in " + ", ".join(paths))
    env = dict(os.environ)
    progress, bar = _progress(as_json)
    try:
        with Runtime(registry, env) as runtime, bar or contextlib.nullcontext():
            tallies: dict[str, Tally] = {}
            for spec in specs:
                tallies[spec.name] = reconcile_sync(
                    runtime,
                    spec,
                    dry_run=dry_run,
                    keep_changes=as_json,
                    progress=progress,
                    restart=restart,
                )
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        doc = {"dry_run": dry_run, "syncs": {n: t.to_json() for n, t in tallies.items()}}
        click.echo(json.dumps(doc, indent=2, default=str))
    else:
        for name, tally in tallies.items():
            _say(name, tally, dry_run)
    if any(t.needs_a_person for t in tallies.values()):
        sys.exit(1)


def _progress(quiet: bool) -> Any:
    """How far a reconcile is, with the time left at the rate budgets: a progress bar when
    stdout is a terminal, else a line per 1,000 records on stderr (where a log collects them)."""
    if quiet:
        return None, None
    if sys.stdout.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
        from rich.progress import Progress as Bar

        bar = Bar(
            TextColumn("reconcile"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[left]}"),
            transient=True,
        )
        task = bar.add_task("reconcile", total=None, left="")

        def show(at: Any, tally: Any) -> None:
            left = ""
            if at.seconds_left is not None:
                from connector.sync.progress import duration

                left = f"about {duration(at.seconds_left)} left at the rate budgets"
            bar.update(task, completed=at.done, total=at.total, left=left)

        return show, bar

    def tell(at: Any, tally: Any) -> None:
        if at.done % 1000 == 0:
            click.echo(progress_line(at, tally), err=True)

    return tell, None


def progress_line(at: Any, tally: Any) -> str:
    """``reconcile: 3,000 of 8,000 records; 200 paired, 400 created, 68 updated; about 12 min
    left at the rate budgets``: the line a log gets per 1,000 records."""
    said = at.said()
    head, _, left = said.partition("; ")
    counts = (
        f"{tally.paired} paired, {sum(tally.created.values())} created, "
        f"{sum(tally.updated.values())} updated"
    )
    return f"reconcile: {head}; {counts}" + (f"; {left}" if left else "")


def _say(name: str, tally: Any, dry_run: bool) -> None:
    verb = "would be" if dry_run else "were"
    click.echo(
        f"{name}: {tally.records} records compared{' (dry run: nothing written)' if dry_run else ''}"
    )
    click.echo(f"  in sync        {tally.in_sync}")
    click.echo(f"  paired         {tally.paired} ({verb} paired by a match key)")
    click.echo(
        f"  created        {tally.created['ghl']} in GoHighLevel, "
        f"{tally.created['connecteam']} in Connecteam"
    )
    click.echo(
        f"  updated        {tally.updated['ghl']} in GoHighLevel, "
        f"{tally.updated['connecteam']} in Connecteam"
    )
    click.echo(f"  conflicts      {tally.conflicts}")
    click.echo(
        f"  unmatched      {tally.unmatched} (the pair creates no counterpart from their side)"
    )
    click.echo(f"  ambiguous      {tally.ambiguous} (two candidates for one key: left alone)")
    if tally.failed:
        click.echo(f"  failed         {tally.failed} (see connector runs list --status failed)")
