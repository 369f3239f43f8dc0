"""``connector runs``: the run history."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from connector.persistence.runs import RunStore
    from connector.records import RunRecord
    from connector.runtime.durable import Runtime


def _store() -> RunStore:
    import os

    from connector.persistence.runs import RunStore

    return RunStore.for_env(os.environ)


def _get(store: RunStore, run_id: str) -> RunRecord:
    from connector.persistence.runs import AmbiguousRunId

    try:
        record = store.get(run_id)
    except AmbiguousRunId as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if record is None:
        click.echo(
            f"error: no run {run_id!r} in {store.engine.url.render_as_string(hide_password=True)}"
            " (see `connector runs list`; a run of `connector serve --sandbox` or `connector run"
            " --sandbox` is copied there when it ends, and CONNECTOR_HOME or"
            " CONNECTOR_DATABASE_URL choose which history is read)",
            err=True,
        )
        sys.exit(1)
    return record


def _runtime() -> Runtime:
    import os

    from connector.cli.common import get_registry
    from connector.runtime.durable import Runtime

    registry, _ = get_registry()
    return Runtime(registry, dict(os.environ))


def _print_outcome(record: RunRecord, as_json: bool) -> None:
    from connector.cli.render import print_run

    if as_json:
        click.echo(json.dumps(record.to_json(), indent=2, default=str))
    else:
        print_run(record)


@click.group()
def runs() -> None:
    """The run history kept in CONNECTOR_HOME: every run, its steps, requests and responses.

    \b
      connector runs list                 the latest runs
      connector runs list --recipe NAME   the latest runs of one recipe
      connector runs show ID              one run, step by step (a unique id prefix is enough)
      connector runs resume               finish the runs a crash or a kill interrupted
      connector runs retry ID             run a failed run again from the step that failed
      connector runs settle ID --written  what you found about a write of unknown outcome
      connector runs replay ID --from S   run it again from step S, as a new run
      connector runs prune --older-than 30d
    """


@runs.command("list")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many runs to show; when there are more, stderr says so.",
)
@click.option("--recipe", help="Only runs of this recipe.")
@click.option(
    "--status",
    type=click.Choice(["succeeded", "failed", "running", "waiting"]),
    help="Only runs with this status.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
def list_runs(limit: int, recipe: str | None, status: str | None, as_json: bool) -> None:
    """The latest runs, newest first: id, start time (UTC), status (* when against the
    sandbox), recipe, and the failing step with its error. A wide terminal shows the trigger and
    the duration too. --json adds "failed_step" to each run record."""
    with _store() as store:
        records = store.list(limit=limit + 1, recipe=recipe, status=status)
        more = len(records) > limit
        records = records[:limit]
        failed = store.failed_steps([r.id for r in records])
    if as_json:
        docs = [{**r.to_json(), "failed_step": failed.get(r.id)} for r in records]
        click.echo(json.dumps({"runs": docs}, indent=2, default=str))
        return
    if not records:
        click.echo("no runs yet: try `connector run RECIPE --sandbox`")
        return
    from connector.cli.runs_table import print_runs

    print_runs(records, failed)
    if more:
        click.echo(f"more runs than these {limit}; use --limit to see more", err=True)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as one JSON document.")
def show_run(run_id: str, as_json: bool) -> None:
    """One run: its trigger, each step's request and response (bodies included, redacted; a
    refusal's body too), its output; for a failed run, the later retry or replay that fixed it
    ("fixed by RUN"), and for that one, the failed runs it fixed ("fixes RUN")."""
    from connector.cli.render import print_run
    from connector.persistence.incidents import IncidentStore

    with _store() as store:
        record = _get(store, run_id)
        fixes = IncidentStore(store.engine)
        fixed_by, fixed = fixes.fixed_by(record.id), fixes.fixes(record.id)
    if as_json:
        doc = {**record.to_json(), "fixed_by": fixed_by, "fixes": fixed}
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    click.echo(f"trigger: {json.dumps(record.trigger, default=str)[:500]}")
    print_run(record, bodies=True, fixed_by=fixed_by, fixes=fixed)


@runs.command("resume")
@click.option("--json", "as_json", is_flag=True, help="Print the finished runs as JSON.")
def resume_runs(as_json: bool) -> None:
    """Finish every run that was interrupted (killed, crashed, or stopped by SIGTERM).

    Each goes on from its last checkpoint: a request that was answered is not sent again, and a
    write whose answer was lost is resolved (by the step's `once.lookup`) before anything is
    sent. Exit 1 if any resumed run failed.
    """
    from connector.errors import ConnectorError

    try:
        with _runtime() as runtime:
            ids = runtime.resume()
            records = [r for r in (runtime.store.get(i) for i in ids) if r is not None]
            left = runtime.left_to_servers
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"runs": [r.to_json() for r in records]}, indent=2, default=str))
    elif not records:
        click.echo("no interrupted runs")
    if left and not as_json:
        click.echo(f"{left} run(s) in progress in a running `connector serve` were left to it")
    for record in records if not as_json else []:
        click.echo(f"{record.id}  {record.recipe}  {record.status}")
    sys.exit(1 if any(r.status != "succeeded" for r in records) else 0)


def _again(run_id: str, step: str | None, as_json: bool, verb: str) -> None:
    from connector.errors import ConnectorError

    try:
        with _runtime() as runtime:
            old = _get(runtime.store, run_id)
            if verb == "retry" and old.status != "failed":
                click.echo(
                    f"error: run {old.id} is {old.status}; only a failed run is retried", err=True
                )
                sys.exit(2)
            record = runtime.rerun(old, step)
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    _print_outcome(record, as_json)
    sys.exit(0 if record.status == "succeeded" else 1)


@runs.command("retry")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the new run as JSON.")
def retry_run(run_id: str, as_json: bool) -> None:
    """Run a failed run again from the step that failed, as a new run linked to the old one.

    The steps before it are not run again: their recorded results are used.
    """
    _again(run_id, None, as_json, "retry")


@runs.command("settle")
@click.argument("run_id")
@click.option("--written", "written", flag_value=True, default=None, help="The write happened.")
@click.option("--not-written", "written", flag_value=False, help="The write did not happen.")
def settle_run(run_id: str, written: bool | None) -> None:
    """Say what you found about a write whose outcome the run could not tell.

    A run that sent a write and lost the answer, with no way to look it up (Connecteam cannot
    list a user's notes, for one), stops with "outcome unknown: check ...". Look, then:

    \b
      connector runs settle ID --written       it is there: it is not sent again
      connector runs settle ID --not-written   it is not there: the next run sends it
      connector runs retry ID                  finish the run
    """
    from connector.errors import ConnectorError
    from connector.persistence.effects import EffectJournal

    if written is None:
        click.echo("error: say --written or --not-written (see --help)", err=True)
        sys.exit(2)
    try:
        store = _store()
        record = _get(store, run_id)
        keys = EffectJournal(store.engine).settle(store.lineage(record.id), written)
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not keys:
        click.echo(f"run {record.id} left no write of unknown outcome; nothing to settle")
        sys.exit(1)
    what = "written: it will not be sent again" if written else "not written: the next run sends it"
    for key in keys:
        click.echo(f"{key}: {what}")
    click.echo(f"now finish the run: connector runs retry {record.id}")


@runs.command("replay")
@click.argument("run_id")
@click.option("--from", "step", metavar="STEP", help="The step to start from (default: the first).")
@click.option("--json", "as_json", is_flag=True, help="Print the new run as JSON.")
def replay_run(run_id: str, step: str | None, as_json: bool) -> None:
    """Run a run again from a chosen step, as a new run linked to the old one.

    Steps before STEP keep their recorded results; STEP and the ones after it run again (writes
    declared with `once:` still happen only once).
    """
    _again(run_id, step or "", as_json, "replay")


@runs.command("prune")
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="AGE",
    help="Delete finished runs that started more than AGE ago: 30d, 12h, 90m.",
)
def prune_runs(older_than: str) -> None:
    """Delete finished runs older than AGE: their records, steps and checkpoints (which hold the
    events and the responses). Running runs are kept; so are the claims of `once:` writes, which
    keep those writes from happening twice."""
    import re
    from datetime import UTC, datetime, timedelta

    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", older_than)
    if match is None:
        raise click.BadParameter(
            "use a number and d, h or m: 30d, 12h, 90m", param_hint="--older-than"
        )
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    cutoff = datetime.now(UTC) - timedelta(**{unit: int(match.group(1))})
    before = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    from connector.errors import ConnectorError

    with _store() as store:
        ids = store.prune(before)
    count = len(ids)
    if ids:  # their checkpoints (events, response bodies) and claims go with them
        try:
            _runtime().delete_checkpoints(ids)
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
    click.echo(f"deleted {count} run{'s' if count != 1 else ''} started before {before}")
