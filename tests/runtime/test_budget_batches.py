"""The rate budget granted in batches (:meth:`Budget.take`): a busy process reserves several
requests in one transaction, the limit still holds across processes, and a key spent slowly is
reserved one request at a time, as :meth:`Budget.reserve` does.

Clocks are injected (:class:`FakeClock`), never slept on. The tests read the rows the
reservations leave, so no budget here prunes on its own (a budget prunes after a random number
of reservations below ``PRUNE_EVERY``: one in a hundred runs or so, a prune fell inside a test
and took its oldest row)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.builtins.limits import GHL_LIMITS
from connector.persistence import budgets as budget_module
from connector.persistence.budgets import (
    BATCH_SHARE,
    MAX_BATCH,
    Budget,
    Limit,
    rate_days,
    rate_requests,
)
from connector.persistence.database import make_engine
from connector.persistence.migrations import upgrade

T0 = 1_700_000_000.0
KEY = "ghl:fp:loc"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_pruning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget_module, "PRUNE_EVERY", 10**12)  # the first prune: far away


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'budget.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _requests(engine: sa.Engine) -> list[tuple[float, int]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rate_requests.c.at, rate_requests.c.n)).all()
    return [(float(at), int(n)) for at, n in rows]


def _today(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.sum(rate_days.c.used))).scalar() or 0)


def test_a_busy_process_reserves_several_requests_per_transaction(engine: sa.Engine) -> None:
    clock = FakeClock()
    budget = Budget(engine, clock)
    granted = [budget.take(KEY, GHL_LIMITS)[0] for _ in range(60)]
    assert granted == [0.0] * 60
    rows = _requests(engine)
    assert len(rows) < 15  # 1, 2, 4, 8, then batches of 10 (a tenth of 100 per 10 s)
    assert max(n for _, n in rows) == min(MAX_BATCH, 100 // BATCH_SHARE)
    # counted a little ahead of now, never behind: each request reaches the API before then
    assert all(at >= T0 for at, _ in rows)
    assert sum(n for _, n in rows) == _today(engine) >= 60


def test_the_limit_holds_across_processes_taking_batches(engine: sa.Engine) -> None:
    clock = FakeClock()
    limits = (Limit(100, 10.0, "burst"),)
    one, two = Budget(engine, clock), Budget(engine, clock)  # two processes' budgets
    granted = 0
    for _ in range(200):
        for budget in (one, two):
            wait, _row, _at = budget.take(KEY, limits)
            granted += wait == 0.0
    assert granted <= 100
    assert sum(n for _, n in _requests(engine)) <= 100
    assert one.take(KEY, limits)[0] > 0 and two.take(KEY, limits)[0] > 0


def test_a_key_spent_slowly_is_reserved_one_request_at_a_time(engine: sa.Engine) -> None:
    clock = FakeClock()
    budget = Budget(engine, clock)
    for i in range(6):
        clock.now = T0 + 3.0 * i  # far apart: longer than a batch is handed out
        wait, row, at = budget.take(KEY, GHL_LIMITS)
        assert (wait, at) == (0.0, clock.now) and row is not None
    assert _requests(engine) == [(T0 + 3.0 * i, 1) for i in range(6)]
    assert _today(engine) == 6  # nothing of the day reserved and left unused


def test_small_limits_are_reserved_one_request_at_a_time(engine: sa.Engine) -> None:
    budget = Budget(engine, FakeClock())
    limits = (Limit(5, 1.0, "burst"),)
    assert [budget.take(KEY, limits)[0] for _ in range(5)] == [0.0] * 5
    assert budget.take(KEY, limits)[0] > 0
    assert [n for _, n in _requests(engine)] == [1] * 5
