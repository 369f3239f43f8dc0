"""How GoHighLevel behaves, as the data and callables its :class:`~connector.apps.App` declares:
its webhook (signed, :mod:`connector.builtins.ghl_signatures`), its contact poll, its rate-limit
headers and budgets, and the location a run for one of its events acts on.

A webhook is one event: its ``type`` is the event type, its body the payload, its
``webhookId`` the delivery's id. An event about a contact has the contact for subject
(``ghl:contact:ID``), so a change the runtime wrote itself is recognised as its echo.

The poll: GoHighLevel retries a failed delivery only so long, and pauses a URL that fails too
often, so a recipe on ``ContactUpdate`` (or ``ContactCreate``) may also poll ``POST
/contacts/search`` for contacts whose ``dateUpdated`` (``dateAdded``) is at or after a durable
cursor, less an overlap window (the search shows a change a few seconds late), sorted by that
date and paged with ``searchAfter``. Each contact found is the recipe's event (the contact, with
``type`` and ``locationId``), keyed by (id, date): a contact seen again in the overlap makes the
same run id, so it never runs twice. The cursor moves to the latest date seen only once every
run of the poll is stored; a poll that fails (the API away, a 429) leaves it, and the next one
covers the same ground.

GoHighLevel sends no webhook when a task is edited (only ``TaskCreate``, ``TaskComplete``,
``TaskDelete``), and its task search has no date filter: a sync that pairs tasks polls every task
of the location (:class:`TaskSearchPoller`, ``POST /locations/{id}/tasks/search`` page by page),
compares each with how the last poll saw it (a digest kept per task in the cursors), and each task
new or changed since is an event (``task.updated``). The first poll only looks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

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
from connector.apps.limits import RateLimitHeaders, RateWindow

if TYPE_CHECKING:  # the signatures need cryptography: loaded when serving, not at start-up
    from connector.builtins.ghl_signatures import WebhookKeys

__all__ = [
    "APP",
    "DELIVERY_FIELDS",
    "LOCATION_ENV",
    "POLLS",
    "RATE_LIMITS",
    "RATE_LIMIT_HEADERS",
    "WEBHOOK",
    "ContactPoller",
    "TaskSearchPoller",
    "event_of",
]

APP = "ghl"
LOCATION_ENV = "GHL_LOCATION_ID"

# 100 requests per 10 s and 200,000 a day per app and location
RATE_LIMITS: tuple[tuple[int, float, str], ...] = ((100, 10.0, "burst"), (200_000, 86_400.0, "day"))

RATE_LIMIT_HEADERS = RateLimitHeaders(
    windows=(
        # X-RateLimit-Remaining 0: wait X-RateLimit-Interval-Milliseconds
        RateWindow(
            remaining="X-RateLimit-Remaining",
            reset="X-RateLimit-Interval-Milliseconds",
            resets="after-milliseconds",
            limit="X-RateLimit-Max",
            budget="burst",
        ),
        # X-RateLimit-Daily-Remaining 0: wait until the next UTC midnight
        RateWindow(
            remaining="X-RateLimit-Daily-Remaining",
            resets="at-utc-midnight",
            limit="X-RateLimit-Limit-Daily",
            budget="day",
        ),
    )
)

# what differs between the deliveries of a burst (GoHighLevel sends redundant contact events)
DELIVERY_FIELDS = frozenset({"webhookId", "timestamp"})

# event types about a contact whose payload is the contact itself
CONTACT_EVENTS = frozenset(
    {"ContactCreate", "ContactUpdate", "ContactDelete", "ContactTagUpdate", "ContactDndUpdate"}
)


def event_of(payload: dict[str, Any]) -> Event:
    """A verified GoHighLevel webhook body as its event (400 when it names no ``type``)."""
    kind = payload.get("type")
    if not isinstance(kind, str) or not kind:
        raise Rejected("the webhook has no 'type'", status=400)
    webhook_id = payload.get("webhookId")
    # without a webhookId (older deliveries), the signed body itself identifies the delivery
    key = f"{APP}:{webhook_id}" if isinstance(webhook_id, str) and webhook_id else None
    subject = fields = None
    if kind in CONTACT_EVENTS and isinstance(payload.get("id"), str):
        subject, fields = f"{APP}:contact:{payload['id']}", payload
    return Event(APP, kind, payload, key or f"{APP}-body:{digest_of(payload)}", subject, fields)


def _keys(env: Mapping[str, str]) -> WebhookKeys:
    from connector.builtins.ghl_signatures import WebhookKeys

    return WebhookKeys.from_env(env)


def _verify(keys: WebhookKeys, body: bytes, headers: Mapping[str, str]) -> None:
    from connector.builtins.ghl_signatures import verify_ghl

    verify_ghl(body, headers, keys)


def _parse(keys: WebhookKeys, payload: dict[str, Any], now: float) -> Delivered:
    from connector.builtins.ghl_signatures import check_timestamp

    check_timestamp(payload, now)
    event = event_of(payload)
    webhook_id = payload.get("webhookId")
    delivery = webhook_id if isinstance(webhook_id, str) and webhook_id else event.key
    return Delivered([event], delivery)


WEBHOOK = Webhook(
    path=APP,
    settings=_keys,
    verify=_verify,
    parse=_parse,
    env=("GHL_WEBHOOK_PUBLIC_KEY", "GHL_WEBHOOK_RSA_PUBLIC_KEY"),
    description="signed with Ed25519 (X-GHL-Signature) or RSA (X-WH-Signature); the body's "
    "timestamp within 5 minutes",
)


def run_env(env: Mapping[str, str]) -> Callable[[Event], Mapping[str, str]]:
    """A run for a GoHighLevel event acts on the location the event names."""

    def of(event: Event) -> Mapping[str, str]:
        location = event.payload.get("locationId")
        return {LOCATION_ENV: location} if isinstance(location, str) and location else {}

    return of


# -- the contact poll ------------------------------------------------------------------------

PAGE_SIZE = 100
MAX_PAGES = 50  # per poll; the rest waits for the next one (the cursor moved past what was run)
SEARCH = "ghl.search-contacts-advanced"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class ContactPoller(Poller):
    """One recipe's poll of GoHighLevel contacts (see the module)."""

    def __init__(self, setup: PollSetup) -> None:
        super().__init__(setup)
        self.overlap = float(self.plan.poll.get("overlap", 60))
        self.field = "dateAdded" if self.plan.trigger_event == "ContactCreate" else "dateUpdated"

    def poll(self) -> list[str]:
        """One poll: the runs it stored. Raises on a failed request (the cursor stays)."""
        self.next_at = self.clock() + self.every
        now = datetime.fromtimestamp(self.clock(), UTC)
        stored = self.cursors.get(self.name)
        if stored is None:  # first poll: changes from now on (the webhooks had the past)
            self.cursors.put(self.name, _iso(now))
            return []
        since = _iso(_parse_date(stored) - timedelta(seconds=self.overlap))
        location = self.runtime.env.get(LOCATION_ENV, "")
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
                key = f"poll:{APP}:{contact['id']}:{moment}"
                subject = f"{APP}:contact:{contact['id']}"
                events.append(Event(APP, self.plan.trigger_event, payload, key, subject, payload))
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
        app = self.runtime.registry.apps[APP]
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
        client = self.runtime.clients[APP]
        response = client.request(op.method, op.path, json=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"{op.method} {op.path} answered {response.status_code}")
        contacts = response.json().get("contacts")
        return [c for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else []


POLLS: dict[str, Poll] = {
    "ContactUpdate": Poll(ContactPoller, what="GoHighLevel contacts"),
    "ContactCreate": Poll(ContactPoller, what="GoHighLevel contacts"),
}


# -- the task poll (a sync's) ------------------------------------------------------------------

TASK_SEARCH = "ghl.task-search"
TASK_VIEW = ("title", "body", "dueDate", "completed", "assignedTo", "contactId")


class TaskSearchPoller(Poller):
    """A sync's poll of every GoHighLevel task of the location (see the module)."""

    def poll(self) -> list[str]:
        started = self.clock()
        self.next_at = started + self.every
        first = self.cursors.get(self.name) is None
        known = self.cursors.named(f"{self.name}:")  # one read, not one per task
        location = self.runtime.env.get(LOCATION_ENV, "")
        events, seen = [], []
        for task in self._tasks(location):
            task_id = task.get("id") or task.get("_id")
            if not isinstance(task_id, str) or not task_id:
                continue
            view = {k: task.get(k) for k in TASK_VIEW}
            name = f"{self.name}:{task_id}"
            now_seen = digest_of(view)
            before = known.get(name)
            if now_seen == before:
                continue
            seen.append((name, now_seen))
            if first:
                continue  # the first poll only looks
            payload = {**task, "id": task_id, "type": self.plan.trigger_event}
            payload["locationId"] = location
            key = f"poll:{APP}:task:{task_id}:{now_seen}:{started:.3f}"
            events.append(Event(APP, self.plan.trigger_event, payload, key))
        runs = self.accept("poll", events, self.plan) if events else []
        # only once the runs are stored; the tasks' and the poll's own, in one transaction
        self.cursors.put_many([*seen, (self.name, str(started))])
        return runs

    def _tasks(self, location: str) -> list[dict[str, Any]]:
        app = self.runtime.registry.apps[APP]
        op = app.operations[TASK_SEARCH]
        headers = dict(app.headers(op)) if app.headers else {}
        client = self.runtime.clients[APP]
        path = op.path.replace("{locationId}", location)
        out: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            body = {"limit": PAGE_SIZE, "skip": page * PAGE_SIZE}
            response = client.request(op.method, path, json=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{op.method} {path} answered {response.status_code}")
            found = response.json().get("tasks")
            tasks = [t for t in found if isinstance(t, dict)] if isinstance(found, list) else []
            out.extend(tasks)
            if len(tasks) < PAGE_SIZE:
                break
        return out
