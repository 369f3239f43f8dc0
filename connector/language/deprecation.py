"""Deprecated operations: what a step calling one is warned about, naming what replaces it (the
operation its description names, :func:`connector.catalog.deprecation.replacement`)."""

from __future__ import annotations

from connector.apps.registry import Registry
from connector.catalog.deprecation import replacement as _named_replacement
from connector.catalog.model import Operation

__all__ = ["deprecation_message", "replacement"]


def replacement(op: Operation, registry: Registry) -> Operation | None:
    """The operation ``op``'s description names as its replacement, if it names one that the
    catalog has."""
    app = registry.apps.get(op.app)
    return _named_replacement(op, app.operations.values() if app is not None else ())


def deprecation_message(op: Operation, registry: Registry) -> str:
    """The warning for a step that calls the deprecated operation ``op``."""
    message = f"{op.name} ({op.method} {op.path}) is deprecated (its API document says so)"
    instead = replacement(op, registry)
    if instead is not None:
        return f"{message}; use {instead.name} ({instead.method} {instead.path}) instead"
    return f"{message}; `connector catalog list` shows the other operations"
