"""Checking the templates of a recipe against what is in scope where each is written.

Where a template sits decides what it may read (see ``docs/recipes.md``): a var sees ``trigger``,
``env`` and the vars above it; a step's ``if`` and ``with`` see the steps before it (and ``item``
and ``index`` when the step has ``foreach``); ``output`` sees every step. The analysis of a
template's text (:mod:`.analyze`) is cached, so recipes that share templates parse them once.
What a template reads of the documented responses of earlier steps is checked by :mod:`.fields`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.apps.registry import Registry
from connector.errors import Problem
from connector.language.analyze import Analysis, analyze_template
from connector.language.bombs import jinja_filters
from connector.language.context import CheckContext
from connector.language.fields import Chain, iter_field_problems
from connector.language.load import child_path
from connector.language.schema import did_you_mean
from connector.language.template_env import visible
from connector.language.templates import is_template, shared_environment

__all__ = ["STEP_RESULT_FIELDS", "TemplateChecker", "TemplateScope", "iter_strings"]

# what `steps.X` holds for a template (connector.runtime.engine: the run's `steps` context), and the
# mapping methods a template may call on it
STEP_RESULT_FIELDS = frozenset(
    {"output", "status_code", "done_before", "done_now", "status", "error"}
)
_MAPPING_METHODS = frozenset({"get", "keys", "values", "items"})
_ENGINE_FILTERS = ("_connector",)  # the engine's own budget filters, not for recipes


@dataclass(frozen=True)
class TemplateScope:
    """What a template may read where it is written."""

    names: frozenset[str]
    steps_before: frozenset[str] = frozenset()
    steps_all: frozenset[str] = frozenset()
    current_step: str = ""
    vars_before: frozenset[str] = frozenset()
    vars_all: frozenset[str] = frozenset()
    current_var: str = ""
    # step id -> (operation, schema of steps.ID.output), for the steps before with a documented
    # response; and (operation, schema of `item`) in a foreach step over a documented list
    outputs: Mapping[str, tuple[str, Any]] = field(default_factory=dict)
    item: tuple[str, Any] | None = None


def _env_read(chain: Chain, names: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """``env.NAME`` of a variable templates never see (connector.language.template_env);
    ``names``: the apps' location variables, which they do."""
    if not chain.parts or chain.parts[0][0] not in ("field", "get"):
        return
    name = chain.parts[0][1]
    if not isinstance(name, str) or visible(name, names):
        return
    seen = " and ".join([*names, "CONNECTOR_VAR_*"])
    yield (
        chain.lineno,
        f"env.{name} is never set for templates: they see {seen} "
        "only (credentials stay with the connections); pass a value of your own as "
        "CONNECTOR_VAR_SOMETHING",
    )


