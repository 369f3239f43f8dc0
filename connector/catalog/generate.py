"""Generate the catalog (``connector/catalog/data/*.json``) from the vendors' OpenAPI documents.

Run ``python -m connector.catalog.generate`` or ``connector catalog generate [--ghl DIR]
[--connecteam FILE] [--out DIR]``. By default it reads ``<repo>/../shared/ghl-openapi/apps/*.json``
and ``<repo>/../shared/connecteam-openapi/connecteam-openapi.json`` (``$CONNECTOR_SPECS_DIR``
replaces ``<repo>/../shared``) and writes ``ghl.json``, ``connecteam.json`` and ``triggers.json``.

What each operation holds is described in :mod:`connector.catalog.model`. The rules:

- Every ``$ref`` is resolved (see :mod:`connector.catalog.resolve`).
- Parameters are the path, query and header parameters of the document, except the ``Version``
  header (it becomes the operation's ``version``) and ``Authorization`` (the engine adds both),
  followed by one ``"in": "body"`` parameter per top-level property of the request body, required
  when the body schema lists it in ``required``. When a body property has the same name as a
  path or query parameter, the path or query parameter keeps the name and the body property is
  listed as ``body.<name>`` (a recipe's ``with:`` then says ``body.<name>:`` for the body's copy).
- The success response is the lowest 2xx status, with its JSON schema (``null`` if none).
- Scopes are every scope named in the operation's ``security`` list, in order, without repeats.
- Names follow :mod:`connector.catalog.naming`. GoHighLevel: ``ghl.<operationId>``; an
  operationId used by several documents keeps the plain name in the document it is about
  (``create-association`` in associations.json, ``*-custom-field`` in custom-fields.json) and is
  ``ghl.<document>.<operationId>`` elsewhere (``ghl.contacts.create-association``,
  ``ghl.locations.create-custom-field``). Connecteam: the FastAPI function name in kebab case
  (``get_users_users_v1_users_get`` -> ``connecteam.get-users``), a few renames, and ``-v2``, a
  path segment or a number to break ties.
- Pagination is detected from the query parameters (see :func:`pagination`).
- Versions: a document in a version folder beside the others (GoHighLevel's
  ``apps/v3/contacts-v3.json``, sent with ``Version: v3``) gives other versions of the operations
  of the document it is named after (``contacts.json``): each is stored under the operation's
  ``versions`` by its ``Version`` value, matched by operationId (see :func:`versioned_documents`).
- Trigger events come from :mod:`connector.catalog.triggers`.

The output is deterministic: operations sorted by name, keys sorted, one trailing newline, so
regenerating from the same documents gives the committed files byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connector.catalog.naming import connecteam_names, ghl_names
from connector.catalog.overlays import apply_overlays
from connector.catalog.resolve import DocumentSet, RefError, with_defs

__all__ = [
    "GenerateError",
    "default_connecteam_file",
    "default_ghl_dir",
    "dump",
    "generate",
    "main",
    "pagination",
    "versioned_documents",
]

METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
SKIPPED_HEADERS = {"version", "authorization"}
CURSOR_PARAMS = ("startAfter", "startAfterId", "startAfterDate", "cursor", "lastMessageId")
# GoHighLevel returns its cursors in `meta` (ContactsMetaSchema), even where a document's response
# schema leaves `meta` out (GET /contacts/): the fallback when the schema does not say.
GHL_CURSOR_FIELDS = {"startAfter": "meta.startAfter", "startAfterId": "meta.startAfterId"}
_MAXIMUM_TEXT = re.compile(r"maximum (?:up to |of )?(\d+)|\(max (\d+)\)", re.IGNORECASE)
REPO = Path(__file__).resolve().parents[2]
_VERSION_DIR = re.compile(r"^v\d+$")


class GenerateError(Exception):
    """The documents cannot be read or turned into a catalog."""


def specs_dir() -> Path:
    env = os.environ.get("CONNECTOR_SPECS_DIR")
    return Path(env) if env else REPO.parent / "shared"


def default_ghl_dir() -> Path:
    return specs_dir() / "ghl-openapi" / "apps"


def default_connecteam_file() -> Path:
    return specs_dir() / "connecteam-openapi" / "connecteam-openapi.json"


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def dump(data: Mapping[str, Any]) -> str:
    """The catalog's on-disk form: compact JSON (it is read on every command, so it stays quick
    to parse) with one list entry per line (so a regenerated catalog diffs per operation),
    keys sorted, UTF-8, a trailing newline."""
    lines = ["{"]
    keys = sorted(data)
    for i, key in enumerate(keys):
        end = "," if i < len(keys) - 1 else ""
        value = data[key]
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{_compact(key)}:[")
            lines.extend(
                _compact(v) + ("," if j < len(value) - 1 else "") for j, v in enumerate(value)
            )
            lines.append(f"]{end}")
        else:
            lines.append(f"{_compact(key)}:{_compact(value)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _find_field(schema: Any, name: str, depth: int = 0) -> str | None:
    """The dotted path of property ``name`` in a response schema (``meta.startAfter``)."""
    if not isinstance(schema, dict) or depth > 3:
        return None
    props = schema.get("properties")
    if not isinstance(props, dict):
        return None
    if name in props:
        return name
    for key in sorted(props):
        found = _find_field(props[key], name, depth + 1)
        if found:
            return f"{key}.{found}"
    return None


def _find_array(schema: Any, depth: int = 0) -> str | None:
    """The dotted path of the first list in a response schema, breadth first (``data.users``)."""
    if not isinstance(schema, dict) or depth > 2:
        return None
    props = schema.get("properties")
    if not isinstance(props, dict):
        return None
    for key in sorted(props):
        if isinstance(props[key], dict) and props[key].get("type") == "array":
            return key
    for key in sorted(props):
        found = _find_array(props[key], depth + 1)
        if found:
            return f"{key}.{found}"
    return None


def _max_limit(param: Mapping[str, Any] | None) -> int | None:
    """The largest page size a limit parameter takes: its schema's ``maximum``, or what its
    description says (GoHighLevel's ``limit`` of ``GET /contacts/``: "maximum up to 100")."""
    if not param:
        return None
    schema = param.get("schema") or {}
    if isinstance(schema.get("maximum"), int | float):
        return int(schema["maximum"])
    found = _MAXIMUM_TEXT.search(str(param.get("description") or ""))
    return int(found.group(1) or found.group(2)) if found else None


def pagination(
    query: Sequence[str], response: Any, limit_param: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """How an operation pages, from its query parameter names and its success response schema.

    Every style has ``limit_param`` (the page size parameter, or null), ``max_limit`` (its
    largest value, from ``limit_param``'s schema or description, or null) and ``items`` (the
    response's list of results, ``contacts`` or ``data.users``, or null when unknown).

    - ``cursor``: GoHighLevel's ``startAfter``/``startAfterId`` (and ``startAfterDate``,
      ``cursor``, ``lastMessageId``); ``cursor_params`` maps each to the response field that
      holds the next value (``meta.startAfterId``), or null when neither the response schema
      nor GoHighLevel's convention (:data:`GHL_CURSOR_FIELDS`) says.
    - ``offset``: ``limit`` with ``skip`` (GoHighLevel: the next offset is the current one plus
      the items received) or ``offset`` (Connecteam, whose responses return the next offset in
      ``paging.offset``: ``next_offset``).
    - ``page``: ``limit`` with ``page``.
    - ``search_after`` (:data:`connector.catalog.overlays.PAGING_OVERLAY` only): a body's ``searchAfter``, taken from the
      last item of a page, or ``page`` up to ``page_max_items``.
    """
    names = set(query)
    limit = "limit" if "limit" in names else None
    most = _max_limit(limit_param) if limit else None
    items = _find_array(response)
    cursors = [c for c in CURSOR_PARAMS if c in names]
    if cursors:
        return {
            "style": "cursor",
            "limit_param": limit,
            "max_limit": most,
            "items": items,
            "cursor_params": {
                c: _find_field(response, c) or GHL_CURSOR_FIELDS.get(c) for c in cursors
            },
        }
    for offset in ("skip", "offset"):
        if offset in names and limit:
            return {
                "style": "offset",
                "limit_param": limit,
                "max_limit": most,
                "items": items,
                "offset_param": offset,
                "next_offset": _find_field(response, "offset") if offset == "offset" else None,
            }
    if "page" in names and limit:
        return {
            "style": "page",
            "limit_param": limit,
            "max_limit": most,
            "items": items,
            "page_param": "page",
        }
    return None


def _merged_properties(schema: Any) -> tuple[dict[str, Any], list[str]]:
    """Top-level properties and required names of an object schema (``allOf`` members merged)."""
    if not isinstance(schema, dict):
        return {}, []
    props: dict[str, Any] = dict(schema.get("properties") or {})
    required: list[str] = list(schema.get("required") or [])
    for member in schema.get("allOf") or []:
        more, req = _merged_properties(member)
        props.update(more)
        required.extend(r for r in req if r not in required)
    return props, required


def _operation(
    docs: DocumentSet, path_file: Path, path: str, method: str, item: Mapping[str, Any]
) -> dict[str, Any]:
    op = item[method]
    params: dict[tuple[str, str], Any] = {}
    for raw in [*item.get("parameters", []), *op.get("parameters", [])]:
        p, where_file = docs.deref(raw, path_file)
        p = {**p, "schema": docs.resolve(p.get("schema") or {}, where_file)}
        params[(p["name"], p["in"])] = p
    version: str | None = None
    out_params: list[dict[str, Any]] = []
    for (name, where), p in params.items():
        schema = p.get("schema") or {}
        if where == "header" and name.lower() in SKIPPED_HEADERS:
            if name.lower() == "version":
                version = (schema.get("enum") or [schema.get("default")])[0]
            continue
        if where == "cookie":
            continue
        out_params.append(
            {
                "name": name,
                "in": where,
                "required": bool(p.get("required", where == "path")),
                "schema": schema,
                "description": p.get("description") or schema.get("description") or "",
            }
        )
    order = {"path": 0, "query": 1, "header": 2}
    out_params.sort(key=lambda p: order.get(p["in"], 3))
    taken = {p["name"] for p in out_params}

    body = None
    request = op.get("requestBody")
    if request:
        request, where_file = docs.deref(request, path_file)
        content = request.get("content") or {}
        ctype = "application/json" if "application/json" in content else sorted(content)[0]
        schema = (content.get(ctype) or {}).get("schema")
        schema = docs.resolve(schema, where_file) if schema is not None else None
        body = {"required": bool(request.get("required")), "content_type": ctype, "schema": schema}
        props, required = _merged_properties(schema)
        for field in props:
            fschema = props[field] if isinstance(props[field], dict) else {}
            fschema = with_defs(fschema, (schema or {}).get("$defs") or {})
            out_params.append(
                {
                    "name": f"body.{field}" if field in taken else field,
                    "in": "body",
                    "required": field in required,
                    "schema": fschema,
                    "description": fschema.get("description") or "",
                }
            )

    response: dict[str, Any] = {"status": 200, "schema": None}
    codes = sorted(int(c) for c in op.get("responses", {}) if str(c).isdigit())
    success = [c for c in codes if 200 <= c < 300]
    if success:
        raw_resp = op["responses"].get(str(success[0]))
        resp, where_file = docs.deref(raw_resp or {}, path_file)
        content = resp.get("content") or {}
        ctype = next((c for c in content if "json" in c), None) or next(iter(content), None)
        rschema = (content.get(ctype) or {}).get("schema")
        rschema = docs.resolve(rschema, where_file) if rschema is not None else None
        response = {"status": success[0], "schema": rschema}

    scopes: list[str] = []
    for requirement in op.get("security") or []:
        for values in requirement.values():
            scopes.extend(s for s in values if s not in scopes)

    query = [p["name"] for p in out_params if p["in"] == "query"]
    return {
        "operation_id": op.get("operationId") or "",
        "source": path_file.name,
        "method": method.upper(),
        "path": path,
        "summary": op.get("summary") or "",
        "description": op.get("description") or "",
        "parameters": out_params,
        "body": body,
        "response": response,
        "scopes": scopes,
        "version": version,
        "deprecated": bool(op.get("deprecated", False)),
        "pagination": pagination(
            query,
            response["schema"],
            next((p for p in out_params if p["in"] == "query" and p["name"] == "limit"), None),
        ),
    }


def _document_operations(docs: DocumentSet, path_file: Path) -> list[dict[str, Any]]:
    doc = docs.load(path_file)
    ops = []
    for path, item in (doc.get("paths") or {}).items():
        for method in METHODS:
            if method in item:
                ops.append(_operation(docs, path_file, path, method, item))
    return ops


def build_ghl(ghl_dir: Path, docs: DocumentSet) -> dict[str, Any]:
    files = sorted(ghl_dir.glob("*.json"))
    if not files:
        raise GenerateError(f"no GoHighLevel documents (*.json) in {ghl_dir}")
    ops = [op for f in files for op in _document_operations(docs, f)]
    names = ghl_names((op["source"].removesuffix(".json"), op["operation_id"]) for op in ops)
    for op in ops:
        op["app"] = "ghl"
        op["name"] = names[(op["source"].removesuffix(".json"), op["operation_id"])]
    apply_overlays(ops)
    documents = [f.name for f in files]
    for folder, file in versioned_documents(ghl_dir):
        _add_versions(ops, folder, file, docs)
        documents.append(f"{folder}/{file.name}")
    ops.sort(key=lambda o: o["name"])
    return {"app": "ghl", "documents": documents, "operations": ops}


def versioned_documents(ghl_dir: Path) -> list[tuple[str, Path]]:
    """The documents of another version of an API, as (version folder, file): GoHighLevel keeps
    its Contacts API v3 in ``apps/v3/contacts-v3.json``, beside the ``apps/contacts.json`` it is a
    version of."""
    found: list[tuple[str, Path]] = []
    for folder in sorted(p for p in ghl_dir.iterdir() if p.is_dir() and _VERSION_DIR.match(p.name)):
        found.extend((folder.name, f) for f in sorted(folder.glob("*.json")))
    return found


def _add_versions(ops: list[dict[str, Any]], folder: str, file: Path, docs: DocumentSet) -> None:
    """Put the operations of ``file`` (in version folder ``folder``) under ``versions`` of the
    operation with the same operationId in the document it is a version of (``contacts-v3.json``
    of ``contacts.json``). One that document does not have is an operation of its own, named
    ``ghl.<operationId>`` (``ghl.<document>.<operationId>`` when that is taken)."""
    base = file.stem.removesuffix(f"-{folder}")
    home = {op["operation_id"]: op for op in ops if op["source"].removesuffix(".json") == base}
    taken = {op["name"] for op in ops}
    versions = _document_operations(docs, file)
    for op in versions:
        op["app"] = "ghl"
        found = home.get(op["operation_id"])
        if found is not None:
            op["name"] = found["name"]
        else:
            plain = f"ghl.{op['operation_id']}"
            op["name"] = plain if plain not in taken else f"ghl.{base}.{op['operation_id']}"
    apply_overlays(versions)  # with the donors of the same version
    for op in versions:
        found = home.get(op["operation_id"])
        if found is None:
            ops.append(op)
            continue
        if not op["version"] or op["version"] == found["version"]:
            raise GenerateError(
                f"{folder}/{file.name}: {op['operation_id']} has Version {op['version']!r}, "
                f"which is not another version than {found['source']}'s"
            )
        entry = {k: v for k, v in op.items() if k not in ("name", "app")}
        found.setdefault("versions", {})[op["version"]] = entry


def build_connecteam(file: Path, docs: DocumentSet) -> dict[str, Any]:
    ops = _document_operations(docs, file)
    names = connecteam_names((o["operation_id"], o["method"], o["path"]) for o in ops)
    for op in ops:
        op["app"] = "connecteam"
        op["name"] = names[op["operation_id"]]
    ops.sort(key=lambda o: o["name"])
    return {"app": "connecteam", "documents": [file.name], "operations": ops}


def generate(ghl_dir: Path | None = None, connecteam_file: Path | None = None) -> dict[str, str]:
    """The catalog files' contents, by file name (``ghl.json``, ``connecteam.json``, ...)."""
    from connector.catalog.triggers import build_triggers

    ghl_dir = ghl_dir or default_ghl_dir()
    connecteam_file = connecteam_file or default_connecteam_file()
    docs = DocumentSet()
    try:
        ghl = build_ghl(ghl_dir, docs)
        connecteam = build_connecteam(connecteam_file, docs)
        triggers = build_triggers(docs.load(connecteam_file), connecteam_file, docs)
    except RefError as exc:
        raise GenerateError(str(exc)) from exc
    except (KeyError, TypeError, AttributeError, IndexError) as exc:
        raise GenerateError(f"unexpected document structure: {type(exc).__name__}: {exc}") from exc
    except ValueError as exc:  # names that are not unique, an unreadable trigger source
        raise GenerateError(str(exc)) from exc
    return {
        "ghl.json": dump(ghl),
        "connecteam.json": dump(connecteam),
        "triggers.json": dump(triggers),
    }


def write(files: Mapping[str, str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        target = out / name
        target.write_text(text, encoding="utf-8", newline="\n")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m connector.catalog.generate [--ghl DIR] [--connecteam FILE] [--out DIR]``."""
    import argparse

    from connector.catalog import DATA_DIR

    parser = argparse.ArgumentParser(prog="python -m connector.catalog.generate")
    parser.add_argument("--ghl", type=Path, help="folder of GoHighLevel documents (apps/*.json)")
    parser.add_argument("--connecteam", type=Path, help="Connecteam's OpenAPI document")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="where to write the catalog")
    args = parser.parse_args(argv)
    try:
        files = generate(args.ghl, args.connecteam)
    except GenerateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in write(files, args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
