"""Finding template bombs without running a recipe: constant expressions that blow the bounds.

The run-time bounds of :mod:`connector.language.templates` (the size of numbers, strings and lists,
``replace``, ``join`` and ``format`` checked before they build anything, loop iterations, time)
stop a template such as ``{{ (((10**256)**256)**256)**256 }}`` when it runs. A template whose
value does not depend on the run is found here, statically: its constant parts are evaluated with
the same bounded environment, under the same limits (one render's budget each), and a limit it
hits is a problem at the template's line.

What is constant: literals and what is computed from them only, with Jinja's own filters and
tests and the globals ``range``, ``namespace``, ``dict``, ``cycler`` and ``joiner``. A template
that reads nothing from the run (no ``trigger``, ``steps``, ``vars``, ``env``, ``item``) is
rendered whole, so a loop that squares a number forty times is found too; in any other template
each largest constant expression that computes something (an operator, a filter or a call) is
evaluated on its own (the first :data:`MAX_EXPRESSIONS`). Plugin filters are never called.
"""

from __future__ import annotations

import copy
import types
from typing import Any

from jinja2 import Environment, nodes
from jinja2.filters import FILTERS
from jinja2.tests import TESTS

from connector.errors import TemplateError, TemplateLimitError

__all__ = ["PURE_GLOBALS", "find_bombs", "jinja_filters"]

#: the globals a constant expression may call
PURE_GLOBALS = frozenset({"range", "namespace", "dict", "cycler", "joiner"})
_VALUE_NODES = (
    nodes.Const,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Pair,
    nodes.Keyword,
    nodes.BinExpr,
    nodes.UnaryExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.CondExpr,
    nodes.Filter,
    nodes.Test,
    nodes.Call,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Slice,
    nodes.Name,
)
#: the constant expressions of one template that are evaluated (one compile each)
MAX_EXPRESSIONS = 16
_COMPUTING = (nodes.BinExpr, nodes.Concat, nodes.Filter, nodes.Call)
_STOPPED = (TemplateLimitError, TemplateError, RecursionError, MemoryError)


def _message(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "template stopped: recursion too deep"
    if isinstance(exc, MemoryError):
        return "template stopped: out of memory"
    return str(exc)


def _template_line(tb: types.TracebackType | None, default: int) -> int:
    """The template line the error was raised on (Jinja rewrites its tracebacks so the
    template's frames carry the template's own line numbers)."""
    line = default
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class _Finder:
    def __init__(
        self,
        env: Environment,
        tree: nodes.Template,
        builtin_filters: frozenset[str],
        every: list[nodes.Node],
    ) -> None:
        self.env = env
        self.tree = tree
        self.filters = builtin_filters
        self.local = {
            n.name
            for n in every
            if isinstance(n, nodes.Name) and (n.ctx in ("store", "param") or n.name == "loop")
        } | {m.name for m in every if isinstance(m, nodes.Macro)}
        self._constant: dict[int, bool] = {}
        self.budget = MAX_EXPRESSIONS  # expressions of one template evaluated on their own
        self.found: list[tuple[str, int]] = []

    def copy(self, node: nodes.Node) -> Any:
        """A copy of ``node``'s tree (compiling instruments it) that shares its environment: each
        node refers to the environment that parsed it, which holds compiled templates."""
        return copy.deepcopy(node, {id(self.env): self.env})

    def constant(self, node: nodes.Node) -> bool:
        known = self._constant.get(id(node))
        if known is not None:
            return known
        if isinstance(node, nodes.Name):
            result = node.ctx == "load" and node.name in PURE_GLOBALS
            result = result and node.name not in self.local
        else:
            result = (
                isinstance(node, _VALUE_NODES)
                and self._callable(node)
                and all(self.constant(child) for child in node.iter_child_nodes())
            )
        self._constant[id(node)] = result
        return result

    def _callable(self, node: nodes.Node) -> bool:
        """Whether the filter, test or call ``node`` may be evaluated: Jinja's own filters and
        tests, no ``*args``/``**kwargs``, not a ``{% filter %}`` block's filter."""
        if isinstance(node, nodes.Filter) and (node.name not in self.filters or node.node is None):
            return False
        if isinstance(node, nodes.Test) and node.name not in TESTS:
            return False
        if isinstance(node, nodes.Filter | nodes.Test | nodes.Call):
            return node.dyn_args is None and node.dyn_kwargs is None
        return True

    def run(self, template: nodes.Template, line: int) -> None:
        """Render ``template`` (a copy: compiling instruments the tree) within one budget."""
        from connector.language.template_bounds import within_budget

        try:
            compiled = self.env.from_string(template)
            within_budget(lambda: "".join(compiled.generate({})))
        except _STOPPED as exc:
            self.found.append((_message(exc), _template_line(exc.__traceback__, line)))
        except Exception:  # any other failure is the run's to report, with its data
            return

    def expressions(self, node: nodes.Node) -> None:
        """Evaluate each largest constant expression that computes something."""
        if isinstance(node, nodes.Expr) and self.constant(node):
            if self.budget <= 0:
                return
            if any(isinstance(n, _COMPUTING) for n in (node, *node.find_all(_COMPUTING))):
                self.budget -= 1
                target = nodes.Name("value", "store", lineno=node.lineno)
                body = nodes.Assign(target, self.copy(node), lineno=node.lineno)
                self.run(nodes.Template([body], lineno=1), node.lineno)
            return
        for child in node.iter_child_nodes():
            self.expressions(child)


def jinja_filters(env: Environment) -> frozenset[str]:
    """The filters of ``env`` that are Jinja's own, not a plugin's of the same name: those a
    constant expression may call."""
    return frozenset(
        name
        for name, func in env.filters.items()
        if name in FILTERS and getattr(func, "__wrapped__", func) is FILTERS[name]
    )


def find_bombs(
    env: Environment,
    tree: nodes.Template,
    free_names: set[str] | dict[str, int],
    builtin: frozenset[str] | None = None,
) -> list[tuple[str, int]]:
    """The bounds the constant parts of the parsed template ``tree`` blow, as (message, template
    line). ``free_names``: the names it reads from its context (:mod:`.analyze`); ``builtin``:
    :func:`jinja_filters` of ``env``, when the caller keeps them."""
    if builtin is None:
        builtin = jinja_filters(env)
    every = list(tree.find_all(nodes.Node))  # one walk of the tree for what follows
    finder = _Finder(env, tree, builtin, every)
    used_filters = {f.name for f in every if isinstance(f, nodes.Filter)}
    used_tests = {t.name for t in every if isinstance(t, nodes.Test)}
    reads_nothing = set(free_names) <= PURE_GLOBALS
    if reads_nothing and used_filters <= builtin and used_tests <= set(TESTS):
        if any(isinstance(n, (*_COMPUTING, nodes.For, nodes.Macro)) for n in every):
            finder.run(finder.copy(tree), 1)  # else it only writes literals out
    else:
        finder.expressions(tree)
    return finder.found
