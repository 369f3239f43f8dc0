"""What an app brings to ``connector serve``: its events, its webhook routes and its polls.

An :class:`Event` is one thing that happened at a vendor, as recipes' triggers name it (app and
type) with the payload that is ``trigger`` in templates. An app declares, on
:class:`~connector.apps.App`:

- :class:`Webhook` routes, mounted at ``POST /webhooks/<path>``: how a request is admitted
  (a secret in the URL), verified (a signature over the raw body) and read into events. Each step
  refuses a request by raising :class:`Rejected`, with the status to answer.
- :class:`Poll` entries, per trigger event: how a recipe's ``trigger.poll`` finds the changes no
  webhook tells of, as a :class:`Poller` that ``serve`` calls every ``every`` seconds.

Nothing here sends or stores anything: ``serve`` reads bodies within bounds, stores the events'
runs and keeps the pollers' cursors; the app's callables only decide and parse.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError

__all__ = [
    "Delivered",
    "Event",
    "Poll",
    "PollSetup",
    "Poller",
    "Rejected",
    "Webhook",
    "digest_of",
]


@dataclass(frozen=True)
class Event:
    """One event: the ``app`` and ``type`` recipes' triggers name (``ghl`` / ``ContactUpdate``),
    the ``payload`` that is ``trigger`` in templates, and a ``key`` unique to it (its delivery's
    id and index), from which its runs' ids are made, so a delivery that arrives twice makes the
    same runs. ``subject`` is the record it is about (``ghl:contact:ID``), with that record's
    ``fields`` as the event shows them: the intake uses them to recognise a change the runtime
    wrote itself (an echo) and to run the events about one record in order."""

    app: str
    type: str
    payload: dict[str, Any]
    key: str
    subject: str | None = None
    fields: Mapping[str, Any] | None = None


def digest_of(value: Any) -> str:
    """A short, stable digest of a JSON-like value (keys sorted)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Rejected(ConnectorError):
    """A webhook that must not run: answered 401 (a bad signature), 404 (a wrong secret in the
    URL) or 400 (a stale or malformed body), with a reason that names what was wrong and no
    secret. ``kind`` is what ``/metrics`` counts it as, when not what its status says."""

    def __init__(self, reason: str, status: int = 401, kind: str | None = None) -> None:
        self.reason = reason
        self.status = status
        self.kind = kind
        super().__init__(reason)


@dataclass(frozen=True)
class Delivered:
    """What one webhook request carried: its events, and the delivery's own id (the vendor's
    ``webhookId``, ``requestId``), by which a delivery sent again is known (None: none)."""

    events: Sequence[Event]
    delivery_id: str | None = None


def _no_settings(env: Mapping[str, str]) -> None:
    return None


@dataclass(frozen=True)
class Webhook:
    """One webhook route of an app: ``POST /webhooks/<path>`` (Starlette's path syntax:
    ``connecteam/{secret}``); the path is the app's name or starts with it and ``/``.

    A request goes through, in order, each callable that is given, and any of them refuses it by
    raising :class:`Rejected`:

    - ``settings(env)``, once when serving starts: what the others check against, read from the
      environment variables ``env`` names (keys, secrets); it raises
      :class:`~connector.errors.UsageError` for a variable that is set but unusable;
    - ``admit(settings, path_params, headers)``, before the body is read (a secret in the URL);
    - ``verify(settings, body, headers)``, on the raw body (a signature);
    - ``parse(settings, payload, now)``, on the body read as a JSON object, with the current
      time in epoch seconds (a timestamp window): the events, and the delivery's id.
    """

    path: str
    parse: Callable[[Any, dict[str, Any], float], Delivered]
    settings: Callable[[Mapping[str, str]], Any] = _no_settings
    admit: Callable[[Any, Mapping[str, str], Mapping[str, str]], None] | None = None
    verify: Callable[[Any, bytes, Mapping[str, str]], None] | None = None
    env: tuple[str, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class PollSetup:
    """What a poller is made with: the recipe's ``plan`` (its ``poll`` block: ``every``,
    ``with``), the ``runtime`` (its ``env``, ``registry`` and ``clients``, one ``httpx.Client`` per
    app at its base URL with its auth), ``accept(source, events, plan)`` that stores the runs of
    the events it found and returns their ids, and ``cursors`` (``get(name)``, ``put(name,
    value)``: durable text by name; ``named(prefix)``, every cursor whose name starts with
    ``prefix``, and ``put_many([(name, value), ...])``, in one transaction, for a poll that keeps
    one per record) for where it got to."""

    plan: Any
    runtime: Any
    accept: Callable[[str, list[Event], Any], list[str]]
    cursors: Any
    clock: Callable[[], float] = time.time


class Poller:
    """One recipe's ``trigger.poll``: every ``every`` seconds (``poll.every``, default 300),
    ``serve`` calls :meth:`poll`, which hands the changes it finds to ``accept`` and keeps its
    position under ``name`` in ``cursors``. A poll that raises (the API away, a 429) is logged,
    and the next one covers the same ground: move a cursor only once the runs are stored."""

    def __init__(self, setup: PollSetup) -> None:
        plan = setup.plan
        assert plan.poll is not None
        self.plan = plan
        self.runtime = setup.runtime
        self.accept = setup.accept
        self.cursors = setup.cursors
        self.clock = setup.clock
        self.every = float(plan.poll.get("every", 300))
        self.name = f"poll:{plan.name}"
        self.next_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def poll(self) -> list[str]:
        """One poll: the runs it stored. Raises on a failed request (the cursor stays)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Poll:
    """How one trigger event of an app is polled: ``start`` makes a recipe's :class:`Poller`;
    ``needs`` are the keys the recipe's ``trigger.poll.with`` must give (``taskBoardId``), and
    ``what`` names what is polled in messages (``Connecteam tasks``)."""

    start: Callable[[PollSetup], Poller]
    needs: tuple[str, ...] = ()
    what: str = ""
