"""Validating recipes: the schema, the catalog, the templates and the references, in one pass.

:func:`validate_recipe` returns every problem of a loaded recipe, each pointing at the node it is
about (the key itself for an unknown key); :func:`check_recipe` does the same for a recipe already
parsed into nodes (:mod:`.nodes`), the parse the planner then builds its plan from. It checks,
beyond the schema (:mod:`.schema`):

* the trigger's app and event exist (``manual`` takes any event), a schedule's ``cron``;
* each step's action exists (with close matches), its required parameters are given (except
  the app's location parameter, which the engine fills from the app's location variable), every
  parameter is known, and literal values fit the parameter's JSON Schema;
* a ``once:`` look-up's action exists and its ``with:`` fits it, as a step's;
* step ids are unique;
* templates (``once:``'s too, where ``link`` and ``found`` also see ``output``) parse, use only
  the names in scope and known filters and tests, read only steps that ran before and vars
  declared before, and touch no private attribute (:mod:`.analyze`);
* their constant parts stay within the run-time bounds (:mod:`.bombs`);
* what they read of ``steps.ID.output`` and ``item`` is in the documented response, and a
  reference given to a parameter has its type (:mod:`.fields`);
* a deprecated operation is a warning, naming its replacement (:mod:`.deprecation`).

:func:`validate_paths` does the same for files and folders. Nothing here renders a template or
touches the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connector.apps import Action
from connector.apps.events import Poll
from connector.apps.registry import Registry
from connector.catalog.model import Operation
from connector.catalog.versions import UnknownVersion, preference_problems, preferred_versions
from connector.errors import Location, Problem, RecipeLoadError, UsageError
from connector.language.alert_targets import alert_problems
from connector.language.context import CheckContext
from connector.language.deprecation import deprecation_message
from connector.language.fields import paged_output, resolve_chain, schema_types, streamed_item
from connector.language.load import LoadedRecipe, child_path, load_recipe
from connector.language.nodes import (
    ActionRef,
    Once,
    Recipe,
    Step,
    Trigger,
    Var,
    parse_recipe,
    value_of,
)
from connector.language.params import ParamChecker
from connector.language.schema import did_you_mean, schema_problems
from connector.language.sync_spec import is_sync_file, sync_problems
from connector.language.template_check import TemplateChecker, TemplateScope

__all__ = [
    "check_recipe",
    "find_recipe_files",
    "validate_files",
    "validate_paths",
    "validate_recipe",
]

_TOP_NAMES = ("trigger", "steps", "vars", "env")


@dataclass(frozen=True)
class _Checkers:
    templates: TemplateChecker
    params: ParamChecker


# the attribute of a registry that holds its checkers
_CHECKERS = "_connector_language_checkers"


def _checkers(registry: Registry) -> _Checkers:
    """The template and parameter checkers of ``registry``, kept on the registry itself: their
    caches serve every recipe checked against it, and go when it goes."""
    found = vars(registry).get(_CHECKERS)
    if not isinstance(found, _Checkers):
        found = _Checkers(TemplateChecker(registry), ParamChecker())
        vars(registry)[_CHECKERS] = found
    return found


@dataclass
class _Context(CheckContext):
    """The validator's state while one recipe is checked, beyond what the checks share."""

    templates: TemplateChecker = field(kw_only=True)
    params: ParamChecker = field(kw_only=True)
    # step id -> (operation, schema of steps.ID.output) of the steps so far (see .fields)
    outputs: dict[str, tuple[str, Any]] = field(default_factory=dict)


def _check_trigger(ctx: _Context, node: Trigger | None) -> None:
    if node is None:
        return
    app, event = value_of(node.app), value_of(node.event)
    if isinstance(app, str) and app and isinstance(event, str) and event:
        triggers = _registry(ctx).triggers
        found = _registry(ctx).trigger(app, event)
        if found is not None and found.payload_schema:
            ctx.trigger_payload = (f"{app} {event}", found.payload_schema)
        if found is None:
            apps = {a for a, _ in triggers}
            if app not in apps:
                hint = did_you_mean(app, apps) or f" (known: {', '.join(sorted(apps))})"
                ctx.add("$.trigger.app", f"unknown trigger app {app!r}{hint}")
            else:
                events = [e for a, e in triggers if a == app]
                hint = did_you_mean(event, events) or (
                    "; `connector catalog list --triggers` lists them"
                )
                ctx.add("$.trigger.event", f"unknown {app} event {event!r}{hint}")
    poll = value_of(node.poll)
    # the schema reports an app or event that is not a string
    pair = (app, event) if isinstance(app, str) and isinstance(event, str) else None
    pollable = _pollable(_registry(ctx))
    if isinstance(poll, dict) and pair is not None and pair not in pollable:
        known = ", ".join(f"{a} {e}" for a, e in sorted(pollable))
        ctx.add("$.trigger.poll", f"{app} {event} cannot be polled (polling works for: {known})")
    elif isinstance(poll, dict) and pair is not None:
        spec = pollable[pair]
        given = poll.get("with")
        for need in spec.needs:
            value = given.get(need) if isinstance(given, dict) else None
            if value in (None, ""):
                what = spec.what or f"{app} {event}"
                ctx.add("$.trigger.poll", f"a poll of {what} needs with.{need}")
    condition = value_of(node.if_)
    if isinstance(condition, str):
        scope = TemplateScope(names=frozenset({"trigger", "env"}))
        ctx.templates.check(ctx, condition, "$.trigger.if", scope)
    cron = value_of(node.cron)
    if app == "schedule" and isinstance(cron, str) and cron.strip() and not cron_is_valid(cron):
        ctx.add(
            "$.trigger.cron",
            f"{cron!r} is not a cron expression: give five fields "
            "(minute hour day-of-month month day-of-week), six with seconds first, "
            "or a macro such as '@daily'",
        )


