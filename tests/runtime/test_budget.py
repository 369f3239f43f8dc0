"""Tests of the shared rate budgets (:mod:`connector.persistence.budgets`).

Most tests move an injected clock instead of sleeping. Two more run real contention: eight threads
on one engine with a frozen clock (exactly the capacity is granted), and two processes
(``budget_worker.py``) spending one budget on one SQLite file for about two seconds each, whose
grant times must never put more than the capacity in any one-second window.
"""

from __future__ import annotations

import bisect
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from connector.builtins.limits import CONNECTEAM_LIMITS, GHL_LIMITS
from connector.errors import StoreError
from connector.persistence import budgets as budget_module
from connector.persistence.budgets import (
    DAY,
    MAX_KEY_LENGTH,
    Budget,
    Limit,
    budget_key,
    rate_days,
    rate_requests,
)
from connector.persistence.database import make_engine
from connector.persistence.migrations import upgrade

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
MIDNIGHT = 1_700_006_400.0  # the next UTC midnight
KEY = "ghl:fp:loc"
WORKER = Path(__file__).with_name("budget_worker.py")


class FakeClock:
    """A clock that stays where the test puts it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SlowClock(FakeClock):
    """A frozen clock that takes its time, so that a reserve's read and write lie far apart."""

    def __call__(self) -> float:
        time.sleep(0.0005)
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'budget.sqlite3'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def budget(engine: sa.Engine, clock: FakeClock) -> Budget:
    return Budget(engine, clock)


