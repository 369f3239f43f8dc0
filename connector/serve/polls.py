"""Polls: ``trigger.poll`` catches the changes whose webhook never came.

Which trigger events can be polled, and how, is the app's to say (:attr:`App.polls
<connector.apps.App.polls>`: a :class:`~connector.apps.events.Poll` per event, whose ``start``
makes the recipe's :class:`~connector.apps.events.Poller`). ``serve`` calls each poller when it
is due; the events a poll finds go through the intake like a webhook's, so a change the runtime
wrote itself is still an echo (see :mod:`connector.persistence.echoes`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from connector.apps.events import Poller, PollSetup
from connector.language.plan import Plan
from connector.persistence.cursors import Cursors
from connector.runtime.api import RunClient
from connector.serve.events import Event

__all__ = ["Poller", "poller_for"]


def poller_for(
    plan: Plan,
    runtime: RunClient,
    accept: Callable[[str, list[Event], Plan], list[str]],
    cursors: Cursors,
    clock: Callable[[], float] = time.time,
) -> Poller:
    """The poller of ``plan``'s ``trigger.poll``, as its trigger's app declares it (the validator
    refused a recipe that polls an event its app does not declare)."""
    app = runtime.registry.apps[plan.trigger_app]
    poll = app.polls[plan.trigger_event]
    return poll.start(PollSetup(plan, runtime, accept, cursors, clock))
