"""``connector run``: run a recipe once for one trigger event."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from connector.cli.common import get_registry, plugins_dir_option
from connector.language.compose import MAX_DEPTH  # the limit recipes have

EPILOG = """\b
Examples:
  connector run recipes/pull-contact-on-select.yaml --sandbox
  connector run recipe.yaml --event event.json --json
  echo '{"contactId": "abc"}' | connector run recipe.yaml --event -
  connector run recipe.yaml --dry-run        # print the requests, send nothing

\b
Exit codes: 0 the run succeeded, 1 the run failed, 2 the recipe is invalid
or the command was used wrongly.
"""


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (without recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                todo.extend(
                    (v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)
                )
    return deepest


def _read_event(source: str) -> Any:
    """The trigger event from a file or ``-`` (standard input): JSON, or YAML with the limits
    recipes have (:mod:`connector.language.compose`)."""
    from connector.errors import RecipeLoadError
    from connector.language.load import Document, load_recipe_text

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read the event from {source}: {exc}") from None
    name = "standard input" if source == "-" else source
    if len(text) > 10 * 1024 * 1024:
        raise click.UsageError(f"the event in {name} is larger than 10 MiB")
    if not text.strip():
        raise click.UsageError(f"the event in {name} is empty: it must be an object")
    too_deep = click.UsageError(f"the event in {name} is nested more than {MAX_DEPTH} levels deep")
    try:
        event = json.loads(text)
    except RecursionError:
        raise too_deep from None
    except ValueError:
        # YAML through the recipe loader: the same limits (no alias bombs, bounded nesting and
        # size), and its errors with a line and what to do
        try:
            event = load_recipe_text(
                text, name, Document("event", "event file", "(an object)")
            ).data
        except RecipeLoadError as exc:
            problem = exc.problem
            raise click.UsageError(
                f"the event in {name} cannot be read as JSON or YAML: {problem.location.line}:"
                f"{problem.location.column}: {problem.message}"
            ) from None
    else:
        if _depth(event) > MAX_DEPTH:
            raise too_deep
    if not isinstance(event, dict):
        raise click.UsageError(f"the event in {name} must be an object, not {type(event).__name__}")
    return event


@click.command(epilog=EPILOG)
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option(
    "--event",
    "event_source",
    metavar="FILE|-",
    help="The trigger event (JSON or YAML); '-' reads standard input. Default: the recipe's trigger.sample.",
)
@click.option("--dry-run", is_flag=True, help="Render every request and print it; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as one JSON document.")
@click.option(
    "--sandbox",
    is_flag=True,
    help="Start the embedded sandbox in this process and point every app at it.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Run even when the recipe's trigger.if is false for the event.",
)
@plugins_dir_option
def run(
    recipe: str,
    event_source: str | None,
    dry_run: bool,
    as_json: bool,
    sandbox: bool,
    force: bool,
) -> None:
    """Run RECIPE once for one trigger event.

    The recipe is validated first (as `connector validate` does), then planned and executed step by
    step, durably: every request and every write is checkpointed in the database
    (CONNECTOR_DATABASE_URL, default SQLite under CONNECTOR_HOME), failed requests are retried as
    the API allows, and a run that is killed half way is finished by `connector runs resume`
    without repeating a write. Every run is recorded: see `connector runs`.

    An event the recipe's trigger.if is false for is not run, as `connector serve` would not run
    it: the command says so and why, and exits 0; --force runs it anyway.

    With --sandbox, the id links a run makes belong to that sandbox and go away with it.
    """
    from connector.cli.render import print_dry_run, print_run
    from connector.runtime.prepare import prepare

    registry, _report = get_registry()
    if not Path(recipe).exists():
        raise click.UsageError(f"no such recipe file: {recipe}")
    prepared = prepare(recipe, registry)
    if prepared.plan is None:
        if as_json:  # one JSON document on stdout, as --json promises, saying why nothing ran
            doc = {
                "status": "invalid",
                "recipe": recipe,
                "problems": [p.to_json() for p in prepared.problems],
            }
            click.echo(json.dumps(doc, indent=2))
        for problem in prepared.problems:
            click.echo(str(problem), err=True)
        click.echo(f"error: {recipe} is not valid; nothing was run", err=True)
        sys.exit(2)
    plan = prepared.plan
    event = _read_event(event_source) if event_source else dict(plan.sample or {})
    if not force:
        _stop_if_filtered(plan, event, as_json, registry.template_variables)
    if sandbox:
        _check_coverage(plan, recipe, as_json, dry_run)

    env = dict(os.environ)
    with ExitStack() as stack:
        if sandbox:
            from connector.sandbox.server import start_in_thread

            running = stack.enter_context(start_in_thread())
            env.update(running.env)
            if not as_json:
                click.echo(
                    f"sandbox: serving GoHighLevel and Connecteam fakes at {running.url}", err=True
                )
        if dry_run:
            record = _dry_run(plan, event, env, registry)
        else:
            record = _durable_run(stack, plan, prepared.text, event, env, registry, sandbox)

    if as_json:
        click.echo(json.dumps(record.to_json(), indent=2, default=str))
    elif dry_run:
        print_dry_run(record)
    else:
        print_run(record)
    sys.exit(0 if record.status == "succeeded" else 1)


def _stop_if_filtered(plan: Any, event: Any, as_json: bool, names: tuple[str, ...]) -> None:
    """Exit 0 saying why when the recipe's ``trigger.if`` is false for ``event`` (or cannot be
    evaluated, which `connector serve` counts as false too)."""
    from connector.errors import ConnectorError
    from connector.language.template_env import template_env

    condition = plan.trigger_if
    if condition is None:
        return
    source = getattr(condition, "source", None) or "trigger.if"
    try:
        holds = bool(condition.render({"trigger": event, "env": template_env(os.environ, names)}))
    except ConnectorError as exc:
        reason = f"trigger.if {source} could not be evaluated for this event: {exc}"
    else:
        if holds:
            return
        reason = f"trigger.if {source} is false for this event"
    if as_json:
        doc = {"status": "filtered", "recipe": plan.name, "reason": reason}
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"{plan.name}: filtered, nothing was run: {reason} (--force runs it anyway)")
    sys.exit(0)


def _check_coverage(plan: Any, recipe: str, as_json: bool, dry_run: bool) -> None:
    """Before the sandbox starts: the steps whose operation it does not answer. A run stops
    here (exit 2, nothing sent); a dry run, which sends nothing, only warns."""
    from connector.sandbox.coverage import uncovered_steps

    gaps = uncovered_steps(plan)
    if not gaps:
        return
    if dry_run:
        for problem in gaps:
            click.echo(str(dataclasses.replace(problem, severity="warning")), err=True)
        return
    if as_json:
        doc = {"status": "invalid", "recipe": recipe, "problems": [p.to_json() for p in gaps]}
        click.echo(json.dumps(doc, indent=2))
    for problem in gaps:
        click.echo(str(problem), err=True)
    click.echo(
        f"error: {recipe} calls {len(gaps)} operation(s) the sandbox does not answer;"
        " nothing was run",
        err=True,
    )
    sys.exit(2)


def _dry_run(plan: Any, event: Any, env: dict[str, str], registry: Any) -> Any:
    """Render every request, send nothing: no database, no DBOS."""
    from connector.runtime.engine import Engine
    from connector.sending.http import Redactor, make_clients

    clients = make_clients([registry.apps[name] for name in plan.apps], env)
    redactor = Redactor.for_apps(registry.apps.values(), env)
    engine = Engine(registry=registry, clients=clients, env=env, redactor=redactor)
    try:
        return engine.run(plan, event, dry_run=True)
    finally:
        engine.close()
        for client in clients.values():
            client.close()


def _durable_run(
    stack: ExitStack,
    plan: Any,
    text: str,
    event: Any,
    env: dict[str, str],
    registry: Any,
    sandbox: bool,
) -> Any:
    """A durable run. With --sandbox, its journal and id links live in a database that goes
    away with the sandbox (they name records only that sandbox had); the run record is copied
    into the run history under CONNECTOR_HOME."""
    from connector.errors import ConnectorError
    from connector.runtime.durable import Runtime, RuntimeOptions

    run_env = dict(env)
    if sandbox:
        scratch = stack.enter_context(tempfile.TemporaryDirectory())
        run_env["CONNECTOR_HOME"] = scratch
        run_env.pop("CONNECTOR_DATABASE_URL", None)
    try:
        runtime = stack.enter_context(Runtime(registry, run_env, RuntimeOptions(sandbox=sandbox)))
        if plan.on_failure:
            runtime.keep_recipe(*_route_recipe(plan, registry))
        runtime.keep_recipe(plan, text)
        record = runtime.run(plan, event)
        if sandbox:
            from connector.persistence.runs import RunStore

            history = RunStore.for_env(env)
            history.put_recipe(plan.recipe_hash, plan.name, plan.path, text)
            history.copy_from(runtime.store, record.id)
    except ConnectorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    return record


def _route_recipe(plan: Any, registry: Any) -> tuple[Any, str]:
    """The plan and text of the recipe ``plan``'s ``on_failure`` names, found among the recipes
    in the same folder; exit 2 when none there has that name (or it is not valid)."""
    from connector.errors import UsageError
    from connector.language.validate import find_recipe_files
    from connector.runtime.prepare import prepare

    folder = Path(plan.path).parent
    try:
        files = find_recipe_files((str(folder),))
    except UsageError:
        files = []
    for path in files:
        if Path(path).resolve() == Path(plan.path).resolve():
            continue
        prepared = prepare(path, registry)
        if prepared.plan is not None and prepared.plan.name == plan.on_failure:
            return prepared.plan, prepared.text
    click.echo(
        f"error: {plan.path}: on_failure names the recipe {plan.on_failure!r}, which no valid"
        f" recipe in {folder} is; nothing was run",
        err=True,
    )
    sys.exit(2)
