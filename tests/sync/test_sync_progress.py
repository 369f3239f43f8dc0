"""A reconcile's progress: the time left at the vendors' rate budgets, and the line per 1,000
records a log gets when stdout is not a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.persistence.database import close_all
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import add_contact
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.sandbox.state import load_seed
from connector.sync.progress import Progress, duration, estimate, time_for
from tests.sync.population import T0
from tests.sync.test_sync_initial import NO_BUDGET

GHL = [(100, 10.0), (200_000, 86_400.0)]  # GoHighLevel's limits
CONNECTEAM = [(100, 60.0), (10_000, 86_400.0)]  # Connecteam's (most plans)


def test_the_time_requests_need_is_the_windows_of_the_tightest_limit() -> None:
    assert time_for(0, GHL) == 0.0
    assert time_for(100, GHL) == 0.0  # the first window's worth goes at once
    assert time_for(101, GHL) == 10.0
    assert time_for(30_000, GHL) == 2_990.0  # 300 bursts; the day's 200,000 do not bind
    assert time_for(250_000, GHL) == 86_400.0 * 1  # past a day's: the next day
    assert time_for(6_000, CONNECTEAM) == 59 * 60.0
    assert time_for(20_000, CONNECTEAM) == 86_400.0  # the day's 10,000 bind: a day more
    assert time_for(5, []) == 0.0  # an app with no limit


def test_the_estimate_adds_the_apps_one_after_the_other() -> None:
    limits = {"ghl": GHL, "connecteam": CONNECTEAM}
    assert estimate({"ghl": 1_001, "connecteam": 601}, limits) == 100.0 + 360.0
    at = Progress(done=1_000, total=4_000, requests={"ghl": 3_000, "connecteam": 500})
    assert at.left() == {"ghl": 9_000, "connecteam": 1_500}
    assert estimate(at.left(), limits) == 89 * 10.0 + 14 * 60.0
    assert Progress(done=10, total=None, requests={"ghl": 5}).left() == {}
    assert [duration(s) for s in (45, 720, 12_600, 190_000)] == [
        "45 s",
        "12 min",
        "3.5 h",
        "2.2 days",
    ]


@pytest.fixture()
def sandbox() -> Iterator[RunningSandbox]:
    seed = load_seed()
    seed["ghl"]["contacts"] = []
    seed["connecteam"]["users"] = []
    seed["connecteam"]["task_boards"] = []
    with start_in_thread(seed=seed, limits=RateLimitConfig(enabled=False)) as running:
        yield running
    close_all()


def test_a_reconcile_not_in_a_terminal_logs_a_line_per_1000_records(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    state = sandbox.state
    for n in range(1_200):  # contacts no user matches, and the pair creates none: one look-up each
        add_contact(
            state, state.default_location_id, {"firstName": f"L{n}", "email": f"l{n}@e.org"}, at=T0
        )
    declaration = tmp_path / "people.sync.yaml"
    declaration.write_text(
        (Path(__file__).with_name("people.sync.yaml"))
        .read_text()
        .replace(
            "    conflict: newest\n",
            "    conflict: newest\n    create: {ghl: false, connecteam: false}\n",
        )
    )
    env = {
        **sandbox.env,
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_RATE_LIMITS": NO_BUDGET,
    }
    done = CliRunner().invoke(cli, ["sync", "reconcile", str(declaration)], env=env)
    assert done.exit_code == 0, done.output
    lines = [line for line in done.stderr.splitlines() if line.startswith("reconcile:")]
    assert lines == [
        "reconcile: 1,000 of 1,200 records; 0 paired, 0 created, 0 updated; "
        "about 0 s left at the rate budgets"
    ]
    assert "unmatched      1200" in done.stdout
