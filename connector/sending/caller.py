"""One HTTP step, made durable: budget, attempts, retries, and the journal of effects.

:class:`Caller` sends a built request the way the contract promises:

- Each attempt is a checkpointed unit (``STEP#N``): it waits for the shared rate budget, sends,
  and records the answer together with the verdict of the retry policy
  (:mod:`connector.sending.retry`). A resumed run replays recorded attempts instead of sending.
- Waits between attempts go through the checkpoints (durable sleeps), and are kept on the step's
  record with their reason.
- A write takes a claim in the effect journal first (its ``once.key``, or the run and step), so
  it is performed once per identity across retries, resumes, duplicate deliveries and reruns; a
  later run gets the recorded result. An attempt that finds its own claim already ``sending``
  (the process died between sending and checkpointing) has an *unknown outcome*, resolved by the
  step's ``once.lookup`` or what the app knows before anything is sent again, or the step fails
  with "outcome unknown: check ...". Nothing is ever sent blindly a second time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import Any, Protocol

import httpx

from connector.apps import App
from connector.catalog.model import Operation
from connector.errors import ConnectorError, HTTPStepError, NotConnected, StepError
from connector.persistence.effects import EffectJournal
from connector.persistence.sealing import Vault
from connector.records import StepRecord, bounded
from connector.sending.checkpoints import Checkpoints, NoCheckpoints
from connector.sending.http import (
    DirectSender,
    Redactor,
    Sender,
    api_message,
    parse_body,
    shown_headers,
)
from connector.sending.retry import (
    RetryPolicy,
    Verdict,
    classify_error,
    classify_response,
)

__all__ = ["Caller", "RateGate"]

log = logging.getLogger("connector.run")

BUSY_POLL_SECONDS = 0.25
KEPT_HEADERS = ("retry-after", "x-ratelimit", "content-type")


class RateGate(Protocol):
    """The shared request budget (``connector.persistence.budgets``), per app, credential, location."""

    def acquire(self, app: App, credential: str, location: str) -> float:
        """Wait until one request may go; returns the seconds waited."""
        ...

    def observe(
        self, app: App, credential: str, location: str, headers: Mapping[str, str]
    ) -> None: ...


class EchoBook(Protocol):
    """Where the changes a write will be reported back as are recorded
    (:class:`connector.persistence.echoes.Echoes`)."""

    def expect(self, expected: Any) -> None: ...


class OutcomeUnknown(StepError):
    """A write may or may not have happened, and nothing the runtime knows can tell which."""


@dataclass
class Call:
    """One HTTP step's request and what the caller needs to know about it."""

    unit: str  # the checkpoint name of the step (or foreach item)
    app: App
    op: Operation
    client: httpx.Client
    request: httpx.Request
    location: str
    effect_key: str | None  # None for reads and for runs without an effect journal
    owner: str
    step_id: str
    resolve: Callable[[str], tuple[bool, Any]] | None = None  # unit -> (written?, output)
    link: Callable[[Any], Callable[[Any], Any] | None] | None = None  # output -> link writer
    describe: str = ""  # the write in words, for "check ..." messages


