"""Turning catalog entries into what ``connector catalog`` prints: JSON, tables, ``with:`` blocks.

Kept apart from the CLI so the formatting can be tested without click and reused by other
commands (``validate`` suggestions, docs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from connector.catalog.examples import example_with
from connector.catalog.model import Operation, Parameter, TriggerEvent
from connector.catalog.types import type_of

if TYPE_CHECKING:
    from connector.apps import Action

__all__ = [
    "action_json",
    "deprecated_text",
    "describe_action",
    "describe_operation",
    "describe_trigger",
    "example_with",
    "operation_json",
    "search_operations",
    "trigger_json",
    "type_of",
]


#: the ``sandbox:`` line of ``catalog show``, by whether the sandbox answers the operation
SANDBOX_TEXT = {
    True: "yes: the embedded sandbox answers it (`--sandbox`)",
    False: "no: `--sandbox` runs refuse a step that calls it",
    None: "no: the embedded sandbox fakes GoHighLevel and Connecteam only",
}


def operation_json(op: Operation) -> dict[str, Any]:
    """An operation in the catalog file layout (:mod:`connector.catalog.model`)."""
    body = None
    if op.body_schema is not None or op.body_required:
        body = {
            "required": op.body_required,
            "content_type": op.body_content_type,
            "schema": op.body_schema,
        }
    return {
        "name": op.name,
        "app": op.app,
        "operation_id": op.operation_id,
        "source": op.source,
        "method": op.method,
        "path": op.path,
        "summary": op.summary,
        "description": op.description,
        "parameters": [
            {
                "name": p.name,
                "in": p.location,
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in op.parameters
        ],
        "body": body,
        "response": {"status": op.response_status, "schema": op.response_schema},
        "scopes": list(op.scopes),
        "version": op.version,
        "deprecated": op.deprecated,
        "pagination": op.pagination,
        **(
            {
                "versions": {
                    v: {k: x for k, x in operation_json(other).items() if k not in ("name", "app")}
                    for v, other in sorted(op.variants.items())
                }
            }
            if op.variants
            else {}
        ),
    }


def trigger_json(event: TriggerEvent) -> dict[str, Any]:
    return {
        "name": event.name,
        "app": event.app,
        "event": event.event,
        "description": event.description,
        "payload_schema": event.payload_schema,
        "source": event.source,
        "any_event": event.any_event,
    }


def _one_line(text: str, width: int = 70) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= width else text[: width - 3] + "..."


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.ljust(widths[i]) for i, c in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def deprecated_text(op: Operation, instead: Operation | None) -> str:
    """The ``deprecated:`` line of ``catalog show`` for the deprecated ``op``, naming the
    operation that replaces it (``instead``, :func:`connector.catalog.deprecation.replacement`)."""
    if instead is None:
        return "yes (its API document says so, and names no replacement)"
    return f"yes: use {instead.name} ({instead.method} {instead.path}) instead"


def describe_operation(
    op: Operation,
    location: tuple[str, str] | None = None,
    sandbox: bool | None = None,
    replaced_by: Operation | None = None,
    default: Operation | None = None,
) -> list[str]:
    """The text of ``connector catalog show NAME`` for an operation; ``location`` as for
    :func:`example_with`; ``sandbox``: whether the embedded sandbox answers it (None: its app is
    not one the sandbox fakes), as :func:`connector.catalog.sandbox.sandbox_covers` says;
    ``replaced_by``: the operation that replaces a deprecated one; ``default``: when ``op`` is
    another version than the one sent by default, that one (its versions and differences are
    listed from it)."""
    out = [f"{op.display_name}  {op.method} {op.path}"]
    if op.summary:
        out.append(op.summary)
    if op.description and _one_line(op.description, 10_000) != op.summary:
        out.append(_one_line(op.description, 300))
    out.append("")
    facts = [
        ["source:", f"{op.source} (operationId {op.operation_id})" if op.source else "plugin"],
        ["version:", op.version or "-"],
        *([["versions:", _versions_text(default or op)]] if (default or op).variants else []),
        ["scopes:", ", ".join(op.scopes) or "-"],
        ["pagination:", _pagination_text(op.pagination)],
        ["response:", f"{op.response_status} {_top_fields(op.response_schema)}".rstrip()],
    ]
    if op.deprecated:
        facts.append(["deprecated:", deprecated_text(op, replaced_by)])
    facts.append(["sandbox:", SANDBOX_TEXT[sandbox]])
    out.extend(_table(facts, indent=""))
    params = [p for p in op.parameters if p.location != "body"]
    if params:
        out += ["", "parameters (* required):"]
        rows = [["name", "in", "type", "description"]]
        for p in params:
            desc = _one_line(p.description, 60)
            rows.append([p.name + ("*" if p.required else ""), p.location, type_of(p.schema), desc])
        out.extend(_table(rows))
    body = [p for p in op.parameters if p.location == "body"]
    if op.body_schema is not None or body:
        need = "required" if op.body_required else "optional"
        out += ["", f"body fields ({op.body_content_type}, body {need}; * required):"]
        rows = [["name", "type", "description"]]
        for p in body:
            rows.append(
                [
                    p.name + ("*" if p.required else ""),
                    type_of(p.schema),
                    _one_line(p.description, 60),
                ]
            )
        if len(rows) > 1:
            out.extend(_table(rows))
        else:
            out.append(f"  (a {type_of(op.body_schema)}, no named fields)")
    out.extend(_differences(op, default))
    out += ["", "example step (paste under steps:):"]
    example = example_with(op, location=location)
    if op.variant:  # the step asks for this version
        example = [*example[:2], f"  version: {op.version}", *example[2:]]
    out.extend("  " + line for line in example)
    return out


def _versions_text(op: Operation) -> str:
    others = ", ".join(v for v in op.versions if v != op.version)
    return (
        f"{op.version} (sent by default), {others} (a step's `version:`, or the recipe's "
        f"`versions: {{{op.app}: ...}}`; `catalog show {op.name} --version V`)"
    )


def _differences(op: Operation, default: Operation | None) -> list[str]:
    """How the versions of ``op`` differ: each other version against the default one."""
    from connector.catalog.versions import field_differences

    base = default or op
    out: list[str] = []
    for version in base.versions:
        other = base.at_version(version)
        if other is None or other is base:
            continue
        lines = field_differences(base, other)
        out += ["", f"{version} differs from {base.version}:"]
        out += [f"  {line}" for line in lines] or ["  (nothing but the Version header)"]
    return out


def _pagination_text(pagination: Mapping[str, Any] | None) -> str:
    """The paging style and its parameters: ``cursor (limit, startAfter, startAfterId; limit at
    most 100)``, ``search_after (pageLimit, searchAfter in the body; or page, ...)``."""
    if not pagination:
        return "-"
    style = pagination.get("style", "?")
    params = [pagination.get("limit_param")]
    if style == "cursor":
        params += list(pagination.get("cursor_params") or {})
    elif style == "search_after":
        params.append(pagination.get("search_after_param"))
    else:
        params.append(pagination.get(f"{style}_param"))
    shown = ", ".join(str(p) for p in params if p)
    if pagination.get("in") == "body":
        shown += " in the body"
    notes = []
    if pagination.get("page_param") and style == "search_after":
        most = pagination.get("page_max_items")
        upto = f", up to {most:,} items" if isinstance(most, int) else ""
        notes.append(f"or {pagination['page_param']}{upto} (`pages: {{by: page}}`)")
    if pagination.get("max_limit"):
        notes.append(f"{pagination.get('limit_param')} at most {pagination['max_limit']}")
    if not pagination.get("items"):
        notes.append("its list of items is not known: `pages:` cannot walk it")
    text = f"{style} ({shown})" if shown else str(style)
    return text + ("; " + "; ".join(notes) if notes else "")


def _top_fields(schema: Mapping[str, Any] | None, limit: int = 8) -> str:
    if not schema:
        return ""
    props = schema.get("properties")
    if not isinstance(props, Mapping) or not props:
        return f"({type_of(schema)})"
    names = list(props)
    more = ", ..." if len(names) > limit else ""
    return "{" + ", ".join(names[:limit]) + more + "}"


def action_json(action: Action) -> dict[str, Any]:
    return {
        "name": action.name,
        "kind": "action",
        "description": action.description,
        "params_schema": action.params_schema,
        "writes": action.writes,
    }


def describe_action(action: Action) -> list[str]:
    """The text of ``connector catalog show NAME`` for a custom (non-HTTP) action."""
    out = [f"{action.name}  (action{'' if action.writes else ', read-only'})"]
    if action.description:
        out.append(_one_line(action.description, 300))
    schema = action.params_schema or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    params = [
        Parameter(name=n, location="body", required=n in required, schema=sub or {})
        for n, sub in props.items()
        if isinstance(sub, Mapping)
    ]
    if params:
        out += ["", "with: (* required)"]
        rows = [["name", "type", "description"]]
        for p in params:
            desc = _one_line(str(p.schema.get("description", "")), 60)
            rows.append([p.name + ("*" if p.required else ""), type_of(p.schema), desc])
        out.extend(_table(rows))
    fake = Operation(name=action.name, app="", method="", path="", parameters=tuple(params))
    out += ["", "example step (paste under steps:):"]
    out.extend("  " + line for line in example_with(fake))
    return out


def describe_trigger(event: TriggerEvent) -> list[str]:
    """The text of ``connector catalog show APP.EVENT`` for a trigger event."""
    out = [f"{event.name}  (trigger event)"]
    if event.description:
        out.append(_one_line(event.description, 300))
    out += ["", f"source: {event.source or 'plugin'}"]
    if event.any_event:
        out.append("accepts any event name and any payload")
    schema = event.payload_schema or {}
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(props, Mapping) and props:
        required = set(schema.get("required") or ())
        out += ["", "payload fields (* required):"]
        rows = [["name", "type", "description"]]
        for name, sub in props.items():
            sub = sub if isinstance(sub, Mapping) else {}
            rows.append(
                [
                    name + ("*" if name in required else ""),
                    type_of(sub),
                    _one_line(sub.get("description", ""), 60),
                ]
            )
        out.extend(_table(rows))
    event_name = "my-event" if event.any_event else event.event
    out += ["", "example trigger (paste into a recipe):", "  trigger:", f"    app: {event.app}"]
    plain = re.fullmatch(r"[A-Za-z][\w.]*", event_name)
    out.append(f"    event: {event_name if plain else json.dumps(event_name)}")
    if event.app == "schedule":
        out.append('    cron: "*/15 * * * *"')
    if isinstance(props, Mapping) and props:
        required_first = [n for n in props if n in (schema.get("required") or ())]
        first = (required_first or list(props))[0]
        out.append(f"  # fields are {{{{ trigger.{first} }}}} in templates")
    return out


def _words(text: str) -> set[str]:
    """The words of a name, path or summary: split at punctuation and camelCase, lowercased."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return {w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w}


