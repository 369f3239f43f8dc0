"""From a validated recipe to an immutable plan: every action resolved, every template compiled.

The plan is what runs: nothing during execution re-reads the recipe. It can also be printed
(``connector run --dry-run`` renders its requests without sending them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.apps import Action
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.catalog.versions import UnknownVersion, preferred_versions
from connector.errors import Location, Problem, RecipeInvalid, TemplateError, UnknownOperation
from connector.language.paths import parent_path
from connector.language.templates import (
    BoundedEnvironment,
    CompiledValue,
    compile_value,
    shared_environment,
)
from connector.sending.paging import PagesPlan, paged_streams, pages_plan, pages_problems

__all__ = ["LookupPlan", "OncePlan", "Plan", "StepPlan", "plan_recipe"]


@dataclass(frozen=True)
class LookupPlan:
    """How to tell, after a lost answer, whether a write happened: a read, and the template that
    finds the written record in its ``output`` (none when it is not there)."""

    action: str
    target: Operation | Action
    params: CompiledValue
    found: CompiledValue
    wait: float = 0.0  # seconds before the read, for reads that show new records late


@dataclass(frozen=True)
class OncePlan:
    """A write that happens once per ``key``: the pairing of ids it makes (``link``, rendered with
    the write's ``output``) and how to resolve an unknown outcome (``lookup``)."""

    key: CompiledValue
    link: CompiledValue | None = None
    lookup: LookupPlan | None = None


@dataclass(frozen=True)
class StepPlan:
    id: str
    action: str
    target: Operation | Action
    params: CompiledValue
    condition: CompiledValue | None = None
    foreach: CompiledValue | None = None
    on_error: Literal["fail", "continue"] = "fail"
    description: str = ""
    once: OncePlan | None = None
    retry: Mapping[str, Any] | None = None
    pages: PagesPlan | None = None  # `pages:`: every page of a list operation
    # a paged step whose pages the next step's `foreach` walks as they come (its id), and that
    # next step (the paged step's id)
    streams_to: str | None = None
    stream_of: str | None = None

    @property
    def is_http(self) -> bool:
        return isinstance(self.target, Operation)

    @property
    def app(self) -> str | None:
        return self.target.app if isinstance(self.target, Operation) else None


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    path: str
    recipe_hash: str
    trigger_app: str
    trigger_event: str
    sample: Mapping[str, Any] | None
    vars: tuple[tuple[str, CompiledValue], ...]
    steps: tuple[StepPlan, ...]
    output: CompiledValue | None
    jinja: BoundedEnvironment  # the template environment its values were compiled in
    # `trigger.if`: the events a served recipe runs for (None: every event of its type)
    trigger_if: CompiledValue | None = None
    # `trigger.cron` of a schedule trigger
    cron: str | None = None
    # `trigger.poll`: {"every": seconds, "overlap": seconds}
    poll: Mapping[str, Any] | None = None
    # `on_failure.recipe`: the recipe that runs when a run of this one fails for good
    on_failure: str | None = None
    # where each JSON path was written in the file (line, column), for run-time errors
    positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False)

    def _position(self, path: str) -> tuple[int, int] | None:
        """(line, column) of ``path``, or of its nearest written ancestor."""
        probe: str | None = path
        while probe is not None:
            if probe in self.positions:
                return self.positions[probe]
            probe = parent_path(probe)
        return None

    def location(self, path: str) -> Location:
        """Where ``path`` (or its nearest written ancestor) is in the recipe's file."""
        at = self._position(path)
        return Location(self.path, *at, path) if at else Location(self.path, path=path)

    def where(self, path: str) -> str:
        """``FILE:LINE:COL`` of ``path`` (or of its nearest written ancestor)."""
        at = self._position(path)
        return f"{self.path}:{at[0]}:{at[1]}" if at else self.path

    @property
    def apps(self) -> tuple[str, ...]:
        """The apps whose clients this plan needs, in order of first use."""
        seen: list[str] = []
        for step in self.steps:
            if step.app is not None and step.app not in seen:
                seen.append(step.app)
        return tuple(seen)


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def plan_recipe(
    data: Mapping[str, Any],
    registry: Registry,
    *,
    path: str = "<recipe>",
    recipe_hash: str | None = None,
) -> Plan:
    """Compile a recipe that passed validation into a :class:`Plan`.

    Raises :class:`~connector.errors.RecipeInvalid` for anything that would stop it running (the
    validator reports the same things with exact positions; this is the last line of defence).
    """
    env = shared_environment(registry.filters)
    problems: list[Problem] = []

    def compile_at(value: Any, where: str) -> CompiledValue:
        try:
            return compile_value(env, value)
        except TemplateError as exc:
            problems.append(Problem(Location(path, path=where), str(exc)))
            return compile_value(env, None)

    trigger = data.get("trigger") or {}
    raw_vars = data.get("vars") or {}
    vars_ = tuple((str(k), compile_at(v, f"$.vars.{k}")) for k, v in raw_vars.items())
    steps: list[StepPlan] = []
    streams = paged_streams(data.get("steps") or [])
    preferred = preferred_versions(data)
    for i, raw in enumerate(data.get("steps") or []):
        where = f"$.steps[{i}]"
        action = str(raw.get("action", ""))
        version = raw.get("version") if isinstance(raw.get("version"), str) else None
        try:
            target = registry.resolve(action, version, preferred)
        except UnknownVersion as exc:
            problems.append(Problem(Location(path, path=f"{where}.version"), str(exc)))
            continue
        except UnknownOperation as exc:
            problems.append(Problem(Location(path, path=f"{where}.action"), str(exc)))
            continue
        condition = raw.get("if")
        foreach = raw.get("foreach")
        once = _once(
            raw.get("once"), f"{where}.once", registry, compile_at, problems, path, preferred
        )
        for suffix, message in pages_problems(target, raw.get("pages")):
            problems.append(Problem(Location(path, path=where + suffix), message))
        sid = str(raw.get("id", f"step{i + 1}"))
        steps.append(
            StepPlan(
                id=sid,
                action=action,
                target=target,
                params=compile_at(raw.get("with") or {}, f"{where}.with"),
                condition=None if condition is None else compile_at(condition, f"{where}.if"),
                foreach=None if foreach is None else compile_at(foreach, f"{where}.foreach"),
                on_error="continue" if raw.get("on_error") == "continue" else "fail",
                description=str(raw.get("description") or ""),
                once=once,
                retry=raw.get("retry") if isinstance(raw.get("retry"), Mapping) else None,
                pages=pages_plan(raw.get("pages")),
                streams_to=streams.get(sid),
                stream_of=next((a for a, b in streams.items() if b == sid), None),
            )
        )
    condition = trigger.get("if")
    trigger_if = None if condition is None else compile_at(condition, "$.trigger.if")
    output = data.get("output")
    compiled_output = None if output is None else compile_at(output, "$.output")
    if problems:
        raise RecipeInvalid(problems)
    sample = trigger.get("sample")
    return Plan(
        name=str(data.get("name", "")),
        description=str(data.get("description") or ""),
        path=path,
        recipe_hash=recipe_hash or _hash(data),
        trigger_app=str(trigger.get("app", "")),
        trigger_event=str(trigger.get("event", "")),
        sample=sample if isinstance(sample, Mapping) else None,
        vars=vars_,
        steps=tuple(steps),
        output=compiled_output,
        jinja=env,
        trigger_if=trigger_if,
        cron=str(trigger["cron"]) if trigger.get("cron") else None,
        poll=dict(trigger["poll"]) if isinstance(trigger.get("poll"), Mapping) else None,
        on_failure=_route(data.get("on_failure")),
    )


