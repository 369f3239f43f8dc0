"""Alerts: a person hears when something needs them, through Apprise (email, Slack, Teams,
Discord, a generic webhook and the rest it supports; nothing per service is written here).

What is an incident (:func:`incident_of`, :func:`conflict_incident`): a run that failed for good,
a write whose outcome is unknown, a connection that needs a new login, a sync conflict left for a
person. Each is one message with what failed, what the vendor said and a link to the run's page.

:class:`Alerts` sends them off the runs' threads: :meth:`Alerts.notify` only puts the incident
on a queue, and one sending thread does the rest, so an alert target that is slow, down or wrong
never blocks or delays a run. Within a window (a minute), the first incident of a recipe and kind
goes out alone and its repeats are grouped into one digest sent when the window ends: 50
failures in a minute are two messages, not 50. A message a target refuses is tried again with
backoff, a few times, then dropped with a log line.

Each alert opens an incident (:mod:`connector.persistence.incidents`) when it is given a store:
a repeat of an incident still open (a retry of the run that failed again, the same run finished
twice after a restart) sends nothing more. An incident that closes (a retry or replay of its run
succeeded, a person marked it resolved, its conflict was decided, its level went back to normal)
sends one short "resolved" message to the same targets (:meth:`Alerts.announce`).

``CONNECTOR_ALERT_URLS`` names the deployment's targets (Apprise URLs, separated by spaces or
commas); a recipe's or a sync's ``alerts:`` adds its own (:mod:`connector.serve.targets`).
``CONNECTOR_PUBLIC_URL`` is where the run pages are reached from the alert's reader (default: the
address `connector serve` listens on).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.persistence.incidents import Incident as Opened
from connector.persistence.incidents import IncidentStore
from connector.records import RunRecord, StepRecord
from connector.serve.targets import Route, Sender, alert_urls, hide_in_logs, send_apprise, shown_url

__all__ = ["Alerts", "Incident", "conflict_incident", "incident_of", "resolved_incident"]

log = logging.getLogger("connector.alerts")

WINDOW_SECONDS = 60.0  # repeats within it are grouped into one digest
ATTEMPTS = 5  # tries of one message to one target
RETRY_BASE_SECONDS = 2.0  # backoff between tries: 2, 4, 8, 16 s
DIGEST_LINES = 20  # incidents a digest lists one by one


@dataclass(frozen=True)
class Incident:
    """One thing a person should hear about (or hear is over: ``kind`` "resolved")."""

    kind: str  # failed | outcome unknown | needs login | conflict | level | resolved
    recipe: str  # the recipe's (or sync's) name; "" for a level of the whole deployment
    run_id: str
    what: str  # one line: what failed
    said: str  # the vendor's message, or the error (redacted, as the record has it)
    link: str = ""  # the run's page
    head: str = ""  # the title after "connector: ", when not the recipe's and the kind's

    @property
    def key(self) -> tuple[str, str]:
        """Incidents with one key are repeats of each other."""
        return (self.kind, self.recipe or self.head)

    def title(self) -> str:
        if self.head:
            return f"connector: {self.head}"
        heads = {
            "failed": "failed",
            "outcome unknown": "a write's outcome is unknown",
            "needs login": "a connection needs a new login",
            "conflict": "a sync conflict waits for a person",
            "resolved": "resolved",
        }
        return f"connector: {self.recipe}: {heads.get(self.kind, self.kind)}"

    def body(self) -> str:
        lines = [self.what]
        if self.said:
            lines.append(f"What it said: {self.said}")
        if self.link:
            lines.append(f"The run: {self.link}")
        return "\n".join(lines)


def resolved_incident(opened: Opened, link: str = "") -> Incident:
    """The short message that says the incident ``opened`` is over, and why."""
    if opened.key.startswith("level:"):
        head = f"{opened.key.removeprefix('level:')} back to normal"
        return Incident("resolved", "", "", f"{opened.closed_by}.", "", head=head)
    if opened.key.startswith("login:"):
        head = f"connection {opened.key.removeprefix('login:')} logged in again"
        return Incident("resolved", "", "", f"Resolved: {opened.what}", "", head=head)
    what = f"Resolved ({opened.closed_by}): {opened.what}"
    if opened.repeats:
        what += f" It failed {opened.repeats} more time{'s' if opened.repeats != 1 else ''} first."
    return Incident("resolved", opened.recipe, opened.fixed_by or opened.run_id, what, "", link)


def _steps(record: RunRecord) -> Iterable[StepRecord]:
    for step in record.steps:
        yield step
        yield from step.items or ()


def incident_of(record: RunRecord, link: str = "") -> Incident | None:
    """The incident a finished run is, or None (it succeeded, or is still waiting)."""
    if record.status != "failed":
        return None
    failed = [s for s in _steps(record) if s.status == "failed" and s.error]
    login = [
        s
        for s in failed
        if "needs a new login" in (s.error or "") or "auth login" in (s.error or "")
    ]
    unknown = [s for s in failed if "outcome unknown" in (s.error or "")]
    kind, culprit = "failed", failed[0] if failed else None
    if login:
        kind, culprit = "needs login", login[0]
    elif unknown:
        kind, culprit = "outcome unknown", unknown[0]
    said = (culprit.error if culprit is not None else None) or record.error or ""
    where = f" at step {culprit.id!r}" if culprit is not None else ""
    event = f"{record.trigger_app} {record.trigger_event}"
    what = f"Run {record.id} of {record.recipe} ({event}) failed for good{where}."
    if kind == "outcome unknown":
        what = f"Run {record.id} of {record.recipe} stopped: a write's outcome is unknown{where}."
    return Incident(kind, record.recipe, record.id, what, said[:1000], link)


def conflict_incident(conflict: Mapping[str, Any], link: str = "") -> Incident:
    """A sync conflict left for a person (a record of ``connector.persistence.sync``)."""
    kind, field_ = conflict.get("kind"), conflict.get("field")
    what = (
        f"Sync {conflict.get('sync')}: {kind} {conflict.get('ghl_id')} <-> "
        f"{conflict.get('connecteam_id')}: {field_} changed on both sides; it waits for a person"
        f" (connector sync conflicts; connector sync resolve {conflict.get('id')} ...)."
    )
    return Incident(
        "conflict", str(conflict.get("sync") or "sync"), str(conflict.get("run_id") or ""), what,
        "", link,
    )  # fmt: skip


@dataclass(order=True)
class _Send:
    due: float
    seq: int
    url: str = field(compare=False)
    title: str = field(compare=False)
    body: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


_STOP = object()


class Alerts:
    """Sends incidents to ``urls`` from its own thread (see the module's docstring).

    ``send`` sends one message to one URL (default: Apprise); ``clock`` is monotonic seconds;
    ``store`` keeps the incidents (None: every alert is new, nothing is announced resolved);
    ``routes`` the recipes' own targets, by recipe (or sync) name.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        send: Sender = send_apprise,
        window: float = WINDOW_SECONDS,
        attempts: int = ATTEMPTS,
        retry_base: float = RETRY_BASE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        store: IncidentStore | None = None,
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        self.urls = list(urls)
        self._send = send
        self.window = window
        self.attempts = attempts
        self.retry_base = retry_base
        self.clock = clock
        self.store = store
        self.routes = dict(routes or {})
        hide_in_logs([*self.urls, *(u for own, _ in self.routes.values() for u in own)])
        self.base_url = ""  # where run pages are: set by the server once it listens
        self._queue: queue.Queue[Any] = queue.Queue()
        self._due: list[_Send] = []
        self._seq = itertools.count()
        self._window_end: float | None = None
        self._seen: set[tuple[str, str]] = set()
        self._repeats: dict[tuple[str, ...], list[Incident]] = {}
        self._known: set[str] = set()  # the incidents of conflicts and logins known open
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], routes: Mapping[str, Route] | None = None, **options: Any
    ) -> Alerts | None:
        """Alerts to ``CONNECTOR_ALERT_URLS`` and the recipes' own ``routes``; None when there
        is no target at all."""
        urls = alert_urls(env.get("CONNECTOR_ALERT_URLS"))
        routes = {name: route for name, route in (routes or {}).items() if route[0] or not route[1]}
        if not urls and not any(own for own, _ in routes.values()):
            return None
        alerts = cls(urls, routes=routes, **options)
        alerts.base_url = (env.get("CONNECTOR_PUBLIC_URL") or "").rstrip("/")
        return alerts

    def link(self, run_id: str) -> str:
        return f"{self.base_url}/ui/runs/{run_id}" if self.base_url and run_id else ""

    def urls_for(self, recipe: str) -> tuple[str, ...]:
        """Where an incident of ``recipe`` goes: the deployment's targets and the recipe's own
        (or only its own, when it says so)."""
        own, deployment = self.routes.get(recipe, ((), True))
        urls = list(self.urls) if deployment else []
        urls.extend(u for u in own if u not in urls)
        return tuple(urls)

    # what runs call: never blocks, never raises

    def notify(self, incident: Incident) -> None:
        """Queue ``incident``; the sending thread takes it from there."""
        self._start()
        self._queue.put(incident)

    def _opened(self, incident: Incident, key: str | None = None) -> bool:
        """Record ``incident``: True when it is new (its alert goes out), False when it repeats
        one still open."""
        if self.store is None:
            return True
        try:
            return self.store.open(
                kind=incident.kind,
                recipe=incident.recipe,
                run_id=incident.run_id,
                what=incident.what,
                said=incident.said,
                key=key,
            )
        except Exception as exc:  # the database is away: better an alert too many than none
            log.warning("incident of run %s not recorded: %s", incident.run_id, type(exc).__name__)
            return True

    def run_finished(self, record: RunRecord) -> None:
        """The incident ``record`` is, if any, opened and its alert queued (a repeat of an
        incident still open is counted, not sent)."""
        if not self.urls_for(record.recipe):
            return
        incident = incident_of(record, self.link(record.id))
        if incident is not None and self._opened(incident):
            self.notify(incident)

    def conflict(self, conflict: Mapping[str, Any], run_id: str) -> None:
        """A sync conflict left for a person: opened (once per conflict) and alerted."""
        incident = conflict_incident(conflict, self.link(run_id))
        key = f"conflict:{conflict.get('id')}"
        if key in self._known or not self.urls_for(incident.recipe):
            return
        self._known.add(key)
        if self._opened(incident, key=key):
            self.notify(incident)

    def level(self, name: str, crossed: bool, what: str) -> None:
        """A level of the whole deployment (``name``: the backlog, the failure rate) is over its
        threshold (``crossed``; one alert until it is back) or back to normal (``what`` says
        where it is now; the "back to normal" message goes out through :meth:`announce`)."""
        if self.store is None:
            return
        key = f"level:{name}"
        if not crossed:
            self.store.close(key, what)
            return
        incident = Incident("level", "", "", what, "", head=f"{name} over its threshold")
        if self._opened(incident, key=key):
            self.notify(incident)

    def logins(self, needing: Mapping[str, tuple[str, str]]) -> None:
        """The connections that need a new login now (by id: their app, and why): each opens an
        incident (one alert, whatever needed it: a run, a poll, a schedule); one that no longer
        needs it (logged in again) closes its incident."""
        if self.store is None:
            return
        for conn_id, (app, reason) in needing.items():
            key = f"login:{conn_id}"
            if key in self._known:
                continue
            what = (
                f"The connection {conn_id} needs a new login ({reason}); until then its runs"
                f" and polls fail. Log in again: connector auth login {app}"
            )
            head = f"connection {conn_id} needs a new login"
            if self._opened(Incident("needs login", "", "", what, "", head=head), key=key):
                self.notify(Incident("needs login", "", "", what, "", head=head))
            self._known.add(key)
        for opened in self.store.find(status="open", limit=1000):
            if opened.key.startswith("login:") and opened.key[6:] not in needing:
                self.store.close(opened.key, "logged in again")
                self._known.discard(opened.key)

    def announce(self, limit: int = 100) -> int:
        """Send the "resolved" message of every incident closed since (each once, whichever
        process sends it); how many were sent."""
        if self.store is None:
            return 0
        sent = 0
        for opened in self.store.find(status="closed", limit=limit):
            if not self.store.claim(opened.id):
                continue  # another process took it
            self.notify(resolved_incident(opened, self.link(opened.fixed_by or opened.run_id)))
            sent += 1
        return sent

    def close(self, timeout: float = 10.0) -> None:
        """Send the digest of what is grouped, try once what waits for a retry, and stop (at
        most ``timeout`` seconds)."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None

    # the sending thread

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="connector-alerts", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._wait())
            except queue.Empty:
                item = None
            now = self.clock()
            if self._window_end is not None and now >= self._window_end:
                self._digest()
            if item is _STOP:
                self._digest()
                for job in sorted(self._due):
                    job.attempt = self.attempts  # one last try, no more
                    self._try(job)
                return
            if isinstance(item, Incident):
                self._take(item, now)
            self._send_due(self.clock())

    def _wait(self) -> float | None:
        """Seconds until something is due: a send, or the end of the window."""
        times = [job.due for job in self._due[:1]]
        if self._window_end is not None:
            times.append(self._window_end)
        return max(0.0, min(times) - self.clock()) if times else None

    def _take(self, incident: Incident, now: float) -> None:
        urls = self.urls_for(incident.recipe)
        if not urls:
            return
        if self._window_end is None:
            self._window_end = now + self.window
        if incident.key in self._seen:
            self._repeats.setdefault(urls, []).append(incident)
            return
        self._seen.add(incident.key)
        self._queue_message(urls, incident.title(), incident.body())

    def _digest(self) -> None:
        groups, self._repeats = self._repeats, {}
        self._seen.clear()
        self._window_end = None
        for urls, repeats in groups.items():
            count = len(repeats)
            kinds = sorted({i.title().removeprefix("connector: ") for i in repeats})
            title = f"connector: {count} more incident{'s' if count != 1 else ''} (digest)"
            lines = [f"{count} more like the last alert within a minute: " + "; ".join(kinds)]
            for incident in repeats[:DIGEST_LINES]:
                said = incident.said or incident.what
                line = f"- {incident.recipe} {incident.run_id}: {said}"
                lines.append(line + (f" ({incident.link})" if incident.link else ""))
            if count > DIGEST_LINES:
                lines.append(f"... and {count - DIGEST_LINES} more: see the run history page")
            self._queue_message(urls, title, "\n".join(lines))

    def _queue_message(self, urls: Sequence[str], title: str, body: str) -> None:
        now = self.clock()
        for url in urls:
            heapq.heappush(self._due, _Send(now, next(self._seq), url, title, body))

    def _send_due(self, now: float) -> None:
        while self._due and self._due[0].due <= now:
            self._try(heapq.heappop(self._due))

    def _try(self, job: _Send) -> None:
        try:
            sent = self._send(job.url, job.title, job.body)
        except Exception as exc:  # a target's library error is a failed send, never a crash
            log.warning("alert to %s: %s", shown_url(job.url), type(exc).__name__)
            sent = False
        if sent:
            return
        if job.attempt >= self.attempts:
            log.warning(
                "alert to %s not sent after %d tries: %s",
                shown_url(job.url),
                job.attempt,
                job.title,
            )
            return
        job.due = self.clock() + self.retry_base * 2 ** (job.attempt - 1)
        job.attempt += 1
        heapq.heappush(self._due, job)
