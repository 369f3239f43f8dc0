"""Schedules: ``trigger: {app: schedule, cron: ...}`` recipes fired by ``connector serve``.

Each schedule keeps a durable cursor (the last time it fired) in the ``cursors`` table. Every
tick, the most recent time the cron expression names that is past the cursor fires one run,
with the event ``{"scheduledAt": ISO, "recipe": NAME}``, and the cursor moves to it once the run
is stored. The run's id comes from the recipe and the time, so a tick fired twice (two
processes, a crash between storing the run and moving the cursor) is one run. A server that was
down over several due times fires the latest one when it starts (not one per missed time); a
schedule seen for the first time starts from now.

The cron expressions are parsed by croniter, the parser ``connector validate`` checks them with
(and DBOS's own scheduler uses): five fields, six with seconds first, or a macro (``@hourly``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

from connector.language.plan import Plan
from connector.persistence.cursors import Cursors
from connector.serve.events import Event

__all__ = ["Scheduler", "last_due"]


def last_due(cron: str, now: float) -> float:
    """The latest time at or before ``now`` that ``cron`` names (epoch seconds, UTC)."""
    seconds_first = len(cron.split()) == 6
    base = datetime.fromtimestamp(now + 0.000001, UTC)  # `now` itself counts as due
    return float(croniter(cron, base, second_at_beginning=seconds_first).get_prev(float))


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Scheduler:
    def __init__(
        self,
        plans: list[Plan],
        cursors: Cursors,
        fire: Callable[[Plan, Event], str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.plans = [p for p in plans if p.trigger_app == "schedule" and p.cron]
        self.cursors = cursors
        self.fire = fire
        self.clock = clock

    def tick(self) -> list[str]:
        """Fire every schedule that is due; returns the run ids."""
        now = self.clock()
        fired = []
        for plan in self.plans:
            assert plan.cron is not None
            name = f"schedule:{plan.name}"
            due = last_due(plan.cron, now)
            stored = self.cursors.get(name)
            if stored is None:  # first seen: from now on
                self.cursors.put(name, repr(due))
                continue
            if due <= float(stored):
                continue
            at = _iso(due)
            event = Event(
                "schedule", "cron", {"scheduledAt": at, "recipe": plan.name}, f"{name}:{at}"
            )
            fired.append(self.fire(plan, event))
            self.cursors.put(name, repr(due))
        return fired