def iter_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value`` (through mappings and lists), with its JSON path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from iter_strings(v, child_path(path, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_strings(v, child_path(path, i))


class TemplateChecker:
    """Checks template strings for one registry (its filters), caching each text's analysis.

    Its environment is the one the registry's plans compile their templates in
    (:func:`~connector.language.templates.shared_environment`)."""

    def __init__(self, registry: Registry) -> None:
        self.env = shared_environment(registry.filters)
        self.variables = registry.template_variables  # the apps' location variables
        self.filters = {f for f in self.env.filters if not f.startswith(_ENGINE_FILTERS)}
        self.tests = set(self.env.tests)
        self.globals = set(self.env.globals)
        self._jinja_filters = jinja_filters(self.env)
        self._cache: dict[str, Analysis] = {}
        self.is_template = is_template

    def analysis(self, source: str) -> Analysis:
        found = self._cache.get(source)
        if found is None:
            if len(self._cache) > 20_000:
                self._cache.clear()
            found = self._cache[source] = analyze_template(self.env, source, self._jinja_filters)
        return found

    def check(self, ctx: CheckContext, value: Any, path: str, scope: TemplateScope) -> None:
        """Add a problem for everything wrong with the templates inside ``value``."""
        for sub, text in iter_strings(value, path):
            if not self.is_template(text):
                continue
            analysis = self.analysis(text)
            for line, message in self._messages(analysis, scope):
                ctx.problems.append(Problem(ctx.template_location(sub, line), message))
            trigger = ctx.trigger_payload if "trigger" in scope.names else None
            if analysis.syntax_error is None and (scope.outputs or scope.item or trigger):
                for line, severity, message in iter_field_problems(
                    analysis.chains, scope.outputs, scope.item, trigger
                ):
                    ctx.problems.append(
                        Problem(ctx.template_location(sub, line), message, severity)
                    )

    def _messages(self, a: Analysis, scope: TemplateScope) -> Iterator[tuple[int, str]]:
        if a.syntax_error is not None:
            message, line = a.syntax_error
            yield line, f"template syntax error: {message}"
            return
        for what, line in a.unsafe:
            yield line, f"unsafe template: {what} is not allowed"
        for message, line in a.bombs:
            yield line, f"{message} (a constant expression here, found without running it)"
        for name, line in a.names.items():
            if name in scope.names or name in self.globals:
                continue
            if name in ("item", "index"):
                yield (
                    line,
                    (
                        f"{name!r} is undefined here: it exists only in the if: and with: "
                        "of a step that has foreach:"
                    ),
                )
                continue
            known = sorted(scope.names)
            yield (
                line,
                f"{name!r} is undefined"
                + (did_you_mean(name, known) or f" (this template can use {', '.join(known)})"),
            )
        for ref in a.references:
            if ref.root not in scope.names:
                continue
            if ref.root == "steps" and ref.field is not None:
                yield from self._step_field(ref.member, ref.field, ref.lineno, scope)
            elif ref.root == "steps":
                yield from self._step_ref(ref.member, ref.lineno, scope)
            elif ref.root == "vars":
                yield from self._var_ref(ref.member, ref.lineno, scope)
        for chain in a.chains:
            if chain.root == "env" and "env" in scope.names:
                yield from _env_read(chain, self.variables)
            if chain.root == "steps" and chain.parts and chain.parts[0][0] == "stop":
                sid = chain.parts[0][1]
                if sid in scope.steps_all and "steps" in scope.names:
                    yield (
                        chain.lineno,
                        f"steps.{sid} is the {sid}() method every mapping has, not the result "
                        f"of step {sid!r}: write steps[{sid!r}] (or rename the step)",
                    )
        for name, line in a.filters.items():
            if name not in self.filters:
                yield line, f"unknown filter {name!r}" + did_you_mean(name, self.filters)
        for name, line in a.tests.items():
            if name not in self.tests:
                yield line, f"unknown test {name!r}" + did_you_mean(name, self.tests)

    @staticmethod
    def _step_ref(sid: str, line: int, scope: TemplateScope) -> Iterator[tuple[int, str]]:
        if sid in scope.steps_before:
            return
        if sid and sid == scope.current_step:
            yield line, f"step {sid!r} cannot read its own result ({_steps_of(sid)})"
        elif sid in scope.steps_all:
            yield line, f"step {sid!r} runs after this one, so {_steps_of(sid)} is not set yet"
        else:
            hint = did_you_mean(sid, scope.steps_before) or (
                f" (steps before this: {', '.join(repr(s) for s in sorted(scope.steps_before))})"
                if scope.steps_before
                else " (no step runs before this one)"
            )
            yield line, f"there is no step {sid!r}{hint}"

    @staticmethod
    def _step_field(
        sid: str, name: str, line: int, scope: TemplateScope
    ) -> Iterator[tuple[int, str]]:
        """``steps.X.name``: what a step's result has (the engine's ``steps`` context)."""
        if sid not in scope.steps_before or name in STEP_RESULT_FIELDS | _MAPPING_METHODS:
            return
        known = ", ".join(sorted(STEP_RESULT_FIELDS))
        yield (
            line,
            f"{_steps_of(sid)} has no {name!r}"
            + (did_you_mean(name, STEP_RESULT_FIELDS) or f" (a step's result has {known})"),
        )

    @staticmethod
    def _var_ref(name: str, line: int, scope: TemplateScope) -> Iterator[tuple[int, str]]:
        if name in scope.vars_before:
            return
        if name and name == scope.current_var:
            yield line, f"var {name!r} cannot refer to itself"
        elif name in scope.vars_all:
            yield line, f"var {name!r} is declared below this one; move it up"
        else:
            yield line, f"there is no var {name!r}" + did_you_mean(name, scope.vars_all)


def _steps_of(sid: str) -> str:
    """``steps.contact``, or ``steps['a b']`` for an id that is not a name: one line, always."""
    return f"steps.{sid}" if sid.isidentifier() else f"steps[{sid!r}]"
