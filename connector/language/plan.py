"""From a validated recipe to an immutable plan: every action resolved, every template compiled.

The plan is what runs: nothing during execution re-reads the recipe. It can also be printed
(``connector run --dry-run`` renders its requests without sending them). :func:`build_plan` builds
it from the recipe's nodes (:mod:`.nodes`), the same parse the validator checked;
:func:`plan_recipe` parses a recipe's plain data first.
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
from connector.errors import Location, Problem, RecipeInvalid, TemplateError
from connector.language.alert_targets import AlertTargets, alert_targets
from connector.language.load import LoadedRecipe
from connector.language.nodes import Once, Recipe, Value, parse_recipe, value_of
from connector.language.paths import parent_path
from connector.language.templates import (
    BoundedEnvironment,
    CompiledValue,
    compile_value,
    shared_environment,
)
from connector.sending.paging import PagesPlan

__all__ = ["LookupPlan", "OncePlan", "Plan", "StepPlan", "build_plan", "plan_recipe"]


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
    # `alerts:`: the recipe's own alert targets (None: the deployment's only)
    alerts: AlertTargets | None = None
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
    """Compile the plain data of a recipe that passed validation into a :class:`Plan` (``path``:
    its file, in problems; ``recipe_hash``: the hash of its file, else of ``data``).

    Raises :class:`~connector.errors.RecipeInvalid` for anything that would stop it running (the
    validator reports the same things with exact positions; this is the last line of defence).
    """
    source = LoadedRecipe(
        path=path, data=data, positions={}, key_positions={}, sha256=recipe_hash or _hash(data)
    )
    return build_plan(parse_recipe(source, registry), registry)


class _Compiler:
    """Compiles a recipe's values with one environment, collecting what does not compile."""

    def __init__(self, env: BoundedEnvironment, problems: list[Problem]) -> None:
        self.env = env
        self.problems = problems

    def __call__(self, node: Value | None, default: Any = None) -> CompiledValue:
        """``node``'s value compiled (``default`` when it is not written, or empty)."""
        if node is None:
            return compile_value(self.env, default)
        value = node.raw if node.raw or default is None else default
        try:
            return compile_value(self.env, value)
        except TemplateError as exc:
            self.problems.append(Problem(node.location, str(exc)))
            return compile_value(self.env, None)

    def optional(self, node: Value | None) -> CompiledValue | None:
        """``node``'s value compiled, or ``None`` when it is not written (or null)."""
        return None if value_of(node) is None else self(node)


def build_plan(recipe: Recipe, registry: Registry) -> Plan:
    """Compile the parsed ``recipe`` (:func:`~.nodes.parse_recipe` with the same ``registry``),
    which passed validation, into a :class:`Plan` that knows where each of its paths was written.

    Raises :class:`~connector.errors.RecipeInvalid` as :func:`plan_recipe` does.
    """
    env = shared_environment(registry.filters)
    data = recipe.source.data if isinstance(recipe.source.data, Mapping) else {}
    problems = [Problem(where, message) for where, message in recipe.malformed]
    compile_at = _Compiler(env, problems)
    vars_ = tuple((var.name, compile_at(var.value)) for var in recipe.vars)
    steps: list[StepPlan] = []
    streams = recipe.streams
    for step in recipe.steps:
        target = step.action.target
        if target is None:
            problems.append(Problem(step.action.location, str(step.action.error)))
            continue
        once = _once(step.once, compile_at, problems)
        if step.pages is not None:
            problems.extend(
                Problem(recipe.source.location(where), message)
                for where, message in step.pages.problems
            )
        sid = step.plan_id
        retry = value_of(step.retry)
        steps.append(
            StepPlan(
                id=sid,
                action=step.action.text,
                target=target,
                params=compile_at(step.with_, {}),
                condition=compile_at.optional(step.if_),
                foreach=compile_at.optional(step.foreach),
                on_error="continue" if value_of(step.on_error) == "continue" else "fail",
                description=str(value_of(step.description) or ""),
                once=once,
                retry=retry if isinstance(retry, Mapping) else None,
                pages=None if step.pages is None else step.pages.plan,
                streams_to=streams.get(sid),
                stream_of=next((a for a, b in streams.items() if b == sid), None),
            )
        )
    trigger = recipe.trigger
    trigger_if = None if trigger is None else compile_at.optional(trigger.if_)
    compiled_output = compile_at.optional(recipe.output)
    if problems:
        raise RecipeInvalid(problems)
    sample = None if trigger is None else value_of(trigger.sample)
    cron = None if trigger is None else value_of(trigger.cron)
    poll = None if trigger is None else value_of(trigger.poll)
    return Plan(
        name=str(value_of(recipe.name, "")),
        description=str(value_of(recipe.description) or ""),
        path=recipe.source.path,
        recipe_hash=recipe.source.sha256,
        trigger_app=str(value_of(trigger.app, "") if trigger is not None else ""),
        trigger_event=str(value_of(trigger.event, "") if trigger is not None else ""),
        sample=sample if isinstance(sample, Mapping) else None,
        vars=vars_,
        steps=tuple(steps),
        output=compiled_output,
        jinja=env,
        trigger_if=trigger_if,
        cron=str(cron) if cron else None,
        poll=dict(poll) if isinstance(poll, Mapping) else None,
        positions=dict(recipe.source.positions),
        on_failure=_route(data.get("on_failure")),
        alerts=alert_targets(data.get("alerts")),
    )


def _route(value: Any) -> str | None:
    """The recipe ``on_failure:`` names (the schema has checked its shape)."""
    name = value.get("recipe") if isinstance(value, Mapping) else None
    return name if isinstance(name, str) and name else None


def _once(once: Once | None, compile_at: _Compiler, problems: list[Problem]) -> OncePlan | None:
    if once is None:
        return None
    lookup = None
    found = once.lookup
    if found is not None:
        if found.action.target is None:
            problems.append(Problem(found.action.location, str(found.action.error)))
        else:
            lookup = LookupPlan(
                action=found.action.text,
                target=found.action.target,
                params=compile_at(found.with_, {}),
                found=compile_at(found.found),
                wait=float(value_of(found.wait) or 0),
            )
    return OncePlan(
        key=compile_at(once.key),
        link=compile_at.optional(once.link),
        lookup=lookup,
    )
