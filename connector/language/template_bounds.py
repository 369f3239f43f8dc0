"""The bounds of template evaluation: loop, size, output and time budgets, and the checks that
refuse what a filter or format would build before it is built.

Each render runs under a fresh :class:`Budget` (held in :data:`BUDGET`); :mod:`connector.language.templates`
routes loops, concatenations and outputs through :data:`ITER_FILTER`, :data:`SIZE_FILTER` and
:data:`OUTPUT_FILTER`, wraps every filter with :func:`guard_filter` and formats with
:class:`BoundedFormatter`.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from jinja2 import Environment
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter

from connector.errors import TemplateError, TemplateLimitError
from connector.language.placeholder import DERIVED, derived, touches

__all__ = [
    "BUDGET",
    "ITER_FILTER",
    "MAX_INT_BITS",
    "MAX_ITERATIONS",
    "MAX_OUTPUT",
    "MAX_SIZE",
    "OUTPUT_FILTER",
    "SIZE_FILTER",
    "TIME_BUDGET",
    "BoundedEscapeFormatter",
    "BoundedFormatter",
    "Budget",
    "bounded_iter",
    "check_size",
    "check_widths",
    "count_output",
    "current_budget",
    "guard_filter",
    "within_budget",
]

MAX_SIZE = 1_000_000  # longest string or list a template may produce or compute with
MAX_OUTPUT = 5_000_000  # characters written by one render, in all
MAX_ITERATIONS = 200_000  # loop iterations of one render, in all
TIME_BUDGET = 1.0  # seconds one render may take


ITER_FILTER = "_connector_iter"
SIZE_FILTER = "_connector_size"
OUTPUT_FILTER = "_connector_out"


class Budget:
    __slots__ = ("calls", "deadline", "iterations", "output")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + TIME_BUDGET
        self.iterations = 0
        self.output = 0
        self.calls = 0  # lookups and tests, which filters' own loops make (map, selectattr)

    def tick(self, n: int = 1) -> None:
        self.iterations += n
        if self.iterations > MAX_ITERATIONS:
            raise TemplateLimitError(
                f"template stopped: more than {MAX_ITERATIONS:,} loop iterations"
            )
        if self.iterations % 256 == 0 and time.monotonic() > self.deadline:
            raise TemplateLimitError(f"template stopped: it ran longer than {TIME_BUDGET:g} s")

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateLimitError(f"template stopped: it ran longer than {TIME_BUDGET:g} s")

    def poll(self) -> None:
        """The time budget, checked every 1,024 calls: a filter's loop over a million items
        (``map(attribute=...)``, ``selectattr``) looks up and tests each without a loop tick."""
        self.calls += 1
        if not self.calls & 1023 and time.monotonic() > self.deadline:
            raise TemplateLimitError(f"template stopped: it ran longer than {TIME_BUDGET:g} s")


BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "connector_template_budget", default=None
)


def current_budget() -> Budget:
    budget = BUDGET.get()
    if budget is None:  # rendering outside render(): still bounded
        budget = Budget()
        BUDGET.set(budget)
    return budget


def check_size(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict) and len(value) > MAX_SIZE:
        raise TemplateLimitError(
            f"template stopped: a value of {len(value):,} items is over the {MAX_SIZE:,} limit"
        )
    return value


def bounded_iter(value: Any) -> Iterator[Any]:
    budget = current_budget()
    for item in value:
        budget.tick()
        yield item


def count_output(value: Any) -> Any:
    budget = current_budget()
    size = len(value) if isinstance(value, str) else 1
    budget.output += size
    if budget.output > MAX_OUTPUT:
        raise TemplateLimitError(f"template stopped: output over {MAX_OUTPUT:,} characters")
    budget.tick()
    return value


def guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so that size arguments and results are bounded."""

    shows = name in DERIVED

    @functools.wraps(func)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        given = args[1:] if args and isinstance(args[0], EvalContext | Environment) else args
        if given and touches(given, kwargs) is not None:  # a dry run's unknown value
            if shows:
                return derived(name, given[0], given[1:], kwargs)
            try:
                return func(*args, **kwargs)
            except (TypeError, ValueError, ArithmeticError, AttributeError):
                return derived(name, given[0], given[1:], kwargs)
        for arg in (*args[1:], *kwargs.values()):
            if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_SIZE:
                raise TemplateLimitError(
                    f"template stopped: argument {arg:,} of filter {name!r} is too large"
                )
        check = _FILTER_CHECKS.get(name)
        if check is not None:  # what the filter would build, bounded before it is built
            # Jinja passes some filters (replace, join) its evaluation context first
            given = args[1:] if args and isinstance(args[0], EvalContext | Environment) else args
            check(*given, **kwargs)
        return check_size(func(*args, **kwargs))

    return guarded


MAX_INT_BITS = 65_536  # the largest integer a template may compute (about 19,700 digits)


def _too_big(what: str) -> TemplateLimitError:
    return TemplateLimitError(f"template stopped: {what}")


def _check_replace(s: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any) -> None:
    if isinstance(s, str) and isinstance(old, str) and isinstance(new, str):
        times = (len(s) + 1) if old == "" else s.count(old)
        if isinstance(count, int) and count >= 0:
            times = min(times, count)
        size = len(s) + times * (len(new) - len(old))
        if size > MAX_SIZE:
            raise _too_big(f"replace would make {size:,} characters")


def check_widths(spec: str) -> None:
    """Refuse a %-format whose width or precision would build a huge string."""
    for width in re.findall(r"%[-+ #0]*(\d+)|%[-+ #0]*\d*\.(\d+)", spec):
        for digits in width:
            if digits and int(digits) > MAX_SIZE:
                raise _too_big("format width too large")


def _check_format(s: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(s, str):
        check_widths(s)


def _check_join(seq: Any, d: Any = "", attribute: Any = None, *_: Any) -> None:
    if isinstance(seq, list | tuple):
        sep = len(d) if isinstance(d, str) else 0
        size = sum(len(x) if isinstance(x, str) else 24 for x in seq) + sep * len(seq)
        if size > MAX_SIZE:
            raise _too_big(f"join would make {size:,} characters")


def _check_truncate(
    s: Any, length: Any = 255, killwords: Any = False, end: Any = "...", *_: Any, **kw: Any
) -> None:
    end = kw.get("end", end)
    if isinstance(length, int) and isinstance(end, str) and length < len(end):
        raise TemplateError(
            f"truncate: the length ({length}) must be at least that of its end {end!r}"
        )


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "replace": _check_replace,
    "format": _check_format,
    "join": _check_join,
    "truncate": _check_truncate,
}


class _BoundedFields:
    """``str.format``'s fields bounded before they are built: ``'{0:>999999999}'.format(1)``
    would make a gigabyte of spaces. The spec is checked after its nested fields (``{0:{1}}``)
    are filled in."""

    def format_field(self, value: Any, format_spec: str) -> Any:
        for digits in re.findall(r"\d+", format_spec):
            if len(digits) > 7 or int(digits) > MAX_SIZE:
                raise _too_big("format width too large")
        return super().format_field(value, format_spec)  # type: ignore[misc]


class BoundedFormatter(_BoundedFields, SandboxedFormatter):
    pass


class BoundedEscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    pass


def within_budget(func: Callable[[], Any]) -> Any:
    """Call ``func`` (which renders templates of a :func:`make_environment` environment) under a
    fresh budget: the limits of one render. ``connector validate`` evaluates constant expressions
    this way."""
    token = BUDGET.set(Budget())
    try:
        return func()
    finally:
        BUDGET.reset(token)