def _registry(ctx: CheckContext) -> Registry:
    assert ctx.registry is not None  # check_recipe gives it
    return ctx.registry


def _pollable(registry: Registry) -> dict[tuple[str, str], Poll]:
    """The trigger events `connector serve` can poll for: what each app declares (App.polls)."""
    return {(a.name, e): p for a in registry.apps.values() for e, p in a.polls.items()}


def cron_is_valid(cron: str) -> bool:
    """Whether ``cron`` is a schedule ``connector serve`` can fire: the one parser (croniter,
    the one DBOS uses) for both. Six fields start with seconds."""
    from croniter import croniter

    fields = cron.split()
    if len(fields) not in (1, 5, 6):
        return False
    return bool(croniter.is_valid(cron, second_at_beginning=len(fields) == 6))


# names that `vars.NAME` resolves to a method of the mapping, not to the var (Jinja looks
# attributes up before items)
_DICT_METHODS = frozenset(n for n in dir(dict) if not n.startswith("_"))


def _check_vars(ctx: _Context, variables: tuple[Var, ...]) -> list[str]:
    names = [var.name for var in variables]
    for i, var in enumerate(variables):
        name = var.name
        if name in _DICT_METHODS:
            ctx.add(
                var.path,
                f"a var cannot be named {name!r}: `vars.{name}` in a template is the {name}() "
                "method every mapping has, not this value; rename it",
                key=True,
            )
        scope = TemplateScope(
            names=frozenset({"trigger", "env", "vars"}),
            vars_before=frozenset(names[:i]),
            vars_all=frozenset(names),
            current_var=name,
        )
        ctx.templates.check(ctx, var.value.raw, var.path, scope)
    return names


def _resolve(ctx: _Context, action: ActionRef) -> Operation | Action | None:
    """The operation or action ``action`` names; a problem when there is none, a warning when
    it is deprecated."""
    if not action.named:
        return None  # the schema reports it
    if action.target is None:
        if isinstance(action.error, UnknownVersion):
            ctx.add(action.path.removesuffix(".action") + ".version", str(action.error))
            return None
        suggestions = getattr(action.error, "suggestions", [])
        hint = "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        ctx.add(
            action.path,
            f"unknown action {action.name!r}"
            + (hint if suggestions else "; `connector catalog list` shows the operations"),
        )
        return None
    target = action.target
    if isinstance(target, Operation) and target.deprecated:
        ctx.warn(action.path, deprecation_message(target, _registry(ctx)))
    return target


def _check_action(ctx: _Context, step: Step, scope: TemplateScope) -> Operation | Action | None:
    target = _resolve(ctx, step.action)
    if target is None:
        return None
    ctx.params.check(ctx, target, value_of(step.with_), step.path, scope)
    for path, message in step.pages.problems if step.pages is not None else ():
        ctx.add(path, message)
    return target


def _check_once(ctx: _Context, once: Once | None, scope: TemplateScope) -> None:
    """A step's ``once:``: ``key`` is rendered in the step's scope; ``link`` and the look-up's
    ``found`` also see ``output`` (the write's, the read's response); the look-up's action is
    resolved and its ``with:`` checked as a step's are."""
    if once is None:
        return  # the schema reports one that is not a mapping
    with_output = replace(scope, names=scope.names | {"output"})
    if once.key is not None:
        ctx.templates.check(ctx, once.key.raw, once.key.path, scope)
    if once.link is not None:
        ctx.templates.check(ctx, once.link.raw, once.link.path, with_output)
    lookup = once.lookup
    if lookup is None:
        return
    target = _resolve(ctx, lookup.action)
    if target is not None:
        ctx.params.check(ctx, target, value_of(lookup.with_), lookup.path, scope)
    if lookup.with_ is not None:
        ctx.templates.check(ctx, lookup.with_.raw, lookup.with_.path, scope)
    if lookup.found is not None:
        ctx.templates.check(ctx, lookup.found.raw, lookup.found.path, with_output)


