"""Request validation against the generated catalog (``connector.catalog.load_operations``).

The catalog gives each operation its parameters (path, query, header, body fields with their JSON
schemas and required flags) and its body schema. :func:`check_request` turns a request into a list
of :class:`Issue` objects; each fake formats them the way its vendor does (GoHighLevel's
class-validator messages, Connecteam's FastAPI ``detail`` list).

The vendors' documents are OpenAPI 3.0/3.1; :func:`to_jsonschema` maps what plain JSON Schema
reads differently: ``nullable: true`` becomes a ``null`` alternative, and a ``{type: object}`` that
has no properties but whose ``example`` is not an object (GoHighLevel's ``dateOfBirth``,
``NumericField.field_value``, calendar ``startTime``) accepts any value, because the document's
own examples (and the live API) use strings and numbers there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema

from connector.catalog.model import Operation

__all__ = ["Issue", "OperationIndex", "check_request", "coerce_query", "to_jsonschema"]


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a request."""

    where: str  # "path" | "query" | "header" | "body"
    loc: tuple[str | int, ...]  # the field, inside `where`
    kind: str  # "missing" | "type" | "enum" | "extra" | "other"
    message: str
    expected: str = ""  # the JSON type or the allowed values

    @property
    def field(self) -> str:
        return ".".join(str(p) for p in self.loc) or "body"


def to_jsonschema(schema: Any) -> Any:
    """An OpenAPI schema as JSON Schema (see the module docstring)."""
    if isinstance(schema, list):
        return [to_jsonschema(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {k: to_jsonschema(v) for k, v in schema.items() if k not in ("nullable", "example")}
    loose = out.get("type") == "object" and not schema.get("properties")
    if loose and "example" in schema and not isinstance(schema["example"], dict):
        out.pop("type")
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    import json

    schema = to_jsonschema(json.loads(schema_json))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


# the validator of each schema object the catalog holds, found without writing the schema out
# as JSON for every request (the object is kept, so its id is not reused)
_OF_OBJECT: dict[int, tuple[Any, jsonschema.protocols.Validator]] = {}
_OF_OBJECT_MAX = 4096


def _validator_of(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    kept = _OF_OBJECT.get(id(schema))
    if kept is not None and kept[0] is schema:
        return kept[1]
    import json

    validator = _validator(json.dumps(schema, sort_keys=True))
    if len(_OF_OBJECT) < _OF_OBJECT_MAX:
        _OF_OBJECT[id(schema)] = (schema, validator)
    return validator


def schema_errors(schema: Mapping[str, Any], value: Any) -> list[jsonschema.ValidationError]:
    validator = _validator_of(schema)
    return sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))


def _issue(where: str, prefix: tuple[str | int, ...], err: jsonschema.ValidationError) -> Issue:
    loc = prefix + tuple(err.absolute_path)
    if err.validator == "required":
        missing = str(err.message).split("'")[1] if "'" in err.message else ""
        return Issue(where, (*loc, missing), "missing", err.message)
    if err.validator == "type":
        expected = err.validator_value
        if isinstance(expected, list):
            expected = expected[0]
        return Issue(where, loc, "type", err.message, str(expected))
    if err.validator == "enum":
        values = ", ".join(str(v) for v in err.validator_value)
        return Issue(where, loc, "enum", err.message, values)
    if err.validator in ("anyOf", "oneOf") and err.context:
        return _issue(where, prefix, min(err.context, key=lambda e: len(list(e.absolute_path))))
    return Issue(where, loc, "other", err.message)


def coerce_query(values: list[str], schema: Mapping[str, Any]) -> Any:
    """Query strings as the parameter's schema types them; a value that will not convert is kept
    as it is, so validation reports it."""
    schema = to_jsonschema(schema)
    typ = schema.get("type")
    if typ is None and schema.get("allOf"):
        typ = schema["allOf"][0].get("type")
    if typ == "array":
        items = schema.get("items") or {}
        flat = [p for v in values for p in (v.split(",") if "," in v else [v])]
        return [coerce_query([v], items) for v in flat]
    raw = values[-1]
    try:
        if typ == "integer":
            return int(raw)
        if typ == "number":
            f = float(raw)
            return int(f) if f.is_integer() else f
    except ValueError:
        return raw
    if typ == "boolean" and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return raw


def check_request(
    op: Operation,
    path: Mapping[str, str],
    query: Mapping[str, list[str]],
    body: Any,
    *,
    forbid_extra_body: bool = False,
) -> tuple[list[Issue], dict[str, Any]]:
    """Validate one request; returns the issues and the query parameters, typed."""
    issues: list[Issue] = []
    typed: dict[str, Any] = {}
    for p in op.parameters:
        if p.location == "path":
            if p.name in path:
                value: Any = coerce_query([path[p.name]], p.schema)
                issues += [_issue("path", (p.name,), e) for e in schema_errors(p.schema, value)]
        elif p.location == "query":
            if p.name in query:
                typed[p.name] = coerce_query(list(query[p.name]), p.schema)
                errs = schema_errors(p.schema, typed[p.name])
                issues += [_issue("query", (p.name,), e) for e in errs]
            elif p.required:
                issues.append(Issue("query", (p.name,), "missing", f"{p.name} is required"))
    if op.body_schema is not None:
        if body is None and op.body_required and op.body_schema.get("required"):
            body = {}
        if body is not None:
            issues += [_issue("body", (), e) for e in schema_errors(op.body_schema, body)]
            props = op.body_schema.get("properties") or {}
            if forbid_extra_body and props and isinstance(body, Mapping):
                for key in body:
                    if key not in props:
                        issues.append(Issue("body", (key,), "extra", f"property {key} is unknown"))
    return issues, typed


class OperationIndex:
    """The catalog's operations of one app, by method and path template."""

    def __init__(self, app: str) -> None:
        from connector.catalog import load_operations
        from connector.errors import CatalogError

        try:
            ops = load_operations(app)
        except (OSError, KeyError, ValueError) as exc:
            raise CatalogError(
                f"the sandbox needs the {app} catalog (connector/catalog/data/{app}.json): {exc}"
            ) from exc
        self.app = app
        self.by_route = {(op.method, op.path): op for op in ops.values()}
        # every version of an operation by its route: a version can have a path of its own
        # (GoHighLevel's v3 `.../campaigns/remove-all` for 2021-07-28's `.../removeAll`)
        self.by_version: dict[tuple[str, str], dict[str, Operation]] = {}
        for op in ops.values():
            for version in op.versions or ("",):
                found = op.at_version(version) or op
                route = (found.method, found.path)
                self.by_version.setdefault(route, {})[found.version or ""] = found
                self.by_route.setdefault(route, found)

    def get(self, method: str, path: str) -> Operation | None:
        """The operation the route answers, as it is sent by default."""
        return self.by_route.get((method.upper(), path))

    def versions(self, method: str, path: str) -> dict[str, Operation]:
        """The route's operation by each ``Version`` it is answered for (``{"": op}`` when it
        has no Version header; ``{}`` for a route the catalog does not have)."""
        return dict(self.by_version.get((method.upper(), path), {}))
