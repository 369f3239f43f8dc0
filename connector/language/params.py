"""Checking a step's ``with:`` against the operation or action it calls.

For a catalogued HTTP operation: every required path, query, header and body parameter is given
(except the app's location parameter, which the engine fills from the environment: ``App.location_param``),
every name is a parameter (unless the body schema explicitly allows more), and every literal value
fits the parameter's JSON Schema. For a plugin action, ``with:`` is checked against the action's
``params_schema``. Values holding templates are only known at run time, so the type check skips
them (and anything inside them), while still checking the literal parts around them; except a
value that is exactly ``{{ reference }}`` to a field whose type the API document gives
(:mod:`.fields`), which must have the parameter's type.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from connector.apps import Action
from connector.catalog.model import Operation
from connector.language.context import CheckContext
from connector.language.fields import (
    chain_text,
    describe_types,
    resolve_chain,
    response_of,
    schema_types,
    type_mismatch,
    value_types,
)
from connector.language.load import child_path
from connector.language.schema import did_you_mean, expected_types
from connector.language.template_check import TemplateScope

__all__ = ["ParamChecker"]

#: validators that still mean something when the value contains templates
_STRUCTURAL = {"type", "required", "additionalProperties", "minItems", "maxItems", "minProperties"}
_MAX_LISTED = 12
_SINGLE_EXPRESSION = re.compile(r"\s*\{\{(?:(?!\{\{|\}\}|\{%|\{#).)*\}\}\s*", re.DOTALL)


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value or "{#" in value
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (", ..." if len(names) > _MAX_LISTED else "")


def _engine_fills(ctx: CheckContext, op: Operation, name: str) -> bool:
    """Whether the engine fills ``name`` when a step leaves it out: its app's location parameter
    (``App.location_param``, from ``App.location_env``)."""
    app = ctx.registry.apps.get(op.app) if ctx.registry is not None else None
    return app is not None and app.location_param == name


class ParamChecker:
    """Checks ``with:`` blocks, caching one JSON Schema validator per parameter schema."""

    def __init__(self) -> None:
        self._validators: dict[int, tuple[Any, Draft202012Validator | None]] = {}

    def _validator(self, schema: Mapping[str, Any]) -> Draft202012Validator | None:
        entry = self._validators.get(id(schema))
        if entry is None or entry[0] is not schema:
            try:
                Draft202012Validator.check_schema(schema)
                validator: Draft202012Validator | None = Draft202012Validator(schema)
            except (SchemaError, TypeError, ValueError):
                validator = None  # a catalog schema we cannot use: no type check
            entry = (schema, validator)
            self._validators[id(schema)] = entry
        return entry[1]

    def check(
        self,
        ctx: CheckContext,
        target: Operation | Action,
        given: Any,
        path: str,
        scope: TemplateScope | None = None,
    ) -> None:
        if isinstance(given, str) or (given is not None and not isinstance(given, dict)):
            return  # the schema check reports a `with:` that is not a mapping
        params: dict[str, Any] = dict(given or {})
        if isinstance(target, Action):
            if target.params_schema:
                schema = target.params_schema
                self._check_value(ctx, target.name, "with", params, schema, f"{path}.with")
            return
        self._check_operation(ctx, target, params, path, has_with=given is not None, scope=scope)

    def _check_operation(
        self,
        ctx: CheckContext,
        op: Operation,
        params: dict[str, Any],
        path: str,
        *,
        has_with: bool,
        scope: TemplateScope | None,
    ) -> None:
        with_path = f"{path}.with"
        known = {p.name: p for p in op.parameters}
        body = op.body_schema if isinstance(op.body_schema, Mapping) else {}
        open_body = bool(body.get("additionalProperties")) and body.get("type") == "object"
        for name in params:
            if name in known or open_body:
                continue
            names = list(known)
            hint = did_you_mean(name, names) or (
                f" (its parameters: {_listing(names)})" if names else " (it takes no parameters)"
            )
            ctx.add(
                child_path(with_path, name),
                f"unknown parameter {name!r} of {op.name}{hint}",
                key=True,
            )
        for p in op.parameters:
            if not p.required or p.name in params or _engine_fills(ctx, op, p.name):
                continue
            where = with_path if has_with else path
            ctx.add(
                where,
                f"missing required parameter {p.name!r} ({p.location}) of {op.name}",
                key=where == with_path,
            )
        for name, value in params.items():
            param = known.get(name)
            if param is not None and param.schema:
                where = child_path(with_path, name)
                self._check_value(ctx, op.name, name, value, param.schema, where, scope)

    def _check_value(
        self,
        ctx: CheckContext,
        action: str,
        name: str,
        value: Any,
        schema: Mapping[str, Any],
        path: str,
        scope: TemplateScope | None = None,
    ) -> None:
        """Report where the literal parts of ``value`` do not fit ``schema`` (and, with the
        ``scope`` it is written in, where a reference to a documented field does not)."""
        if value is None and schema.get("nullable"):
            return
        if isinstance(value, str) and _has_template(value):
            self._check_text_template(ctx, name, value, schema, path)
            if scope is not None:
                self._check_reference(ctx, action, name, value, schema, path, scope)
            return
        validator = self._validator(schema)
        if validator is None:
            return
        try:
            errors = list(validator.iter_errors(value))
        except Exception:  # a catalog schema jsonschema cannot apply (bad regex, ...)
            return
        for error in errors:
            self._report(ctx, action, name, error, path)

    def _check_reference(
        self,
        ctx: CheckContext,
        action: str,
        name: str,
        value: str,
        schema: Mapping[str, Any],
        path: str,
        scope: TemplateScope,
    ) -> None:
        """A value that is exactly ``{{ steps.ID.output.field }}`` (or ``{{ item.field }}``) of a
        documented type must have the parameter's type."""
        if not (scope.outputs or scope.item):
            return
        chain = ctx.analysis(value).value_chain
        if chain is None:
            return
        found = resolve_chain(chain, scope.outputs, scope.item)
        if found is None or found.schema is None:
            return
        given, wanted = schema_types(found.schema), schema_types(schema)
        if given is None or wanted is None or not type_mismatch(wanted, given):
            return
        documented_by = scope.item[0] if chain.root == "item" and scope.item else ""
        if chain.root == "steps":
            documented_by = scope.outputs[chain.parts[0][1]][0]
        ctx.add(
            path,
            f"parameter {name!r} of {action} takes {describe_types(wanted)}, but "
            f"{chain_text(chain)} is {describe_types(given)} (in {response_of(documented_by)})",
        )

    @staticmethod
    def _check_text_template(
        ctx: CheckContext, name: str, value: str, schema: Mapping[str, Any], path: str
    ) -> None:
        """A template that is more than one ``{{ }}`` always renders to a string."""
        if _SINGLE_EXPRESSION.fullmatch(value):
            return
        types = schema.get("type")
        allowed = {types} if isinstance(types, str) else set(types or ())
        if allowed and "string" not in allowed:
            ctx.add(
                path,
                f"parameter {name!r} takes {expected_types(sorted(allowed))}, but this template renders "
                "to a string (only a value that is exactly one {{ ... }} keeps its type)",
            )

    def _report(
        self, ctx: CheckContext, action: str, name: str, error: ValidationError, path: str
    ) -> None:
        if isinstance(error.instance, str) and _has_template(error.instance):
            return  # only known at run time
        if _has_template(error.instance) and error.validator not in _STRUCTURAL:
            return  # a literal list or mapping with templates inside: only its shape is known
        sub = path
        for part in error.absolute_path:
            sub = child_path(sub, part)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list((error.schema or {}).get("properties", {}))
            for key in error.instance:
                if key not in allowed:
                    what = "parameter" if name == "with" else "key"
                    ctx.add(
                        child_path(sub, key),
                        f"unknown {what} {key!r} of {action}" + did_you_mean(key, allowed),
                        key=True,
                    )
            return
        if error.validator == "required" and name == "with" and sub == path:
            missing = error.message.split("'")[1] if "'" in error.message else error.message
            ctx.add(path, f"missing required parameter {missing!r} of {action}", key=True)
            return
        alternatives = error.validator_value if error.validator in ("anyOf", "oneOf") else None
        if isinstance(alternatives, list) and all(
            isinstance(a, dict) and set(a) == {"required"} for a in alternatives
        ):
            options = " or ".join(repr(n) for a in alternatives for n in a["required"])
            where = path if sub == path else sub
            ctx.add(where, f"{action} needs {options}", key=where == path and name == "with")
            return
        if error.validator == "type":
            parts = [str(p) for p in error.absolute_path]
            if name != "with":
                parts.insert(0, name)
            what = f"parameter {parts[0]!r} of {action}" if parts else f"with: of {action}"
            if len(parts) > 1:
                what += f" at {'.'.join(parts[1:])}"
            shown = repr(error.instance)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            ctx.add(
                sub,
                f"{what} takes {expected_types(error.validator_value)}, but {shown} is "
                f"{describe_types(value_types(error.instance))}",
            )
            return
        label = "" if name == "with" else f"parameter {name!r}: "
        ctx.add(sub, f"{label}{error.message}")