def _output_schema(target: Operation | Action | None, step: Step, streamed: bool = False) -> Any:
    """The schema of ``steps.ID.output`` after ``step``, when its operation documents it
    (``streamed``: the next step walks its pages)."""
    if not isinstance(target, Operation) or not isinstance(target.response_schema, dict):
        return None
    schema = target.response_schema
    if step.pages is not None:  # the items of all pages, or the summary of a walked step
        items_at = (target.pagination or {}).get("items")
        if step.foreach is not None:  # each item's list (a paged foreach step never streams)
            each = paged_output(schema, items_at, False)
            return {"type": "array", "items": each} if each is not None else None
        return paged_output(schema, items_at, streamed)
    if step.foreach is None:
        return schema
    return {"type": "array", "items": schema, "$defs": schema.get("$defs") or {}}


def _foreach_item(ctx: _Context, step: Step, scope: TemplateScope) -> Any:
    """(operation, schema of ``item``) when ``foreach`` is exactly ``{{ documented list }}``."""
    value = value_of(step.foreach)
    if not isinstance(value, str) or not ctx.templates.is_template(value):
        return None
    chain = ctx.templates.analysis(value).value_chain
    if chain is None or chain.root != "steps" or not chain.parts:
        return None
    found = resolve_chain(chain, scope.outputs, None)
    types = schema_types(found.schema) if found is not None else None
    if not types or "array" not in types or not types <= {"array", "null"}:
        return None
    item = resolve_chain(replace(chain, parts=(*chain.parts, ("index", None))), scope.outputs, None)
    if item is None or item.schema is None:
        return None
    return scope.outputs[chain.parts[0][1]][0], item.schema


def _check_steps(ctx: _Context, recipe: Recipe, var_names: list[str]) -> list[str]:
    ids = list(recipe.step_ids)
    first_seen: dict[str, int] = {}  # step id -> the line it is first written on
    outputs = ctx.outputs
    streams = recipe.streams
    walks = {after: before for before, after in streams.items()}
    for step in recipe.steps:
        i, path, sid = step.index, step.path, step.id
        if sid:
            if sid in first_seen:
                line = first_seen[sid]
                ctx.add(f"{path}.id", f"duplicate step id {sid!r} (first used at line {line})")
            elif step.id_value is not None:
                first_seen[sid] = step.id_value.location.line
        outer = TemplateScope(
            names=frozenset(_TOP_NAMES),
            steps_before=frozenset(ids[:i]) - {sid},
            steps_all=frozenset(ids),
            current_step=sid,
            vars_before=frozenset(var_names),
            vars_all=frozenset(var_names),
            outputs={k: v for k, v in outputs.items() if k != sid},
        )
        # `item` and `index` exist in the if: and with: of a foreach step, not in foreach: itself
        inner = (
            replace(
                outer,
                names=outer.names | {"item", "index"},
                item=(
                    streamed_item(outputs.get(walks[sid]))
                    if sid in walks
                    else _foreach_item(ctx, step, outer)
                ),
            )
            if step.foreach is not None
            else outer
        )
        target = _check_action(ctx, step, inner)
        schema = _output_schema(target, step, sid in streams)
        if sid and schema is not None and target is not None:
            outputs[sid] = (getattr(target, "display_name", target.name), schema)
        elif sid:
            outputs.pop(sid, None)
        for key, node in (("if", step.if_), ("foreach", step.foreach)):
            value = value_of(node)
            if node is not None and isinstance(value, str) and not ctx.templates.is_template(value):
                need = "true or false" if key == "if" else "a list"
                ctx.add(
                    node.path,
                    f"{key}: is the plain string {value!r}; write {need} or a template "
                    "such as '{{ ... }}'",
                )
        if step.if_ is not None:
            ctx.templates.check(ctx, step.if_.raw, step.if_.path, inner)
        if step.foreach is not None:
            ctx.templates.check(ctx, step.foreach.raw, step.foreach.path, outer)
        if step.with_ is not None:
            ctx.templates.check(ctx, step.with_.raw, step.with_.path, inner)
        _check_once(ctx, step.once, inner)
    return ids


def validate_recipe(recipe: LoadedRecipe, registry: Registry) -> list[Problem]:
    """Every problem of ``recipe``, sorted by position; ``[]`` when it is valid."""
    return check_recipe(parse_recipe(recipe, registry), registry)


