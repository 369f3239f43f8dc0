"""Jinja templates for recipe values: sandboxed, strict, native-typed and bounded.

A recipe value that is exactly one ``{{ expression }}`` keeps the expression's type (list, object,
number, boolean, null); any other string containing ``{{`` or ``{%`` renders to a string; anything
else is a literal. Templates run in an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with
:class:`~jinja2.StrictUndefined`, so a misspelt name is an error, never an empty string.

Evaluation is bounded. Before code generation the template's syntax tree is rewritten so that every
``for`` loop, every ``~`` concatenation and every output passes through a budget check; arithmetic
on strings and lists, every call, and every filter are checked too. A template that loops without
end, builds a huge string or recurses ends with :class:`~connector.errors.TemplateLimitError`
within about :data:`TIME_BUDGET` seconds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedFormatter,
)

from connector.errors import TemplateError, TemplateLimitError
from connector.language.placeholder import Unset, derived, touches
from connector.language.template_bounds import (
    BUDGET,
    ITER_FILTER,
    MAX_INT_BITS,
    MAX_ITERATIONS,
    MAX_OUTPUT,
    MAX_SIZE,
    OUTPUT_FILTER,
    SIZE_FILTER,
    TIME_BUDGET,
    BoundedEscapeFormatter,
    BoundedFormatter,
    Budget,
    bounded_iter,
    check_size,
    check_widths,
    count_output,
    current_budget,
    guard_filter,
)
from connector.language.template_env import TemplateEnv, unset_message

__all__ = [
    "MAX_ITERATIONS",
    "MAX_OUTPUT",
    "MAX_SIZE",
    "TIME_BUDGET",
    "BoundedEnvironment",
    "CompiledValue",
    "compile_value",
    "is_template",
    "make_environment",
]

_TEMPLATE_RE = re.compile(r"{{|{%|{#")
_SINGLE_EXPR_RE = re.compile(r"^\s*{{(?P<expr>.*)}}\s*$", re.DOTALL)


def is_template(value: str) -> bool:
    """Whether a string holds Jinja syntax (and is rendered rather than taken literally)."""
    return bool(_TEMPLATE_RE.search(value))


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandboxed environment, with loop, size, call and time budgets."""

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` and ``format_map`` as the sandbox has them, with bounded fields."""
        if super().wrap_str_format(value) is None:
            return None
        text = value.__self__
        is_map = value.__name__ == "format_map"
        escape = getattr(text, "escape", None)
        formatter: SandboxedFormatter = (
            BoundedEscapeFormatter(self, escape=escape)
            if escape is not None
            else BoundedFormatter(self)
        )

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                return type(text)(formatter.vformat(text, (), args[0]))
            current_budget().tick()
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(wrapper, value)

    intercepted_binops = frozenset(["*", "**", "+", "%", "//"])
    compiled: dict[str, CompiledValue]  # template text -> compiled value (see compile_value)
    # template text -> its syntax tree, parsed by the validator's analysis and not yet compiled
    # (see keep_tree)
    parsed: dict[str, nodes.Template]

    def _generate(self, source: Any, name: Any, filename: Any, defer_init: bool = False) -> Any:
        if isinstance(source, nodes.Template):
            _instrument(source)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def getattr(self, obj: Any, attribute: str) -> Any:
        current_budget().poll()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current_budget().poll()
        return super().getitem(obj, argument)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if (
            operator == "**"
            and isinstance(right, int | float)
            and abs(right) > 256
            and not (isinstance(left, int | float) and abs(left) <= 1)
        ):
            raise TemplateLimitError("template stopped: exponent too large")
        if (  # (10**256)**256: each exponent is small, the number is not
            operator == "**"
            and type(left) is int
            and type(right) is int
            and right > 0
            and abs(left) > 1
            and left.bit_length() * right > MAX_INT_BITS
        ):
            raise TemplateLimitError("template stopped: the power would be too large a number")
        if (  # a number squared again and again in a loop
            operator == "*"
            and type(left) is int
            and type(right) is int
            and left.bit_length() + right.bit_length() > MAX_INT_BITS
        ):
            raise TemplateLimitError("template stopped: the product would be too large a number")
        if operator == "*":
            seq, n = (left, right) if isinstance(right, int) else (right, left)
            if (
                isinstance(seq, str | bytes | list | tuple)
                and isinstance(n, int)
                and len(seq) * n > MAX_SIZE
            ):
                raise TemplateLimitError(
                    f"template stopped: repetition would make {len(seq) * n:,} items"
                )
        if operator == "%" and isinstance(left, str):
            check_widths(left)  # '%0999999999d' % 1 would build a huge string
        return check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        budget.clock()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple):
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_SIZE:
                    raise TemplateLimitError(f"template stopped: argument {arg:,} is too large")
        try:
            result = ImmutableSandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs)
        except (TypeError, ValueError):
            # a known value's method given a dry run's unknown value ('a,b'.split(<...>))
            if touches(args, kwargs) is None:
                raise
            name = getattr(__obj, "__name__", "call")
            return derived(name, owner if owner is not None else __obj, args, kwargs)
        return check_size(result)


def _instrument(template: nodes.Template) -> None:
    """Route loops, concatenations and outputs through the budget filters."""
    for loop in template.find_all(nodes.For):
        loop.iter = nodes.Filter(loop.iter, ITER_FILTER, [], [], None, None, lineno=loop.lineno)
    targets = [
        (parent, field)
        for parent in template.find_all(nodes.Node)
        for field in parent.fields
        if isinstance(getattr(parent, field, None), nodes.Concat | list)
    ]
    for parent, field in targets:
        child = getattr(parent, field)
        if isinstance(child, nodes.Concat):
            setattr(parent, field, _wrap(child, SIZE_FILTER))
        else:
            child[:] = [_wrap(c, SIZE_FILTER) if isinstance(c, nodes.Concat) else c for c in child]
    for output in template.find_all(nodes.Output):
        output.nodes = [
            n if isinstance(n, nodes.TemplateData) else _wrap(n, OUTPUT_FILTER)
            for n in output.nodes
        ]


def _wrap(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _safe_range(*args: int) -> Iterator[int]:
    rng = range(*args)
    if len(rng) > MAX_ITERATIONS:
        raise TemplateLimitError(f"template stopped: range of {len(rng):,} items is too large")
    return bounded_iter(rng)


# what a test says of a variable a dry run found not set (placeholder.Unset): what it says of a
# missing value in a real run
_UNSET_IS = {"defined": False, "undefined": True, "none": False}


def _unset_default(default: Callable[..., Any]) -> Callable[..., Any]:
    """``default`` that gives its default for a variable a dry run found not set."""

    @functools.wraps(default)
    def checked(value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, Unset):
            return args[0] if args else kwargs.get("default_value", "")
        return default(value, *args, **kwargs)

    return checked


def _placeholder_test(name: str, test: Callable[..., Any]) -> Callable[..., Any]:
    """A test (``is none``, ``is defined``) that notes a dry run's unknown value it is given, so a
    condition that depends on one is known to be unknown; it cannot fail on one."""

    unset_is = _UNSET_IS.get(name)

    @functools.wraps(test)
    def checked(*args: Any, **kwargs: Any) -> Any:
        current_budget().poll()
        if unset_is is not None and args and isinstance(args[0], Unset):
            return unset_is  # a variable a dry run found not set is missing, as in a real run
        if touches(args, kwargs) is None:
            return test(*args, **kwargs)
        try:
            return test(*args, **kwargs)
        except (TypeError, ValueError, ArithmeticError):
            return False

    return checked


_SHARED: dict[tuple[tuple[str, Any], ...], BoundedEnvironment] = {}
_MAX_COMPILED = 10_000  # compiled templates one environment keeps
_MAX_PARSED = 1_000  # syntax trees one environment keeps for the compile (see keep_tree)


def shared_environment(filters: Mapping[str, Callable[..., Any]]) -> BoundedEnvironment:
    """The environment for ``filters``, made once: plans of the same registry share it, and with
    it the templates already compiled (planning a recipe again compiles nothing)."""
    try:
        key = tuple(filters.items())
        env = _SHARED.get(key)
    except TypeError:  # a filter that cannot be a key
        return make_environment(filters)
    if env is None:
        if len(_SHARED) >= 8:
            _SHARED.clear()
        env = _SHARED[key] = make_environment(filters)
    return env


def make_environment(filters: Mapping[str, Callable[..., Any]] | None = None) -> BoundedEnvironment:
    """The template environment for recipes: Jinja's filters plus ``filters`` (from plugins)."""
    env = BoundedEnvironment(undefined=StrictUndefined, autoescape=False)
    env.compiled = {}
    env.parsed = {}
    env.filters.update(filters or {})
    env.filters = {name: guard_filter(name, f) for name, f in env.filters.items()}
    for name in ("default", "d"):
        env.filters[name] = _unset_default(env.filters[name])
    env.filters[ITER_FILTER] = bounded_iter
    env.filters[SIZE_FILTER] = check_size
    env.filters[OUTPUT_FILTER] = count_output
    tests: Mapping[str, Any] = env.tests
    env.tests = {name: _placeholder_test(name, t) for name, t in tests.items()}
    env.globals["range"] = _safe_range
    # lipsum(999999) builds gigabytes of filler text; a recipe has no use for it
    env.globals.pop("lipsum", None)
    return env


def _first_undefined(value: Any, depth: int = 0) -> Undefined | None:
    if isinstance(value, Undefined):
        return value
    if depth > 32 or not isinstance(value, dict | list | tuple):
        return None
    for item in value.values() if isinstance(value, dict) else value:
        found = _first_undefined(item, depth + 1)
        if found is not None:
            return found
    return None


_NO_ATTRIBUTE = re.compile(r"^'(dict|list|str|int|float|NoneType) object' has no attribute '(.+)'$")
_NO_ELEMENT = re.compile(r"^'(dict|list|str) object' has no element (.+)$")
_KINDS = {"dict": "the object", "list": "the list", "str": "the text", "int": "the number",
          "float": "the number", "NoneType": "the value (null)"}  # fmt: skip


def _plain_undefined(message: str) -> str:
    """Jinja's words about a missing value, in a recipe author's: ``'dict object' has no
    attribute 'phone'`` becomes ``the object has no field 'phone'``."""
    unset = unset_message(message)
    if unset is not None:
        return unset
    found = _NO_ATTRIBUTE.match(message)
    if found:
        return f"{_KINDS[found.group(1)]} has no field '{found.group(2)}'"
    found = _NO_ELEMENT.match(message)
    if found:
        what = "item" if found.group(1) == "list" else "field"
        return f"{_KINDS[found.group(1)]} has no {what} {found.group(2)}"
    return message


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UndefinedError):
        return _plain_undefined(exc.message or "undefined value")
    if isinstance(exc, SecurityError):
        return f"unsafe template: {exc}"
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message} (line {exc.lineno})"
    if isinstance(exc, RecursionError):
        return "template stopped: recursion too deep"
    if isinstance(exc, MemoryError):
        return "template stopped: out of memory"
    return f"{type(exc).__name__}: {exc}"


class CompiledValue:
    """A recipe value compiled once at plan time and rendered for each run."""

    __slots__ = ()

    def render(self, context: Mapping[str, Any]) -> Any:
        token = BUDGET.set(Budget())
        try:
            return self._render(context)
        except _RENDER_ERRORS as exc:
            raise _template_error(exc) from None
        finally:
            BUDGET.reset(token)

    def _render(self, context: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    @property
    def is_static(self) -> bool:
        return False


def _fresh(value: Any) -> Any:
    """A copy of a literal's lists and objects, so no run can change what the plan holds."""
    if type(value) is dict:
        return {k: _fresh(v) for k, v in value.items()}
    if type(value) is list:
        return [_fresh(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class _Literal(CompiledValue):
    value: Any

    def _render(self, context: Mapping[str, Any]) -> Any:
        return _fresh(self.value)

    @property
    def is_static(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class _Expression(CompiledValue):
    source: str
    expr: Any  # jinja2.environment.TemplateExpression

    def _render(self, context: Mapping[str, Any]) -> Any:
        value = self.expr(**context)
        undefined = _first_undefined(value)
        if undefined is not None:
            undefined._fail_with_undefined_error()
        return check_size(value)


_MISSING = object()


@dataclass(frozen=True, slots=True)
class _Path(CompiledValue):
    """A plain reference such as ``trigger.contactId`` or ``steps.a.output.items[0].id``: looked up
    directly when every part is a dictionary key or list index, else evaluated by Jinja (which then
    also gives the exact error). Same result as Jinja, without its per-call cost."""

    parts: tuple[str | int, ...]
    fallback: _Expression

    def render(self, context: Mapping[str, Any]) -> Any:
        value: Any = context.get(str(self.parts[0]), _MISSING)
        for part in self.parts[1:]:
            if value is _MISSING:
                break
            if isinstance(part, int):
                value = (
                    value[part]
                    if type(value) is list and -len(value) <= part < len(value)
                    else _MISSING
                )
            elif type(value) in (dict, TemplateEnv) and not hasattr(dict, part):
                value = value.get(part, _MISSING)
            else:
                value = _MISSING
        if value is _MISSING or isinstance(value, Undefined):
            return self.fallback.render(context)
        return check_size(value)

    def _render(self, context: Mapping[str, Any]) -> Any:
        return self.render(context)


_PATH_RE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*|\[-?\d+\])*)\s*$")
_PART_RE = re.compile(r"\.?([A-Za-z][A-Za-z0-9_]*)|\[(-?\d+)\]")


def _path_parts(expr: str) -> tuple[str | int, ...] | None:
    match = _PATH_RE.match(expr)
    if match is None:
        return None
    parts: list[str | int] = []
    for name, index in _PART_RE.findall(match.group(1)):
        parts.append(int(index) if index else name)
    if parts[0] in ("true", "false", "none", "True", "False", "None"):
        return None
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class _Text(CompiledValue):
    source: str
    template: Any  # jinja2.Template

    def _render(self, context: Mapping[str, Any]) -> str:
        return "".join(self.template.generate(context))


_RENDER_ERRORS = (
    TemplateError,
    AssertionError,  # a filter's own check of its arguments (truncate's length)
    JinjaTemplateError,
    RecursionError,
    MemoryError,
    ArithmeticError,
    TypeError,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
)


def _template_error(exc: BaseException, key: str | int | None = None) -> TemplateError:
    """``exc`` as a :class:`TemplateError`; ``key``: the member of a mapping or list it came
    from, prepended to its ``at``."""
    if isinstance(exc, TemplateError):
        error = exc
    elif isinstance(exc, JinjaTemplateError | RecursionError | MemoryError | ArithmeticError):
        error = TemplateError(_describe(exc))
    else:
        error = TemplateError(f"{type(exc).__name__}: {exc}")
    if key is not None:
        error.at = (key, *error.at)
    return error


@dataclass(frozen=True, slots=True)
class _Dict(CompiledValue):
    items: tuple[tuple[str, CompiledValue], ...]

    def _render(self, context: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in self.items:
            try:
                out[k] = v._render(context)
            except _RENDER_ERRORS as exc:
                raise _template_error(exc, k) from None
        return out


@dataclass(frozen=True, slots=True)
class _List(CompiledValue):
    items: tuple[CompiledValue, ...]

    def _render(self, context: Mapping[str, Any]) -> list[Any]:
        out = []
        for i, v in enumerate(self.items):
            try:
                out.append(v._render(context))
            except _RENDER_ERRORS as exc:
                raise _template_error(exc, i) from None
        return out


def keep_tree(env: Any, source: str, tree: nodes.Template) -> None:
    """Keep the syntax tree ``env`` parsed of ``source`` (the validator's analysis, which leaves it
    as it was) for the compile of the same text (:func:`compile_value`), so that validating and
    planning a recipe parse each template once. The compile takes it, and changes it."""
    parsed = getattr(env, "parsed", None)
    if parsed is None:
        return
    if len(parsed) >= _MAX_PARSED:
        parsed.clear()
    parsed[source] = tree


def _parse(env: BoundedEnvironment, source: str) -> nodes.Template:
    """The syntax tree of ``source``: the one the analysis kept (:func:`keep_tree`), else parsed."""
    parsed = getattr(env, "parsed", None)
    tree = parsed.pop(source, None) if parsed is not None else None
    return tree if tree is not None else env.parse(source)


def _single_expression(source: str, body: list[nodes.Node]) -> str | None:
    """The inner expression when ``source`` (whose tree's body is ``body``) is exactly one
    ``{{ ... }}``, else None."""
    match = _SINGLE_EXPR_RE.match(source)
    if not match:
        return None
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts = [
        n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())
    ]
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return match.group("expr")


@dataclass(frozen=True, slots=True)
class _Join(CompiledValue):
    """Text made only of literal parts and plain references (``vip-{{ trigger.id }}``)."""

    parts: tuple[str | _Path, ...]

    def render(self, context: Mapping[str, Any]) -> str:
        return "".join(p if type(p) is str else str(p.render(context)) for p in self.parts)  # type: ignore[union-attr]

    def _render(self, context: Mapping[str, Any]) -> str:
        return self.render(context)


def _simple_text(env: BoundedEnvironment, body: list[nodes.Node]) -> _Join | None:
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts: list[str | _Path] = []
    for node in body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
            continue
        if not isinstance(node, nodes.Name | nodes.Getattr | nodes.Getitem):
            return None
        expr = _node_path(node)
        if expr is None:
            return None
        parts.append(
            _Path(
                _path_parts(expr) or (),
                _Expression(expr, env.compile_expression(expr, undefined_to_none=False)),
            )
        )
    if any(isinstance(p, _Path) and not p.parts for p in parts):
        return None
    return _Join(tuple(parts))


def _node_path(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _node_path(node.node)
        return None if base is None else f"{base}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        base = _node_path(node.node)
        if base is None or not isinstance(node.arg.value, int) or isinstance(node.arg.value, bool):
            return None
        return f"{base}[{node.arg.value}]"
    return None


def compile_value(env: BoundedEnvironment, value: Any) -> CompiledValue:
    """Compile a recipe value (recursively through objects and lists).

    Raises :class:`~connector.errors.TemplateError` for a syntax error.
    """
    if isinstance(value, dict):
        compiled = tuple((str(k), compile_value(env, v)) for k, v in value.items())
        if all(v.is_static for _, v in compiled):
            return _Literal(value)
        return _Dict(compiled)
    if isinstance(value, list):
        items = tuple(compile_value(env, v) for v in value)
        if all(v.is_static for v in items):
            return _Literal(value)
        return _List(items)
    if isinstance(value, str) and is_template(value):
        cache = getattr(env, "compiled", None)
        if cache is None:
            return _compile_text(env, value)
        found = cache.get(value)
        if found is None:
            if len(cache) >= _MAX_COMPILED:
                cache.clear()
            found = cache[value] = _compile_text(env, value)
        return found
    return _Literal(value)


def _compile_text(env: BoundedEnvironment, value: str) -> CompiledValue:
    """A template text compiled (compiled values hold no state: one serves every plan)."""
    try:
        tree = _parse(env, value)
        expr = _single_expression(value, tree.body)
        if expr is not None:
            expression = _Expression(value, env.compile_expression(expr, undefined_to_none=False))
            parts = _path_parts(expr)
            return expression if parts is None else _Path(parts, expression)
        simple = _simple_text(env, tree.body)
        return simple if simple is not None else _Text(value, env.from_string(tree))
    except TemplateSyntaxError as exc:
        raise TemplateError(_describe(exc)) from None
    except RecursionError:  # ``1 + 1 + ...`` thousands of times: Jinja's compiler recurses
        raise TemplateError("the template is nested too deeply") from None
