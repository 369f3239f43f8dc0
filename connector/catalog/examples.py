"""The example step ``connector catalog show`` prints for an operation: one a user can paste into
a recipe and that validates as it is (tests/test_cli_catalog.py pastes every one).

Each parameter shows the location from the environment (the app's location parameter), an id from
the trigger, the document's own example when it fits the parameter's schema and is not lorem-ipsum
filler, else a small realistic value that fits the schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from connector.catalog.model import Operation, Parameter

__all__ = ["LOREM", "example_value", "example_with"]


# The filler words of generated API documents ("lorem ipsum", "minim", "velit magna"): an
# example made only of them says nothing, and a realistic value is shown instead.
LOREM = frozenset(
    [
        "lorem",
        "loram",
        "ipsum",
        "dolor",
        "sit",
        "amet",
        "consectetur",
        "adipiscing",
        "adipisicing",
        "elit",
        "sed",
        "do",
        "eiusmod",
        "tempor",
        "incididunt",
        "ut",
        "labore",
        "et",
        "dolore",
        "magna",
        "aliqua",
        "enim",
        "ad",
        "minim",
        "veniam",
        "quis",
        "nostrud",
        "exercitation",
        "ullamco",
        "laboris",
        "nisi",
        "aliquip",
        "ex",
        "ea",
        "commodo",
        "consequat",
        "duis",
        "aute",
        "irure",
        "in",
        "reprehenderit",
        "voluptate",
        "velit",
        "esse",
        "cillum",
        "eu",
        "fugiat",
        "nulla",
        "pariatur",
        "excepteur",
        "sint",
        "occaecat",
        "cupidatat",
        "non",
        "proident",
        "sunt",
        "culpa",
        "qui",
        "officia",
        "deserunt",
        "mollit",
        "anim",
        "id",
        "est",
        "laborum",
    ]
)
# realistic values by field name (lowercased), for generated examples
_BY_NAME = {
    "email": "jordan.avery@example.com",
    "phone": "+15555550101",
    "phonenumber": "+15555550101",
    "firstname": "Jordan",
    "lastname": "Avery",
    "name": "Jordan Avery",
    "companyname": "Avery Landscaping",
    "title": "Call back about the quote",
    "body": "Spoke with Jordan; sending the quote on Monday.",
    "description": "Sent from connector",
    "message": "Hello from connector",
    "website": "https://example.com",
    "url": "https://example.com/webhook",
    "tags": ["vip"],
    "timezone": "America/Chicago",
    "country": "US",
    "city": "Springfield",
    "address1": "12 Elm Street",
    "postalcode": "62701",
}


def _lorem(value: Any) -> bool:
    """Whether ``value`` is (or holds only) lorem-ipsum filler, or a document's own template
    syntax (``{{contact.name}}``), which a recipe would read as its own template."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return True
    if isinstance(value, str):
        words = re.findall(r"[a-z]+", value.lower())
        return bool(words) and all(w in LOREM for w in words)
    if isinstance(value, list):
        return bool(value) and all(_lorem(v) for v in value)
    return False


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    import jsonschema

    try:
        jsonschema.validate(value, dict(schema))
    except jsonschema.ValidationError:
        return False
    except jsonschema.SchemaError:
        return True
    return True


def _generated(schema: Mapping[str, Any], name: str, depth: int = 0) -> Any:
    """A small value that fits ``schema``: realistic by ``name`` where it can be."""
    schema = schema if isinstance(schema, Mapping) else {}
    for key in ("anyOf", "oneOf"):  # the first alternative that is not null
        options = schema.get(key)
        if "type" not in schema and isinstance(options, list):
            chosen = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            if chosen:
                return _generated(chosen[0], name, depth)
    known = _BY_NAME.get(name.lower())
    if known is not None and (not schema or _fits(known, schema)):
        return known
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or (kind is None and "properties" in schema):
        found = schema.get("properties")
        props: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        listed = schema.get("required")
        required: list[Any] = listed if isinstance(listed, list) else []
        if depth > 4:
            return {}
        return {
            k: _generated(props.get(k, {}), k, depth + 1) for k in required if isinstance(k, str)
        }
    if kind == "array":
        found = schema.get("items")
        items: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        least = schema.get("minItems")
        need = least if isinstance(least, int) else 0
        return [_generated(items, name.rstrip("s"), depth + 1) for _ in range(min(need, 3))]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = low + 1 if isinstance(low, int | float) else 1
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    fmt = schema.get("format")
    if fmt == "date-time":
        return "2026-01-15T10:00:00Z"
    if fmt == "date":
        return "2026-01-15"
    if fmt == "email":
        return _BY_NAME["email"]
    if name.endswith(("Id", "_id", "ID")):
        return "{{ trigger." + name + " }}"
    return "text"


def example_value(p: Parameter, location: tuple[str, str] | None = None) -> Any:
    """The value an example step shows for ``p``: the location from the environment (the app's
    location parameter), an id from the trigger, else the document's example when it fits the
    parameter's schema and is not filler text, else a small realistic value that fits."""
    if location is not None and p.name == location[0]:
        return "{{ env." + location[1] + " }}"
    schema = p.schema or {}
    if p.location == "path" or p.name.endswith(("Id", "_id")):
        kind = schema.get("type")
        if kind in (None, "string"):
            return "{{ trigger." + p.name + " }}"
    for key in ("example", "default"):
        if key in schema and schema[key] is not None:
            value = schema[key]
            if not _lorem(value) and _fits(value, schema):
                return value
    examples = schema.get("examples")
    if (
        isinstance(examples, list)
        and examples
        and not _lorem(examples[0])
        and _fits(examples[0], schema)
    ):
        return examples[0]
    return _generated(schema, p.name)


def example_with(
    op: Operation, step_id: str | None = None, location: tuple[str, str] | None = None
) -> list[str]:
    """A recipe step a user can paste (it validates as it is): required parameters set,
    optional ones commented out. ``location``: the app's (parameter, environment variable) of
    the tenant a request acts on (GoHighLevel's ``locationId``, ``GHL_LOCATION_ID``)."""
    step = step_id or re.sub(r"\W", "_", op.name.split(".", 1)[-1].split(".")[-1])
    if step[:1].isdigit():
        step = "_" + step
    lines = [f"- id: {step}", f"  action: {op.name}"]
    if not op.parameters:
        return lines
    required = [p for p in op.parameters if p.required]
    # With only optional parameters, `with:` itself is commented too: every line uncommented is
    # still a valid step (a `with: {}` followed by indented keys is not YAML).
    lines.append("  with:" if required else "  # with:")
    for p in op.parameters:
        value = json.dumps(example_value(p, location), ensure_ascii=False)
        key = json.dumps(p.name) if not re.fullmatch(r"[A-Za-z_][\w.-]*", p.name) else p.name
        prefix = "    " if p.required else "    # " if required else "  #   "
        lines.append(f"{prefix}{key}: {value}")
    return lines