def _rows(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _grants(budget: Budget, limits: list[Limit] | tuple[Limit, ...], times: int) -> list[float]:
    return [budget.reserve(KEY, limits) for _ in range(times)]


def _busiest_window(times: list[float], window: float) -> int:
    """The most times in any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, at + window) - i for i, at in enumerate(ordered)), default=0
    )


# -- limits and keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capacity", "window"), [(0, 10.0), (-1, 10.0), (5, 0.0), (5, -1.0), (5, 7_200.0)]
)
def test_limit_refuses_what_it_cannot_count(capacity: int, window: float) -> None:
    with pytest.raises(ValueError):
        Limit(capacity, window, "burst")


def test_vendor_limits() -> None:
    assert [(lim.capacity, lim.window, lim.daily) for lim in GHL_LIMITS] == [
        (100, 10.0, False),
        (200_000, DAY, True),
    ]
    assert [(lim.capacity, lim.window, lim.daily) for lim in CONNECTEAM_LIMITS] == [
        (100, 60.0, False),
        (10_000, DAY, True),
    ]


def test_limit_names_must_be_distinct(budget: Budget) -> None:
    with pytest.raises(ValueError):
        budget.reserve(KEY, [Limit(5, 10.0, "burst"), Limit(9, 60.0, "burst")])


def test_budget_key_is_readable_and_short() -> None:
    assert budget_key("ghl", "ab12", "loc1") == "ghl:ab12:loc1"
    long_one = budget_key("ghl", "f" * 64, "x" * 300)
    other = budget_key("ghl", "f" * 64, "y" * 300)
    assert long_one.startswith("ghl:#")
    assert len(long_one) < MAX_KEY_LENGTH
    assert long_one == budget_key("ghl", "f" * 64, "x" * 300)
    assert long_one != other


# -- reserve ----------------------------------------------------------------------------------


def test_capacity_is_respected_and_a_refusal_counts_nothing(
    engine: sa.Engine, budget: Budget
) -> None:
    limits = [Limit(5, 10.0, "burst")]
    assert _grants(budget, limits, 5) == [0.0] * 5
    assert budget.reserve(KEY, limits) > 0
    assert budget.reserve(KEY, limits) > 0
    assert _rows(engine, rate_requests) == 5
    assert budget.usage(KEY, limits) == {"burst": 5}


def test_keys_have_separate_budgets(budget: Budget) -> None:
    limits = [Limit(1, 10.0, "burst")]
    assert budget.reserve("ghl:fp:a", limits) == 0.0
    assert budget.reserve("ghl:fp:b", limits) == 0.0
    assert budget.reserve("ghl:fp:a", limits) > 0


def test_the_wait_is_until_the_oldest_request_leaves(budget: Budget, clock: FakeClock) -> None:
    limits = [Limit(3, 10.0, "burst")]
    for offset in (0.0, 2.0, 4.0):
        clock.now = T0 + offset
        assert budget.reserve(KEY, limits) == 0.0
    clock.now = T0 + 5.0
    assert budget.reserve(KEY, limits) == pytest.approx(5.001, abs=1e-6)
    clock.now = T0 + 10.0  # the oldest is exactly one window old: still inside
    assert budget.reserve(KEY, limits) == pytest.approx(0.001, abs=1e-6)
    clock.now = T0 + 10.001
    assert budget.reserve(KEY, limits) == 0.0
    assert budget.reserve(KEY, limits) == pytest.approx(2.0, abs=1e-6)


def test_windows_slide_rather_than_reset(budget: Budget, clock: FakeClock) -> None:
    limits = [Limit(10, 10.0, "burst")]
    clock.now = T0 + 9.5
    assert _grants(budget, limits, 10) == [0.0] * 10
    clock.now = T0 + 10.5  # a fixed 10 s window would have reset at T0 + 10
    assert budget.reserve(KEY, limits) == pytest.approx(9.001, abs=1e-6)
    clock.now = T0 + 19.4
    assert budget.reserve(KEY, limits) > 0
    clock.now = T0 + 19.501
    assert _grants(budget, limits, 10) == [0.0] * 10
    assert budget.reserve(KEY, limits) > 0


def test_room_comes_back_as_requests_leave(budget: Budget, clock: FakeClock) -> None:
    limits = [Limit(10, 10.0, "burst")]
    assert _grants(budget, limits, 5) == [0.0] * 5
    clock.now = T0 + 6.0
    assert _grants(budget, limits, 5) == [0.0] * 5
    clock.now = T0 + 10.0005  # the first five have left, the next five have not
    assert _grants(budget, limits, 5) == [0.0] * 5
    clock.now = T0 + 11.0
    assert budget.reserve(KEY, limits) == pytest.approx(5.001, abs=1e-6)


def test_over_capacity_waits_until_enough_have_left(budget: Budget, clock: FakeClock) -> None:
    for offset in range(5):  # five requests at T0 .. T0 + 4 under a roomier limit
        clock.now = T0 + offset
        assert budget.reserve(KEY, [Limit(5, 10.0, "burst")]) == 0.0
    clock.now = T0 + 5.0
    # three must leave before one more fits in 3: the third oldest leaves at T0 + 12
    assert budget.reserve(KEY, [Limit(3, 10.0, "burst")]) == pytest.approx(7.001, abs=1e-6)


def test_day_limit_waits_for_the_next_utc_midnight(
    engine: sa.Engine, budget: Budget, clock: FakeClock
) -> None:
    limits = [Limit(3, DAY, "day")]
    assert _grants(budget, limits, 3) == [0.0] * 3
    assert budget.reserve(KEY, limits) == pytest.approx(MIDNIGHT - T0 + 0.001, abs=1e-6)
    clock.now = MIDNIGHT - 0.01
    assert budget.reserve(KEY, limits) == pytest.approx(0.011, abs=1e-6)
    clock.now = MIDNIGHT
    assert budget.reserve(KEY, limits) == 0.0
    assert budget.usage(KEY, limits) == {"day": 1}
    assert _rows(engine, rate_days) == 2  # one counter per day, not one row per request
    assert _rows(engine, rate_requests) == 0


def test_every_limit_counts_and_the_longest_wait_wins(budget: Budget, clock: FakeClock) -> None:
    limits = [Limit(2, 10.0, "burst"), Limit(3, DAY, "day")]
    assert _grants(budget, limits, 2) == [0.0, 0.0]
    assert budget.reserve(KEY, limits) == pytest.approx(10.001, abs=1e-6)
    assert budget.usage(KEY, limits) == {"burst": 2, "day": 2}
    clock.now = T0 + 10.001
    assert budget.reserve(KEY, limits) == 0.0
    clock.now = T0 + 30.0
    assert budget.reserve(KEY, limits) == pytest.approx(MIDNIGHT - clock.now + 0.001, abs=1e-6)
    assert budget.usage(KEY, limits) == {"burst": 0, "day": 3}


def test_ghl_limits_end_to_end(engine: sa.Engine, budget: Budget) -> None:
    key = budget_key("ghl", "fp", "location-1")
    assert _grants(budget, GHL_LIMITS, 100) == [0.0] * 100
    assert budget.reserve(key, GHL_LIMITS) == 0.0  # another key
    assert budget.reserve(KEY, GHL_LIMITS) == pytest.approx(10.001, abs=1e-6)
    assert _rows(engine, rate_days) == 2


def test_a_database_without_the_tables_is_a_store_error(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        with pytest.raises(StoreError):
            Budget(engine).reserve(KEY, GHL_LIMITS)
    finally:
        engine.dispose()


def test_the_tables_and_index_are_declared(engine: sa.Engine) -> None:
    inspector = sa.inspect(engine)
    assert {"rate_requests", "rate_days"} <= set(inspector.get_table_names())
    indexes = {tuple(index["column_names"]) for index in inspector.get_indexes("rate_requests")}
    assert ("key", "at") in indexes


# -- observe ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [str, str.lower, str.upper])
def test_observe_raises_counts_from_ghl_headers(budget: Budget, case: Callable[[str], str]) -> None:
    assert budget.reserve(KEY, GHL_LIMITS) == 0.0
    headers = {
        "X-RateLimit-Remaining": "90",
        "X-RateLimit-Max": "100",
        "X-RateLimit-Daily-Remaining": "199000",
    }
    budget.observe(KEY, GHL_LIMITS, {case(name): value for name, value in headers.items()})
    assert budget.usage(KEY, GHL_LIMITS) == {"burst": 10, "day": 1000}


@pytest.mark.parametrize("case", [str, str.lower, str.upper])
def test_observe_raises_counts_from_connecteam_headers(
    budget: Budget, case: Callable[[str], str]
) -> None:
    assert budget.reserve(KEY, CONNECTEAM_LIMITS) == 0.0
    headers = {"x-ratelimit-minute-remaining": "40", "x-RateLimit-Day-Remaining": "9000"}
    budget.observe(KEY, CONNECTEAM_LIMITS, {case(name): value for name, value in headers.items()})
    assert budget.usage(KEY, CONNECTEAM_LIMITS) == {"minute": 60, "day": 1000}


def test_observe_reads_the_burst_out_of_x_ratelimit_max(budget: Budget) -> None:
    budget.observe(KEY, GHL_LIMITS, {"X-RateLimit-Remaining": "45", "X-RateLimit-Max": "50"})
    assert budget.usage(KEY, GHL_LIMITS) == {"burst": 5, "day": 0}


def test_observe_never_lowers_a_count(budget: Budget) -> None:
    assert _grants(budget, GHL_LIMITS, 30) == [0.0] * 30
    budget.observe(
        KEY,
        GHL_LIMITS,
        {
            "X-RateLimit-Remaining": "99",
            "X-RateLimit-Max": "100",
            "X-RateLimit-Daily-Remaining": "199999",
        },
    )
    assert budget.usage(KEY, GHL_LIMITS) == {"burst": 30, "day": 30}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-RateLimit-Remaining": "lots"},
        {"X-RateLimit-Remaining": "-3"},
        {"X-RateLimit-Remaining": ""},
        {"X-RateLimit-Remaining": "12.5", "X-RateLimit-Daily-Remaining": "none"},
        {"X-RateLimit-Remaining": "120", "X-RateLimit-Max": "100"},
        {"x-ratelimit-minute-remaining": "0"},  # another vendor's header
    ],
)
def test_observe_ignores_missing_and_garbage_headers(
    budget: Budget, headers: dict[str, str]
) -> None:
    assert _grants(budget, GHL_LIMITS, 3) == [0.0] * 3
    budget.observe(KEY, GHL_LIMITS, headers)
    assert budget.usage(KEY, GHL_LIMITS) == {"burst": 3, "day": 3}


def test_an_observed_full_window_makes_reserve_wait(budget: Budget, clock: FakeClock) -> None:
    budget.observe(KEY, GHL_LIMITS, {"X-RateLimit-Remaining": "0"})
    clock.now = T0 + 4.0
    assert budget.reserve(KEY, GHL_LIMITS) == pytest.approx(6.001, abs=1e-6)
    budget.observe(KEY, GHL_LIMITS, {"X-RateLimit-Daily-Remaining": "0"})
    clock.now = T0 + 11.0
    assert budget.reserve(KEY, GHL_LIMITS) == pytest.approx(MIDNIGHT - clock.now + 0.001, abs=1e-6)


# -- prune ------------------------------------------------------------------------------------


def test_prune_deletes_requests_past_their_longest_window(
    engine: sa.Engine, budget: Budget, clock: FakeClock
) -> None:
    burst = [Limit(100, 10.0, "burst")]
    both = [Limit(100, 10.0, "burst"), Limit(100, 60.0, "minute")]
    assert _grants(budget, burst, 3) == [0.0] * 3
    assert budget.reserve("other", both) == 0.0
    clock.now = T0 + 5.0
    assert _grants(budget, burst, 2) == [0.0] * 2
    clock.now = T0 + 10.5
    assert budget.prune() == 3
    assert budget.prune() == 0
    assert _rows(engine, rate_requests) == 3
    assert budget.usage(KEY, burst) == {"burst": 2}
    clock.now = T0 + 61.0
    assert budget.prune() == 3
    assert _rows(engine, rate_requests) == 0


def test_prune_deletes_day_counters_older_than_yesterday(
    engine: sa.Engine, budget: Budget, clock: FakeClock
) -> None:
    day = [Limit(10, DAY, "day")]
    for days_ago in (3, 2, 1, 0):
        clock.now = T0 - days_ago * DAY
        assert budget.reserve(KEY, day) == 0.0
    assert budget.prune() == 2
    assert _rows(engine, rate_days) == 2
    assert budget.usage(KEY, day) == {"day": 1}


def test_reserve_prunes_now_and_then(
    engine: sa.Engine, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(budget_module, "PRUNE_EVERY", 5)
    budget = Budget(engine, clock)
    limits = [Limit(1000, 1.0, "burst")]
    for second in range(20):
        clock.now = T0 + second
        assert budget.reserve(KEY, limits) == 0.0
    # a prune came within the last five reserves, and left only what it could not delete
    assert _rows(engine, rate_requests) <= 6


# -- contention -------------------------------------------------------------------------------


def test_threads_sharing_one_engine_get_exactly_the_capacity(engine: sa.Engine) -> None:
    budget = Budget(engine, SlowClock())
    limits = [Limit(5, 10.0, "burst"), Limit(7, DAY, "day")]
    keys = [f"ghl:fp:location-{i}" for i in range(30)]
    start = threading.Barrier(8)
    granted: list[str] = []

    def spend() -> None:
        start.wait()
        for key in keys:  # every thread on the same key at once: 30 races to the last place
            granted.extend(key for _ in range(3) if budget.reserve(key, limits) == 0.0)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {key: granted.count(key) for key in keys} == dict.fromkeys(keys, 5)
    assert all(budget.usage(key, limits) == {"burst": 5, "day": 5} for key in keys)


def test_two_processes_never_exceed_a_sliding_window(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    start_at = repr(time.time() + 1.0)
    outputs = [tmp_path / f"grants-{i}.txt" for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, KEY, str(output), "2.0", start_at],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for output in outputs
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=120)
        assert worker.returncode == 0, stderr
    grants = [[float(line) for line in output.read_text().split()] for output in outputs]
    assert all(grants), [len(times) for times in grants]
    merged = grants[0] + grants[1]
    assert len(merged) > 20  # the budget was spent more than once
    assert _busiest_window(merged, 1.0) <= 20
