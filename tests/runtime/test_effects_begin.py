"""The claim of a write and its marking as sent, in one transaction (EffectJournal.begin), on
both databases: a new key is ours to send, our own row left ``sending`` is an unknown outcome,
another live run's claim is busy, a done write gives its recorded result."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from connector.persistence.database import make_engine
from connector.persistence.effects import EffectJournal, effects_table
from connector.persistence.migrations import upgrade


@pytest.fixture
def journal(database_url: str) -> Iterator[EffectJournal]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield EffectJournal(engine)
    engine.dispose()


def _state(journal: EffectJournal, key: str) -> str:
    with journal.engine.connect() as conn:
        query = sa.select(effects_table.c.state).where(effects_table.c.key == key)
        return str(conn.execute(query).scalar_one())


def test_begin_claims_and_marks_a_new_write_as_sent(journal: EffectJournal) -> None:
    assert journal.begin("w1", "run_a/step", "run_a").state == "claimed"
    assert _state(journal, "w1") == "sending"
    # the same step again (its process died after sending): the outcome is unknown
    again = journal.begin("w1", "run_a/step", "run_a")
    assert (again.state, again.owner) == ("unknown", "run_a/step")


def test_begin_waits_for_another_run_and_gives_a_done_writes_result(
    journal: EffectJournal,
) -> None:
    assert journal.begin("w2", "run_a/step", "run_a").state == "claimed"
    assert journal.begin("w2", "run_b/step", "run_b").state == "busy"
    with journal.engine.begin() as conn:
        journal.done_write("w2", "run_a/step", {"id": 7}, 201)(conn)
    done = journal.begin("w2", "run_b/step", "run_b")
    assert (done.state, done.output, done.status_code) == ("done", {"id": 7}, 201)


def test_a_write_safe_to_repeat_is_claimed_but_not_marked_as_sent(journal: EffectJournal) -> None:
    assert journal.begin("w3", "run_a/step", "run_a", sending=False).state == "claimed"
    assert _state(journal, "w3") == "claimed"
    assert journal.begin("w3", "run_a/step", "run_a", sending=False).state == "claimed"
