"""The files ``connector new`` writes: a recipe and a sync declaration that validate as written.

A new recipe has its trigger (with a sample event made from the event's payload schema in the
catalog), one step per action with the action's required parameters filled with values that
validate (a trigger field of the same name where the event has one, the location from the
environment, the API document's example, else a placeholder that says what to put there), its
optional parameters commented out, and comments that link the documents to read next.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from connector.catalog.examples import LOREM, example_value
from connector.errors import UsageError

if TYPE_CHECKING:
    from connector.apps.model import Action
    from connector.apps.registry import Registry
    from connector.catalog.model import Operation, Parameter, TriggerEvent

__all__ = [
    "NAME_PATTERN",
    "ScaffoldError",
    "recipe_text",
    "response_sample",
    "sample_event",
    "split_trigger",
    "sync_text",
]

NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
DOCS = "docs"


class ScaffoldError(UsageError):
    """A name, trigger or action that cannot be scaffolded; the message says what to give."""


def split_trigger(text: str, registry: Registry) -> TriggerEvent:
    """The trigger event ``APP.EVENT`` names (``connecteam.user_created``, ``ghl.ContactCreate``,
    ``connecteam.contact.selected``, ``manual.anything``, ``schedule.cron``)."""
    app, _, event = text.partition(".")
    if not app or not event:
        raise ScaffoldError(
            f"--trigger {text!r} is not APP.EVENT (for example connecteam.user_created or "
            "ghl.ContactCreate; `connector catalog list --triggers` lists them)"
        )
    found = registry.trigger(app, event)
    if found is None:
        import difflib

        names = [t.name for t in registry.triggers.values()]
        close = difflib.get_close_matches(text, names, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ScaffoldError(
            f"unknown trigger event {text!r}{hint} (`connector catalog list --triggers` lists them)"
        )
    return found


# realistic values for fields of a sample event, by name (lowercased)
_SAMPLE_BY_NAME: dict[str, Any] = {
    "email": "jordan.avery@example.com",
    "phone": "+15555550101",
    "phonenumber": "+15555550101",
    "firstname": "Jordan",
    "lastname": "Avery",
    "name": "Jordan Avery",
    "fullname": "Jordan Avery",
    "companyname": "Avery Landscaping",
    "title": "Call back about the quote",
    "body": "Spoke with Jordan; sending the quote on Monday.",
    "tags": ["vip"],
    "timezone": "America/Chicago",
    "country": "US",
    "locationid": "ve9EPM428h8vShlRW1KT",
    "company": "sunrise-dental",
}


def _sample_value(schema: Mapping[str, Any], name: str, depth: int = 0) -> Any:
    schema = schema if isinstance(schema, Mapping) else {}
    known = _SAMPLE_BY_NAME.get(name.lower())
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if known is not None and (kind is None or kind == _json_kind(known)):
        return known
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    example = schema.get("example")
    scalar = kind in ("string", "integer", "number", "boolean")
    if scalar and example is not None and _fits_kind(example, schema) and not _lorem(example):
        return example
    if name == "type" and kind == "string":
        return None  # the event's own name: filled in by sample_event
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, Mapping) or depth > 3:
            return {}
        out = {}
        for key, sub in props.items():
            value = _sample_value(sub, str(key), depth + 1)
            if value is not None:
                out[str(key)] = value
        return out
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and items.get("type") in ("string", "integer"):
            value = _sample_value(items, name.rstrip("s"), depth + 1)
            return [value] if value is not None else []
        return []
    if kind == "integer":
        if name.lower().endswith(("timestamp", "at", "time")):
            return 1710511200
        return 9001 if name.lower().endswith("id") else 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-01-15T10:00:00Z"
    if fmt == "date":
        return "2026-01-15"
    if fmt == "email":
        return _SAMPLE_BY_NAME["email"]
    if name.lower().endswith("id"):
        return "sample-" + name
    return "text"


def _lorem(value: Any) -> bool:
    words = re.findall(r"[a-z]+", str(value).lower())
    return (bool(words) and all(w in LOREM for w in words)) or "{{" in str(value)


# what an untyped `data` holds, for Connecteam's webhook events by the start of their name
_DATA_BY_EVENT: dict[str, dict[str, Any]] = {
    "user_": {
        "userId": 9001,
        "firstName": "Jordan",
        "lastName": "Avery",
        "email": "jordan.avery@example.com",
        "phoneNumber": "+15555550101",
    },
    "task_": {"taskId": "65f1a2b3c4d5e6f708192a3b", "taskBoardId": "7001", "title": "Call back"},
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def sample_event(trigger: TriggerEvent) -> dict[str, Any]:
    """An event of ``trigger`` made from its payload schema: every documented field, with a
    realistic value of its type (``type`` is the event's name)."""
    schema = trigger.payload_schema or {}
    value = _sample_value(schema, "") if schema else {}
    sample: dict[str, Any] = value if isinstance(value, dict) else {}
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if isinstance(props, Mapping):
        for key in ("type", "eventType"):
            if key in props:
                sample[key] = trigger.event
    if sample.get("data") == {}:
        for prefix, data in _DATA_BY_EVENT.items():
            if trigger.event.startswith(prefix):
                sample["data"] = dict(data)
    if not sample and trigger.any_event:
        sample = {"contactId": "ocQHyuzHvysMo5N5VsXc"}
    return sample


def response_sample(schema: Mapping[str, Any] | None) -> Any:
    """A response body made from an operation's response schema (``{}`` when it has none)."""
    if not schema:
        return {}
    value = _sample_value(_ids_only(schema), "")
    return {} if value is None else value


def _ids_only(schema: Mapping[str, Any], depth: int = 0) -> Mapping[str, Any]:
    """``schema`` with only what leads to ids and required fields: a response a test can read
    (``steps.create.output.contact.id``) without pages of documented fields."""
    props = schema.get("properties")
    if not isinstance(props, Mapping) or depth > 3:
        return schema
    required = set(schema.get("required") or [])
    kept: dict[str, Any] = {}
    for key, sub in props.items():
        if not isinstance(sub, Mapping):
            continue
        if key == "id" or str(key).endswith("Id") or key in required:
            kept[key] = sub
        elif isinstance(sub.get("properties"), Mapping):
            inner = _ids_only(sub, depth + 1)
            if inner.get("properties"):
                kept[key] = inner
    return {**schema, "properties": kept}


def _trigger_fields(sample: Mapping[str, Any], event: str) -> dict[str, str]:
    """Field name -> template path into ``trigger``, for the top level and one level into an
    object (Connecteam's ``data``)."""
    found: dict[str, str] = {}
    for key, value in sample.items():
        if isinstance(value, Mapping):
            for inner in value:
                found.setdefault(str(inner), f"trigger.{key}.{inner}")
    for key in sample:
        found[str(key)] = f"trigger.{key}"
    # an event's own id is its record's: ghl ContactCreate's `id` is a contactId
    words = re.findall(r"[A-Z][a-z]+|[a-z]+", event)
    if "id" in sample and words:
        found.setdefault(words[0].lower() + "Id", "trigger.id")
    return found


@dataclass(frozen=True)
class _Line:
    key: str
    value: Any
    required: bool
    note: str = ""


def _param_lines(
    params: Sequence[Parameter],
    fields: Mapping[str, str],
    sample: Mapping[str, Any],
    location: tuple[str, str] | None,
    earlier: Mapping[str, Mapping[str, Any] | None],
) -> list[_Line]:
    lines = []
    for p in params:
        note = ""
        made = _from_earlier(p.name, earlier)
        if location is not None and p.name == location[0]:
            value: Any = "{{ env." + location[1] + " }}"
        elif p.name in fields and _fits_kind(_lookup(sample, fields[p.name]), p.schema):
            value = "{{ " + fields[p.name] + " }}"
        elif made is not None:
            value = made
        else:
            value = example_value(p, location)
            if isinstance(value, str) and "{{" in value:  # an id the trigger does not carry
                value = f"TODO-{p.name}"
                note = f"the {p.name}: a trigger field or an earlier step's output"
        lines.append(_Line(p.name, value, p.required, note))
    return lines


def _from_earlier(name: str, earlier: Mapping[str, Mapping[str, Any] | None]) -> str | None:
    """``contactId`` from the latest earlier step whose output has ``contact.id``."""
    if not name.endswith("Id") or len(name) < 3:
        return None
    base = name[:-2]
    for step_id, schema in reversed(list(earlier.items())):
        props = (schema or {}).get("properties")
        inner = props.get(base) if isinstance(props, Mapping) else None
        fields = inner.get("properties") if isinstance(inner, Mapping) else None
        if isinstance(fields, Mapping) and "id" in fields:
            return "{{ steps." + step_id + ".output." + base + ".id }}"
    return None


def _lookup(sample: Mapping[str, Any], path: str) -> Any:
    value: Any = sample
    for part in path.split(".")[1:]:
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _fits_kind(value: Any, schema: Mapping[str, Any] | None) -> bool:
    kind = (schema or {}).get("type")
    if kind is None or value is None:
        return value is not None
    if isinstance(kind, list):
        return _json_kind(value) in kind
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _json_kind(value) == kind


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][\w.-]*", name) else json.dumps(name)


