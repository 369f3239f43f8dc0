"""Polls: ``trigger.poll`` catches the changes whose webhook never came.

GoHighLevel retries a failed delivery only so long, and pauses a URL that fails too often, so a
recipe on ``ContactUpdate`` (or ``ContactCreate``) may also poll ``POST /contacts/search`` for
contacts whose ``dateUpdated`` (``dateAdded``) is at or after a durable cursor, less an overlap
window (the search shows a change a few seconds late), sorted by that date and paged with
``searchAfter``. Each contact found is the recipe's event (the contact, with ``type`` and
``locationId``), keyed by (id, date): a contact seen again in the overlap makes the same run id,
so it never runs twice. The cursor moves to the latest date seen only once every run of the
poll is stored; a poll that fails (the API away, a 429) leaves it, and the next one covers the
same ground.

The event goes through the intake like a webhook's, so a change the runtime wrote itself is
still an echo (see :mod:`connector.persistence.echoes`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.language.plan import Plan
from connector.persistence.cursors import Cursors
from connector.runtime.api import RunClient
from connector.serve.events import Event, digest_of

__all__ = ["PAGE_SIZE", "ContactPoller"]

log = logging.getLogger("connector.serve")

PAGE_SIZE = 100
MAX_PAGES = 50  # per poll; the rest waits for the next one (the cursor moved past what was run)
SEARCH = "ghl.search-contacts-advanced"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Poller:
    """One recipe's ``trigger.poll``: every ``every`` seconds, :meth:`poll` hands the changes
    it finds to ``accept`` (the intake) and keeps its position under ``name`` in ``cursors``."""

    def __init__(
        self,
        plan: Plan,
        runtime: RunClient,
        accept: Callable[[str, list[Event], Plan], list[str]],
        cursors: Cursors,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert plan.poll is not None
        self.plan = plan
        self.runtime = runtime
        self.accept = accept
        self.cursors = cursors
        self.clock = clock
        self.every = float(plan.poll.get("every", 300))
        self.name = f"poll:{plan.name}"
        self.next_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def poll(self) -> list[str]:
        """One poll: the runs it stored. Raises on a failed request (the cursor stays)."""
        raise NotImplementedError


class ContactPoller(Poller):
    """One recipe's poll of GoHighLevel contacts."""

    def __init__(self, plan: Plan, *args: Any, **kwargs: Any) -> None:
        super().__init__(plan, *args, **kwargs)
        assert plan.poll is not None
        self.overlap = float(plan.poll.get("overlap", 60))
        self.field = "dateAdded" if plan.trigger_event == "ContactCreate" else "dateUpdated"

    def poll(self) -> list[str]:
        """One poll: the runs it stored. Raises on a failed request (the cursor stays)."""
        self.next_at = self.clock() + self.every
        now = datetime.fromtimestamp(self.clock(), UTC)
        stored = self.cursors.get(self.name)
        if stored is None:  # first poll: changes from now on (the webhooks had the past)
            self.cursors.put(self.name, _iso(now))
            return []
        since = _iso(_parse(stored) - timedelta(seconds=self.overlap))
        location = self.runtime.env.get("GHL_LOCATION_ID", "")
        runs: list[str] = []
        latest = stored
        after: list[Any] | None = None
        for _ in range(MAX_PAGES):
            contacts = self._page(location, since, after)
            events = []
            for contact in contacts:
                moment = contact.get(self.field)
                if not isinstance(contact.get("id"), str) or not isinstance(moment, str):
                    continue
                payload = {**contact, "type": self.plan.trigger_event, "locationId": location}
                payload.pop("searchAfter", None)
                key = f"poll:ghl:{contact['id']}:{moment}"
                subject = f"ghl:contact:{contact['id']}"
                events.append(Event("ghl", self.plan.trigger_event, payload, key, subject, payload))
                latest = max(latest, moment)
            runs.extend(self.accept("poll", events, self.plan))
            if len(contacts) < PAGE_SIZE:
                break
            after = contacts[-1].get("searchAfter")
            if not isinstance(after, list):
                break
        self.cursors.put(self.name, latest)
        return runs

    def _page(self, location: str, since: str, after: list[Any] | None) -> list[dict[str, Any]]:
        app = self.runtime.registry.apps["ghl"]
        op = app.operations[SEARCH]
        body: dict[str, Any] = {
            "locationId": location,
            "pageLimit": PAGE_SIZE,
            "filters": [{"field": self.field, "operator": "range", "value": {"gte": since}}],
            "sort": [{"field": self.field, "direction": "asc"}],
        }
        if after:
            body["searchAfter"] = after
        headers = dict(app.headers(op)) if app.headers else {}
        client = self.runtime.clients["ghl"]
        response = client.request(op.method, op.path, json=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{op.method} {op.path} answered {response.status_code}")
        contacts = response.json().get("contacts")
        return [c for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else []


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
    """One recipe's poll of a Connecteam task board for edits (Connecteam sends no webhook for
    them): every task is compared with how the last poll saw it (its fields' digest, kept per
    task in the cursors table), and each one that changed is the recipe's ``task.updated``
    event, with ``changed`` naming the fields. The first poll only looks."""

    def __init__(self, plan: Plan, runtime: RunClient, *args: Any, **kwargs: Any) -> None:
        from connector.language.template_env import template_env
        from connector.language.templates import compile_value

        super().__init__(plan, runtime, *args, **kwargs)
        assert plan.poll is not None
        raw = (plan.poll.get("with") or {}).get("taskBoardId")
        self.board = str(compile_value(plan.jinja, raw).render({"env": template_env(runtime.env)}))

    def poll(self) -> list[str]:
        self.next_at = self.clock() + self.every
        first = self.cursors.get(self.name) is None
        tasks = self._tasks()
        events, seen = [], []
        for task in tasks:
            view = _task_view(task, self.board)
            if not isinstance(view.get("id"), str):
                continue
            fields = {k: view.get(k) for k in TASK_FIELDS}
            digest = digest_of(fields)
            name = f"{self.name}:{view['id']}"
            before = self.cursors.get(name)
            now_seen = json.dumps(fields, default=str)
            if now_seen != before:  # written only when it changed
                seen.append((name, now_seen))
            if first or before is None:
                continue  # the first poll only looks; a new task is task_published's
            old = json.loads(before)
            if digest_of(old) == digest:
                continue
            changed = sorted(k for k in TASK_FIELDS if old.get(k) != view.get(k))
            payload = {**view, "changed": changed}
            key = f"poll:connecteam:task:{view['id']}:{digest}"
            events.append(Event("connecteam", "task.updated", payload, key))
        runs = self.accept("poll", events, self.plan) if events else []
        for name, value in seen:  # only once the runs are stored
            self.cursors.put(name, value)
        self.cursors.put(self.name, str(self.clock()))
        return runs

    def _tasks(self) -> list[dict[str, Any]]:
        client = self.runtime.clients["connecteam"]
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


def poller_for(
    plan: Plan,
    runtime: RunClient,
    accept: Callable[[str, list[Event], Plan], list[str]],
    cursors: Cursors,
) -> Poller:
    """The poller of ``plan``'s ``trigger.poll``."""
    if plan.trigger_app == "connecteam":
        return TaskPoller(plan, runtime, accept, cursors)
    return ContactPoller(plan, runtime, accept, cursors)