def check_recipe(recipe: Recipe, registry: Registry) -> list[Problem]:
    """Every problem of the parsed ``recipe`` (:func:`~.nodes.parse_recipe` with the same
    ``registry``), sorted by position; ``[]`` when it is valid."""
    checkers = _checkers(registry)
    templates = checkers.templates
    ctx = _Context(
        recipe.source,
        templates.analysis,
        registry=registry,
        templates=templates,
        params=checkers.params,
    )
    ctx.problems.extend(schema_problems(recipe.source))
    data = recipe.source.data if isinstance(recipe.source.data, dict) else {}
    for app, message in preference_problems(preferred_versions(data), registry.apps):
        ctx.add(child_path("$.versions", app), message)
    ctx.problems.extend(alert_problems(data.get("alerts"), recipe.source.location))
    _check_trigger(ctx, recipe.trigger)
    var_names = _check_vars(ctx, recipe.vars)
    ids = _check_steps(ctx, recipe, var_names)
    if recipe.output is not None:
        scope = TemplateScope(
            names=frozenset(_TOP_NAMES),
            steps_before=frozenset(ids),
            steps_all=frozenset(ids),
            vars_before=frozenset(var_names),
            vars_all=frozenset(var_names),
            outputs=ctx.outputs,
        )
        templates.check(ctx, recipe.output.raw, "$.output", scope)
    seen: set[tuple[Location, str]] = set()
    unique = []
    for p in ctx.problems:
        if (p.location, p.message) not in seen:
            seen.add((p.location, p.message))
            unique.append(p)
    unique.sort(key=lambda p: (p.location.line, p.location.column))
    return unique


_NOT_RECIPES = (
    ".test.yaml",
    ".test.yml",
    ".cassette.yaml",
    ".cassette.yml",
    ".event.yaml",
    ".event.yml",
    ".event.json",
)


def _test_file(name: str) -> bool:
    """``connector test``'s files (``NAME.test.yaml``, ``NAME.cassette.yaml``) and trigger events
    (``NAME.event.yaml``, ``NAME.event.json``, for ``connector run --event``): not recipes."""
    return name.endswith(_NOT_RECIPES)


def _under_events(path: Path, top: Path) -> bool:
    """Whether ``path`` is under an ``events/`` folder inside the searched folder ``top``."""
    return "events" in path.relative_to(top).parts[:-1]


def find_recipe_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The recipe files named by ``paths``: files as given, folders searched for ``*.yaml`` and
    ``*.yml`` (recursively, sorted; the tests and cassettes of ``connector test``, event files
    ``*.event.yaml`` / ``*.event.json`` and anything under an ``events/`` folder are left out).
    Raises :class:`UsageError` for a path that does not exist."""
    if not paths:
        raise UsageError("give at least one recipe file or folder")
    found: list[str] = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            matches = [
                str(p)
                for p in sorted(Path(path).rglob("*"))
                if p.suffix in (".yaml", ".yml")
                and p.is_file()
                and not _test_file(p.name)
                and not _under_events(p, Path(path))
            ]
            if not matches:
                raise UsageError(f"no recipes (*.yaml, *.yml) in folder {path}")
            found.extend(matches)
        elif os.path.exists(path):
            found.append(path)
        else:
            raise UsageError(f"no such file or folder: {path}")
    return list(dict.fromkeys(found))


def validate_files(
    files: Sequence[str],
    registry: Registry,
    on_file: Callable[[str, list[Problem]], None] | None = None,
    warn: Callable[[LoadedRecipe], list[Problem]] | None = None,
) -> list[Problem]:
    """Load and validate each file; a file that does not load is one problem, the others go on.
    ``warn`` adds warnings about a recipe that has no errors (the scopes its steps need)."""
    problems: list[Problem] = []
    for name in files:
        if is_sync_file(name):  # a sync declaration, checked as one
            found = sync_problems(name, registry)
            problems.extend(found)
            if on_file is not None:
                on_file(name, found)
            continue
        try:
            loaded = load_recipe(name)
            found = validate_recipe(loaded, registry)
            if warn is not None and all(p.severity == "warning" for p in found):
                found = sorted(
                    [*found, *warn(loaded)], key=lambda p: (p.location.line, p.location.column)
                )
        except RecipeLoadError as exc:
            found = [exc.problem]
        problems.extend(found)
        if on_file is not None:
            on_file(name, found)
    return problems


def validate_paths(paths: Sequence[str], registry: Registry) -> list[Problem]:
    """Every problem of the recipes in ``paths`` (files or folders of ``*.yaml`` / ``*.yml``)."""
    return validate_files(find_recipe_files(paths), registry)