def _step_id(name: str, taken: set[str]) -> str:
    base = re.sub(r"\W", "_", name.split(".", 1)[-1])
    if base[:1].isdigit():
        base = "_" + base
    step, n = base, 2
    while step in taken:
        step, n = f"{base}_{n}", n + 1
    taken.add(step)
    return step


def _step(
    registry: Registry,
    name: str,
    step_id: str,
    fields: Mapping[str, str],
    sample: Mapping[str, Any],
    earlier: dict[str, Mapping[str, Any] | None],
) -> list[str]:
    op: Operation | None = registry.operation(name)
    action: Action | None = registry.actions.get(name) if op is None else None
    if op is not None:
        head = f"  # {op.name}: {op.method} {op.path}"
        if op.summary:
            head += f" ({op.summary})"
        app = registry.apps.get(op.app)
        location = None
        if app is not None and app.location_param and app.location_env:
            location = (app.location_param, app.location_env)
        params = _param_lines(op.parameters, fields, sample, location, earlier)
    elif action is not None:
        head = f"  # {action.name}: {action.description.splitlines()[0] if action.description else 'a plugin action'}"
        params = _action_params(action, fields, sample, earlier)
    else:
        candidates = registry.action_names()
        import difflib

        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ScaffoldError(
            f"unknown action {name!r}{hint} (`connector catalog search WORDS` finds operations)"
        )
    earlier[step_id] = op.response_schema if op is not None else None
    lines = [
        head,
        f"  #   its parameters: connector catalog show {name}",
        f"  - id: {step_id}",
        f"    action: {name}",
    ]
    required = [p for p in params if p.required]
    optional = [p for p in params if not p.required]
    if required:
        lines.append("    with:")
        for p in required:
            note = f"  # TODO: {p.note}" if p.note else ""
            lines.append(f"      {_key(p.key)}: {json.dumps(p.value, ensure_ascii=False)}{note}")
        for p in optional:
            lines.append(f"      # {_key(p.key)}: {json.dumps(p.value, ensure_ascii=False)}")
    elif optional:
        lines.append("    # with:")
        for p in optional:
            lines.append(f"    #   {_key(p.key)}: {json.dumps(p.value, ensure_ascii=False)}")
    return lines


