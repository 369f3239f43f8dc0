"""The seam between the engine and durable execution: checkpointed units of work and waits.

The engine does everything that touches the outside world through a :class:`Checkpoints`:
``checkpoints.step(name, func)`` runs ``func`` once and remembers its (JSON) result under
``name``; ``checkpoints.sleep(seconds)`` waits. :class:`NoCheckpoints` does both directly (tests,
dry runs); the durable runtime's (:class:`connector.runtime.worker.DurableCheckpoints`) makes each
a DBOS step, so a run that is resumed after a crash gets every finished unit's recorded result
instead of doing it again. ("The journal" is another thing: the journal of writes,
:mod:`connector.persistence.effects`, which says whether a write happened.)

Names are unique within a run: ``STEP``, ``STEP[INDEX]`` inside a ``foreach``, and a suffix per
unit (``#1`` for the first attempt of a request, ``:once``, ``:done``, ``:lookup``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol, TypeVar

__all__ = ["Checkpoints", "NoCheckpoints"]

T = TypeVar("T")


class Checkpoints(Protocol):
    def step(self, name: str, func: Callable[[], T]) -> T:
        """Run ``func`` (or return what it returned when this run did it before)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (durably: a resumed run waits only what is left)."""
        ...


class NoCheckpoints:
    """Checkpoints that remember nothing: every unit runs, every wait sleeps."""

    def step(self, name: str, func: Callable[[], T]) -> T:
        return func()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
