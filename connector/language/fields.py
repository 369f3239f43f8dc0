"""Checking what templates read of a step's output against the response its operation documents.

A template that reads ``steps.ID.output.contact.emial`` (or ``item.titel`` in a step whose
``foreach`` is a documented list) is checked against the success response schema of the
operation step ``ID`` calls (the catalog's ``response.schema``), one field at a time, through
list indexes (``[0]``, ``[index]``), ``| first`` / ``| last``, ``['name']`` and ``.get('name')``.

Vendor documents are incomplete, so the rule is (see ``docs/recipes.md``):

* a name an object schema does not list, close to one it lists: an **error** ("did you mean");
* a name it does not list and nothing close: a **warning** (the document may be incomplete);
* nothing is said when the schema lists no properties, allows more (``additionalProperties``,
  ``patternProperties``), or any alternative of an ``anyOf``/``oneOf`` is such an open object;
* reading a field of a documented list (``output.tasks.title``) is an error.

A step with ``pages:`` gathers several responses: its ``output`` is the list of the items of all
pages (the array at the operation's ``pagination.items``), or, when the next step's ``foreach`` is
exactly ``{{ steps.ID.output }}`` and walks the pages as they come, the summary ``{pages, items}``,
with ``item`` in that ``foreach`` one item (:func:`paged_output`, :func:`streamed_item`).

The type of such a reference is known too (:func:`schema_types`): a ``with:`` value that is
exactly ``{{ steps.ID.output.x }}`` is checked against the parameter's type (:mod:`.params`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes

from connector.language.schema import did_you_mean, expected_types

__all__ = [
    "Chain",
    "Resolved",
    "chain_of",
    "chain_text",
    "describe_types",
    "iter_field_problems",
    "paged_output",
    "resolve",
    "resolve_chain",
    "response_of",
    "schema_types",
    "streamed_item",
    "type_mismatch",
    "value_types",
]

# attribute names that a mapping resolves to its own method (Jinja looks attributes up first)
_METHODS = frozenset(n for n in dir(dict) if not n.startswith("_")) | frozenset(
    n for n in dir(list) if not n.startswith("_")
)
# filters whose result holds the same items as the list they are given
_SAME_ITEMS = frozenset(
    {"list", "select", "reject", "selectattr", "rejectattr", "unique", "sort", "reverse"}
)
_MAX_LISTED = 12


@dataclass(frozen=True)
class Chain:
    """A reference into the context: ``root`` then each part, as ``(kind, value)``: ``field``
    (``.x`` or ``['x']``), ``get`` (``.get('x')``), ``index`` (``[0]``, or ``None`` when the index
    is not a constant), ``first``, ``last``, ``same`` (a filter that keeps a list's items), or
    ``stop`` (anything not followed further)."""

    root: str
    parts: tuple[tuple[str, Any], ...]
    lineno: int


def chain_of(node: nodes.Node) -> Chain | None:
    """The chain ``node`` reads, or ``None`` when it is not ``name`` followed by plain reads."""
    parts: list[tuple[str, Any]] = []
    lineno = node.lineno
    while True:
        if isinstance(node, nodes.Name):
            if node.ctx != "load":
                return None
            parts.reverse()
            return Chain(node.name, tuple(parts), lineno)
        if isinstance(node, nodes.Getattr):
            parts.append(("stop", node.attr) if node.attr in _METHODS else ("field", node.attr))
            node = node.node
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            value = arg.value if isinstance(arg, nodes.Const) else None
            if isinstance(value, str):
                parts.append(("field", value))
            elif isinstance(value, int) and not isinstance(value, bool):
                parts.append(("index", value))
            elif isinstance(arg, nodes.Slice):
                parts.append(("same", None))
            else:
                parts.append(("index", None))
            node = node.node
        elif isinstance(node, nodes.Call) and _is_get(node):
            assert isinstance(node.node, nodes.Getattr)
            parts.append(("get", node.args[0].value))  # type: ignore[attr-defined]
            node = node.node.node
        elif isinstance(node, nodes.Filter) and node.node is not None and not node.kwargs:
            if node.name in ("first", "last") and not node.args:
                parts.append((node.name, None))
            elif node.name in _SAME_ITEMS:
                parts.append(("same", None))
            else:
                return None
            node = node.node
        else:
            return None


def _is_get(node: nodes.Call) -> bool:
    return (
        isinstance(node.node, nodes.Getattr)
        and node.node.attr == "get"
        and 1 <= len(node.args) <= 2
        and isinstance(node.args[0], nodes.Const)
        and isinstance(node.args[0].value, str)
        and not node.kwargs
        and node.dyn_args is None
        and node.dyn_kwargs is None
    )


@dataclass(frozen=True)
class Resolved:
    """What following a chain found: the schema it ends at (``None``: not known), and a problem
    (``severity`` ``error`` or ``warning``) when a part is not in the documented response."""

    schema: Mapping[str, Any] | None
    problem: tuple[str, str] | None = None  # (severity, message)


class _Walk:
    def __init__(self, root: Mapping[str, Any]) -> None:
        defs = root.get("$defs")
        self.defs: Mapping[str, Any] = defs if isinstance(defs, Mapping) else {}

    def deref(self, schema: Any, depth: int = 0) -> Mapping[str, Any] | None:
        if not isinstance(schema, Mapping):
            return None
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            target = self.defs.get(name) if ref.startswith("#/$defs/") else None
            return self.deref(target, depth + 1) if depth < 8 else None
        return schema

    def members(self, schema: Any, depth: int = 0) -> list[Mapping[str, Any]] | None:
        """The alternatives ``schema`` may be (``anyOf``/``oneOf`` flattened, ``allOf`` merged,
        ``null`` left out); ``None`` when one of them is not known."""
        s = self.deref(schema)
        if s is None or depth > 8:
            return None
        alternatives = s.get("anyOf") or s.get("oneOf")
        if isinstance(alternatives, list):
            out: list[Mapping[str, Any]] = []
            for alt in alternatives:
                found = self.members(alt, depth + 1)
                if found is None:
                    return None
                out.extend(found)
            return out
        if isinstance(s.get("allOf"), list):
            merged: dict[str, Any] = {k: v for k, v in s.items() if k != "allOf"}
            props = dict(s.get("properties") or {})
            for part in s["allOf"]:
                found = self.members(part, depth + 1)
                if found is None or len(found) != 1:
                    return None
                props.update(found[0].get("properties") or {})
                for key, value in found[0].items():
                    merged.setdefault(key, value)
            if props:
                merged["properties"] = props
            return [merged]
        if s.get("type") == "null":
            return []
        return [s]

    def follow(self, schema: Any, kind: str, value: Any) -> Resolved | list[str]:
        """One step of a chain: the schema it leads to, or the field names an object lists when
        ``value`` is not among them (``[]``: reading a field of a list)."""
        alternatives = self.members(schema)
        if not alternatives:
            return Resolved(None)
        if kind in ("index", "first", "last", "same"):
            if all(_kind(a) == "array" for a in alternatives):
                if kind == "same":
                    return Resolved(alternatives[0] if len(alternatives) == 1 else None)
                items = [a.get("items") for a in alternatives]
                known = [i for i in items if isinstance(i, Mapping)]
                if len(known) == len(items) and len(known) == 1:
                    return Resolved(self.deref(known[0]))
                if len(known) == len(items):
                    return Resolved({"anyOf": known})
            return Resolved(None)
        if kind not in ("field", "get"):
            return Resolved(None)
        if all(_kind(a) == "array" for a in alternatives):
            return []
        names: list[str] = []
        found: list[Any] = []
        for alt in alternatives:
            props = alt.get("properties")
            open_object = (
                not isinstance(props, Mapping)
                or not props
                or alt.get("additionalProperties") not in (None, False)
                or alt.get("patternProperties")
            )
            if open_object and _kind(alt) in ("object", None):
                return Resolved(None)
            if isinstance(props, Mapping):
                names.extend(n for n in props if n not in names)
                if value in props:
                    found.append(props[value])
        if found:
            return Resolved(self.deref(found[0]) if len(found) == 1 else {"anyOf": found})
        if not names:
            return Resolved(None)  # a string or number read as an object: the run says
        return sorted(names)


def _listing(names: list[str]) -> str:
    return ", ".join(names[:_MAX_LISTED]) + (", ..." if len(names) > _MAX_LISTED else "")


def _kind(schema: Mapping[str, Any]) -> str | None:
    t = schema.get("type")
    if isinstance(t, str):
        return t
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _show(where: str, kind: str, value: Any) -> str:
    """``where`` followed by one part of a chain, as a template would write it."""
    if kind == "field":
        return where + (f".{value}" if str(value).isidentifier() else f"[{value!r}]")
    if kind == "get":
        return f"{where}.get({value!r})"
    if kind == "index":
        return where + (f"[{value}]" if value is not None else "[...]")
    if kind in ("first", "last"):
        return f"({where} | {kind})"
    return where


def response_of(op: str) -> str:
    """How a problem names where a schema comes from: "the response ghl.get-contact documents"."""
    return f"the response {op} documents"


def resolve(
    schema: Mapping[str, Any], start: str, parts: tuple[tuple[str, Any], ...], source: str
) -> Resolved:
    """Follow ``parts`` from ``schema``, the value ``start`` names (``steps.contact.output``);
    ``source`` says in problems where the schema comes from (:func:`response_of`, "the payload
    of ghl ContactCreate events")."""
    walk = _Walk(schema)
    current: Mapping[str, Any] | None = schema
    where = start
    for kind, value in parts:
        if current is None or kind == "stop":
            return Resolved(None)
        step = walk.follow(current, kind, value)
        if isinstance(step, Resolved):
            current = step.schema
            where = _show(where, kind, value)
            continue
        if not step:
            return Resolved(
                None,
                (
                    "error",
                    f"{where} is a list in {source}, so it has no "
                    f"field {value!r}; read one item ({where}[0], {where} | first) or loop "
                    "over it with foreach",
                ),
            )
        close = did_you_mean(str(value), step)
        if current.get(_SUMMARY):  # ours, not a vendor's: nothing else is in it
            return Resolved(
                None,
                (
                    "error",
                    f"{where} has no field {value!r}: it is the summary {{pages, items}} of a "
                    f"paged step whose items the next step walks{close}",
                ),
            )
        if close:
            return Resolved(
                None,
                (
                    "error",
                    f"{where} has no field {value!r} in {source}{close}",
                ),
            )
        return Resolved(
            None,
            (
                "warning",
                f"{where} has no field {value!r} in {source} "
                f"(its fields: {_listing(step)}); the document may be incomplete",
            ),
        )
    if current is not None and walk.defs and "$defs" not in current:
        current = {**current, "$defs": walk.defs}  # what its $refs point at
    return Resolved(current)


def chain_text(chain: Chain) -> str:
    """``steps.contact.output.contact.email``: the chain as a template would write it."""
    where = chain.root
    for kind, value in chain.parts:
        where = _show(where, kind, value)
    return where


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def schema_types(schema: Any, depth: int = 0) -> frozenset[str] | None:
    """The JSON types a value of ``schema`` may have, or ``None`` when the schema does not say."""
    if not isinstance(schema, Mapping) or depth > 8:
        return None
    t = schema.get("type")
    if isinstance(t, str):
        return frozenset({t})
    if isinstance(t, list) and all(isinstance(x, str) for x in t) and t:
        return frozenset(t)
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list) and alternatives:
        found: set[str] = set()
        for alt in alternatives:
            types = schema_types(alt, depth + 1)
            if types is None:
                return None
            found |= types
        return frozenset(found)
    if isinstance(schema.get("allOf"), list):
        for part in schema["allOf"]:
            types = schema_types(part, depth + 1)
            if types is not None:
                return types
        return None
    values = schema.get("enum") if isinstance(schema.get("enum"), list) else None
    if "const" in schema:
        values = [schema["const"]]
    if values:
        kinds = {_JSON_TYPES.get(type(v)) for v in values}
        return None if None in kinds else frozenset(k for k in kinds if k is not None)
    kind = _kind(schema)
    return frozenset({kind}) if kind else None


def value_types(value: Any) -> frozenset[str]:
    """The JSON type of a literal ``value``."""
    if isinstance(value, dict):
        return frozenset({"object"})
    if isinstance(value, list | tuple):
        return frozenset({"array"})
    return frozenset({_JSON_TYPES.get(type(value), type(value).__name__)})


def type_mismatch(param_types: frozenset[str], value_types: frozenset[str]) -> bool:
    """Whether a value of ``value_types`` can never be a ``param_types`` (numbers are numbers,
    integer or not; a value that may be null is judged by its other types)."""
    given = set(value_types) - {"null"}
    wanted = set(param_types)
    if "number" in wanted or "integer" in wanted:
        wanted |= {"number", "integer"}
    return bool(given) and not given & wanted


def describe_types(types: frozenset[str]) -> str:
    return expected_types(sorted(types))


def iter_field_problems(
    chains: list[Chain],
    outputs: Mapping[str, tuple[str, Any]],
    item: tuple[str, Any] | None,
    trigger: tuple[str, Any] | None = None,
) -> Iterator[tuple[int, str, str]]:
    """(line, severity, message) for each chain that reads an undocumented field.

    ``outputs``: step id -> (operation name, schema of ``steps.ID.output``); ``item``: (what
    documents it, schema of ``item``) in a ``foreach`` step whose list is documented;
    ``trigger``: (the event, ``ghl ContactCreate``, and the schema of its payload)."""
    for chain in chains:
        if chain.root == "trigger":
            if trigger is not None:
                yield from _trigger_problem(chain, *trigger)
            continue
        found = resolve_chain(chain, outputs, item)
        if found is not None and found.problem is not None:
            severity, message = found.problem
            yield chain.lineno, severity, message


def _trigger_problem(chain: Chain, event: str, schema: Any) -> Iterator[tuple[int, str, str]]:
    """A field the trigger's payload schema does not list: always a warning. The payload schemas
    are the catalog's own reading of the vendors' pages, and a polled event carries what the
    poll's API returns (a searched contact's ``dateUpdated``), so a name close to a listed one
    may still be right; "did you mean" says what it is close to."""
    if not isinstance(schema, Mapping) or not schema:
        return
    found = resolve(schema, "trigger", chain.parts, f"the payload of {event} events")
    if found.problem is not None:
        yield chain.lineno, "warning", found.problem[1]


def resolve_chain(
    chain: Chain, outputs: Mapping[str, tuple[str, Any]], item: tuple[str, Any] | None
) -> Resolved | None:
    """Follow ``chain`` through the documented schemas; ``None`` when it starts nowhere known."""
    if chain.root == "item" and item is not None:
        return resolve(item[1], "item", chain.parts, response_of(item[0]))
    if chain.root != "steps" or len(chain.parts) < 2:
        return None
    (k1, sid), (k2, name) = chain.parts[0], chain.parts[1]
    if k1 != "field" or k2 not in ("field", "get") or name != "output" or sid not in outputs:
        return None
    op, schema = outputs[sid]
    return resolve(schema, f"steps.{sid}.output", chain.parts[2:], response_of(op))


# the schema of one item, kept on the summary schema of a paged step the next step walks
_PAGE_ITEMS = "x-connector-page-items"
# marks the summary schema itself (its misspelt fields are worded as the summary's)
_SUMMARY = "x-connector-paged-summary"


def paged_output(response: Mapping[str, Any], items_at: Any, streamed: bool) -> Any:
    """The schema of ``steps.ID.output`` for a step with ``pages:`` whose operation documents
    ``response`` and returns its items at ``items_at`` (``contacts``, ``data.users``): the list
    of the items of all pages, or, when ``streamed`` (the next step walks them), the summary
    ``{pages, items}``. ``None`` when not known."""
    item: Any = None
    if isinstance(items_at, str) and items_at and isinstance(response, Mapping):
        parts = tuple(("field", part) for part in items_at.split("."))
        found = resolve(response, "", (*parts, ("index", None)), "")
        if found.problem is None and found.schema is not None:
            item = found.schema
    if streamed:
        summary: dict[str, Any] = {
            "type": "object",
            "properties": {"pages": {"type": "integer"}, "items": {"type": "integer"}},
            "additionalProperties": False,
            _SUMMARY: True,
        }
        if item is not None:
            summary[_PAGE_ITEMS] = item
        return summary
    if item is None:
        return None
    return {"type": "array", "items": item, "$defs": response.get("$defs") or {}}


def streamed_item(output: tuple[str, Any] | None) -> tuple[str, Any] | None:
    """(operation, schema of ``item``) in the ``foreach`` that walks the pages of a step whose
    ``outputs`` entry is ``output`` (see :func:`paged_output`)."""
    if output is None or not isinstance(output[1], Mapping):
        return None
    item = output[1].get(_PAGE_ITEMS)
    return (output[0], item) if item is not None else None
