"""Executing a plan: steps in order over injected HTTP clients, recorded as they finish.

The engine touches no file and opens no connection of its own: it is given the registry, one
``httpx.Client`` per app, a :class:`~connector.http.Sender` (the seam for retries, rate limits and
the journal) and a :class:`~connector.records.Recorder`.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from connector.apps import Action, RunContext
from connector.catalog.model import Operation
from connector.config import connector_home
from connector.errors import ConnectorError, HTTPStepError, StepError, TemplateError
from connector.http import (
    DirectSender,
    ParameterError,
    Redactor,
    Sender,
    api_message,
    build_request,
    parse_body,
)
from connector.plan import Plan, StepPlan
from connector.records import Recorder, RunRecord, StepRecord, new_run_id, now_iso
from connector.registry import Registry

__all__ = ["Engine", "Placeholder", "template_env"]

LOCATION_PARAM = "locationId"


def template_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment visible to templates as ``env``: never a secret."""
    return {
        k: v for k, v in env.items() if k == "GHL_LOCATION_ID" or k.startswith("CONNECTOR_VAR_")
    }


class Placeholder:
    """A value not known in a dry run (an earlier step's output): it renders as its own path."""

    __slots__ = ("_path",)

    def __init__(self, path: str) -> None:
        self._path = path

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("_"):
            raise AttributeError(name)
        return Placeholder(f"{self._path}.{name}")

    def __getitem__(self, key: Any) -> Placeholder:
        return Placeholder(f"{self._path}[{key!r}]")

    def __iter__(self) -> Iterator[Placeholder]:
        yield Placeholder(f"{self._path}[0]")

    def __len__(self) -> int:
        return 1

    def __bool__(self) -> bool:
        return True

    def __str__(self) -> str:
        return "<" + self._path + ">"

    __repr__ = __str__


def _plain(value: Any) -> Any:
    """Placeholders become their text so records stay JSON."""
    if isinstance(value, Placeholder):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


@dataclass
class Engine:
    """Runs plans. One engine serves many runs; it holds no per-run state."""

    registry: Registry
    clients: Mapping[str, httpx.Client]
    env: Mapping[str, str] = field(default_factory=dict)
    sender: Sender = field(default_factory=DirectSender)
    recorder: Recorder | None = None
    redactor: Redactor = field(default_factory=lambda: Redactor(()))
    home: Path | None = None  # CONNECTOR_HOME, for actions that keep state (the id-link store)
    services: dict[str, Any] = field(default_factory=dict)  # shared objects actions may cache

    def __post_init__(self) -> None:
        if self.home is None:
            self.home = connector_home(self.env)

    def close(self) -> None:
        """Close what actions cached in ``services`` (the id-link store's connection, say)."""
        for service in self.services.values():
            close = getattr(service, "close", None)
            if callable(close):
                close()
        self.services.clear()

    def run(
        self, plan: Plan, event: Any, *, dry_run: bool = False, run_id: str | None = None
    ) -> RunRecord:
        record = RunRecord(
            id=run_id or new_run_id(),
            recipe=plan.name,
            recipe_hash=plan.recipe_hash,
            recipe_path=plan.path,
            trigger_app=plan.trigger_app,
            trigger_event=plan.trigger_event,
            trigger=self.redactor.value(event),
            dry_run=dry_run,
        )
        started = time.perf_counter()
        if self.recorder is not None:
            self.recorder.run_started(record)
        run = _Run(self, plan, record, event, dry_run)
        try:
            run.execute()
        finally:
            run.close()
            record.finished_at = now_iso()
            record.duration_ms = _ms(started)
            if self.recorder is not None:
                self.recorder.run_finished(record)
        return record


