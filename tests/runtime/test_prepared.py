"""Statements sent to the driver as compiled once (connector.persistence.prepared), on both
databases: they write and read what SQLAlchemy's own execution would (values converted by their
column types, literals the statement holds), and the driver's errors reach the stores as
SQLAlchemy's, so a locked or lost database is still waited for (``retrying``) and a broken
statement still says what broke."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.persistence.database import make_engine, unavailable
from connector.persistence.history import write_people
from connector.persistence.migrations import upgrade
from connector.persistence.prepared import Prepared
from connector.persistence.tables import people_table, runs_table, steps_table

_insert_step = Prepared(
    sa.insert(steps_table), keys=("run_id", "seq", "step_id", "record_json", "status")
)
_count = Prepared(
    sa.select(sa.func.coalesce(sa.func.max(steps_table.c.seq), -1) + 1).where(
        steps_table.c.run_id == sa.bindparam("b_run")
    )
)
_RUN = {
    "id": "run_1",
    "recipe": "r",
    "recipe_hash": "h",
    "recipe_path": "r.yaml",
    "trigger_app": "manual",
    "trigger_event": "e",
    "trigger_json": "{}",
    "status": "running",
    "dry_run": True,
    "sandbox": False,
    "started_at": "2026-12-07T00:00:00.000Z",
    "duration_ms": 12,
}
_insert_run = Prepared(sa.insert(runs_table), keys=tuple(_RUN))


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    made = make_engine(database_url)
    upgrade(made)
    yield made
    made.dispose()


def _step(seq: int) -> dict[str, object]:
    return {
        "run_id": "run_1",
        "seq": seq,
        "step_id": f"s{seq}",
        "record_json": "{}",
        "status": "ok",
    }


def test_rows_written_and_read_as_core_writes_and_reads_them(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _insert_run.execute(conn, _RUN)
        _insert_step.executemany(conn, [_step(0), _step(1), _step(2)])
        _insert_step.executemany(conn, [])  # nothing to write: no statement
        # coalesce(max(seq), -1) + 1: the literals go with the parameters
        assert _count.first(conn, {"b_run": "run_1"}) == (3,)
        assert _count.first(conn, {"b_run": "run_2"}) == (0,)
    with engine.connect() as conn:
        row = conn.execute(sa.select(runs_table).where(runs_table.c.id == "run_1")).one()
        steps = conn.execute(sa.select(steps_table.c.step_id).order_by(steps_table.c.seq))
        assert [s for (s,) in steps] == ["s0", "s1", "s2"]
    assert (row.dry_run, row.sandbox, row.duration_ms) == (True, False, 12.0)


def test_a_failed_statement_is_sqlalchemys_error_and_rolls_back(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _insert_step.executemany(conn, [_step(0)])
    with pytest.raises(sa.exc.IntegrityError) as raised, engine.begin() as conn:
        _insert_step.execute(conn, _step(1))
        _insert_step.execute(conn, _step(0))  # the same key again
    assert raised.value.orig is not None
    assert "INSERT INTO run_steps" in str(raised.value)
    assert not unavailable(raised.value)  # a broken statement is not waited for
    with engine.connect() as conn:  # the transaction was rolled back: s1 is not there either
        assert conn.execute(sa.select(sa.func.count()).select_from(steps_table)).scalar() == 1


def test_a_locked_sqlite_file_is_unavailable_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(make_engine(url))
    quick = sa.create_engine(url, connect_args={"timeout": 0.05})  # waits 50 ms for the lock
    holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        with pytest.raises(sa.exc.OperationalError) as raised, quick.begin() as conn:
            _insert_step.execute(conn, _step(0))
        assert "locked" in str(raised.value.orig)
        assert unavailable(raised.value)  # retrying() waits for it, as for Core's
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        quick.dispose()


def test_a_connection_lost_on_postgresql_is_invalidated_and_unavailable(
    postgres_database: object,
) -> None:
    make = postgres_database  # type: ignore[assignment]
    url = make().replace("postgresql://", "postgresql+psycopg://", 1)  # type: ignore[operator]
    engine = make_engine(url)
    upgrade(engine)
    killer = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with pytest.raises(sa.exc.DBAPIError) as raised, engine.begin() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with killer.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            _insert_step.execute(conn, _step(0))
        assert raised.value.connection_invalidated
        assert unavailable(raised.value)
        with engine.begin() as conn:  # the pool gives a live connection again
            _insert_step.execute(conn, _step(0))
            assert _count.first(conn, {"b_run": "run_1"}) == (1,)
    finally:
        killer.dispose()
        engine.dispose()


def test_people_keep_the_newest_name_and_when_it_last_changed(engine: sa.Engine) -> None:
    def row() -> tuple[str, str]:
        with engine.connect() as conn:
            found = conn.execute(sa.select(people_table.c.name, people_table.c.updated_at)).one()
        return str(found.name), str(found.updated_at)

    with engine.begin() as conn:
        write_people(conn, {"c1": "Ada"}, "2026-12-01T00:00:00.000Z")
    with engine.begin() as conn:  # the same name again: nothing to change
        write_people(conn, {"c1": "Ada"}, "2026-12-02T00:00:00.000Z")
    assert row() == ("Ada", "2026-12-01T00:00:00.000Z")
    with engine.begin() as conn:  # a new name wins
        write_people(conn, {"c1": "Ada Lovelace"}, "2026-12-03T00:00:00.000Z")
    assert row() == ("Ada Lovelace", "2026-12-03T00:00:00.000Z")
