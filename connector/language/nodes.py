"""A recipe as typed nodes: parsed once, then checked (:mod:`.validate`) and planned (:mod:`.plan`).

:func:`parse_recipe` reads a :class:`~.load.LoadedRecipe` (plain values, and where each was
written) into frozen nodes::

    Recipe ── name, description, output: Value
     ├─ trigger: Trigger ── app, event, if, cron, poll, sample: Value
     ├─ vars: Var ... ── value: Value
     └─ steps: Step ... ── id, with, if, foreach, retry, on_error, description: Value
                         ├─ action: ActionRef
                         ├─ pages: Pages
                         └─ once: Once ── key, link: Value
                                   └─ lookup: Lookup ── action: ActionRef; with, found, wait: Value

Every node keeps where it was written (file, JSON path, line and column: :attr:`Node.location`),
and holds the value as the user wrote it: nothing is filled in, and the schema has not been
checked, so a :class:`Value` may hold anything (the validator says what is wrong; the planner
refuses what it cannot run). A key that is not written has no node (``None``).

Parsing also binds the recipe's names to the registry, once for both readers: each action is
resolved (:attr:`ActionRef.target`, or :attr:`ActionRef.error`), and a step's ``pages:`` is
checked against its operation (:attr:`Pages.problems`); the paged steps whose pages the next
step walks are found (:attr:`Recipe.streams`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.apps import Action
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.catalog.versions import preferred_versions
from connector.errors import ConnectorError, Location
from connector.language.load import LoadedRecipe
from connector.language.paths import child_path
from connector.sending.paging import PagesPlan, paged_streams, pages_plan, pages_problems

__all__ = [
    "ActionRef",
    "Lookup",
    "Node",
    "Once",
    "Pages",
    "Recipe",
    "Step",
    "Trigger",
    "Value",
    "Var",
    "parse_recipe",
    "value_of",
]


@dataclass(frozen=True)
class Node:
    """Something written in a recipe, and where: its file, its JSON path (``$.steps[2].with``) and
    the line and column of its value, as :class:`~.load.LoadedRecipe` records them (1, 1 for
    plain data that was never a file)."""

    file: str
    path: str
    line: int
    column: int

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.column, self.path)


@dataclass(frozen=True)
class Value(Node):
    """A value as written: a literal, a template, or mappings and lists holding them."""

    raw: Any


def value_of(node: Value | None, default: Any = None) -> Any:
    """What ``node`` holds, or ``default`` when the key is not written."""
    return default if node is None else node.raw


@dataclass(frozen=True)
class ActionRef(Node):
    """An ``action:``: the name as written, and what it names in the registry."""

    name: Any  # as written (the schema reports one that is not a string)
    text: str  # the name as the plan records it ("" when none is written)
    target: Operation | Action | None = None
    error: ConnectorError | None = None  # why nothing has that name (with close matches)

    @property
    def named(self) -> bool:
        """Whether a name is written at all (a non-empty string)."""
        return isinstance(self.name, str) and bool(self.name)


@dataclass(frozen=True)
class Pages(Node):
    """A step's ``pages:``: its plan, and what is wrong with it for the step's operation."""

    raw: Any
    plan: PagesPlan | None
    problems: tuple[tuple[str, str], ...] = ()  # (JSON path, message)


@dataclass(frozen=True)
class Lookup(Node):
    """``once.lookup``: the read that finds a write whose answer was lost."""

    action: ActionRef
    with_: Value | None
    found: Value | None
    wait: Value | None


@dataclass(frozen=True)
class Once(Node):
    """A step's ``once:`` (a mapping)."""

    key: Value | None
    link: Value | None
    lookup: Lookup | None  # when ``lookup:`` is a mapping


@dataclass(frozen=True)
class Step(Node):
    """One item of ``steps:`` that is a mapping."""

    index: int
    id_value: Value | None
    action: ActionRef
    with_: Value | None
    if_: Value | None
    foreach: Value | None
    pages: Pages | None
    once: Once | None  # when ``once:`` is a mapping
    retry: Value | None
    on_error: Value | None
    description: Value | None

    @property
    def id(self) -> str:
        """The step's id as written, or ``""`` when it has none (or not a string)."""
        sid = value_of(self.id_value)
        return sid if isinstance(sid, str) else ""

    @property
    def plan_id(self) -> str:
        """The id its plan has: the one written, else ``stepN``."""
        return f"step{self.index + 1}" if self.id_value is None else str(self.id_value.raw)


@dataclass(frozen=True)
class Var(Node):
    """One of ``vars:``; its location is its value's."""

    name: str
    value: Value


@dataclass(frozen=True)
class Trigger(Node):
    """The ``trigger:`` mapping."""

    app: Value | None
    event: Value | None
    if_: Value | None
    cron: Value | None
    poll: Value | None
    sample: Value | None


@dataclass(frozen=True)
class Recipe(Node):
    """A whole recipe, parsed once."""

    source: LoadedRecipe = field(repr=False, compare=False)
    name: Value | None = None
    description: Value | None = None
    trigger: Trigger | None = None  # when ``trigger:`` is a mapping
    vars: tuple[Var, ...] = ()  # when ``vars:`` is a mapping
    steps: tuple[Step, ...] = ()  # the items of ``steps:`` that are mappings
    # the id of every item of ``steps:``, in order ("" for none): what templates may name
    step_ids: tuple[str, ...] = ()
    # {paged step: next step} for the paged steps whose pages the next step's foreach walks
    streams: Mapping[str, str] = field(default_factory=dict)
    output: Value | None = None
    # where the recipe has something other than the mapping or list a plan reads there, and a
    # message saying so, for the planner to refuse (the validator's schema check says more)
    malformed: tuple[tuple[Location, str], ...] = ()