@dataclass
class Caller:
    checkpoints: Checkpoints = field(default_factory=NoCheckpoints)
    sender: Sender = field(default_factory=DirectSender)
    effects: EffectJournal | None = None
    throttle: RateGate | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time
    credentials: Mapping[str, str] = field(default_factory=dict)  # app -> fingerprint
    redactor: Redactor = field(default_factory=lambda: Redactor(()))
    echoes: EchoBook | None = None
    vault: Vault | None = None  # keeps a written output with a secret in it sealed in the journal
    # makes a write (given a transaction's connection) with the run's next transaction (the run
    # store's, connector.persistence.recorder), and writes what a run holds at once
    defer: Callable[[str, Callable[[Any], Any]], None] | None = None
    flush: Callable[[str], None] | None = None
    # the journal keys of writes this caller began and did not see done: their claims are
    # released when the run ends (EffectJournal.release_run)
    unsettled: set[str] = field(default_factory=set)
    _deferred: set[str] = field(default_factory=set)

    def call(self, call: Call, result: StepRecord, policy: RetryPolicy | None = None) -> Any:
        """Perform ``call``; fill ``result`` (status code, attempts, waits) and return the output.

        Raises :class:`HTTPStepError` when the API refused, :class:`StepError` otherwise.
        """
        policy = policy or self.policy
        safe = call.app.repeatable(call.op)
        key = call.effect_key if self.effects is not None else None
        if key is not None:
            self.unsettled.add(key)
            if key in self._deferred and self.flush is not None:  # this run wrote it before
                self.flush(_run_of(call.owner))
                self._deferred.clear()
        attempt = 0
        waited = 0.0
        unknown: str | None = None  # why the outcome of an earlier send is unknown
        resent_after_unknown = False
        while True:
            if unknown is not None and not safe:
                if not _can_tell(call):
                    raise OutcomeUnknown(call.step_id, f"{unknown}; {_settle_hint(call)}")
                if attempt >= policy.attempts:
                    raise OutcomeUnknown(
                        call.step_id,
                        f"outcome unknown after {attempt} attempts; {_settle_hint(call)}",
                    )
                written, output = self._resolve(call, attempt)
                if written:
                    result.note = "the answer was lost; the lookup found the write"
                    return self._done(call, output, None)
                unknown = None
                resent_after_unknown = True
            attempt += 1
            outcome: dict[str, Any] = self.checkpoints.step(
                f"{call.unit}#{attempt}" + (f"@{waited:.2f}" if waited else ""),
                partial(self._attempt, call, attempt, policy, safe),
            )
            claim = outcome.get("claim")
            if claim == "busy":  # another live run is making this write: wait for it
                attempt -= 1
                self.checkpoints.sleep(BUSY_POLL_SECONDS)
                waited += BUSY_POLL_SECONDS
                continue
            if claim == "unknown":
                if outcome.get("earlier"):  # an earlier run's claim, taken over: not an attempt
                    attempt -= 1
                    unknown = "outcome unknown: an earlier run sent it and its answer was lost"
                else:
                    result.attempts = attempt
                    unknown = "outcome unknown: the run stopped after the request was sent"
                continue
            if claim == "done":
                result.status_code = outcome.get("status")
                result.note = "done before: the recorded result, not sent again"
                result.done_before = True
                self.unsettled.discard(key)
                output = outcome.get("output")
                return self.vault.open(output) if self.vault else output
            result.attempts = attempt
            if outcome.get("budget_wait"):
                result.waits.append(
                    {"seconds": round(outcome["budget_wait"], 3), "reason": "rate budget"}
                )
                if outcome["budget_wait"] >= 1.0:
                    log.info(
                        "step %s waited %.1f s for %s's rate budget before attempt %d",
                        call.step_id,
                        outcome["budget_wait"],
                        call.app.title,
                        attempt,
                    )
            if outcome.get("request_headers"):
                result.request_headers = outcome["request_headers"]
            verdict = outcome["verdict"]
            result.status_code = outcome.get("status")
            action = verdict["action"]
            if action == "done":
                return self._done(call, outcome.get("body"), outcome.get("status"))
            said = self._keep_refusal(call, outcome, result)
            if action == "retry":
                delay = float(verdict.get("delay") or 0.0)
                wait = {"seconds": round(delay, 3), "reason": verdict["reason"]}
                wait.update(attempt=attempt + 1, of=policy.attempts, app=call.app.title)
                if said:
                    wait["message"] = said
                result.waits.append(wait)
                note_wait(call.step_id, wait)
                self.checkpoints.sleep(delay)
                continue
            if action == "unknown":
                if safe:  # cannot happen by the policy, but repeating a safe write is harmless
                    continue
                text = str(verdict["message"])
                if said and outcome.get("status") is not None:  # what the vendor said too
                    code = f"HTTP {outcome['status']}"
                    text = text.replace(code, f"{code} from {call.app.title} ({said})", 1)
                unknown = text
                continue
            # fail: the claim (nothing sent) is released when the run ends
            body = outcome.get("body")
            status = outcome.get("status")
            if resent_after_unknown and status is not None and call.app.existing_record:
                existing = call.app.existing_record(call.op, status, body)
                if existing is not None:
                    result.note = "the answer was lost; the API named the record it made"
                    return self._done(call, existing, None)
            message = str(verdict["message"])
            if status is not None and message.startswith((f"HTTP {status}", "gave up after")):
                gave_up = message.split(":", 1)[0] if message.startswith("gave up") else ""
                text = (said or _phrase(status)) + (f" ({gave_up})" if gave_up else "")
                raise HTTPStepError(call.step_id, status, text, app=call.app.title)
            raise StepError(call.step_id, message)

    def _keep_refusal(self, call: Call, outcome: Mapping[str, Any], result: StepRecord) -> str:
        """Keep a refusal's body on the step's record (redacted, bounded); what the vendor said
        in it, redacted, or ""."""
        if outcome.get("status") is None:
            return ""
        body = self.redactor.value(outcome.get("body"))
        result.response_body = bounded(body)
        return self.redactor.text(api_message(body))[:300] if body not in (None, "") else ""

    # units ---------------------------------------------------------------------------------------

    def _expect_echoes(self, call: Call) -> None:
        """Before a write goes, record what its vendor will report back (so `connector serve`
        does not take the report for a change to sync); before, as the report can come first."""
        assert call.app.echoes is not None and self.echoes is not None
        content = call.request.content
        try:
            body = json.loads(content) if content else None
        except ValueError:
            return
        expected = call.app.echoes(call.op, call.request.url.path, body)
        if expected:
            self.echoes.expect(expected)

    def _resolve(self, call: Call, attempt: int) -> tuple[bool, Any]:
        """Whether the write whose answer was lost happened (and its output). When it did not,
        the claim is marked as not sent, so the next attempt may send it."""
        written, output = False, None
        if call.resolve is not None:  # checkpoints its own requests (``UNIT:lookupN#k``)
            try:
                written, output = call.resolve(f"{call.unit}:lookup{attempt}")
            except ConnectorError as exc:
                reason = str(exc).removeprefix(f"step {call.step_id!r}: ")
                raise OutcomeUnknown(
                    call.step_id,
                    f"outcome unknown: the answer was lost and the look-up failed ({reason}); "
                    + _settle_hint(call, lookup=True),
                ) from None
            written = bool(written)
        # else the app refuses a repeat and names the record (refuses_duplicate, existing_record)
        effects, key = self.effects, call.effect_key
        if not written and effects is not None and key is not None:
            self.checkpoints.step(
                f"{call.unit}:absent{attempt}", lambda: effects.not_sent(key, call.owner)
            )
        return written, output

    def _done(self, call: Call, output: Any, status: int | None) -> Any:
        """Record in the journal that the write happened: with the run's next transaction
        (:attr:`defer`), or, when the step pairs ids (later steps may read the pair), as a unit
        of its own, the pair in the same transaction."""
        key, effects = call.effect_key, self.effects
        if key is not None and effects is not None:
            self.unsettled.discard(key)
            link = call.link(output) if call.link is not None else None
            kept = self.vault.seal(output) if self.vault else output  # no secret kept in clear
            if link is None and self.defer is not None:
                self.defer(_run_of(call.owner), effects.done_write(key, call.owner, kept, status))
                self._deferred.add(key)
            else:
                self.checkpoints.step(
                    f"{call.unit}:done",
                    lambda: _jsonable(effects.done(key, call.owner, kept, status, link)),
                )
        return output

    def _attempt(self, call: Call, attempt: int, policy: RetryPolicy, safe: bool) -> dict[str, Any]:
        """One attempt, a checkpointed unit: for a write, its claim in the journal (taken, and
        marked as on its way unless it is safe to repeat); the rate budget; the request; the
        answer and the retry policy's verdict on it."""
        effects, key = self.effects, call.effect_key
        guarded = effects is not None and key is not None and not safe
        if effects is not None and key is not None:
            claim = effects.begin(key, call.owner, _run_of(call.owner), sending=not safe)
            if claim.state == "done":
                return {"claim": "done", "output": claim.output, "status": claim.status_code}
            if claim.state == "busy":
                return {"claim": "busy"}
            if claim.state == "unknown" and not safe:
                return {"claim": "unknown", "earlier": claim.owner != call.owner}
        if self.echoes is not None and call.app.echoes is not None:
            self._expect_echoes(call)
        out: dict[str, Any] = {}
        credential = self.credentials.get(call.app.name, "")
        if self.throttle is not None:
            out["budget_wait"] = self.throttle.acquire(call.app, credential, call.location)
        try:
            response = self.sender.send(call.client, call.request, call.op)
        except NotConnected as exc:  # no usable credential: nothing was sent
            if guarded:
                effects.not_sent(key, call.owner)  # type: ignore[union-attr,arg-type]
            out["verdict"] = {
                "action": "fail",
                "delay": 0.0,
                "reason": "not connected",
                "message": str(exc),
            }
            return out
        except httpx.TransportError as exc:
            verdict = classify_error(
                app=call.app.name,
                method=call.op.method,
                error=exc,
                attempt=attempt,
                policy=policy,
                write_safe=safe,
                rng=self.rng,
            )
            if guarded and verdict.action != "unknown":
                effects.not_sent(key, call.owner)  # type: ignore[union-attr,arg-type]
            out["verdict"] = _verdict(verdict)
            out["error"] = f"{type(exc).__name__}: {exc}"
            return out
        body = parse_body(response)
        declared = _header_names(call.app.rate_limit_headers)
        headers = {
            k.lower(): v
            for k, v in response.headers.items()
            if k.lower().startswith(KEPT_HEADERS) or k.lower() in declared
        }
        if self.throttle is not None:
            self.throttle.observe(call.app, credential, call.location, headers)
        verdict = classify_response(
            rules=call.app.rate_limit_headers,
            method=call.op.method,
            status=response.status_code,
            headers=headers,
            body=body,
            attempt=attempt,
            policy=policy,
            write_safe=safe,
            now=self.clock(),
            rng=self.rng,
        )
        if guarded and verdict.action in ("retry", "fail"):
            effects.not_sent(key, call.owner)  # type: ignore[union-attr,arg-type]
        out.update(
            status=response.status_code,
            headers=headers,
            body=body,
            verdict=_verdict(verdict),
            request_headers=self.redactor.headers(shown_headers(response.request)),
        )
        return out