def _match(term: str, words: set[str]) -> float:
    """1 for the word itself (or its plural), 0.5 inside a longer word (``task`` in
    ``subtask``), else 0."""
    if term in words or f"{term}s" in words or (term.endswith("s") and term[:-1] in words):
        return 1.0
    return 0.5 if any(term in w for w in words) else 0.0


def search_operations(
    ops: Iterable[Operation], words: Iterable[str]
) -> list[tuple[float, Operation]]:
    """Operations ranked by how well ``words`` match their name, path and summary.

    A word counts 3 in the name, 2 in the path and 1 in the summary: in full when it is a word
    there (or its plural), half when it is inside a longer word (``task`` in ``subtask``).
    Operations that match more of the words rank first, then by score, then by name. The
    description counts only when nothing matches in a name, path or summary: a word said in
    passing there (``opportunity`` in a message export's) is not a match.
    """
    terms = [w.lower() for w in words if w.strip()]
    ranked: list[tuple[float, int, Operation]] = []
    loose: list[tuple[float, int, Operation]] = []
    for op in ops:
        name = _words(op.name.split(".", 1)[-1])
        path = _words(op.path)
        summary = _words(op.summary)
        score, matched, described = 0.0, 0, 0.0
        for term in terms:
            s = 3.0 * _match(term, name) + 2.0 * _match(term, path) + _match(term, summary)
            matched += s > 0
            score += s
            described += 0.5 * (term in op.description.lower())
        if score:
            ranked.append((score + described, matched, op))
        elif described:
            loose.append((described, 0, op))
    found = ranked or loose
    found.sort(key=lambda r: (-r[1], -r[0], r[2].name))
    return [(score, op) for score, _, op in found]
