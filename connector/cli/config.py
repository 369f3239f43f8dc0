"""``connector config``: every setting, its value (secrets masked) and where it came from."""

from __future__ import annotations

import json

import click

__all__ = ["LOADED_KEY", "config"]

#: where the root command keeps which variables its ``.env`` files set (``ctx.meta``)
LOADED_KEY = "connector.env_files"


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document: {settings: [...]}.")
@click.option("--set-only", is_flag=True, help="Only the settings that are set.")
@click.pass_context
def config(ctx: click.Context, as_json: bool, set_only: bool) -> None:
    """Show every setting connector reads: its value (secrets masked) and where it came from.

    \b
    Settings are environment variables. Keep them in a .env file, one
    NAME=value a line, in the working directory or in CONNECTOR_HOME:
      GHL_TOKEN=pit-...
      GHL_LOCATION_ID=ve9EPM428h8vShlRW1KT
      CONNECTEAM_API_KEY=...
    The environment wins over both files, the working directory's file over
    CONNECTOR_HOME's. Each setting shows where its value came from:
    "environment", ".env file PATH" or "default: ...".
    \b
      connector config                       every setting
      connector config --set-only            only what is set
      connector config --json | jq '.settings[] | select(.source != "environment")'
    """
    from connector.config import settings

    loaded = ctx.find_root().meta.get(LOADED_KEY, {})
    found = settings(loaded=loaded)
    if set_only:
        found = [s for s in found if s.value is not None]
    if as_json:
        click.echo(json.dumps({"settings": [s.to_json() for s in found]}, indent=2))
        return
    from connector.config import PREFIXES, SETTINGS

    known = {s.name for s in SETTINGS}
    shown = [(s, s.value if s.value is not None else "(not set)") for s in found]
    width = max((len(s.name) for s in found), default=0)
    value_width = min(max((len(v) for _, v in shown), default=0), 60)
    for s, value in shown:
        line = f"{s.name.ljust(width)}  {value.ljust(value_width)}  {s.source}"
        if s.name not in known and not s.name.startswith(PREFIXES):
            line += f"  ({s.meaning})"
        click.echo(line)
