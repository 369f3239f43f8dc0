"""Executing a plan: steps in order over injected HTTP clients, recorded as they finish.

The engine touches no file and opens no connection of its own: it is given the registry, one
``httpx.Client`` per app, a :class:`~connector.sending.caller.Caller` (checkpoints, retries, the
rate budget, the journal of writes) and a :class:`~connector.records.Recorder`. Each run renders
its steps and builds their requests, then hands them to its sender
(:mod:`connector.runtime.senders`): a real run sends them, a dry run shows them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connector.apps import Action, App, RunContext
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.config import connector_home
from connector.errors import StepError, TemplateError, step_failure
from connector.language.paths import child_path
from connector.language.placeholder import Placeholder
from connector.language.plan import OncePlan, Plan, StepPlan
from connector.language.template_env import template_env
from connector.records import (
    Recorder,
    RunRecord,
    StepRecord,
    bounded,
    current_run,
    ms_since,
    new_run_id,
    now_iso,
)
from connector.runtime.paged_steps import fetch_pages, walk_pages
from connector.runtime.senders import DryRunSender, LiveSender, StepSender, json_value
from connector.sending.auth import ACCOUNT
from connector.sending.caller import Call, Caller
from connector.sending.http import ParameterError, Redactor, build_request
from connector.sending.paging import PageCount
from connector.sending.retry import RetryPolicy

__all__ = ["Engine", "Placeholder"]

log = logging.getLogger("connector.run")


def _plain(value: Any) -> Any:
    """Placeholders become their text so records stay JSON."""
    if isinstance(value, Placeholder):
        return str(value)
    if isinstance(value, dict):
        return {str(k) if isinstance(k, Placeholder) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass
class Engine:
    """Runs plans. One engine serves many runs; it holds no per-run state."""

    registry: Registry
    clients: Mapping[str, httpx.Client]
    env: Mapping[str, str] = field(default_factory=dict)
    caller: Caller = field(default_factory=Caller)
    recorder: Recorder | None = None
    redactor: Redactor = field(default_factory=lambda: Redactor(()))
    home: Path | None = None  # CONNECTOR_HOME, for actions that keep state (the id-link store)
    services: dict[str, Any] = field(default_factory=dict)  # shared objects actions may cache
    links: Any = None  # the id-link store (``put_in``) that ``once.link`` writes through

    def __post_init__(self) -> None:
        if self.home is None:
            self.home = connector_home(self.env)
        self.caller.redactor = self.redactor

    def close(self) -> None:
        """Close what actions cached in ``services`` (the id-link store's connection, say)."""
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close):
                close()
        self.services.clear()

    def run(
        self,
        plan: Plan,
        event: Any,
        *,
        dry_run: bool = False,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
        parent: str | None = None,
        sandbox: bool = False,
        claims_of: str | None = None,
    ) -> RunRecord:
        """Run ``plan`` for ``event``. ``env`` is what templates see as ``env`` and where a
        location comes from (default: the engine's environment, less its secrets).

        ``claims_of`` is the run whose per-run write claims (writes without ``once.key``) this
        run continues: a retry goes on with its parent's, so what the parent wrote (or left with
        an unknown outcome) is not written again."""
        record = RunRecord(
            id=run_id or new_run_id(),
            recipe=plan.name,
            recipe_hash=plan.recipe_hash,
            recipe_path=plan.path,
            trigger_app=plan.trigger_app,
            trigger_event=plan.trigger_event,
            trigger=self.redactor.value(event),
            dry_run=dry_run,
            parent=parent,
            sandbox=sandbox,
            env=dict(
                template_env(self.env if env is None else env, self.registry.template_variables)
            ),
        )
        started = time.perf_counter()
        if self.recorder is not None:
            self.recorder.run_started(record)
        sender: StepSender = (
            DryRunSender(self.redactor, self.registry.template_variables)
            if dry_run
            else LiveSender()
        )
        run = _Run(self, plan, record, event, sender, claims_of or record.id)
        current = current_run.set(record.id)
        if not dry_run:
            log.info(
                "run %s started: recipe=%s event=%s %s subject=%s",
                record.id,
                plan.name,
                plan.trigger_app,
                plan.trigger_event,
                self.redactor.text(_subject(event)),
            )
        try:
            run.execute()
        finally:
            run.close()
            record.finished_at = now_iso()
            record.duration_ms = ms_since(started)
            if self.recorder is not None:
                self.recorder.run_finished(record)
            current_run.reset(current)
        return record


