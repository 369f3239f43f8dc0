"""``connector links``: look at and repair the id-link store from the command line."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from connector.cli.common import fail
from connector.errors import ConnectorError
from connector.persistence.links import Link, LinkId, LinkStore

__all__ = ["links"]

T = TypeVar("T")

SIDES = click.Choice(["any", "ghl", "connecteam"])


def _connecteam_id(text: str) -> LinkId:
    """Connecteam user and note ids are integers: an all-digit id is stored as one."""
    return int(text) if text.isdigit() and len(text) < 19 else text


def _with_store(func: Callable[[LinkStore], T], create: bool = False) -> T | None:
    """Run ``func`` on the store of this environment's database.

    ``None`` when reading (``create`` false) and the database is a SQLite file that does not exist
    yet: looking creates nothing.
    """
    try:
        store = LinkStore.for_env(os.environ) if create else LinkStore.existing_for_env(os.environ)
        if store is None:
            return None
        with store:
            return func(store)
    except ConnectorError as exc:
        fail(str(exc), exc.exit_code)


def _echo_links(items: list[Link], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([link.to_json() for link in items], indent=2, ensure_ascii=False))
        return
    if not items:
        click.echo("no links")
        return
    rows = [("KIND", "GHL ID", "CONNECTEAM ID", "UPDATED", "META")]
    for link in items:
        meta = json.dumps(dict(link.meta), ensure_ascii=False) if link.meta else ""
        rows.append(
            (link.kind, str(link.ghl_id), str(link.connecteam_id), link.updated_at, meta[:60])
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:4])]
        click.echo("  ".join([*cells, row[4]]).rstrip())


def _lookup(store: LinkStore, kind: str, ident: str, side: str) -> Link | None:
    if side in ("any", "ghl"):
        found = store.get(kind, ghl_id=ident)
        if found is not None or side == "ghl":
            return found
    return store.get(kind, connecteam_id=ident)


@click.group()
def links() -> None:
    """The id-link store: which GoHighLevel record is which Connecteam record.

    \b
    Recipes keep pairs of ids here with the links.get / links.put actions;
    each pair has a kind (contact: a GoHighLevel contact and a Connecteam user;
    task; note; or any name a recipe uses). The store is the links table of
    the connector database: CONNECTOR_DATABASE_URL, or connector.sqlite3 in
    CONNECTOR_HOME.
    \b
      connector links list --kind contact
      connector links get contact ocQHyuzHvysMo5N5VsXc
      connector links put contact ocQHyuzHvysMo5N5VsXc 9001
      connector links delete contact 9001
    """


@links.command("list")
@click.option("--kind", help="Only links of this kind (contact, task, note, ...).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_cmd(kind: str | None, limit: int | None, as_json: bool) -> None:
    """Every link, newest first."""
    found = _with_store(lambda s: s.list_links(kind, limit)) or []
    _echo_links(found, as_json)


@links.command("get")
@click.argument("kind")
@click.argument("ident", metavar="ID")
@click.option("--side", type=SIDES, default="any", show_default=True, help="Which side ID is.")
@click.option("--json", "as_json", is_flag=True, help="Print the link as JSON.")
def get_cmd(kind: str, ident: str, side: str, as_json: bool) -> None:
    """The link of KIND for ID (a GoHighLevel or Connecteam id). Exit 1 when there is none."""
    link = _with_store(lambda s: _lookup(s, kind, ident, side))
    if link is None:
        fail(f"no {kind} link for {ident!r}")
    if as_json:
        click.echo(json.dumps(link.to_json(), indent=2, ensure_ascii=False))
    else:
        _echo_links([link], False)


@links.command("put")
@click.argument("kind")
@click.argument("ghl_id")
@click.argument("connecteam_id")
@click.option("--meta", help='Extra facts as a JSON object, e.g. \'{"taskBoardId": "tb1"}\'.')
@click.option("--json", "as_json", is_flag=True, help="Print the stored link as JSON.")
def put_cmd(kind: str, ghl_id: str, connecteam_id: str, meta: str | None, as_json: bool) -> None:
    """Link GHL_ID with CONNECTEAM_ID (replacing older links of KIND that use either id).

    An all-digit CONNECTEAM_ID is stored as a number, as Connecteam user and note ids are.
    Each older link it replaces is printed as "replaced KIND GHL_ID <-> CONNECTEAM_ID".
    """
    extra: Any = {}
    if meta:
        try:
            extra = json.loads(meta)
        except ValueError as exc:
            fail(f"--meta is not JSON: {exc}", 2)
        if not isinstance(extra, dict):
            fail("--meta must be a JSON object", 2)
    link = _with_store(lambda s: s.put(kind, ghl_id, _connecteam_id(connecteam_id), extra), True)
    assert link is not None  # create=True always opens the store
    if as_json:
        click.echo(json.dumps(link.to_json(), indent=2, ensure_ascii=False))
        return
    for old in link.replaced:
        click.echo(f"replaced {old.kind} {old.ghl_id} <-> {old.connecteam_id}")
    click.echo(f"linked {kind} {link.ghl_id} (GoHighLevel) <-> {link.connecteam_id} (Connecteam)")


@links.command("delete")
@click.argument("kind")
@click.argument("ident", metavar="ID")
@click.option("--side", type=SIDES, default="any", show_default=True, help="Which side ID is.")
def delete_cmd(kind: str, ident: str, side: str) -> None:
    """Forget the link of KIND for ID. Exit 1 when there was none."""

    def _delete(store: LinkStore) -> Link | None:
        link = _lookup(store, kind, ident, side)
        return store.delete(kind, ghl_id=link.ghl_id) if link else None

    removed = _with_store(_delete)
    if removed is None:
        fail(f"no {kind} link for {ident!r}")
    click.echo(f"deleted {kind} link {removed.ghl_id} <-> {removed.connecteam_id}")
