"""Our schema's migrations (``connector.persistence.database.MIGRATIONS``), on SQLite and PostgreSQL alike: a new
database gets them all, an older one the ones it lacks with its data kept, a newer one is
refused, processes starting at once migrate once; and ``connector db upgrade|status``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.errors import StoreError
from connector.persistence.database import make_engine
from connector.persistence.migrations import MIGRATIONS, SCHEMA_VERSION, migrate, schema_version
from connector.persistence.tables import metadata


def tables(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_a_new_database_gets_every_migration_and_every_table(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        assert schema_version(engine) == 0
        applied = migrate(engine)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS]
        assert schema_version(engine) == SCHEMA_VERSION
        # every table the code declares comes from a migration, none from elsewhere
        assert set(metadata.tables) <= tables(engine)
        assert migrate(engine) == []  # and a second time, nothing
    finally:
        engine.dispose()


def schema(engine: sa.Engine) -> dict[str, object]:
    """Every table of ours as the database describes it: columns (type, null, default), primary
    key, indexes, unique constraints."""
    found: dict[str, object] = {}
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        for name in sorted(set(inspector.get_table_names()) & set(metadata.tables)):
            found[name] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(name)
                ],
                "key": inspector.get_pk_constraint(name)["constrained_columns"],
                "indexes": sorted(
                    (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(name)
                ),
                "unique": sorted(
                    tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)
                ),
            }
    return found


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_new_database_is_made_as_the_migrations_one_by_one_make_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "postgresql":
        make = request.getfixturevalue("postgres_database")
        urls = [make().replace("postgresql://", "postgresql+psycopg://", 1) for _ in range(2)]
    else:
        urls = [f"sqlite:///{tmp_path / name}" for name in ("new.sqlite3", "stepwise.sqlite3")]
    new, stepwise = (make_engine(url, pool_size=1) for url in urls)
    try:
        assert [m.version for m in migrate(new)] == [m.version for m in MIGRATIONS]
        with stepwise.begin() as conn:  # every migration in turn, as an upgrade from 0 runs them
            metadata.tables["connector_schema"].create(conn)
            for migration in MIGRATIONS:
                migration.apply(conn)
            conn.execute(
                sa.insert(metadata.tables["connector_schema"]).values(id=1, version=SCHEMA_VERSION)
            )
        made, replayed = schema(new), schema(stepwise)
        assert set(made) == set(metadata.tables)
        assert made == replayed
        assert schema_version(new) == schema_version(stepwise) == SCHEMA_VERSION
        assert migrate(new) == [] and migrate(stepwise) == []
    finally:
        new.dispose()
        stepwise.dispose()


def test_an_older_database_gets_what_it_lacks_and_keeps_its_rows(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        first = MIGRATIONS[0]
        with engine.begin() as conn:  # a database as schema 1 left it, with a link in it
            first.apply(conn)
            metadata.tables["connector_schema"].create(conn, checkfirst=True)
            conn.execute(sa.insert(metadata.tables["connector_schema"]).values(id=1, version=1))
            conn.execute(
                sa.insert(metadata.tables["links"]).values(
                    kind="contact",
                    ghl_id="g1",
                    connecteam_id="9001",
                    created_at="2026-01-01T00:00:00Z",
                    updated_at="2026-01-01T00:00:00Z",
                )
            )
        assert "connections" not in tables(engine)
        applied = migrate(engine)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS[1:]]
        assert "connections" in tables(engine)
        with engine.connect() as conn:
            assert (
                conn.execute(
                    sa.select(sa.func.count()).select_from(metadata.tables["links"])
                ).scalar()
                == 1
            )
    finally:
        engine.dispose()


def test_a_newer_database_is_refused_unchanged(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(
                sa.update(metadata.tables["connector_schema"]).values(version=SCHEMA_VERSION + 7)
            )
        with pytest.raises(StoreError, match="newer connector"):
            migrate(engine)
        assert schema_version(engine) == SCHEMA_VERSION + 7
    finally:
        engine.dispose()


def test_processes_starting_at_once_migrate_once(database_url: str) -> None:
    engines = [make_engine(database_url, pool_size=1) for _ in range(4)]
    results: list[object] = []
    barrier = threading.Barrier(len(engines))

    def start(engine: sa.Engine) -> None:
        barrier.wait()
        try:
            results.append(len(migrate(engine)))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert sorted(results, key=str) == [0, 0, 0, len(MIGRATIONS)]  # type: ignore[type-var]


def test_the_db_commands(tmp_path: Path) -> None:
    env = {"CONNECTOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def db(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "connector", "db", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    pending = db("status")
    assert pending.returncode == 1
    assert "schema 0" in pending.stdout and f"pending {SCHEMA_VERSION}:" in pending.stdout
    done = db("upgrade")
    assert done.returncode == 0, done.stderr
    assert f"schema 0 -> {SCHEMA_VERSION}" in done.stdout
    assert db("upgrade").stdout.strip().endswith(f"up to date (schema {SCHEMA_VERSION})")
    assert db("status").returncode == 0


def test_only_an_unreachable_database_is_waited_for(tmp_path: Path) -> None:
    from connector.persistence.database import retrying, unavailable

    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}", pool_size=1)
    try:
        with pytest.raises(sa.exc.OperationalError) as bad, engine.connect() as conn:
            conn.execute(sa.text("SELECT * FROM no_such_table"))
        assert not unavailable(bad.value)  # the statement's own error: waiting would not help
        locked = sa.exc.OperationalError(
            "BEGIN", {}, sqlite3.OperationalError("database is locked")
        )
        assert unavailable(locked)
        wrapped = StoreError("the rate budget failed")
        wrapped.__context__ = locked  # what `raise StoreError(...) from None` keeps
        assert unavailable(wrapped)
        tries: list[int] = []

        def flaky() -> str:
            tries.append(1)
            if len(tries) < 3:
                raise locked
            return "done"

        assert retrying(flaky, sleep=lambda s: None) == "done" and len(tries) == 3
        with pytest.raises(sa.exc.OperationalError):
            retrying(lambda: (_ for _ in ()).throw(locked), wait=0.0, sleep=lambda s: None)
    finally:
        engine.dispose()


def test_the_pool_is_sized_for_the_workers(tmp_path: Path) -> None:
    from connector.persistence.database import close_all, open_database, pool_size_for

    try:
        db = open_database({"CONNECTOR_HOME": str(tmp_path)}, workers=32)
        assert db.engine.pool.size() == pool_size_for(32) == 36  # type: ignore[attr-defined]
        assert pool_size_for(0) == 10
    finally:
        close_all()


def test_a_database_missing_what_its_version_says_is_refused_with_what_to_do(
    database_url: str,
) -> None:
    """A database another build wrote (its version recorded, a table or column of that version
    absent) is refused at open, saying what it lacks and what to do, instead of each store
    failing later on a missing column."""
    engine = make_engine(database_url, pool_size=1)
    try:
        migrate(engine)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE incidents"))
            conn.execute(sa.text("ALTER TABLE runs DROP COLUMN person"))
        with pytest.raises(StoreError) as refused:
            migrate(engine)
        message = str(refused.value)
        assert f"schema {SCHEMA_VERSION}" in message
        assert "table incidents" in message and "column runs.person" in message
        assert "CONNECTOR_HOME" in message
        assert schema_version(engine) == SCHEMA_VERSION  # nothing changed
    finally:
        engine.dispose()
