"""What the subcommands share: the plugin options, the registry, error printing."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from connector.apps.plugins import LoadReport
    from connector.apps.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "PIPED_WIDTH",
    "fail",
    "get_registry",
    "plugin_options",
    "plugins_dir_option",
    "stdout_console",
]

#: the width of output that goes to a pipe or a file: as wide as the content, never cut or wrapped
PIPED_WIDTH = 10_000


def _add_plugins_dirs(ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> None:
    obj = ctx.ensure_object(dict)
    obj.setdefault("plugins_dirs", []).extend(Path(v) for v in value)


def _add_disabled(ctx: click.Context, _param: click.Parameter, value: tuple[str, ...]) -> None:
    obj = ctx.ensure_object(dict)
    obj.setdefault("disabled_plugins", []).extend(v for v in value if v)


def stdout_console(**options: Any) -> Console:
    """A rich console on standard output: a terminal's width on a terminal; when the output goes
    to a pipe or a file (`connector runs list | cat`), as wide as the content, so nothing is cut
    with an ellipsis or wrapped, unless COLUMNS says otherwise."""
    import os

    from rich.console import Console

    console = Console(**options)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip():
        console = Console(width=PIPED_WIDTH, **options)
    return console


def plugins_dir_option(f: F) -> F:
    """``--plugins-dir DIR`` and ``--disable-plugin NAME`` (both repeatable), accepted by the root
    command and by subcommands."""
    f = click.option(
        "--disable-plugin",
        "disabled_plugins",
        multiple=True,
        metavar="NAME",
        callback=_add_disabled,
        expose_value=False,
        is_eager=True,
        help="Do not load the plugin NAME (repeatable; see `connector plugins list`). "
        "CONNECTOR_DISABLE_PLUGINS=a,b does the same.",
    )(f)
    return click.option(
        "--plugins-dir",
        "plugins_dirs",
        multiple=True,
        type=click.Path(file_okay=False),
        envvar="CONNECTOR_PLUGINS_DIR",
        callback=_add_plugins_dirs,
        expose_value=False,
        is_eager=True,
        help="Load drop-in plugin .py files from DIR (repeatable).",
    )(f)


def plugin_options(ctx: click.Context) -> tuple[list[Path], list[str]]:
    """The ``--plugins-dir`` and ``--disable-plugin`` values given anywhere on the command line."""
    dirs: list[Path] = []
    disabled: list[str] = []
    c: click.Context | None = ctx
    while c is not None:
        if isinstance(c.obj, dict):
            dirs.extend(d for d in c.obj.get("plugins_dirs", []) if d not in dirs)
            disabled.extend(n for n in c.obj.get("disabled_plugins", []) if n not in disabled)
        c = c.parent
    return dirs, disabled


def get_registry(ctx: click.Context | None = None) -> tuple[Registry, LoadReport]:
    """The registry for this command, built once, with plugin load failures reported on stderr."""
    from connector.apps.plugins import default_registry
    from connector.config import connector_home

    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    if "registry" not in obj:
        dirs, disabled = plugin_options(ctx)
        registry, report = default_registry(dirs, home=connector_home(), disabled=disabled)
        for name, error in report.failed:
            click.echo(f"warning: plugin {name!r} failed to load: {error}", err=True)
        for note in report.warnings:
            click.echo(f"warning: {note}", err=True)
        obj["registry"] = (registry, report)
    result: tuple[Registry, LoadReport] = obj["registry"]
    return result


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
