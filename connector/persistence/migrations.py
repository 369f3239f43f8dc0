"""Our schema's migrations: :func:`migrate` applies the :data:`MIGRATIONS` a database has not had
yet (on every open, and by ``connector db upgrade``) and records the version in
``connector_schema``; a new database is made at once as they leave it. The tables themselves are
declared in :mod:`connector.persistence.tables`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from connector.errors import StoreError
from connector.persistence.tables import metadata, schema_table

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Migration", "migrate", "schema_version", "upgrade"]


@dataclass(frozen=True)
class Migration:
    """One step of our schema: ``apply`` runs inside the upgrade's transaction."""

    version: int
    what: str
    apply: Callable[[sa.Connection], None]


def _create(*names: str) -> Callable[[sa.Connection], None]:
    def apply(conn: sa.Connection) -> None:
        for name in names:
            metadata.tables[name].create(conn, checkfirst=True)

    return apply


def _history(conn: sa.Connection) -> None:
    from connector.persistence.history import backfill  # the stores sit above the tables

    _create("run_terms", "run_marks")(conn)
    for name in ("runs_parent", "runs_trigger"):  # a new database has them from migration 1
        next(i for i in metadata.tables["runs"].indexes if i.name == name).create(
            conn, checkfirst=True
        )
    backfill(conn)


def _people(conn: sa.Connection) -> None:
    from connector.persistence.history import backfill_people  # the stores sit above the tables

    runs = metadata.tables["runs"]
    have = {c["name"] for c in sa.inspect(conn).get_columns("runs")}
    if "person" not in have:  # a database made before: the column is added (a new one has it)
        column = runs.c.person
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN person {kind}"))
    _create("people", "recipe_pauses", "held_events")(conn)
    backfill_people(conn)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, steps, recipes, id links, the journal of writes, rate budgets, cursors,"
        " deliveries, echoes",
        _create(
            "runs",
            "run_steps",
            "run_forks",
            "recipes",
            "links",
            "effects",
            "rate_requests",
            "rate_days",
            "cursors",
            "deliveries",
            "latest_events",
            "event_runs",
            "echoes",
        ),
    ),
    Migration(2, "connections: credentials, sealed", _create("connections")),
    Migration(3, "the run history page: who each run touched, resolved marks", _history),
    Migration(
        4,
        "two-way sync: the last synced state of every pair, conflicts",
        _create("sync_state", "sync_conflicts"),
    ),
    Migration(
        5,
        "the run history page: its sealed key and its sessions",
        _create("page_keys", "page_sessions"),
    ),
    Migration(
        6,
        "the run history page: who each run was about, the people by id; paused recipes and"
        " the events they hold",
        _people,
    ),
    Migration(7, "incidents: what alerts told, until each is resolved", _create("incidents")),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def schema_version(engine: sa.Engine) -> int:
    """The version our tables are at (0: none yet)."""
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(schema_table.name):
                return 0
            row = conn.execute(sa.select(schema_table.c.version)).first()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read the database's schema: {_plain_error(exc)}") from None
    return int(row[0]) if row is not None else 0


def migrate(engine: sa.Engine) -> list[Migration]:
    """Bring our tables to :data:`SCHEMA_VERSION`; returns the migrations applied (none when it
    was there). One transaction: on PostgreSQL under an advisory lock, on SQLite under its write
    lock, so processes starting at once migrate once. A database written by a newer connector is
    refused rather than changed."""
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('connector_schema'))"))
            schema_table.create(conn, checkfirst=True)
            row = conn.execute(sa.select(schema_table.c.version)).first()
            version = int(row[0]) if row is not None else 0
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database was written by a newer connector (schema {version}, this one"
                    f" knows {SCHEMA_VERSION}): upgrade connector"
                )
            if row is None and not _ours_in(conn):
                # a new database: made as the migrations leave it, in one go
                for statement in _new_schema(conn.dialect):
                    conn.exec_driver_sql(statement)
                conn.execute(sa.insert(schema_table).values(id=1, version=SCHEMA_VERSION))
                return list(MIGRATIONS)
            applied = [m for m in MIGRATIONS if m.version > version]
            for migration in applied:
                migration.apply(conn)
            if row is None:
                conn.execute(sa.insert(schema_table).values(id=1, version=SCHEMA_VERSION))
            elif applied:
                conn.execute(sa.update(schema_table).values(version=SCHEMA_VERSION))
            missing = _missing(conn)
            if missing:
                where = engine.url.render_as_string(hide_password=True)
                raise StoreError(
                    f"the database {where} says its tables are at schema"
                    f" {max(version, SCHEMA_VERSION)}"
                    f" but lacks {', '.join(missing[:5])}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                    + ": it was written by another build of connector (a development one?)."
                    " Move it aside, or point CONNECTOR_HOME or CONNECTOR_DATABASE_URL"
                    " elsewhere, and connector makes a new one"
                )
            return applied
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot prepare the database: {_plain_error(exc)}") from None


# A new database's tables and indexes, as the migrations leave them, written once per dialect:
# compiling the schema's DDL cost more than running it (a new SQLite database took 22 ms of CPU
# through the seven migrations, 10 ms so: every new install, every test's new home).
_NEW_SCHEMA: dict[str, list[str]] = {}


def _new_schema(dialect: sa.Dialect) -> list[str]:
    found = _NEW_SCHEMA.get(dialect.name)
    if found is None:
        found = []
        for table in metadata.sorted_tables:
            if table is schema_table:
                continue  # made first, with checkfirst
            found.append(str(CreateTable(table).compile(dialect=dialect)).strip())
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                found.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
        _NEW_SCHEMA[dialect.name] = found
    return found


def _ours_in(conn: sa.Connection) -> bool:
    """Whether any of our tables but the version's is in the database (one statement)."""
    query = _TABLES.get(conn.dialect.name)
    if query is None:
        names = set(sa.inspect(conn).get_table_names())
    else:
        names = {str(r[0]) for r in conn.execute(sa.text(query))}
    return bool(names & (set(metadata.tables) - {schema_table.name}))


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT table_name FROM information_schema.tables"
    " WHERE table_schema = current_schema()",
}

# every table and column the schema has, listed in one statement (not a look per table: this
# runs at every open); SQLite's table-valued pragma, PostgreSQL's catalog
_COLUMNS = {
    "sqlite": "SELECT m.name, p.name FROM sqlite_master AS m, pragma_table_info(m.name) AS p"
    " WHERE m.type = 'table'",
    "postgresql": "SELECT table_name, column_name FROM information_schema.columns"
    " WHERE table_schema = current_schema()",
}


def _missing(conn: sa.Connection) -> list[str]:
    """Our declared tables (``table``) and columns (``table.column``) the database lacks."""
    query = _COLUMNS.get(conn.dialect.name)
    if query is None:
        return []
    have: dict[str, set[str]] = {}
    for table, column in conn.execute(sa.text(query)):
        have.setdefault(str(table), set()).add(str(column))
    missing = []
    for name, table in metadata.tables.items():
        if name not in have:
            missing.append(f"table {name}")
            continue
        missing += [f"column {name}.{c.name}" for c in table.columns if c.name not in have[name]]
    return missing


def upgrade(engine: sa.Engine) -> int:
    """:func:`migrate`, and the version the tables are at now."""
    migrate(engine)
    return SCHEMA_VERSION


def _plain_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]