class _Run:
    """The state of one run of one plan."""

    def __init__(
        self, engine: Engine, plan: Plan, record: RunRecord, event: Any, dry_run: bool
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.record = record
        self.dry_run = dry_run
        self.steps: dict[str, dict[str, Any]] = {}
        self.context: dict[str, Any] = {
            "trigger": event,
            "steps": self.steps,
            "vars": {},
            "env": template_env(engine.env),
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self.action_context = RunContext(
            run_id=record.id,
            recipe=plan.name,
            home=engine.home or connector_home(engine.env),
            env=engine.env,
            dry_run=dry_run,
            services=engine.services,
        )

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()

    def execute(self) -> None:
        record = self.record
        try:
            for name, value in self.plan.vars:
                self.context["vars"][name] = value.render(self.context)
        except TemplateError as exc:
            record.status, record.error = "failed", f"vars: {exc}"
            return
        failed: str | None = None
        for step in self.plan.steps:
            if failed is not None:
                result = StepRecord(step.id, step.action, "skipped")
                result.error = f"not run: step {failed!r} failed"
                self._finish(step, result)
                continue
            result = self._step(step)
            self._finish(step, result)
            if result.status == "failed" and step.on_error == "fail":
                failed = step.id
                record.error = result.error
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

    def _finish(self, step: StepPlan, result: StepRecord) -> None:
        items = result.items
        if items is not None:
            output: Any = [i.output for i in items]
            codes: Any = [i.status_code for i in items]
        else:
            output, codes = result.output, result.status_code
        self.steps[step.id] = {
            "output": Placeholder(f"steps.{step.id}.output")
            if self.dry_run and result.status == "planned"
            else output,
            "status_code": codes,
            "status": result.status,
            "error": result.error,
        }
        self.record.steps.append(result)
        if self.engine.recorder is not None:
            self.engine.recorder.step_finished(self.record, result)

    def _step(self, step: StepPlan) -> StepRecord:
        if step.foreach is None:
            return self._one(step, self.context, None)
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
            one = self._one(step, context, index)
            result.items.append(one)
            if one.status == "failed":
                result.status = "failed"
                result.error = f"item {index}: {one.error}"
                if step.on_error == "fail":
                    break
        if not result.items or all(i.status == "skipped" for i in result.items):
            result.status = "skipped"
        elif self.dry_run and result.status != "failed":
            result.status = "planned"
        result.duration_ms = _ms(start)
        return result

    def _one(self, step: StepPlan, context: Mapping[str, Any], index: int | None) -> StepRecord:
        result = StepRecord(step.id, step.action, started_at=now_iso(), index=index)
        start = time.perf_counter()
        try:
            if step.condition is not None and not step.condition.render(context):
                result.status = "skipped"
                return result
            params = step.params.render(context)
            if not isinstance(params, dict):
                raise StepError(step.id, "with: must be an object")
            if isinstance(step.target, Operation):
                self._http(step, step.target, params, result)
            else:
                self._action(step, step.target, params, result)
        except TemplateError as exc:
            result.status, result.error = "failed", f"template: {exc}"
        except HTTPStepError as exc:
            result.status, result.error = "failed", f"HTTP {exc.status_code}: {exc.api_message}"
        except ConnectorError as exc:
            result.status, result.error = "failed", str(exc).removeprefix(f"step {step.id!r}: ")
        except httpx.HTTPError as exc:
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a plugin action's own bug: a step failure, not a crash
            result.status, result.error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            result.duration_ms = _ms(start)
            if result.error:
                result.error = self.engine.redactor.text(result.error)
        return result

    def _http(
        self, step: StepPlan, op: Operation, params: dict[str, Any], result: StepRecord
    ) -> None:
        engine = self.engine
        app = engine.registry.apps[op.app]
        if (
            op.app == "ghl"
            and op.param(LOCATION_PARAM) is not None
            and LOCATION_PARAM not in params
        ):
            location = engine.env.get("GHL_LOCATION_ID")
            if location:
                params[LOCATION_PARAM] = location
            elif op.param(LOCATION_PARAM).required:  # type: ignore[union-attr]
                raise StepError(
                    step.id, "locationId is required: set GHL_LOCATION_ID or give it in with:"
                )
        client = engine.clients.get(op.app)
        if client is None:
            raise StepError(step.id, f"no client for app {op.app!r}")
        try:
            request = build_request(client, app, op, _plain(params))
        except ParameterError as exc:
            raise StepError(step.id, str(exc)) from None
        redact = engine.redactor
        result.method = request.method
        result.url = redact.text(str(request.url))
        body = params_body(op, params)
        result.request_body = redact.value(_plain(body)) if body is not None else None
        if self.dry_run:
            auth = client.auth
            if auth is not None:  # show the headers auth adds, redacted
                request = next(auth.sync_auth_flow(request))
            result.request_headers = redact.headers(_shown_headers(request))
            result.status = "planned"
            return
        response = engine.sender.send(client, request, op)
        result.request_headers = redact.headers(_shown_headers(response.request))
        result.status_code = response.status_code
        payload = parse_body(response)
        result.output = redact.value(payload)
        if response.is_success:
            result.status = "succeeded"
        else:
            raise HTTPStepError(step.id, response.status_code, api_message(payload))

    def _action(
        self, step: StepPlan, action: Action, params: dict[str, Any], result: StepRecord
    ) -> None:
        result.request_body = self.engine.redactor.value(_plain(params))
        if self.dry_run and action.writes:
            result.status = "planned"
            return
        output = action.run(params, self.action_context)
        if inspect.isawaitable(output):
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            output = self._loop.run_until_complete(output)
        result.output = self.engine.redactor.value(output)
        result.status = "succeeded"


_NOISE_HEADERS = frozenset(
    {"host", "accept-encoding", "connection", "content-length", "user-agent"}
)


def _shown_headers(request: httpx.Request) -> dict[str, str]:
    return {k: v for k, v in request.headers.items() if k.lower() not in _NOISE_HEADERS}


def params_body(op: Operation, params: Mapping[str, Any]) -> dict[str, Any] | None:
    body = {
        k: v
        for k, v in params.items()
        if v is not None and ((p := op.param(k)) is None or p.location == "body")
    }
    return body or None
