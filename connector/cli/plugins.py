"""``connector plugins``: which plugins are loaded, where from, and what each one adds."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from connector.cli.common import plugin_options, plugins_dir_option

if TYPE_CHECKING:
    from connector.apps.plugins import LoadReport

__all__ = ["plugins"]


@click.group()
@plugins_dir_option
def plugins() -> None:
    """Installed plugins and the hooks each one implements.

    \b
    Plugins come from three places, loaded in this order:
      built-ins            connector's own filters, actions, apps and triggers
      entry points         packages installed with pip that declare an entry
                           point in the group `connector`
      drop-in files        *.py in each --plugins-dir DIR, then in
                           $CONNECTOR_HOME/plugins
    \b
    A later plugin overrides an earlier one's filter or action of the same
    name. Skip a plugin with --disable-plugin NAME or
    CONNECTOR_DISABLE_PLUGINS=name1,name2. See docs/plugins.md.
    """


def _summary(registered: dict[str, list[str]], limit: int = 6) -> str:
    parts = []
    for kind, names in registered.items():
        shown = ", ".join(names[:limit]) + (
            f" and {len(names) - limit} more (--json lists them)" if len(names) > limit else ""
        )
        parts.append(f"{kind}: {shown}")
    return "\n".join(parts) or "-"


def _print_table(report: LoadReport) -> None:
    from rich.table import Table

    from connector.cli.common import stdout_console

    console = stdout_console(soft_wrap=False)
    table = Table(title="Loaded plugins", title_justify="left", show_lines=True)
    for column in ("name", "version", "origin", "hooks", "registered"):
        table.add_column(column, overflow="fold")
    for info in report.loaded:
        table.add_row(
            info.name,
            info.version or "-",
            info.origin,
            "\n".join(info.hooks) or "-",
            _summary(info.registered),
        )
    console.print(table)
    for o in report.overrides:
        console.print(
            f"override: {o.kind[:-1]} {o.name!r} of {o.previous} is replaced by {o.plugin}",
            markup=False,
            highlight=False,
        )
    if report.failures:
        failed = Table(title="Failed plugins", title_justify="left", show_lines=True)
        for column in ("name", "origin", "error"):
            failed.add_column(column, overflow="fold")
        for f in report.failures:
            failed.add_row(f.name, f.origin or "-", f.error)
        console.print(failed)
    if report.disabled:
        console.print(f"disabled: {', '.join(report.disabled)}", markup=False, highlight=False)
    for note in report.warnings:
        console.print(f"warning: {note}", markup=False, highlight=False)


@plugins.command("list")
@plugins_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document for scripts.")
@click.pass_context
def list_plugins(ctx: click.Context, as_json: bool) -> None:
    """Every loaded plugin: name, version, origin, hooks and what it registered.

    \b
    Plugins that failed to load are listed with their errors, disabled ones by
    name. Exit code 0 even when some plugin failed (the others work); with
    --json, check `.failed` instead:
      connector plugins list --json | jq '.failed'
    """
    from connector.apps.plugins import default_registry
    from connector.config import connector_home

    dirs, disabled = plugin_options(ctx)
    _registry, report = default_registry(dirs, home=connector_home(), disabled=disabled)
    if as_json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_table(report)
