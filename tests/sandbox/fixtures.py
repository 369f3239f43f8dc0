"""Shared fixtures of the sandbox tests: a running sandbox on a fake clock, and HTTP clients whose
every response is validated against the vendors' official OpenAPI documents.

The documents are read from the folder the ``specs`` fixture of tests/conftest.py gives
(``CONNECTOR_SPECS_DIR`` or ``<repo>/../shared``, as the code finds them); without them every
test that uses a checked client skips, and fails under CI, with a reason naming what is missing.
A response is checked against the schema its operation documents for that status; a status the
operation does not document (404, 429, 5xx...) is checked against the vendor's common error
shape: GoHighLevel's ``BadRequestDTO``/``UnauthorizedDTO``/``UnprocessableDTO`` from
common-schemas.json, Connecteam's FastAPI ``{"detail": ...}``. A GoHighLevel request sent with
``Version: v3`` is checked against the Contacts API v3 document (``apps/v3/contacts-v3.json``,
with the common schemas beside it, ``apps/v3/common/common-schemas.json``, which also has
``ForbiddenDTO`` and ``NotFoundDTO``). Test modules load this file with
``pytest_plugins = ["sandbox.fixtures"]``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connector.config import tls_context
from connector.sandbox import RunningSandbox, start_in_thread
from connector.sandbox.common import route_sort_key
from connector.sandbox.validation import to_jsonschema

GHL_FILES = ("contacts.json", "users.json", "calendars.json", "oauth.json")
GHL_V3_FILE = "v3/contacts-v3.json"
SEEN: set[tuple[str, str, str, int]] = set()  # (app, method, documented path, status)


class FakeClock:
    """The sandbox's clock: tests move time instead of sleeping."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _load(path: Path) -> Any:
    return to_jsonschema(json.loads(path.read_text(encoding="utf-8")))


