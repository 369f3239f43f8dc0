"""``connector run``: run a recipe once for one trigger event."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from connector.cli.common import get_registry, plugins_dir_option

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


def _read_event(source: str) -> Any:
    """The trigger event from a file or ``-`` (standard input): JSON, or YAML."""
    import yaml

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.UsageError(f"cannot read the event from {source}: {exc}") from None
    name = "standard input" if source == "-" else source
    if len(text) > 10 * 1024 * 1024:
        raise click.UsageError(f"the event in {name} is larger than 10 MiB")
    try:
        event = json.loads(text)
    except ValueError:
        try:
            event = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise click.UsageError(f"the event in {name} is neither JSON nor YAML{where}") from None
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
@plugins_dir_option
def run(recipe: str, event_source: str | None, dry_run: bool, as_json: bool, sandbox: bool) -> None:
    """Run RECIPE once for one trigger event.

    The recipe is validated first (as `connector validate` does), then planned and executed step by
    step. Every run is recorded in the run store under CONNECTOR_HOME: see `connector runs`.

    With --sandbox, the id links a run makes belong to that sandbox and go away with it.
    """
    from connector.cli.render import print_dry_run, print_run
    from connector.config import connector_home
    from connector.engine import Engine
    from connector.errors import RecipeInvalid, RecipeLoadError
    from connector.http import Redactor, make_clients
    from connector.plan import plan_recipe
    from connector.recipe.load import load_recipe
    from connector.recipe.validate import validate_recipe
    from connector.store import RunStore

    registry, _report = get_registry()
    if not Path(recipe).exists():
        raise click.UsageError(f"no such recipe file: {recipe}")
    try:
        loaded = load_recipe(recipe)
    except RecipeLoadError as exc:
        click.echo(str(exc.problem), err=True)
        sys.exit(2)
    problems = validate_recipe(loaded, registry)
    if problems:
        for problem in problems:
            click.echo(str(problem), err=True)
        click.echo(f"error: {recipe} is not valid; nothing was run", err=True)
        sys.exit(2)
    try:
        plan = plan_recipe(loaded.data, registry, path=recipe, recipe_hash=loaded.sha256)
    except RecipeInvalid as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    event = _read_event(event_source) if event_source else dict(plan.sample or {})

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
        secrets = [
            env[name] for app in registry.apps.values() for name in app.secret_env if env.get(name)
        ]
        apps = [registry.apps[name] for name in plan.apps]
        clients = make_clients(apps, env)
        for client in clients.values():
            stack.callback(client.close)
        home = connector_home(env)
        # actions' own state (the id-link store) lives and dies with the sandbox it refers to;
        # the run itself is still recorded under CONNECTOR_HOME
        action_home = Path(stack.enter_context(tempfile.TemporaryDirectory())) if sandbox else home
        store = None
        if not dry_run:
            store = stack.enter_context(RunStore.open(home))
        engine = Engine(
            registry=registry,
            clients=clients,
            env=env,
            recorder=store,
            redactor=Redactor(secrets),
            home=action_home,
        )
        stack.callback(engine.close)
        record = engine.run(plan, event, dry_run=dry_run)

    if as_json:
        click.echo(json.dumps(record.to_json(), indent=2, default=str))
    elif dry_run:
        print_dry_run(record)
    else:
        print_run(record)
    sys.exit(0 if record.status == "succeeded" else 1)
