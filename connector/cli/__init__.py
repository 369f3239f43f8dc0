"""The ``connector`` command line.

Subcommands live in their own modules and are imported only when called, so ``connector --help``
stays fast.
"""

from __future__ import annotations

import atexit
import gc
import importlib
import os
import sys
from typing import Any

import click

from connector.cli.common import plugins_dir_option

__all__ = ["main"]

# name -> (module, attribute, one-line help shown by `connector --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": (
        "connector.cli.validate",
        "validate",
        "Check recipes: schema, catalog, templates, references.",
    ),
    "run": ("connector.cli.run", "run", "Run a recipe once for one trigger event."),
    "new": (
        "connector.cli.new",
        "new",
        "Start a recipe, its test or a sync declaration from a template.",
    ),
    "config": (
        "connector.cli.config",
        "config",
        "Every setting: its value (secrets masked) and where it came from.",
    ),
    "completion": (
        "connector.cli.completion",
        "completion",
        "Print the shell completion script: bash, zsh or fish.",
    ),
    "catalog": (
        "connector.cli.catalog",
        "catalog",
        "The operations and trigger events recipes can use.",
    ),
    "sandbox": (
        "connector.cli.sandbox",
        "sandbox",
        "Serve stateful fakes of GoHighLevel and Connecteam.",
    ),
    "serve": (
        "connector.cli.serve",
        "serve",
        "Run recipes unattended: webhooks, hooks and schedules.",
    ),
    "test": (
        "connector.cli.test",
        "test",
        "Run the tests declared with recipes, against recorded responses.",
    ),
    "recipes": (
        "connector.cli.recipes",
        "recipes",
        "The recipes on this database: list, pause, resume.",
    ),
    "runs": (
        "connector.cli.runs",
        "runs",
        "The run history: list, show, resume, retry, replay, settle, prune.",
    ),
    "auth": (
        "connector.cli.auth",
        "auth",
        "Log in to GoHighLevel and Connecteam; the stored connections.",
    ),
    "webhooks": (
        "connector.cli.webhooks",
        "webhooks",
        "Register where vendors send their webhooks (Connecteam).",
    ),
    "db": ("connector.cli.db", "db", "The database's schema: status, upgrade."),
    "links": (
        "connector.cli.links",
        "links",
        "The id-link store: pairs of GoHighLevel and Connecteam ids.",
    ),
    "sync": (
        "connector.cli.sync",
        "sync",
        "Two-way syncs: pairs kept, conflicts, and resolving those that wait for a person.",
    ),
    "alerts": (
        "connector.cli.alerts",
        "alerts",
        "Alerts (CONNECTOR_ALERT_URLS): send a test one.",
    ),
    "plugins": (
        "connector.cli.plugins",
        "plugins",
        "Installed plugins and the hooks each implements.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        cmd: click.Command = getattr(module, entry[1])
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="connector", prog_name="connector")
@plugins_dir_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run YAML recipes that keep GoHighLevel and Connecteam in sync.

    \b
    A recipe is a trigger plus a chain of steps; each step calls an API
    operation from the catalog, with Jinja field mappings:
    \b
      name: tag-contact
      trigger: {app: manual, event: tag, sample: {contactId: abc}}
      steps:
        - id: tag
          action: ghl.add-tags
          with: {contactId: "{{ trigger.contactId }}", tags: [vip]}
    \b
    Try it with no accounts, against the embedded sandbox:
      connector catalog search contact tasks     find operations
      connector catalog show ghl.create-task     parameters and a with: block
      connector validate recipes/                check recipes
      connector run recipes/FILE.yaml --sandbox  run one for real
      connector test recipes/                    run the recipes' tests
      connector serve recipes/ --sandbox         keep them in sync, unattended
      connector runs list                        what ran
    \b
    Against the real APIs, `connector auth login ghl` and `auth login
    connecteam` (or set GHL_TOKEN, GHL_LOCATION_ID and CONNECTEAM_API_KEY);
    CONNECTOR_HOME says where runs, links and connections are kept.
    Settings can live in a .env file (here or in CONNECTOR_HOME); `connector
    config` shows each one and where it came from.
    \b
    Start a recipe from a template: connector new recipe NAME --trigger APP.EVENT
    Shell completion: eval "$(connector completion bash)"   (or zsh, fish)
    """
    from connector.cli.config import LOADED_KEY
    from connector.config import load_env_files

    # the .env files' settings, under the environment's (completion scripts need none)
    if not ctx.resilient_parsing:
        ctx.meta[LOADED_KEY] = load_env_files()


def main(argv: list[str] | None = None) -> Any:
    """The console script: no traceback reaches the user unless CONNECTOR_DEBUG is set."""
    from connector.errors import ConnectorError

    # When the process exits its work is done (runs recorded and committed, output flushed):
    # spare it the garbage collector's last passes over everything the imports made (0.3 s after
    # a durable run). Objects outside reference cycles are still freed as the modules are torn
    # down; Python never promised to collect the rest at exit.
    atexit.register(gc.freeze)
    try:
        return cli.main(args=argv, prog_name="connector", standalone_mode=True)
    except ConnectorError as exc:  # raised outside a command's own handling
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("CONNECTOR_DEBUG"):
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} (set CONNECTOR_DEBUG=1 for details)",
            err=True,
        )
        sys.exit(70)
