"""How Connecteam behaves, as the data and callables its :class:`~connector.apps.App` declares:
its webhook (a secret in the URL), its task poll, its rate-limit headers and budgets (with its
throttling in disguise), and the GoHighLevel location its runs act on.

A webhook (``{requestId, company, eventType, eventTimestamp, data: [...]}``) is one event per
item of ``data``, keeping the envelope's fields with ``data`` the one item it is about:
``{{ trigger.data.userId }}``. An event about a user has the user for subject
(``connecteam:user:ID``), so a change the runtime wrote itself is recognised as its echo.
Connecteam signs nothing: the route's path holds ``CONNECTEAM_WEBHOOK_SECRET``, and a request
with another one is answered 404.

The task poll: Connecteam sends no webhook for a task's edits, so a recipe on ``task.updated``
polls the board ``with.taskBoardId``: every task is compared with how the last poll saw it (its
fields' digest, kept per task in the cursors), and each one that changed is the recipe's event,
with ``changed`` naming the fields. The first poll only looks.

A two-way sync polls the same way (``poll.board`` names the board, ``poll.new`` is true): a task
first seen by a later poll is an event too (its counterpart may have been made from its
``task_published``, and it may have changed since), and every event is keyed by the poll's time,
so a task that goes back to an earlier state is reported again. The sync compares what a poll
reports with the pair's last synced state, so a task completed before any poll saw it is still a
change, and one reported as it already is writes nothing.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from connector.apps.events import (
    Delivered,
    Event,
    Poll,
    Poller,
    PollSetup,
    Rejected,
    Webhook,
    digest_of,
)
from connector.apps.limits import RateLimitHeaders, RateWindow, ThrottledBody
from connector.builtins.ghl import LOCATION_ENV as GHL_LOCATION_ENV
from connector.errors import ConnectorError

__all__ = [
    "APP",
    "DELIVERY_FIELDS",
    "POLLS",
    "RATE_LIMITS",
    "RATE_LIMIT_HEADERS",
    "WEBHOOK",
    "TaskPoller",
    "events_of",
]

APP = "connecteam"
SECRET_ENV = "CONNECTEAM_WEBHOOK_SECRET"

# 100 requests a minute and 10,000 a day per account (the Expert plan)
RATE_LIMITS: tuple[tuple[int, float, str], ...] = ((100, 60.0, "minute"), (10_000, 86_400.0, "day"))

RATE_LIMIT_HEADERS = RateLimitHeaders(
    windows=tuple(
        # x-ratelimit-<window>-remaining 0: wait until x-ratelimit-<window>-reset (epoch s)
        RateWindow(
            remaining=f"x-ratelimit-{window}-remaining",
            reset=f"x-ratelimit-{window}-reset",
            resets="at-epoch-seconds",
            limit=f"x-ratelimit-{window}-limit",
            budget=window,
        )
        for window in ("minute", "day")
    ),
    # throttling in disguise: 200 with {"detail": "Too many requests"}
    throttled=(ThrottledBody(status=200, field="detail", starts_with="too many requests"),),
)

USER_EVENTS = frozenset({"user_created", "user_updated"})
# what differs between deliveries of the same news ("evnetTimestamp": as some deliveries spell it)
DELIVERY_FIELDS = frozenset({"requestId", "eventTimestamp", "evnetTimestamp"})


def events_of(envelope: dict[str, Any]) -> list[Event]:
    """A Connecteam webhook as one event per item of ``data`` (400 when it is not that
    envelope)."""
    kind = envelope.get("eventType")
    if not isinstance(kind, str) or not kind:
        raise Rejected("the webhook has no 'eventType'", status=400)
    data = envelope.get("data")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise Rejected("the webhook's 'data' must be a list of objects", status=400)
    request_id = envelope.get("requestId")
    base = (
        f"{APP}:{request_id}"
        if isinstance(request_id, str | int) and str(request_id)
        else f"{APP}-body:{digest_of(envelope)}"
    )
    head = {k: v for k, v in envelope.items() if k != "data"}
    events = []
    for index, item in enumerate(data):
        subject = fields = None
        if kind in USER_EVENTS and item.get("userId") is not None:
            subject, fields = f"{APP}:user:{item['userId']}", item
        events.append(Event(APP, kind, {**head, "data": item}, f"{base}#{index}", subject, fields))
    return events


def _secret(env: Mapping[str, str]) -> str | None:
    return env.get(SECRET_ENV) or None


def _admit(secret: str | None, path: Mapping[str, str], headers: Mapping[str, str]) -> None:
    given = path.get("secret", "")
    if secret is None or not hmac.compare_digest(given.encode(), secret.encode()):
        raise Rejected("Not Found", status=404, kind="secret")


def _parse(secret: str | None, envelope: dict[str, Any], now: float) -> Delivered:
    events = events_of(envelope)
    request_id = envelope.get("requestId")
    return Delivered(events, str(request_id) if request_id not in (None, "") else None)


WEBHOOK = Webhook(
    path=APP + "/{secret}",
    settings=_secret,
    admit=_admit,
    parse=_parse,
    env=(SECRET_ENV,),
    description="the path holds CONNECTEAM_WEBHOOK_SECRET (Connecteam signs nothing)",
)


def run_env(env: Mapping[str, str]) -> Callable[[Event], Mapping[str, str]]:
    """A run for a Connecteam event acts on the GoHighLevel location its stored connection was
    paired with (``auth login connecteam --location``), else on the process's
    ``GHL_LOCATION_ID``."""
    location = _paired_location(env)
    added = {GHL_LOCATION_ENV: location} if location else {}
    return lambda event: added


def _paired_location(env: Mapping[str, str]) -> str | None:
    """The location the one stored Connecteam connection was paired with, if any (an API key in
    the environment overrides stored connections, and pairs with ``GHL_LOCATION_ID``)."""
    if env.get("CONNECTEAM_API_KEY"):
        return None
    from connector.connections import open_store

    try:
        found = open_store(env, sealed=False).find(APP)
    except ConnectorError:  # no usable store: the process's GHL_LOCATION_ID
        return None
    named = env.get("CONNECTEAM_CONNECTION")
    chosen = [c for c in found if not named or c.account == named]
    location = chosen[0].meta.get("location") if len(chosen) == 1 else None
    return str(location) if location else None


# -- the task poll ---------------------------------------------------------------------------

PAGE_SIZE = 100
MAX_PAGES = 50
TASK_FIELDS = ("title", "description", "userIds", "status", "dueDate", "startTime", "isArchived")


def _task_view(task: dict[str, Any], board: str) -> dict[str, Any]:
    """A listed quick task as the event shows it: its description as text."""
    description = task.get("description")
    if isinstance(description, list):  # the list view: [{"type": "html", "html": ...}]
        text = " ".join(
            str(d.get("html") or d.get("text") or "") for d in description if isinstance(d, dict)
        )
    elif isinstance(description, dict):
        text = str(description.get("content") or "")
    else:
        text = str(description or "")
    view = {k: task.get(k) for k in ("id", *TASK_FIELDS)}
    view["description"] = text
    view["userIds"] = sorted(task.get("userIds") or [])
    view["taskBoardId"] = board
    return view


class TaskPoller(Poller):
    """One recipe's poll of a Connecteam task board for edits (see the module)."""

    def __init__(self, setup: PollSetup) -> None:
        from connector.language.template_env import template_env
        from connector.language.templates import compile_value

        super().__init__(setup)
        self.new = bool(self.plan.poll.get("new"))  # a sync's poll: new tasks are events too
        if self.plan.poll.get("board"):
            self.board = str(self.plan.poll["board"])
        else:
            raw = (self.plan.poll.get("with") or {}).get("taskBoardId")
            env = {"env": template_env(self.runtime.env, self.runtime.registry.template_variables)}
            self.board = str(compile_value(self.plan.jinja, raw).render(env))

    def poll(self) -> list[str]:
        started = self.clock()
        self.next_at = started + self.every
        first = self.cursors.get(self.name) is None
        known = self.cursors.named(f"{self.name}:")  # one read, not one per task
        tasks = self._tasks()
        events, seen = [], []
        for task in tasks:
            view = _task_view(task, self.board)
            if not isinstance(view.get("id"), str):
                continue
            fields = {k: view.get(k) for k in TASK_FIELDS}
            digest = digest_of(fields)
            name = f"{self.name}:{view['id']}"
            before = known.get(name)
            now_seen = json.dumps(fields, default=str)
            if now_seen != before:  # written only when it changed
                seen.append((name, now_seen))
            if first or (before is None and not self.new):
                continue  # the first poll only looks; a new task is task_published's
            old = json.loads(before) if before is not None else {}
            if before is not None and digest_of(old) == digest:
                continue
            changed = sorted(k for k in TASK_FIELDS if old.get(k) != view.get(k))
            payload = {**view, "changed": changed}
            key = f"poll:{APP}:task:{view['id']}:{digest}"
            if self.new:  # the same state again later (reopened, completed again) is news
                key += f":{started:.3f}"
            events.append(Event(APP, "task.updated", payload, key))
        runs = self.accept("poll", events, self.plan) if events else []
        # only once the runs are stored; the tasks' and the poll's own, in one transaction
        self.cursors.put_many([*seen, (self.name, str(started))])
        return runs

    def _tasks(self) -> list[dict[str, Any]]:
        client = self.runtime.clients[APP]
        out: list[dict[str, Any]] = []
        offset = 0
        for _ in range(MAX_PAGES):
            response = client.get(
                f"tasks/v1/taskboards/{self.board}/tasks",
                params={"status": "all", "limit": PAGE_SIZE, "offset": offset},
            )
            if response.status_code != 200:
                raise RuntimeError(
                    f"GET tasks of board {self.board} answered {response.status_code}"
                )
            data = response.json().get("data") or {}
            page = data.get("tasks") if isinstance(data, dict) else None
            if not isinstance(page, list):
                break
            out.extend(t for t in page if isinstance(t, dict))
            if len(page) < PAGE_SIZE:
                break
            offset += len(page)
        return out


POLLS: dict[str, Poll] = {
    "task.updated": Poll(TaskPoller, needs=("taskBoardId",), what="Connecteam tasks"),
}