def _action_params(
    action: Action,
    fields: Mapping[str, str],
    sample: Mapping[str, Any],
    earlier: Mapping[str, Mapping[str, Any] | None],
) -> list[_Line]:
    from connector.catalog.model import Parameter

    schema = action.params_schema or {}
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    required = set(schema.get("required") or []) if isinstance(schema, Mapping) else set()
    params = [
        Parameter(name=str(k), location="body", required=k in required, schema=v)
        for k, v in (props or {}).items()
        if isinstance(v, Mapping)
    ]
    return _param_lines(params, fields, sample, None, earlier)


def recipe_text(
    name: str,
    trigger: TriggerEvent,
    actions: Sequence[str],
    registry: Registry,
    schema_ref: str,
) -> str:
    """The text of a new recipe ``name``: ``trigger`` with a sample event, a step per action of
    ``actions`` (operation or plugin action names), and comments linking what to read next.
    ``schema_ref`` is where the recipe schema is, for editors (relative to the file or a URL)."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"recipe name {name!r}: use lowercase letters, digits and dashes (pull-contact-tasks)"
        )
    sample = sample_event(trigger)
    fields = _trigger_fields(sample, trigger.event)
    lines = [
        f"# yaml-language-server: $schema={schema_ref}",
        "# A recipe: a trigger and a chain of steps, each calling an operation of the catalog.",
        f"# The format: {DOCS}/recipes.md (templates, if:, foreach:, once:, vars:)",
        "# Check it:   connector validate THIS_FILE",
        "# Try it:     connector run THIS_FILE --sandbox      (no accounts needed)",
        "# Test it:    connector new test THIS_FILE, then connector test THIS_FILE",
        f"#             ({DOCS}/testing.md)",
        f"name: {name}",
        f"description: What {name} does, for the people who read it (TODO).",
        "trigger:",
        f"  # {trigger.name}: {trigger.description.splitlines()[0] if trigger.description else ''}".rstrip(),
        f"  #   its fields: connector catalog show {trigger.name}",
        f"  app: {trigger.app}",
        f"  event: {_key(trigger.event)}",
    ]
    if trigger.app == "schedule":
        lines.append("  cron: '*/15 * * * *'   # every 15 minutes; @hourly and @daily work too")
    lines.append("  # the event `connector run` uses when given none; edit it to what really comes")
    if sample:
        dumped = yaml.safe_dump(
            {"sample": sample}, sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        lines.extend("  " + line for line in dumped.rstrip("\n").splitlines())
    else:
        lines.append("  sample: {}")
    lines.append("steps:")
    taken: set[str] = set()
    earlier: dict[str, Mapping[str, Any] | None] = {}
    lines.append("  # more operations: connector catalog search WORDS")
    for action_name in actions:
        step_id = _step_id(action_name, taken)
        lines.extend(_step(registry, action_name, step_id, fields, sample, earlier))
    return "\n".join(lines) + "\n"


def sync_text(name: str, schema_ref: str, tasks: bool = False) -> str:
    """A new sync declaration ``name``: contacts and users paired by email and phone, both ways
    (with ``tasks``, their tasks too), every choice commented."""
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(
            f"sync name {name!r}: use lowercase letters, digits and dashes (people)"
        )
    lines = [
        f"# yaml-language-server: $schema={schema_ref}",
        "# A two-way sync: which records are the same in both apps, and how they are kept so.",
        f"# The format and what happens to an event: {DOCS}/sync.md",
        "# Check it: connector validate THIS_FILE; run it: connector serve FOLDER --sandbox;",
        "# bring both apps together once: connector sync reconcile THIS_FILE --dry-run",
        f"sync: {name}",
        "description: GoHighLevel contacts and Connecteam users, the same people, kept the same both ways.",
        "pairs:",
        "  - kind: contact            # the pair's name; its id links are kept under it",
        "    ghl: contact             # the GoHighLevel record type",
        "    connecteam: user         # the Connecteam record type",
        "    match: [email, phone]    # how records on both sides find each other, in order",
        "    conflict: newest         # newest | ghl | connecteam | manual",
        "    create: {ghl: true, connecteam: true}   # a record born on a side gets a counterpart",
        "    delete: {ghl: keep, connecteam: keep}   # keep | archive | propagate",
        "    fields:                  # NAME: {ghl: FIELD, connecteam: FIELD, direction, transform}",
        "      firstName: {ghl: firstName, connecteam: firstName}",
        "      lastName: {ghl: lastName, connecteam: lastName}",
        "      email: {ghl: email, connecteam: email, transform: email}",
        "      phone: {ghl: phone, connecteam: phoneNumber, transform: phone}",
    ]
    if tasks:
        lines += [
            "  - kind: task",
            "    ghl: task",
            "    connecteam: task",
            "    parent: contact          # a task's counterpart is made under its contact's",
            "    fields:",
            "      title: {ghl: title, connecteam: title}",
            "      notes: {ghl: body, connecteam: description}",
            "      due: {ghl: dueDate, connecteam: dueDate}",
            "      done: {ghl: completed, connecteam: completed}",
        ]
    return "\n".join(lines) + "\n"