def _verdict(verdict: Verdict) -> dict[str, Any]:
    """A verdict as its attempt's checkpoint keeps it."""
    return {
        "action": verdict.action,
        "delay": verdict.delay,
        "reason": verdict.reason,
        "message": verdict.message,
    }


# the headers an app's rules read, by the rules (an app's rules do not change)
_names: dict[int, tuple[Any, frozenset[str]]] = {}


def _header_names(rules: Any) -> frozenset[str]:
    known = _names.get(id(rules))
    if known is None or known[0] is not rules:
        known = _names[id(rules)] = (rules, rules.header_names())
    return known[1]


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "no message"


def note_wait(step_id: str, wait: Mapping[str, Any]) -> None:
    """One log line for a wait before a retry: why, what the vendor said, which attempt is next."""
    said = f": {wait['message']}" if wait.get("message") else ""
    log.info(
        "step %s waits %.1f s (%s from %s%s), then attempt %d of %d",
        step_id,
        wait["seconds"],
        wait["reason"],
        wait.get("app", "the app"),
        said,
        wait["attempt"],
        wait["of"],
    )


def _run_of(owner: str) -> str:
    return owner.split("/", 1)[0]


def _jsonable(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    return to_json() if callable(to_json) else value


def fingerprint(secret: str) -> str:
    """A short, one-way name for a credential (budgets are per credential; tokens never stored)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""


def _can_tell(call: Call) -> bool:
    """Whether a lost answer can be resolved: by the step's look-up, or because the API would
    refuse this write if it happened already, naming the record."""
    if call.resolve is not None:
        return True
    refuses = call.app.refuses_duplicate
    if refuses is None:
        return False
    try:
        body = json.loads(call.request.content or b"null")
    except ValueError:
        body = None
    return refuses(call.op, body)


def _settle_hint(call: Call, lookup: bool = False) -> str:
    """What a person does about a write of unknown outcome."""
    run_id = call.owner.split("/", 1)[0]
    then = f"`connector runs retry {run_id}`"
    if lookup:
        return f"retry it once the look-up can answer ({then}), or check {call.describe}"
    return (
        f"check {call.describe}, then say what you found with `connector runs settle {run_id}"
        f" --written` (or --not-written) and finish the run with {then}"
    )
