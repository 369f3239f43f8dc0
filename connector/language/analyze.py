"""Static analysis of one Jinja template: what it reads, which filters it uses, what is unsafe.

The validator never renders a template to check it. It parses the template into Jinja's syntax
tree and walks it, keeping track of the names the template defines itself (``{% set %}``, loop
variables, macro arguments), so it can report, each with the template line it is on:

* the free names the template reads from its context (``trigger``, ``steps``, a misspelt
  ``emial``), and the ``steps.X`` / ``vars.X`` members it reads;
* the filters and tests it calls;
* attribute access that escapes the data: names starting with ``_`` (``__class__``,
  ``__globals__``), ``mro``, ``str.format`` / ``format_map``, and the same names passed to
  ``attr``, ``map(attribute=...)``, ``selectattr`` and friends; and ``include``/``import``;
* the run-time bounds its constant expressions blow (:mod:`.bombs`).

An :class:`Analysis` depends only on the template's text, so it is cached and shared between
recipes; checking it against a scope (which names exist at that point of the recipe) is cheap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

from connector.language.bombs import find_bombs
from connector.language.fields import Chain, chain_of

__all__ = ["Analysis", "Reference", "analyze_template", "is_unsafe_attribute"]

#: attribute names a template may never touch, beyond those starting with "_"
UNSAFE_ATTRIBUTES = frozenset({"mro", "format", "format_map"})
#: filters whose arguments name attributes
_ATTRIBUTE_FILTERS = {
    "attr": 0,
    "selectattr": 0,
    "rejectattr": 0,
    "groupby": 0,
    "map": None,
    "sort": None,
    "sum": None,
    "unique": None,
    "min": None,
    "max": None,
    "dictsort": None,
}


_CHAIN_ROOTS = frozenset({"steps", "item", "trigger", "env"})


def is_unsafe_attribute(name: str) -> bool:
    """Whether reading attribute ``name`` could reach Python internals."""
    return name.startswith("_") or name in UNSAFE_ATTRIBUTES


@dataclass(frozen=True)
class Reference:
    """``root.member`` read from the context: ``steps.contact`` or ``vars.base_url``."""

    root: str
    member: str
    lineno: int
    field: str | None = None  # what is read of the member, one level down: steps.X.output


@dataclass
class Analysis:
    """What one template reads and calls; ``syntax_error`` is set when it does not parse."""

    syntax_error: tuple[str, int] | None = None
    names: dict[str, int] = field(default_factory=dict)  # free name -> first line
    references: list[Reference] = field(default_factory=list)
    filters: dict[str, int] = field(default_factory=dict)
    tests: dict[str, int] = field(default_factory=dict)
    unsafe: list[tuple[str, int]] = field(default_factory=list)
    bombs: list[tuple[str, int]] = field(default_factory=list)  # bounds its constants blow
    chains: list[Chain] = field(default_factory=list)  # what it reads of steps.X and item
    value_chain: Chain | None = None  # the chain, when the template is exactly {{ chain }}


def _store_names(target: nodes.Node) -> Iterator[str]:
    if isinstance(target, nodes.Name):
        yield target.name
    elif isinstance(target, nodes.Tuple | nodes.List):
        for item in target.items:
            yield from _store_names(item)


def _const_str(node: nodes.Node | None) -> str | None:
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    return None


class _Walker:
    """Walks a template's syntax tree with a stack of locally defined names."""

    def __init__(self, result: Analysis) -> None:
        self.result = result
        self.scopes: list[set[str]] = [set()]

    def defined(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def walk_all(self, items: Iterable[nodes.Node | None]) -> None:
        for item in items:
            if item is not None:
                self.walk(item)

    def in_scope(self, names: Iterable[str], body: Iterable[nodes.Node | None]) -> None:
        self.scopes.append(set(names))
        try:
            self.walk_all(body)
        finally:
            self.scopes.pop()

    def unsafe(self, what: str, lineno: int) -> None:
        self.result.unsafe.append((what, lineno))

    def walk(self, node: nodes.Node) -> None:
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is not None:
            method(node)
        else:
            self.walk_all(node.iter_child_nodes())

    def visit_Name(self, node: nodes.Name) -> None:
        if node.ctx == "load" and not self.defined(node.name):
            self.result.names.setdefault(node.name, node.lineno)

    def chain(self, node: nodes.Node) -> None:
        """Record what ``node`` reads of ``steps`` or ``item`` (when neither is a local name)."""
        found = chain_of(node)
        if found is not None and found.root in _CHAIN_ROOTS and not self.defined(found.root):
            self.result.chains.append(found)

    def visit_Call(self, node: nodes.Call) -> None:
        self.chain(node)
        self.walk_all(node.iter_child_nodes())

    def visit_Getattr(self, node: nodes.Getattr) -> None:
        self.chain(node)
        if is_unsafe_attribute(node.attr):
            self.unsafe(f"attribute {node.attr!r}", node.lineno)
        self._reference(node.node, node.attr, node.lineno)
        self._field(node.node, node.attr, node.lineno)
        self.walk(node.node)

    def _field(self, target: nodes.Node, name: str, lineno: int) -> None:
        """``root.member.name`` read from the context (``steps.tasks.output``)."""
        member = None
        if isinstance(target, nodes.Getattr):
            member = target.attr
        elif isinstance(target, nodes.Getitem):
            member = _const_str(target.arg)
        inner = getattr(target, "node", None)
        if (
            member is not None
            and isinstance(inner, nodes.Name)
            and inner.ctx == "load"
            and not self.defined(inner.name)
        ):
            self.result.references.append(Reference(inner.name, member, lineno, name))

    def visit_Getitem(self, node: nodes.Getitem) -> None:
        self.chain(node)
        key = _const_str(node.arg)
        if key is not None:
            if key.startswith("_") or key == "mro":
                self.unsafe(f"attribute {key!r}", node.lineno)
            self._reference(node.node, key, node.lineno)
        self.walk_all((node.node, node.arg))

    def _reference(self, target: nodes.Node, member: str, lineno: int) -> None:
        if (
            isinstance(target, nodes.Name)
            and target.ctx == "load"
            and not self.defined(target.name)
        ):
            self.result.references.append(Reference(target.name, member, lineno))

    def visit_Filter(self, node: nodes.Filter) -> None:
        self.chain(node)
        self.result.filters.setdefault(node.name, node.lineno)
        self._attribute_args(node)
        self.walk_all((node.node, *node.args, *(k.value for k in node.kwargs)))
        self.walk_all((node.dyn_args, node.dyn_kwargs))

    def visit_Test(self, node: nodes.Test) -> None:
        self.result.tests.setdefault(node.name, node.lineno)
        self.walk_all((node.node, *node.args, *(k.value for k in node.kwargs)))
        self.walk_all((node.dyn_args, node.dyn_kwargs))

    def _attribute_args(self, node: nodes.Filter) -> None:
        if node.name not in _ATTRIBUTE_FILTERS:
            return
        names = [_const_str(k.value) for k in node.kwargs if k.key == "attribute"]
        first = _ATTRIBUTE_FILTERS[node.name]
        if first is not None and len(node.args) > first:
            names.append(_const_str(node.args[first]))
        for name in names:
            if name is None:
                continue
            for part in name.split("."):
                if is_unsafe_attribute(part):
                    self.unsafe(f"attribute {part!r} (through |{node.name})", node.lineno)

    def visit_Assign(self, node: nodes.Assign) -> None:
        self.walk(node.node)
        self.scopes[-1].update(_store_names(node.target))

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> None:
        self.walk_all((*node.body, node.filter))
        self.scopes[-1].update(_store_names(node.target))

    def visit_For(self, node: nodes.For) -> None:
        self.walk(node.iter)
        names = [*_store_names(node.target), "loop"]
        self.in_scope(names, (node.test, *node.body))
        self.walk_all(node.else_)

    def visit_Macro(self, node: nodes.Macro) -> None:
        self.scopes[-1].add(node.name)
        self.walk_all(node.defaults)
        names = [a.name for a in node.args] + ["varargs", "kwargs", "caller"]
        self.in_scope(names, node.body)

    def visit_CallBlock(self, node: nodes.CallBlock) -> None:
        self.walk(node.call)
        self.walk_all(node.defaults)
        self.in_scope([a.name for a in node.args], node.body)

    def visit_With(self, node: nodes.With) -> None:
        self.walk_all(node.values)
        names = [n for t in node.targets for n in _store_names(t)]
        self.in_scope(names, node.body)

    def visit_Include(self, node: nodes.Include) -> None:
        self.unsafe("{% include %} (recipes cannot load other templates)", node.lineno)

    def visit_Import(self, node: nodes.Import) -> None:
        self.unsafe("{% import %} (recipes cannot load other templates)", node.lineno)
        self.scopes[-1].add(node.target)

    def visit_FromImport(self, node: nodes.FromImport) -> None:
        self.unsafe("{% from ... import %} (recipes cannot load other templates)", node.lineno)
        self.scopes[-1].update(n if isinstance(n, str) else n[1] for n in node.names)

    def visit_Extends(self, node: nodes.Extends) -> None:
        self.unsafe("{% extends %} (recipes cannot load other templates)", node.lineno)


def analyze_template(
    env: Environment, source: str, jinja_filters: frozenset[str] | None = None
) -> Analysis:
    """Parse ``source`` with ``env`` and report what it reads and calls (never renders it);
    ``jinja_filters``: :func:`~.bombs.jinja_filters` of ``env``, when the caller keeps them."""
    result = Analysis()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        result.syntax_error = (exc.message or "invalid template", exc.lineno or 1)
        return result
    except RecursionError:
        result.syntax_error = ("the template is nested too deeply", 1)
        return result
    walker = _Walker(result)
    try:
        # macros may be called above the line that defines them
        walker.scopes[-1].update(m.name for m in tree.find_all(nodes.Macro))
        walker.walk(tree)
    except RecursionError:
        result.syntax_error = ("the template is nested too deeply", 1)
        return result
    body = tree.body
    if len(body) == 1 and isinstance(body[0], nodes.Output):
        parts = [
            n
            for n in body[0].nodes
            if not (isinstance(n, nodes.TemplateData) and not n.data.strip())
        ]
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            found = chain_of(parts[0])
            if found is not None and found in result.chains:
                result.value_chain = found
    from connector.language.templates import BoundedEnvironment, keep_tree

    if isinstance(env, BoundedEnvironment):
        try:
            result.bombs = find_bombs(env, tree, result.names, jinja_filters)
        except RecursionError:  # copying or compiling it: the run reports such a template
            result.bombs = []
        keep_tree(env, source, tree)  # for the plan's compile of the same text
    return result