class _Parser:
    def __init__(self, source: LoadedRecipe, registry: Registry) -> None:
        self.source = source
        self.registry = registry
        data = source.data if isinstance(source.data, Mapping) else {}
        # the recipe's `versions:` (app -> the version its operations are sent with)
        self.preferred = preferred_versions(data)

    def at(self, path: str) -> tuple[str, str, int, int]:
        """The fields of a :class:`Node` at ``path``."""
        found = self.source.positions.get(path)
        if found is None:  # plain data, which has no positions
            where = self.source.location(path)
            return self.source.path, path, where.line, where.column
        return self.source.path, path, found[0], found[1]

    def value(self, mapping: Mapping[str, Any], key: str, parent: str) -> Value | None:
        if key not in mapping:
            return None
        return Value(*self.at(f"{parent}.{key}"), mapping[key])

    def action(self, mapping: Mapping[str, Any], parent: str) -> ActionRef:
        """The action a step (or a look-up) names, at the step's ``version:`` or the recipe's
        ``versions:`` (a look-up takes the recipe's)."""
        name = mapping.get("action")
        text = str(mapping.get("action", ""))
        version = mapping.get("version") if isinstance(mapping.get("version"), str) else None
        target: Operation | Action | None = None
        error: ConnectorError | None = None
        try:
            target = self.registry.resolve(text, version, self.preferred)
        except ConnectorError as exc:
            error = exc
        return ActionRef(*self.at(f"{parent}.action"), name, text, target, error)

    def pages(self, raw: Mapping[str, Any], path: str, target: Any) -> Pages | None:
        if "pages" not in raw:
            return None
        value = raw["pages"]
        problems = pages_problems(target, value) if target is not None else []
        return Pages(
            *self.at(f"{path}.pages"),
            value,
            pages_plan(value),
            tuple((path + suffix, message) for suffix, message in problems),
        )

    def once(self, raw: Any, path: str) -> Once | None:
        if not isinstance(raw, Mapping):
            return None
        lookup = None
        raw_lookup = raw.get("lookup")
        if isinstance(raw_lookup, Mapping):
            where = f"{path}.lookup"
            lookup = Lookup(
                *self.at(where),
                self.action(raw_lookup, where),
                self.value(raw_lookup, "with", where),
                self.value(raw_lookup, "found", where),
                self.value(raw_lookup, "wait", where),
            )
        return Once(
            *self.at(path),
            self.value(raw, "key", path),
            self.value(raw, "link", path),
            lookup,
        )

    def step(self, raw: Mapping[str, Any], index: int) -> Step:
        path = f"$.steps[{index}]"
        action = self.action(raw, path)
        return Step(
            *self.at(path),
            index,
            self.value(raw, "id", path),
            action,
            self.value(raw, "with", path),
            self.value(raw, "if", path),
            self.value(raw, "foreach", path),
            self.pages(raw, path, action.target),
            self.once(raw.get("once"), f"{path}.once"),
            self.value(raw, "retry", path),
            self.value(raw, "on_error", path),
            self.value(raw, "description", path),
        )

    def trigger(self, raw: Mapping[str, Any]) -> Trigger:
        path = "$.trigger"
        return Trigger(
            *self.at(path),
            app=self.value(raw, "app", path),
            event=self.value(raw, "event", path),
            if_=self.value(raw, "if", path),
            cron=self.value(raw, "cron", path),
            poll=self.value(raw, "poll", path),
            sample=self.value(raw, "sample", path),
        )

    def variables(self, raw: Mapping[str, Any]) -> tuple[Var, ...]:
        out = []
        for name, value in raw.items():
            at = self.at(child_path("$.vars", str(name)))
            out.append(Var(*at, str(name), Value(*at, value)))
        return tuple(out)

    def recipe(self) -> Recipe:
        source = self.source
        data = source.data if isinstance(source.data, Mapping) else {}
        malformed: list[tuple[Location, str]] = []

        def read(key: str, kind: type, what: str) -> Any:
            """``data[key]`` when it is a ``kind``; nothing when it is left out or empty."""
            value = data.get(key)
            if not value:
                return None
            if not isinstance(value, kind):
                malformed.append((source.location(f"$.{key}"), f"expected {what}"))
                return None
            return value

        trigger = read("trigger", Mapping, "a mapping")
        variables = read("vars", Mapping, "a mapping")
        items = read("steps", list, "a list") or []
        steps = []
        for i, item in enumerate(items):
            if isinstance(item, Mapping):
                steps.append(self.step(item, i))
            else:
                malformed.append((source.location(f"$.steps[{i}]"), "expected a mapping"))
        return Recipe(
            *self.at("$"),
            source,
            name=self.value(data, "name", "$"),
            description=self.value(data, "description", "$"),
            trigger=None if trigger is None else self.trigger(trigger),
            vars=() if variables is None else self.variables(variables),
            steps=tuple(steps),
            step_ids=tuple(
                item["id"] if isinstance(item, Mapping) and isinstance(item.get("id"), str) else ""
                for item in items
            ),
            streams=paged_streams(items),
            output=self.value(data, "output", "$"),
            malformed=tuple(malformed),
        )


def parse_recipe(source: LoadedRecipe, registry: Registry) -> Recipe:
    """``source`` as typed nodes, its actions resolved in ``registry``."""
    return _Parser(source, registry).recipe()