def _route(value: Any) -> str | None:
    """The recipe ``on_failure:`` names (the schema has checked its shape)."""
    name = value.get("recipe") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) and name else None


def _once(
    raw: Any,
    where: str,
    registry: Registry,
    compile_at: Any,
    problems: list[Problem],
    path: str,
    preferred: Mapping[str, str],
) -> OncePlan | None:
    if not isinstance(raw, Mapping):
        return None
    lookup = None
    raw_lookup = raw.get("lookup")
    if isinstance(raw_lookup, Mapping):
        action = str(raw_lookup.get("action", ""))
        try:
            target = registry.resolve(action, None, preferred)
        except UnknownOperation as exc:
            problems.append(Problem(Location(path, path=f"{where}.lookup.action"), str(exc)))
        else:
            lookup = LookupPlan(
                action=action,
                target=target,
                params=compile_at(raw_lookup.get("with") or {}, f"{where}.lookup.with"),
                found=compile_at(raw_lookup.get("found"), f"{where}.lookup.found"),
                wait=float(raw_lookup.get("wait") or 0),
            )
    link = raw.get("link")
    return OncePlan(
        key=compile_at(raw.get("key"), f"{where}.key"),
        link=None if link is None else compile_at(link, f"{where}.link"),
        lookup=lookup,
    )