def _closed(schema: Any) -> Any:
    """``schema`` with every object that lists its properties closed to others
    (``additionalProperties: false``): a v3 answer may carry only what the v3 document names,
    so a field 2021-07-28 spells differently (``dndSettings.Email``, ``succeded``) is caught."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if isinstance(out.get("properties"), dict) and out["properties"]:
        out.setdefault("additionalProperties", False)
    return out


class Conformance:
    """Validates sandbox responses against the official documents."""

    def __init__(self, specs: Path) -> None:
        """Read the documents from ``specs`` (the ``specs`` fixture checked they are there)."""
        resources = []
        self.docs: dict[str, tuple[str, dict[str, Any]]] = {}
        common_uri = (specs / "ghl-openapi/common/common-schemas.json").as_uri()
        resources.append((common_uri, _load(specs / "ghl-openapi/common/common-schemas.json")))
        self.ghl_ops: list[tuple[str, str, str]] = []  # (method, path, uri)
        for name in GHL_FILES:
            path = specs / "ghl-openapi/apps" / name
            doc = _load(path)
            resources.append((path.as_uri(), doc))
            for p, ops in doc["paths"].items():
                for m in ops:
                    if m in ("get", "post", "put", "delete", "patch"):
                        self.ghl_ops.append((m.upper(), p, path.as_uri()))
        # v3: its references say ../common/common-schemas.json, which from apps/v3/ is
        # apps/common/; the copy keeps v3's common schemas beside it, in apps/v3/common/
        v3_path = specs / "ghl-openapi/apps" / GHL_V3_FILE
        v3_doc = _closed(_load(v3_path))
        resources.append((v3_path.as_uri(), v3_doc))
        v3_common = specs / "ghl-openapi/apps/v3/common/common-schemas.json"
        self.v3_common_uri = (v3_path.parent / "../common/common-schemas.json").resolve().as_uri()
        resources.append((self.v3_common_uri, _load(v3_common)))
        self.ghl_v3_ops = [
            (m.upper(), p, v3_path.as_uri())
            for p, ops in v3_doc["paths"].items()
            for m in ops
            if m in ("get", "post", "put", "delete", "patch")
        ]
        ct_path = specs / "connecteam-openapi/connecteam-openapi.json"
        ct_doc = _load(ct_path)
        resources.append((ct_path.as_uri(), ct_doc))
        self.ct_ops = [
            (m.upper(), p, ct_path.as_uri())
            for p, ops in ct_doc["paths"].items()
            for m in ops
            if m in ("get", "post", "put", "delete", "patch")
        ]
        self.common_uri = common_uri
        self.registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT202012))
            for uri, doc in resources
        )
        self.documents = dict(resources)

    @staticmethod
    def _match(ops: list[tuple[str, str, str]], method: str, path: str) -> tuple[str, str] | None:
        for m, template, uri in sorted(ops, key=lambda o: route_sort_key(o[1])):
            pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template.rstrip("/")) + "/?$"
            if m == method and re.match(pattern, path):
                return template, uri
        return None

    def check(self, response: httpx.Response) -> None:
        """An httpx response hook: raise AssertionError if the body breaks the document."""
        response.read()
        request = response.request
        path = request.url.path
        if "/_sandbox/" in path or path.endswith("/oauth/chooselocation"):
            return
        app = "ghl" if "/ghl/" in path else "connecteam"
        sub = path.split(f"/{app}", 1)[1]
        v3 = app == "ghl" and request.headers.get("version") == "v3"
        ops = self.ghl_ops if app == "ghl" else self.ct_ops
        if v3:
            ops = self.ghl_v3_ops
        found = self._match(ops, request.method, sub)
        status = response.status_code
        body = response.json()
        schema_ref = None
        if found is not None:
            template, uri = found
            op = self.documents[uri]["paths"][template][request.method.lower()]
            documented = op.get("responses", {}).get(str(status))
            if documented is not None:
                SEEN.add(("ghl-v3" if v3 else app, request.method, template, status))
                if "application/json" not in documented.get("content", {}):
                    return  # the document gives no schema for this status
                pointer = "/paths/" + template.replace("~", "~0").replace("/", "~1")
                schema_ref = f"{uri}#{pointer}/{request.method.lower()}/responses/{status}/content/application~1json/schema"
        if schema_ref is None:
            schema_ref = self._fallback(app, status, v3)
        if schema_ref is None:
            assert isinstance(body, dict) and "detail" in body, f"{status} {path}: {body}"
            return
        validator = jsonschema.Draft202012Validator({"$ref": schema_ref}, registry=self.registry)
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, (
            f"{request.method} {path} -> {status} breaks {schema_ref}: {errors[0].message}"
        )

    def _fallback(self, app: str, status: int, v3: bool = False) -> str | None:
        if app != "ghl":
            return None
        names = {401: "UnauthorizedDTO", 422: "UnprocessableDTO"}
        if v3:
            names.update({403: "ForbiddenDTO", 404: "NotFoundDTO"})
        name = names.get(status, "BadRequestDTO")
        return f"{self.v3_common_uri if v3 else self.common_uri}#/components/schemas/{name}"


_CONFORMANCE: Conformance | None = None


@pytest.fixture
def conformance(specs: Path) -> Conformance:
    global _CONFORMANCE
    if _CONFORMANCE is None:
        _CONFORMANCE = Conformance(specs)
    return _CONFORMANCE


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock) -> Iterator[RunningSandbox]:
    with start_in_thread(clock=clock) as running:
        yield running


def client(
    base: str, conformance: Conformance, headers: dict[str, str] | None = None
) -> httpx.Client:
    return httpx.Client(
        base_url=base,
        headers=headers or {},
        event_hooks={"response": [conformance.check]},
        timeout=30,
        verify=tls_context(),
    )


@pytest.fixture
def ghl(sandbox: RunningSandbox, conformance: Conformance) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sandbox.env['GHL_TOKEN']}", "Version": "2021-07-28"}
    with client(sandbox.env["GHL_BASE_URL"], conformance, headers) as c:
        yield c


@pytest.fixture
def ct(sandbox: RunningSandbox, conformance: Conformance) -> Iterator[httpx.Client]:
    headers = {"X-API-KEY": sandbox.env["CONNECTEAM_API_KEY"]}
    with client(sandbox.env["CONNECTEAM_BASE_URL"], conformance, headers) as c:
        yield c


@pytest.fixture
def anon(sandbox: RunningSandbox, conformance: Conformance) -> Iterator[httpx.Client]:
    """No credentials: for auth and OAuth tests."""
    with client(sandbox.url, conformance) as c:
        yield c


@pytest.fixture
def make_client(conformance: Conformance) -> Any:
    """``make_client(base_url, headers)``: a checked client for a sandbox a test starts itself."""
    return lambda base, headers=None: client(base, conformance, headers)
