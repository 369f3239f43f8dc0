"""``connector catalog``: list, show, search and regenerate the operations and trigger events.

Everything is read through the registry, so apps, actions and triggers that plugins register
show up beside the built-in GoHighLevel and Connecteam catalogs.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from connector.cli.common import fail, get_registry, plugins_dir_option

if TYPE_CHECKING:
    from connector.apps.registry import Registry
    from connector.catalog.model import Operation, TriggerEvent

__all__ = ["catalog"]


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _operations(registry: Registry, app: str | None, in_sandbox: bool = False) -> list[Operation]:
    """The operations (of ``app``); ``in_sandbox``: only those the embedded sandbox answers."""
    ops = [
        op
        for name in sorted(registry.apps)
        if app is None or name == app
        for op in registry.apps[name].operations.values()
    ]
    if in_sandbox:
        from connector.catalog.sandbox import sandbox_covers

        ops = [op for op in ops if sandbox_covers(op)]
    return sorted(ops, key=lambda o: o.name)


def _replacement(registry: Registry, op: Operation) -> Operation | None:
    """The operation that replaces ``op``, when it is deprecated and its description names one."""
    if not op.deprecated:
        return None
    from connector.catalog.deprecation import replacement

    app = registry.apps.get(op.app)
    return replacement(op, app.operations.values() if app is not None else ())


def _operation_json(registry: Registry, op: Operation) -> dict[str, Any]:
    """An operation in catalog layout, with the name of the operation that replaces a deprecated
    one (``replaced_by``, else null) and whether the sandbox answers it (``sandbox``)."""
    from connector.catalog.describe import operation_json
    from connector.catalog.sandbox import sandbox_covers

    instead = _replacement(registry, op)
    return {
        **operation_json(op),
        "replaced_by": instead.name if instead is not None else None,
        "sandbox": sandbox_covers(op),
    }


def _triggers(registry: Registry, app: str | None) -> list[TriggerEvent]:
    events = [t for t in registry.triggers.values() if app is None or t.app == app]
    return sorted(events, key=lambda t: (t.app, t.event))


def _check_app(registry: Registry, app: str | None) -> None:
    known = set(registry.apps) | {t.app for t in registry.triggers.values()}
    if app is not None and app not in known:
        hint = difflib.get_close_matches(app, sorted(known), n=3)
        extra = (
            f"; did you mean {', '.join(hint)}?" if hint else f"; apps: {', '.join(sorted(known))}"
        )
        fail(f"unknown app {app!r}{extra}")


@click.group("catalog")
@plugins_dir_option
def catalog() -> None:
    """The operations and trigger events that recipes can use.

    \b
    A step's `action:` names an operation (ghl.get-contact, connecteam.get-users);
    a recipe's `trigger:` names an event (ghl ContactCreate, connecteam contact.selected).
    \b
      connector catalog list --app ghl          every GoHighLevel operation
      connector catalog list --triggers         every trigger event
      connector catalog search contact task     find operations by words
      connector catalog show ghl.create-task    parameters and a with: block
      connector catalog show ghl.ContactCreate  an event's payload fields
      connector catalog list --sandbox          what the embedded sandbox answers
    """


@catalog.command("list")
@click.option("--app", help="Only this app's operations and events (ghl, connecteam, ...).")
@click.option("--triggers", is_flag=True, help="List trigger events instead of operations.")
@click.option(
    "--sandbox",
    "in_sandbox",
    is_flag=True,
    help="Only the operations the embedded sandbox answers (what `--sandbox` runs can call).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='Print one JSON document: {"operations": [...], "triggers": [...]} in catalog layout,'
    ' each operation with "sandbox": true, false, or null (an app the sandbox does not fake),'
    ' and "replaced_by": the operation a deprecated one names instead, or null.',
)
@plugins_dir_option
def list_cmd(app: str | None, triggers: bool, in_sandbox: bool, as_json: bool) -> None:
    """List operations (name, method, path, summary) or, with --triggers, trigger events."""
    from connector.catalog.describe import trigger_json

    if triggers and in_sandbox:
        raise click.UsageError("--sandbox selects operations; it does not go with --triggers")
    registry, _ = get_registry()
    _check_app(registry, app)
    events = _triggers(registry, app)
    if as_json:
        data: dict[str, Any] = {}
        if not triggers:
            ops = _operations(registry, app, in_sandbox)
            data["operations"] = [_operation_json(registry, op) for op in ops]
        data["triggers"] = [trigger_json(t) for t in events]
        _echo_json(data)
        return
    if triggers:
        width = max((len(t.name) for t in events), default=0)
        for t in events:
            click.echo(f"{t.name.ljust(width)}  {t.description}".rstrip())
        return
    ops = _operations(registry, app, in_sandbox)
    name_w = max((len(o.name) for o in ops), default=0)
    method_w = max((len(o.method) for o in ops), default=0)
    for op in ops:
        line = f"{op.name.ljust(name_w)}  {op.method.ljust(method_w)}  {op.path}  {op.summary}"
        click.echo(line.rstrip())


def _find_trigger(registry: Registry, name: str) -> TriggerEvent | None:
    for event in registry.triggers.values():
        if event.name == name:
            return event
    return None


@catalog.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry as JSON (catalog layout).")
@click.option(
    "--version",
    "version",
    metavar="V",
    help="Show the operation as this version of its API documents it (ghl: v3).",
)
@plugins_dir_option
def show(name: str, as_json: bool, version: str | None) -> None:
    """Show one operation, action or trigger event: NAME is ghl.get-contact, ghl.ContactCreate,
    connecteam.contact.selected, ...

    For an operation: method, path, Version, the other versions it has and how their fields
    differ, scopes, pagination, whether it is deprecated (and what replaces it), a parameter
    table (where each goes, its type, * when required), the body fields, and an example step
    to paste. --version V shows it as version V documents it.
    """
    from connector.catalog import describe

    registry, _ = get_registry()
    op = registry.operation(name)
    default = None
    if op is not None and version is not None:
        other = op.at_version(version)
        if other is None:
            from connector.catalog.versions import UnknownVersion

            fail(str(UnknownVersion(op, version)))
        op, default = other, op
    elif version is not None:
        fail(f"--version is for operations; {name!r} is not a catalogued operation")
    if op is not None:
        if as_json:
            _echo_json(_operation_json(registry, op))
        else:
            from connector.catalog.sandbox import sandbox_covers

            app = registry.apps.get(op.app)
            where = None
            if app is not None and app.location_param and app.location_env:
                where = (app.location_param, app.location_env)
            text = describe.describe_operation(
                op,
                location=where,
                sandbox=sandbox_covers(op),
                replaced_by=_replacement(registry, op),
                default=default,
            )
            click.echo("\n".join(text))
        return
    event = _find_trigger(registry, name)
    if event is not None:
        if as_json:
            _echo_json(describe.trigger_json(event))
        else:
            click.echo("\n".join(describe.describe_trigger(event)))
        return
    action = registry.actions.get(name)
    if action is not None:
        if as_json:
            _echo_json(describe.action_json(action))
        else:
            click.echo("\n".join(describe.describe_action(action)))
        return
    candidates = [*registry.action_names(), *(t.name for t in registry.triggers.values())]
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.6)
    hint = f"; did you mean: {', '.join(close)}?" if close else "; see `connector catalog search`"
    fail(f"unknown operation or event {name!r}{hint}")


@catalog.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--app", help="Only this app's operations.")
@click.option(
    "--limit",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="How many results to print; when there are more, stderr says how many.",
)
@click.option(
    "--sandbox", "in_sandbox", is_flag=True, help="Only operations the embedded sandbox answers."
)
@plugins_dir_option
def search(words: tuple[str, ...], app: str | None, limit: int, in_sandbox: bool) -> None:
    """Find operations by words in their name, path and summary, best first.

    \b
      connector catalog search contact tasks
      connector catalog search --app connecteam user note
      connector catalog search --sandbox task     what --sandbox runs can call
    """
    from connector.catalog.describe import search_operations

    registry, _ = get_registry()
    _check_app(registry, app)
    terms = [w for word in words for w in word.split()]
    matched = search_operations(_operations(registry, app, in_sandbox), terms)
    found = matched[:limit]
    if not found:
        among = " among the operations the sandbox answers" if in_sandbox else ""
        fail(f"no operation matches {' '.join(words)!r}{among}")
    name_w = max(len(op.name) for _, op in found)
    for _, op in found:
        click.echo(f"{op.name.ljust(name_w)}  {op.method} {op.path}  {op.summary}".rstrip())
    if len(matched) > len(found):
        more = len(matched) - len(found)
        click.echo(f"{more} more; use --limit {len(matched)} to see them all", err=True)


@catalog.command("generate")
@click.option(
    "--ghl",
    "ghl_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder of GoHighLevel documents (default: ../shared/ghl-openapi/apps).",
)
@click.option(
    "--connecteam",
    "connecteam_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Connecteam's OpenAPI document (default: ../shared/connecteam-openapi/...).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write ghl.json, connecteam.json, triggers.json (default: the package).",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the files would change.")
def generate_cmd(
    ghl_dir: Path | None, connecteam_file: Path | None, out: Path | None, check: bool
) -> None:
    """Regenerate the catalog from the vendors' OpenAPI documents.

    Point --ghl and --connecteam at newer documents to catalog a newer API. $CONNECTOR_SPECS_DIR
    replaces the default ../shared folder (the one holding ghl-openapi/ and connecteam-openapi/).
    """
    from connector.catalog import DATA_DIR
    from connector.catalog.generate import GenerateError, generate, write

    out = out or DATA_DIR
    try:
        files = generate(ghl_dir, connecteam_file)
    except GenerateError as exc:
        fail(str(exc))
    if check:
        stale = [
            n
            for n, text in files.items()
            if not (out / n).exists() or (out / n).read_text(encoding="utf-8") != text
        ]
        if stale:
            fail(f"catalog is out of date: {', '.join(stale)} (run `connector catalog generate`)")
        click.echo("catalog is up to date")
        return
    for path in write(files, out):
        click.echo(f"wrote {path}")
