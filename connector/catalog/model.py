"""The catalog's value types: operations, their parameters, and trigger events.

A catalog file (``connector/catalog/data/<app>.json``) is produced by
``connector.catalog.generate`` from a vendor's OpenAPI document and read back with
:func:`Operation.from_json`. The JSON layout of one operation::

    {
      "name": "ghl.get-contact",          # what a recipe's `action:` says
      "app": "ghl",
      "operation_id": "get-contact",      # as in the vendor's document
      "source": "contacts.json",          # which document it came from
      "method": "GET",
      "path": "/contacts/{contactId}",
      "summary": "Get Contact",
      "description": "...",
      "parameters": [                     # path, query and header parameters, then the top-level
        {"name": "contactId", "in": "path", "required": true,    # body fields ("in": "body")
         "schema": {...}, "description": "..."}
      ],
      "body": {"required": true, "content_type": "application/json", "schema": {...}} | null,
      "response": {"status": 200, "schema": {...} | null},
      "scopes": ["contacts.readonly"],
      "version": "2021-07-28" | null,     # the `Version` header the engine sends
      "versions": {"v3": {...}},          # only when the vendor documents other versions of
                                          # it: each the same layout without name and app
      "deprecated": false,
      "pagination": null | {"style": "cursor" | "offset" | "page", ...}
    }

The top-level entry is the operation as sent by default (GoHighLevel: ``2021-07-28``); the
entries of ``versions`` are the same operation as another version of the vendor's API documents it
(GoHighLevel's Contacts API ``v3``), with their own path, parameters and schemas
(:meth:`Operation.at_version`).

Schemas are JSON Schema with every ``$ref`` resolved (a recursive reference is kept as a
``$ref`` into ``$defs`` of the same schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["WHOLE_BODY", "Operation", "Parameter", "TriggerEvent"]

ParamLocation = Literal["path", "query", "header", "body"]

#: The parameter that carries a whole request body that is not an object (a JSON array).
WHOLE_BODY = "body"


@dataclass(frozen=True)
class Parameter:
    name: str
    location: ParamLocation
    required: bool = False
    schema: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Parameter:
        return cls(
            name=data["name"],
            location=data["in"],
            required=bool(data.get("required", False)),
            schema=data.get("schema") or {},
            description=data.get("description") or "",
        )


@dataclass(frozen=True)
class Operation:
    name: str
    app: str
    method: str
    path: str
    operation_id: str = ""
    source: str = ""
    summary: str = ""
    description: str = ""
    parameters: tuple[Parameter, ...] = ()
    body_schema: Mapping[str, Any] | None = None
    body_required: bool = False
    body_content_type: str = "application/json"
    response_status: int = 200
    response_schema: Mapping[str, Any] | None = None
    scopes: tuple[str, ...] = ()
    version: str | None = None
    deprecated: bool = False
    pagination: Mapping[str, Any] | None = None
    # the other versions of this operation, by the `Version` header each is sent with (only on
    # the default version; each of them has `variant` set)
    variants: Mapping[str, Operation] = field(default_factory=dict)
    variant: bool = False

    @property
    def versions(self) -> tuple[str, ...]:
        """Every version the catalog has of this operation, the one sent by default first."""
        own = (self.version,) if self.version else ()
        return (*own, *sorted(v for v in self.variants if v != self.version))

    def at_version(self, version: str) -> Operation | None:
        """This operation as ``version`` documents it, or ``None`` when there is no such version."""
        if version == self.version:
            return self
        return self.variants.get(version)

    @property
    def display_name(self) -> str:
        """The name problems and listings show: ``ghl.get-contact``, with the version when it is
        not the one sent by default (``ghl.get-contact (Version v3)``)."""
        return f"{self.name} (Version {self.version})" if self.variant else self.name

    def param(self, name: str) -> Parameter | None:
        for p in self.parameters:
            if p.name == name:
                return p
        return None

    @property
    def whole_body(self) -> bool:
        """Whether the request body is not an object (a JSON array, say): then the one parameter
        ``body`` is the whole body, instead of one parameter per top-level field."""
        schema = self.body_schema
        return schema is not None and schema.get("type", "object") != "object"

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, variant: bool = False) -> Operation:
        body = data.get("body") or None
        response = data.get("response") or {}
        params = [Parameter.from_json(p) for p in data.get("parameters", ())]
        body_schema = body.get("schema") if body else None
        if (
            body_schema is not None
            and body_schema.get("type", "object") != "object"
            and not any(p.name == WHOLE_BODY for p in params)
        ):
            params.append(
                Parameter(
                    name=WHOLE_BODY,
                    location="body",
                    required=bool(body.get("required")) if body else False,
                    schema=body_schema,
                    description=body_schema.get("description")
                    or "The whole request body (not an object).",
                )
            )
        return cls(
            name=data["name"],
            app=data["app"],
            method=data["method"].upper(),
            path=data["path"],
            operation_id=data.get("operation_id", ""),
            source=data.get("source", ""),
            summary=data.get("summary") or "",
            description=data.get("description") or "",
            parameters=tuple(params),
            body_schema=body_schema,
            body_required=bool(body.get("required")) if body else False,
            body_content_type=(body.get("content_type") if body else None) or "application/json",
            response_status=int(response.get("status", 200)),
            response_schema=response.get("schema"),
            scopes=tuple(data.get("scopes", ())),
            version=data.get("version"),
            deprecated=bool(data.get("deprecated", False)),
            pagination=data.get("pagination"),
            variants={
                version: cls.from_json(
                    {**other, "name": data["name"], "app": data["app"]}, variant=True
                )
                for version, other in sorted((data.get("versions") or {}).items())
            },
            variant=variant,
        )


@dataclass(frozen=True)
class TriggerEvent:
    """An event a recipe's trigger can name: ``trigger: {app: ghl, event: ContactCreate}``."""

    app: str
    event: str
    description: str = ""
    payload_schema: Mapping[str, Any] | None = None
    source: str = ""
    any_event: bool = False  # `manual`: accepts any event name

    @property
    def name(self) -> str:
        return f"{self.app}.{self.event}"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TriggerEvent:
        return cls(
            app=data["app"],
            event=data["event"],
            description=data.get("description") or "",
            payload_schema=data.get("payload_schema"),
            source=data.get("source", ""),
            any_event=bool(data.get("any_event", False)),
        )
