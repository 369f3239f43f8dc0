"""``connector db``: the one database's schema."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["db"]

T = TypeVar("T")


@click.group()
def db() -> None:
    """The database connector keeps everything in (CONNECTOR_DATABASE_URL).

    \b
    Our tables migrate themselves when a command opens the database; run
    `connector db upgrade` to do it on purpose (before starting new serving
    processes against a shared PostgreSQL database, say). DBOS's own tables
    are migrated by DBOS when a run first starts.
    """


def _on_database(work: Callable[[sa.Engine], T]) -> tuple[str, T]:
    """``work`` on a one-connection engine for CONNECTOR_DATABASE_URL, and the URL to show (no
    password); a database that cannot be opened or read ends the command with exit 1."""
    from connector.errors import StoreError
    from connector.persistence.database import _safe_url, database_url, make_engine

    url = database_url(os.environ)
    engine = make_engine(url, pool_size=1)
    try:
        return _safe_url(url), work(engine)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        engine.dispose()


@db.command("upgrade")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def upgrade(as_json: bool) -> None:
    """Apply the schema migrations the database has not had yet (none when it is current)."""
    from connector.persistence.migrations import SCHEMA_VERSION, migrate, schema_version

    shown, (before, applied) = _on_database(lambda e: (schema_version(e), migrate(e)))
    if as_json:
        doc = {
            "database": shown,
            "from": before,
            "to": SCHEMA_VERSION,
            "applied": [{"version": m.version, "what": m.what} for m in applied],
        }
        click.echo(json.dumps(doc, indent=2))
        return
    if not applied:
        click.echo(f"{shown}: up to date (schema {SCHEMA_VERSION})")
        return
    for m in applied:
        click.echo(f"applied {m.version}: {m.what}")
    click.echo(f"{shown}: schema {before} -> {SCHEMA_VERSION}")


@db.command("status")
def status() -> None:
    """The database, its schema version, and the migrations it has not had. Exits 1 when some
    are pending."""
    from connector.persistence.migrations import MIGRATIONS, SCHEMA_VERSION, schema_version

    shown, version = _on_database(schema_version)
    click.echo(f"{shown}: schema {version} (this connector: {SCHEMA_VERSION})")
    pending = [m for m in MIGRATIONS if m.version > version]
    for m in pending:
        click.echo(f"pending {m.version}: {m.what}")
    if version > SCHEMA_VERSION:
        click.echo("the database was written by a newer connector: upgrade connector", err=True)
        sys.exit(1)
    if pending:
        sys.exit(1)
