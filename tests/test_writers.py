"""SQLite's writers queued in the process (connector.persistence.writers): one at a time, each
handed the gate when the last one ends, in the order they came, urgent ones (a webhook being
answered) first without starving the runs'; every connection to one file, ours and DBOS's,
through one gate, held from a transaction's first write to its end."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.persistence.database import make_engine, make_system_engine, reading
from connector.persistence.writers import (
    URGENT_IN_A_ROW,
    GatedConnection,
    WriterGate,
    gated_connect_args,
    urgent,
    writer_gate,
)

DEADLINE = 30.0  # a guard against a hang, not a measurement


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.002)


def _writer(
    gate: WriterGate, name: str, order: list[str], *, is_urgent: bool = False
) -> Callable[[], None]:
    def write() -> None:
        if is_urgent:
            with urgent():
                held = gate.enter()
        else:
            held = gate.enter()
        assert held is not None
        order.append(name)
        gate.leave(held)

    return write


def _queue(
    gate: WriterGate, writers: list[tuple[str, bool]], order: list[str]
) -> list[threading.Thread]:
    """Start each writer once the one before it waits at the gate: they queue in this order."""
    threads = []
    for name, is_urgent in writers:
        before = gate.waiting()
        thread = threading.Thread(target=_writer(gate, name, order, is_urgent=is_urgent))
        thread.start()
        threads.append(thread)
        _until(lambda before=before: gate.waiting() == before + 1)
    return threads


def test_the_gate_is_handed_to_its_waiters_in_the_order_they_came() -> None:
    gate = WriterGate()
    held = gate.enter()
    order: list[str] = []
    threads = _queue(gate, [("a", False), ("b", False), ("c", False)], order)
    assert order == []  # all wait while it is held
    assert held is not None
    gate.leave(held)
    for thread in threads:
        thread.join(DEADLINE)
    assert order == ["a", "b", "c"]
    assert gate.owner is None and gate.waiting() == 0


def test_urgent_writers_go_first_and_a_run_still_gets_its_turn() -> None:
    gate = WriterGate()
    held = gate.enter()
    order: list[str] = []
    urgent_ones = [(f"u{i}", True) for i in range(1, URGENT_IN_A_ROW + 2)]
    threads = _queue(gate, [("run1", False), ("run2", False), *urgent_ones], order)
    assert held is not None
    gate.leave(held)
    for thread in threads:
        thread.join(DEADLINE)
    first = [f"u{i}" for i in range(1, URGENT_IN_A_ROW + 1)]
    assert order == [*first, "run1", f"u{URGENT_IN_A_ROW + 1}", "run2"]


def test_a_thread_may_enter_again_and_a_waiter_that_gives_up_leaves_no_trace() -> None:
    gate = WriterGate()
    first, second = gate.enter(), gate.enter()  # the same thread: reentrant
    assert first is not None and first == second == threading.get_ident()
    answers: list[int | None] = []
    other = threading.Thread(target=lambda: answers.append(gate.enter(timeout=0.05)))
    other.start()
    other.join(DEADLINE)
    assert answers == [None]  # not had in time: the caller goes on to SQLite's own wait
    assert gate.waiting() == 0
    gate.leave(first)
    assert gate.owner == first  # entered twice, left once
    gate.leave(first)
    assert gate.owner is None
    assert gate.enter() is not None


@pytest.fixture()
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    yield engine
    engine.dispose()


def test_a_write_transaction_holds_the_gate_from_its_start_to_its_end(
    engine: sa.Engine, tmp_path: Path
) -> None:
    gate = writer_gate(tmp_path / "db.sqlite3")
    me = threading.get_ident()
    with engine.begin() as conn:
        assert gate.owner == me  # our transactions begin IMMEDIATE: the writer lock, at once
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert gate.owner is None
    with engine.connect() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        assert gate.owner == me
        conn.rollback()
        assert gate.owner is None
    with reading(engine) as conn:  # a read takes no writer lock, so no gate
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
        assert gate.owner is None


def test_a_second_writer_waits_at_the_gate_and_goes_when_the_first_commits(
    engine: sa.Engine, tmp_path: Path
) -> None:
    gate = writer_gate(tmp_path / "db.sqlite3")
    done = threading.Event()

    def second() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        done.set()

    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        thread = threading.Thread(target=second)
        thread.start()
        _until(lambda: gate.waiting() == 1)  # in the gate, not asleep in SQLite's busy handler
        assert not done.is_set()
    thread.join(DEADLINE)
    assert done.is_set()
    with engine.connect() as conn:
        assert [r[0] for r in conn.exec_driver_sql("SELECT n FROM t ORDER BY n")] == [1, 2]


def test_dbos_connections_to_the_file_pass_the_same_gate(engine: sa.Engine, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    system = make_system_engine(url)
    assert system is not None
    gate = writer_gate(tmp_path / "db.sqlite3")
    try:
        with system.connect() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM t")  # pysqlite begins nothing for a read
            assert gate.owner is None
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")  # pysqlite's BEGIN IMMEDIATE
            assert gate.owner == threading.get_ident()

            def ours() -> None:
                with engine.begin() as ours_conn:
                    ours_conn.exec_driver_sql("INSERT INTO t VALUES (4)")

            waiting = threading.Thread(target=ours)
            waiting.start()
            _until(lambda: gate.waiting() == 1)  # ours waits for DBOS's, at the same gate
            conn.commit()
            waiting.join(DEADLINE)
        assert gate.owner is None
    finally:
        system.dispose()


def test_a_connection_gives_the_gate_back_however_its_write_ends(tmp_path: Path) -> None:
    path = tmp_path / "plain.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None, factory=GatedConnection)
    gate = conn.gate = WriterGate()
    conn.execute("CREATE TABLE t (n INTEGER)")
    conn.execute("INSERT INTO t VALUES (1)")  # outside a transaction: given back once done
    assert gate.owner is None
    conn.isolation_level = "IMMEDIATE"
    with conn:  # sqlite3's own context manager commits
        conn.executemany("INSERT INTO t VALUES (?)", [(2,), (3,)])
        assert gate.owner is not None
    assert gate.owner is None
    conn.execute("INSERT INTO t VALUES (4)")
    conn.close()  # closed mid-transaction: rolled back, and the gate is free
    assert gate.owner is None
    with pytest.raises(sqlite3.OperationalError):
        bad = sqlite3.connect(path, isolation_level=None, factory=GatedConnection)
        bad.gate = gate
        bad.execute("INSERT INTO nowhere VALUES (1)")  # fails: nothing begun, nothing held
    assert gate.owner is None
    assert gated_connect_args(None).get("factory") is None  # in memory: no file, no gate