class _Run:
    """The state of one run of one plan."""

    def __init__(
        self,
        engine: Engine,
        plan: Plan,
        record: RunRecord,
        event: Any,
        sender: StepSender,
        claims_of: str,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.record = record
        self.sender = sender
        self.dry_run = sender.dry_run
        self.claims_of = claims_of  # whose per-run claims (``run:RUN/unit``) writes take
        self.steps: dict[str, dict[str, Any]] = {}
        self.context: dict[str, Any] = {
            "trigger": event,
            "steps": self.steps,
            "vars": {},
            "env": sender.template_env(record.env),
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        # paged steps whose pages the next step walks (`pages:` then `foreach` over its output):
        # their record and their items as they come, and the records of the steps walked
        self._streams: dict[str, tuple[StepRecord, Iterator[Any], PageCount]] = {}
        self._walked: dict[str, tuple[StepPlan, StepRecord]] = {}
        self._summarized: set[str] = set()  # steps whose output is a summary (streamed)
        self.action_context = RunContext(
            run_id=record.id,
            recipe=plan.name,
            home=engine.home or connector_home(engine.env),
            env={**engine.env, **record.env},
            dry_run=sender.dry_run,
            services=engine.services,
        )

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()

    # what the paged steps (connector.runtime.paged_steps.PagedRun) are given of a run

    def keep_stream(
        self, step_id: str, record: StepRecord, items: Iterator[Any], count: PageCount
    ) -> None:
        """The pages of ``step_id`` are walked by the next step as they come."""
        self._streams[step_id] = (record, items, count)

    def walked(self, step_id: str, source: StepPlan, paged: StepRecord) -> None:
        """``step_id`` walked the pages of ``source`` (whose record is ``paged``): both
        outputs are summaries."""
        self._summarized.update((step_id, source.id))
        self._walked[step_id] = (source, paged)

    def redact(self, text: str) -> str:
        return self.engine.redactor.text(text)

    def execute(self) -> None:
        record = self.record
        missing = self._missing_fields()
        if missing:
            record.status, record.error = "failed", missing
            for step in self.plan.steps:
                skipped = StepRecord(step.id, step.action, "skipped")
                skipped.error = "not run: the trigger event is incomplete"
                self._finish(step, skipped)
            return
        try:
            for name, value in self.plan.vars:
                self.context["vars"][name] = value.render(self.context)
        except TemplateError as exc:
            record.status, record.error = "failed", f"vars: {exc}"
            return
        failed: str | None = None
        tolerated: list[str] = []
        for step in self.plan.steps:
            if failed is not None:
                result = StepRecord(step.id, step.action, "skipped")
                result.error = f"not run: step {failed!r} failed"
                self._finish(step, result)
                continue
            ran = self._step(step)
            if ran is None:  # its pages are walked by the next step, recorded with it
                continue
            walked = self._walked.pop(step.id, None)
            for done_step, done in [*([walked] if walked else []), (step, ran)]:
                self._finish(done_step, done)
                if done.status == "failed" and done_step.on_error == "fail":
                    if failed is None:
                        failed = done_step.id
                        record.error = done.error
                elif done.status == "failed" or (
                    done.items and any(i.status == "failed" for i in done.items)
                ):
                    tolerated.append(done_step.id)
        if failed is not None:
            record.status = "failed"
            return
        if self.plan.output is not None:
            try:
                record.output = self.engine.redactor.value(
                    _plain(self.plan.output.render(self.context))
                )
            except TemplateError as exc:
                record.status, record.error = "failed", f"output: {exc}"
                return
        record.status = "succeeded"
        if tolerated:
            # on_error: continue let the run go on, but it is not a plain success
            record.status = "failed"
            record.error = "steps failed (on_error: continue): " + ", ".join(tolerated)

    def _finish(self, step: StepPlan, result: StepRecord) -> None:
        items = result.items
        output: Any
        codes: Any
        done_before: Any
        done_now: Any
        if step.id in self._summarized:  # a streamed walk: no list of every item's output
            output, codes, done_before, done_now = result.raw, None, False, False
        elif items is not None:
            output = [i.raw for i in items]
            codes = [i.status_code for i in items]
            done_before = [i.done_before for i in items]
            done_now = [i.status == "succeeded" and not i.done_before for i in items]
        else:
            output, codes, done_before = result.raw, result.status_code, result.done_before
            done_now = result.status == "succeeded" and not result.done_before
        self.steps[step.id] = {
            "output": self.sender.shown_output(step.id, result, output),
            "status_code": codes,
            "done_before": done_before,
            "done_now": done_now,
            "status": result.status,
            "error": result.error,
        }
        self.record.steps.append(result)
        _redact_outputs(result, self.engine.redactor)
        if self.engine.recorder is not None:
            self.engine.recorder.step_finished(self.record, result)

    def _step(self, step: StepPlan) -> StepRecord | None:
        if step.foreach is None:
            one = self.item(step, self.context, None)
            return None if step.id in self._streams else one
        stream = self._streams.pop(step.stream_of, None) if step.stream_of else None
        if stream is not None:
            return walk_pages(self, step, *stream)
        result = StepRecord(step.id, step.action, "succeeded", started_at=now_iso())
        start = time.perf_counter()
        try:
            items = step.foreach.render(self.context)
        except TemplateError as exc:
            result.status, result.error = "failed", f"foreach: {exc}"
            return result
        if items is None:
            items = []
        if isinstance(items, dict):
            items = list(items.items())
        if not isinstance(items, list | tuple | Placeholder):
            result.status = "failed"
            result.error = f"foreach: expected a list, got {type(items).__name__}"
            return result
        result.items = []
        for index, item in enumerate(items):
            context = dict(self.context, item=item, index=index)
            one = self.item(step, context, index)
            result.items.append(one)
            if one.status == "failed":
                result.status = "failed"
                result.error = f"item {index}: {one.error}"
                if step.on_error == "fail":
                    break
        if not result.items or all(i.status == "skipped" for i in result.items):
            result.status = "skipped"
        else:
            self.sender.finish_foreach(result)
        result.duration_ms = ms_since(start)
        return result

    def _missing_fields(self) -> str | None:
        """What the trigger event lacks of the fields its trigger declares required, checked
        before anything is sent (None: nothing)."""
        trigger = self.engine.registry.trigger(self.plan.trigger_app, self.plan.trigger_event)
        # the triggers catalogued by hand (triggers_source.yaml) and plugins' declare what an event
        # carries; the webhook envelopes taken from Connecteam's document require fields that its
        # own deliveries lack (``evnetTimestamp``), so they are not held to it
        if trigger is None or trigger.source.endswith("openapi.json"):
            return None
        schema = trigger.payload_schema
        event = self.context["trigger"]
        if not isinstance(schema, Mapping) or not isinstance(event, Mapping):
            return None
        missing = _missing(schema, event, "")
        if not missing:
            return None
        name = f"{self.plan.trigger_app} {self.plan.trigger_event}"
        fields = ", ".join(missing)
        return (
            f"the trigger event has no {fields}, which {name} requires; nothing was sent"
            f" (see `connector catalog show {self.plan.trigger_app}.{self.plan.trigger_event}`)"
        )

    def _template_failure(self, step: StepPlan, part: str, exc: TemplateError) -> str:
        """``template in with.phone (FILE:LINE:COL): message``: the parameter and its line."""
        if not part:
            return f"template: {exc}"
        shown = functools.reduce(child_path, exc.at, part)
        index = next((i for i, s in enumerate(self.plan.steps) if s is step), None)
        if index is None:
            return f"template in {shown}: {exc}"
        path = functools.reduce(child_path, exc.at, f"$.steps[{index}].{part}")
        return f"template in {shown} ({self.plan.where(path)}): {exc}"

    def item(self, step: StepPlan, context: Mapping[str, Any], index: int | None) -> StepRecord:
        result = StepRecord(step.id, step.action, started_at=now_iso(), index=index)
        start = time.perf_counter()
        unit = step.id if index is None else f"{step.id}[{index}]"
        where = "if"
        unknown = None
        try:
            if step.condition is not None:
                known, unknown = self.sender.condition(step.condition, context)
                if not known and unknown is None:
                    result.status = "skipped"
                    result.note = f"if: {_source(step.condition)} was false"
                    return result
            where = "with"
            params = step.params.render(context)
            where = ""
            if not isinstance(params, dict):
                raise StepError(step.id, "with: must be an object")
            if isinstance(step.target, Operation) and step.pages is not None:
                fetch_pages(self, step, step.target, dict(params), result, context, unit)
            elif isinstance(step.target, Operation):
                self.send(step, step.target, dict(params), result, context, unit)
            else:
                self._action(step, step.target, params, result, unit)
        except TemplateError as exc:
            result.status, result.error = "failed", self._template_failure(step, where, exc)
        except Exception as exc:  # a refusal, a transport error, a plugin's bug: not a crash
            result.status, result.error = "failed", step_failure(step.id, exc)
        finally:
            result.duration_ms = ms_since(start)
            if unknown is not None and result.status == "planned":
                shown = (
                    f"would run (condition unknown: {_source(step.condition)} depends on {unknown})"
                )
                result.note = shown + (f"; {result.note}" if result.note else "")
            if result.error:
                result.error = self.engine.redactor.text(result.error)
        return result

    def send(
        self,
        step: StepPlan,
        op: Operation,
        params: dict[str, Any],
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
    ) -> None:
        engine = self.engine
        app = engine.registry.apps[op.app]
        env = self.action_context.env
        location = app.location(params, env)
        lp = app.location_param
        if lp and op.param(lp) is not None and lp not in params:
            if location:
                params[lp] = location
            else:
                self.sender.no_location(step, app, op, params, result)
        self.sender.note_unset(params, result)
        client = engine.clients.get(op.app)
        if client is None:
            raise StepError(step.id, f"no client for app {op.app!r}")
        try:
            request = build_request(client, app, op, _plain(params))
        except ParameterError as exc:
            raise StepError(step.id, str(exc)) from None
        if location:  # whose credential the request carries (connector.sending.auth.StoredAuth)
            request.extensions[ACCOUNT] = location
        redact = engine.redactor
        result.method = request.method
        result.url = redact.text(str(request.url))
        result.request_body = redact.value(_plain(_sent_body(request)))
        self.sender.send(self, step, op, app, client, request, result, context, unit, location)

    # what the sender (connector.runtime.senders.SendingRun) is given of a run

    def call(
        self,
        step: StepPlan,
        op: Operation,
        app: App,
        client: httpx.Client,
        request: httpx.Request,
        result: StepRecord,
        context: Mapping[str, Any],
        unit: str,
        location: str,
    ) -> None:
        """Make ``request`` for real: a claim for a write, the caller's attempts, the result."""
        engine = self.engine
        write = app.claims(op)
        owner = f"{self.record.id}/{unit}"
        effect_key = None
        once = step.once
        if write:
            effect_key = f"run:{self.claims_of}/{unit}"
            if once is not None:
                identity = once.key.render(context)
                if identity in (None, "") or isinstance(identity, dict | list):
                    raise StepError(step.id, f"once.key must render to a text, got {identity!r}")
                effect_key = f"{op.app}:{location}:{identity}"
        call = Call(
            unit=unit,
            app=app,
            op=op,
            client=client,
            request=request,
            location=location,
            effect_key=effect_key,
            owner=owner,
            step_id=step.id,
            describe=f"{op.method} {_short(request)} in {app.title}",
        )
        if once is not None:
            call.resolve = self._lookup(step, once, context) if once.lookup else None
            call.link = self._linker(step, once, context)
        policy = None
        if step.retry is not None:
            try:
                policy = RetryPolicy.from_mapping(step.retry, engine.caller.policy)
            except ValueError as exc:
                raise StepError(step.id, f"retry: {exc}") from None
        output = engine.caller.call(call, result, policy)
        result.raw = output
        result.status = "succeeded"

    def _lookup(
        self, step: StepPlan, once: OncePlan, context: Mapping[str, Any]
    ) -> Callable[[str], tuple[bool, Any]]:
        lookup = once.lookup
        assert lookup is not None

        def resolve(lookup_unit: str) -> tuple[bool, Any]:
            """Run the declared look-up as journal unit ``lookup_unit``: an action is one
            checkpoint, an HTTP read journals its attempts (and waits) like any request."""
            if lookup.wait:
                self.engine.caller.checkpoints.sleep(lookup.wait)
            params = lookup.params.render(context)
            target = lookup.target
            if not isinstance(target, Operation):
                output = self.engine.caller.checkpoints.step(
                    lookup_unit,
                    lambda: json_value(self.run_action(target, dict(params))),
                )
            else:
                record = StepRecord(step.id, lookup.action)
                inner = StepPlan(
                    id=step.id, action=lookup.action, target=target, params=lookup.params
                )
                self.send(inner, target, dict(params), record, context, lookup_unit)
                output = record.raw
            found = lookup.found.render({**context, "output": output})
            return (bool(found), found if found else None)

        return resolve

    def _linker(
        self, step: StepPlan, once: OncePlan, context: Mapping[str, Any]
    ) -> Callable[[Any], Callable[[Any], Any] | None]:
        links = self.engine.links

        def linker(output: Any) -> Callable[[Any], Any] | None:
            if once.link is None:
                return None
            spec = once.link.render({**context, "output": output})
            if not isinstance(spec, dict):
                raise StepError(
                    step.id, "once.link must be an object (kind, ghl_id, connecteam_id)"
                )
            if links is None:
                raise StepError(step.id, "once.link: no id-link store in this run")

            def write(conn: Any) -> Any:
                return links.put_in(
                    conn,
                    spec.get("kind"),
                    spec.get("ghl_id"),
                    spec.get("connecteam_id"),
                    spec.get("meta") or None,
                )

            return write

        return linker

    def _action(
        self,
        step: StepPlan,
        action: Action,
        params: dict[str, Any],
        result: StepRecord,
        unit: str,
    ) -> None:
        result.request_body = self.engine.redactor.value(_plain(params))
        self.sender.act(self, action, params, result, unit)

    def checkpoint(self, unit: str, func: Callable[[], Any]) -> Any:
        return self.engine.caller.checkpoints.step(unit, func)

    def run_action(self, action: Action, params: dict[str, Any]) -> Any:
        output = action.run(params, self.action_context)
        if inspect.isawaitable(output):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            output = self._loop.run_until_complete(output)
        return output


SUBJECT_FIELDS = ("contactId", "userId", "taskId", "id", "appointmentId", "opportunityId")


def _subject(event: Any) -> str:
    """What an event is about, for a log line: its first id field (``contactId=ocQ...``), at the
    top or under ``data`` (Connecteam's envelope); never the payload itself."""
    for where in (event, event.get("data") if isinstance(event, Mapping) else None):
        if not isinstance(where, Mapping):
            continue
        for name in SUBJECT_FIELDS:
            value = where.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return f"{name}={str(value)[:64]}"
    return "-"


def _redact_outputs(result: StepRecord, redactor: Redactor) -> None:
    """What is recorded is redacted and bounded (cut at :data:`BODY_LIMIT` characters, the cut
    marked); what later steps compute with (``raw``) is neither."""
    result.output = bounded(redactor.value(_plain(result.raw)))
    for item in result.items or ():
        item.output = bounded(redactor.value(_plain(item.raw)))


def _short(request: httpx.Request) -> str:
    return request.url.path


def _missing(schema: Mapping[str, Any], value: Mapping[str, Any], at: str) -> list[str]:
    """The required fields of ``schema`` that ``value`` lacks (or holds as null), nested objects
    included, as paths (``userId``, ``data.userId``). Types are not checked: vendors vary."""
    out = []
    required = schema.get("required")
    props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and value.get(name) is None:
            out.append(f"'{at}{name}'")
    for name, sub in props.items():  # type: ignore[union-attr]
        inner = value.get(name)
        if isinstance(sub, Mapping) and isinstance(inner, Mapping):
            out.extend(_missing(sub, inner, f"{at}{name}."))
    return out


def _source(value: Any) -> str:
    """The text a compiled template was written as (``{{ x is none }}``), for messages."""
    for candidate in (value, getattr(value, "fallback", None)):
        source = getattr(candidate, "source", None)
        if isinstance(source, str):
            return source if "{{" in source or "{%" in source else "{{ " + source + " }}"
    return "the condition"


def _sent_body(request: httpx.Request) -> Any:
    """The body as sent (a whole-body operation's bare list, not ``{"body": [...]}``)."""
    if not request.content:
        return None
    try:
        return json.loads(request.content)
    except ValueError:
        return request.content.decode("utf-8", "replace")
