"""How often a serving process polls the run queue (connector.runtime.worker.Pace): often while
runs are queued or going, seldom once it has been quiet with nothing queued (an idle server
sleeps: bench/idle.py measures what it costs), often again as soon as a run is queued here.

The queue and the worker are stand-ins for DBOS's queue (its interval, as DBOS keeps it in the
database) and the worker's count of runs executing; the pace's own thread runs as in a server,
with its intervals shortened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from connector.runtime import worker as worker_module
from connector.runtime.worker import IDLE_POLL_SECONDS, QUEUE_POLL_SECONDS, Pace


@dataclass
class Queue:
    polling_interval_sec: float = QUEUE_POLL_SECONDS
    set_to: list[float] = field(default_factory=list)

    def set_polling_interval_sec(self, seconds: float) -> None:
        self.polling_interval_sec = seconds
        self.set_to.append(seconds)


@dataclass
class Worker:
    active: int = 0


@dataclass
class World:
    queue: Queue
    worker: Worker
    pace: Pace
    queued: list[bool]  # what a look at the queue finds: something queued or going


@pytest.fixture()
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(worker_module, "PACE_SECONDS", 0.01)
    monkeypatch.setattr(worker_module, "IDLE_AFTER_SECONDS", 0.05)
    queued = [False]
    monkeypatch.setattr(Pace, "_queue_empty", lambda self: not queued[0])
    queue, worker = Queue(), Worker()
    pace = Pace(queue, worker)  # type: ignore[arg-type]
    pace.start()
    yield World(queue, worker, pace, queued)
    pace.stop()


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10  # only so that a pace that never changes fails
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_quiet_server_polls_seldom_and_a_queued_run_makes_it_poll_often_at_once(
    world: World,
) -> None:
    assert IDLE_POLL_SECONDS > QUEUE_POLL_SECONDS
    eventually(lambda: world.queue.polling_interval_sec == IDLE_POLL_SECONDS, "never slowed")
    assert not world.pace.fast
    world.pace.wake()  # the intake queued a run: set before wake() returns
    assert world.queue.polling_interval_sec == QUEUE_POLL_SECONDS
    assert world.pace.fast
    eventually(lambda: world.queue.polling_interval_sec == IDLE_POLL_SECONDS, "never slowed again")


def test_it_stays_fast_while_a_run_goes_here_or_anything_waits_on_the_queue(world: World) -> None:
    world.worker.active = 1
    time.sleep(0.3)  # many looks of the pace, each seeing a run going
    assert world.queue.polling_interval_sec == QUEUE_POLL_SECONDS
    world.worker.active = 0
    world.queued[0] = True  # queued by another process, or going there
    time.sleep(0.3)
    assert world.queue.polling_interval_sec == QUEUE_POLL_SECONDS
    assert IDLE_POLL_SECONDS not in world.queue.set_to
    world.queued[0] = False
    eventually(lambda: world.queue.polling_interval_sec == IDLE_POLL_SECONDS, "never slowed")


def test_another_process_setting_it_long_is_undone_while_runs_go_here(world: World) -> None:
    world.worker.active = 2
    world.queue.polling_interval_sec = IDLE_POLL_SECONDS  # another, quiet, process set it
    eventually(lambda: world.queue.polling_interval_sec == QUEUE_POLL_SECONDS, "left slow")
