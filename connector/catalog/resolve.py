"""Resolve every ``$ref`` of an OpenAPI document into self-contained JSON Schemas.

The vendors' documents point at their own ``#/components/schemas/...`` and, for GoHighLevel, at
other files (``../common/common-schemas.json#/components/schemas/BadRequestDTO``). The catalog
stores each operation's schemas with every reference replaced by its target, so nothing that
reads the catalog needs the documents.

A reference that is recursive (a schema that contains itself, directly or through others) cannot
be inlined. It is kept as ``{"$ref": "#/$defs/<Name>"}`` and the root schema that contains it
gets a ``$defs`` entry holding the (resolved) target, so the result is still valid JSON Schema.

``allOf`` with a single member, the way FastAPI wraps a reference to attach a description, is
folded into its member (sibling keys win), which keeps the types readable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

__all__ = ["DocumentSet", "RefError", "with_defs"]

JSON = Any
RefKey = tuple[str, str]  # (absolute file path, JSON pointer)


class RefError(Exception):
    """A ``$ref`` whose file or target does not exist."""


class DocumentSet:
    """Loaded documents, by absolute path, so relative file references can be followed."""

    def __init__(self) -> None:
        self._docs: dict[str, JSON] = {}

    def load(self, path: Path) -> JSON:
        key = str(path.resolve())
        if key not in self._docs:
            try:
                with open(key, encoding="utf-8") as fh:
                    self._docs[key] = json.load(fh)
            except (OSError, ValueError) as exc:
                raise RefError(f"cannot read {path}: {exc}") from exc
        return self._docs[key]

    def target(self, ref: str, base: str) -> tuple[RefKey, JSON]:
        """The key and the raw value that ``ref`` (seen in file ``base``) points at."""
        file_part, _, pointer = ref.partition("#")
        path = str((Path(base).parent / file_part).resolve()) if file_part else base
        node = self.load(Path(path))
        for token in (t for t in pointer.split("/") if t):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            elif isinstance(node, dict) and token in node:
                node = node[token]
            else:
                raise RefError(f"unresolvable $ref {ref!r} in {Path(base).name}")
        return (path, pointer), node

    def deref(self, value: JSON, base: Path) -> tuple[JSON, Path]:
        """Follow a container's own ``$ref`` (a parameter, request body or response kept in
        ``components``): the target and the file it is in. Its schemas are left unresolved."""
        seen: set[RefKey] = set()
        while isinstance(value, dict) and isinstance(value.get("$ref"), str):
            key, value = self.target(value["$ref"], str(base.resolve()))
            if key in seen:
                raise RefError(f"circular $ref {key[1]!r} in {base.name}")
            seen.add(key)
            base = Path(key[0])
        return value, base

    def resolve(self, value: JSON, base: Path) -> JSON:
        """``value`` (found in document ``base``) with every reference resolved.

        Use it on a root schema (a parameter's, a body's or a response's): recursive references
        become ``$ref`` into a ``$defs`` added to that root.
        """
        base_key = str(base.resolve())
        self.load(base)
        resolver = _Resolver(self)
        result = resolver.inline(value, base_key, ())
        if resolver.wanted and isinstance(result, dict):
            defs: dict[str, JSON] = {}
            done: set[RefKey] = set()
            while pending := [k for k in resolver.wanted if k not in done]:
                for key in pending:
                    done.add(key)
                    _, raw = self.target("#" + key[1], key[0])
                    defs[resolver.names[key]] = resolver.inline(raw, key[0], (key,))
            result = {**result, "$defs": {k: defs[k] for k in sorted(defs)}}
        return result


class _Resolver:
    """One root schema's resolution: which recursive references need a ``$defs`` entry."""

    def __init__(self, docs: DocumentSet) -> None:
        self.docs = docs
        self.wanted: list[RefKey] = []
        self.names: dict[RefKey, str] = {}

    def _def_name(self, key: RefKey) -> str:
        if key not in self.names:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", key[1].rsplit("/", 1)[-1]) or "schema"
            name, n = base, 2
            while name in self.names.values():
                name, n = f"{base}{n}", n + 1
            self.names[key] = name
            self.wanted.append(key)
        return self.names[key]

    def inline(self, value: JSON, base: str, stack: tuple[RefKey, ...]) -> JSON:
        if isinstance(value, list):
            return [self.inline(v, base, stack) for v in value]
        if not isinstance(value, dict):
            return value
        if isinstance(value.get("$ref"), str):
            key, raw = self.docs.target(value["$ref"], base)
            siblings = {k: self.inline(v, base, stack) for k, v in value.items() if k != "$ref"}
            if key in stack:
                return {"$ref": f"#/$defs/{self._def_name(key)}", **siblings}
            target = self.inline(raw, key[0], (*stack, key))
            if isinstance(target, dict):
                return {**target, **siblings}
            return target
        out = {k: self.inline(v, base, stack) for k, v in value.items()}
        all_of = out.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
            rest = {k: v for k, v in out.items() if k != "allOf"}
            out = {**all_of[0], **rest}
        return out


def _def_refs(value: JSON) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            found.add(ref.removeprefix("#/$defs/"))
        for key, sub in value.items():
            if key != "$defs":
                found |= _def_refs(sub)
    elif isinstance(value, list):
        for sub in value:
            found |= _def_refs(sub)
    return found


def with_defs(schema: JSON, defs: dict[str, JSON]) -> JSON:
    """``schema`` (a part cut out of a resolved root, such as one body property) with the
    ``$defs`` entries it refers to, directly or through each other, so it stands alone."""
    if not isinstance(schema, dict) or not defs:
        return schema
    wanted = _def_refs(schema)
    todo = list(wanted)
    while todo:
        for name in _def_refs(defs.get(todo.pop(), {})):
            if name not in wanted:
                wanted.add(name)
                todo.append(name)
    if not wanted:
        return schema
    return {**schema, "$defs": {n: defs[n] for n in sorted(wanted) if n in defs}}
