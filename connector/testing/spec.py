"""Reading test files and cassettes: YAML with positions, checked against their schema.

A test file (``NAME.test.yaml``) is loaded by the recipe loader (:mod:`connector.language.load`),
so it has the same limits and every value keeps the line it was written on; it is then checked
against ``connector/schemas/recipe-test.schema.json`` and turned into frozen values
(:class:`TestFile`, :class:`TestCase`, ...). Each value keeps ``at``, the JSON path of where it
was written, so a failed expectation is reported at its own line.

A cassette is the same kind of file holding ``responses:`` in the test file's response format
(written by ``connector test --record``).

Anything wrong is a :class:`SpecError` carrying every :class:`~connector.errors.Problem` found,
each with its file, line and column.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from connector.clock import parse_moment
from connector.errors import ConnectorError, Problem, RecipeLoadError
from connector.language.load import Document, LoadedRecipe, child_path, load_recipe
from connector.language.schema import error_problems, read_schema

__all__ = [
    "ABSENT",
    "DEFAULT_NOW",
    "SCHEMA_PATH",
    "Expect",
    "LinkSeed",
    "RequestMatch",
    "Response",
    "SpecError",
    "StepExpect",
    "TestCase",
    "TestFile",
    "env_text",
    "load_cassette",
    "load_checked",
    "load_test_file",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "recipe-test.schema.json"
DEFAULT_NOW = "2024-01-01T00:00:00Z"
EXACT_PARTS = ("output", "requests", "steps")


class _Absent:
    """Not given (as opposed to given as null)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


class SpecError(ConnectorError):
    """A test file or cassette that cannot be used; ``problems`` says where and why."""

    exit_code = 2

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:3]))
        self.problems = problems


@dataclass(frozen=True)
class RequestMatch:
    """Which requests: any of ``app``, ``method``, ``path`` (``*`` is one segment), ``query``
    and ``body`` (partial unless ``exact``). ``at`` is where it was written."""

    at: str
    app: str | None = None
    method: str | None = None
    path: str | None = None
    query: Mapping[str, Any] | None = None
    body: Any = ABSENT
    exact: bool = False

    def describe(self) -> str:
        """``PUT /contacts/abc`` (with what else it names)."""
        text = " ".join(p for p in (self.method or "*", self.path or "/*") if p)
        if self.app:
            text = f"{text} ({self.app})"
        if self.query:
            text += " query " + json.dumps(dict(self.query), default=str)
        if self.body is not ABSENT:
            text += " body " + json.dumps(self.body, default=str)
        return text


@dataclass(frozen=True)
class Response:
    """A recorded answer to the first request (or every request, ``repeat``) ``request`` matches."""

    at: str
    where: str  # FILE:LINE:COL of the response, for messages
    request: RequestMatch
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    repeat: bool = False


@dataclass(frozen=True)
class LinkSeed:
    kind: str
    ghl_id: str | int
    connecteam_id: str | int
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepExpect:
    at: str
    status: str | None = None
    output: Any = ABSENT
    error: str | None = None


@dataclass(frozen=True)
class Expect:
    at: str
    status: str | None = None
    error: str | None = None
    steps: Mapping[str, StepExpect] = field(default_factory=dict)
    output: Any = ABSENT
    requests: tuple[RequestMatch, ...] | None = None
    not_sent: tuple[RequestMatch, ...] = ()
    exact: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TestCase:
    """One test: the event, what the APIs answer, what must happen."""

    __test__ = False  # not a pytest class

    name: str
    at: str
    event: Mapping[str, Any] | None
    env: Mapping[str, str]
    now: datetime
    links: tuple[LinkSeed, ...]
    runs: int
    responses: tuple[Response, ...]
    cassette: Path | None
    expect: Expect


@dataclass(frozen=True)
class TestFile:
    """A loaded test file: its tests, the recipe they test, and where each value was written."""

    __test__ = False

    path: str
    loaded: LoadedRecipe
    recipe: Path
    tests: tuple[TestCase, ...]

    def where(self, at: str) -> str:
        """``FILE:LINE:COL`` of the value at JSON path ``at``."""
        return str(self.loaded.location(at))


def test_schema() -> Mapping[str, Any]:
    return read_schema(SCHEMA_PATH)


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = test_schema()
    if kind == "cassette":
        schema = {
            "$defs": schema["$defs"],
            "type": "object",
            "required": ["responses"],
            "additionalProperties": False,
            "properties": {
                "recorded": {"type": "object"},
                "env": {"$ref": "#/$defs/env"},
                "responses": {"type": "array", "items": {"$ref": "#/$defs/response"}},
            },
        }
    return Draft202012Validator(schema)


TEST_FILE = Document("test file", "test file", "(tests:)")
CASSETTE = Document("cassette", "cassette file", "(responses:)")


def _load(path: Path, what: Document) -> LoadedRecipe:
    return load_checked(path, what, _validator(what.noun))


def load_checked(path: Path, what: Document, validator: Draft202012Validator) -> LoadedRecipe:
    """The file at ``path`` read with positions and checked against ``validator``'s schema;
    raises :class:`SpecError` with every problem, in the order they stand in the file."""
    try:
        loaded = load_recipe(path, what)
    except RecipeLoadError as exc:
        raise SpecError([exc.problem]) from None
    problems: list[Problem] = []
    for error in validator.iter_errors(loaded.data):
        if error.validator == "minItems" and list(error.absolute_path) == ["tests"]:
            at = loaded.location("$.tests")
            problems.append(Problem(at, "a test file needs at least one test"))
            continue
        problems.extend(error_problems(loaded, error))
    if problems:
        problems.sort(key=lambda p: (p.location.line, p.location.column))
        raise SpecError(problems)
    return loaded


def env_text(mapping: Mapping[str, Any]) -> dict[str, str]:
    """An ``env:`` block as the environment holds it: text, booleans as true and false."""
    out = {}
    for key, value in mapping.items():
        out[str(key)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _match(value: Any, at: str) -> RequestMatch:
    if isinstance(value, str):
        method, _, path = value.strip().partition(" ")
        return RequestMatch(at, method=method.upper(), path=path.strip())
    return RequestMatch(
        at,
        app=value.get("app"),
        method=value["method"].upper() if value.get("method") else None,
        path=value.get("path"),
        query=value.get("query"),
        body=value.get("body", ABSENT),
        exact=bool(value.get("exact", False)),
    )


def _responses(items: Any, at: str, loaded: LoadedRecipe) -> list[Response]:
    out = []
    for index, item in enumerate(items or ()):
        here = f"{at}[{index}]"
        out.append(
            Response(
                here,
                str(loaded.location(here)),
                _match(item["request"], child_path(here, "request")),
                status=int(item.get("status", 200)),
                headers=env_text(item.get("headers") or {}),
                body=item.get("body"),
                repeat=bool(item.get("repeat", False)),
            )
        )
    return out


def _moment(loaded: LoadedRecipe, text: str, at: str) -> datetime:
    try:
        return parse_moment(str(text))
    except ValueError:
        message = f"{text!r} is not an ISO 8601 moment (such as 2024-03-15T12:00:00Z)"
        raise SpecError([Problem(loaded.location(at), message)]) from None


def _expect(raw: Mapping[str, Any], at: str) -> Expect:
    steps = {}
    for step_id, value in (raw.get("steps") or {}).items():
        here = child_path(child_path(at, "steps"), step_id)
        if isinstance(value, str):
            steps[step_id] = StepExpect(here, status=value)
        else:
            steps[step_id] = StepExpect(
                here, value.get("status"), value.get("output", ABSENT), value.get("error")
            )
    exact = raw.get("exact", False)
    parts = set(EXACT_PARTS) if exact is True else set(exact or ())
    requests = raw.get("requests")
    return Expect(
        at,
        status=raw.get("status"),
        error=raw.get("error"),
        steps=steps,
        output=raw.get("output", ABSENT),
        requests=None
        if requests is None
        else tuple(_match(r, f"{at}.requests[{i}]") for i, r in enumerate(requests)),
        not_sent=tuple(
            _match(r, f"{at}.not_sent[{i}]") for i, r in enumerate(raw.get("not_sent") or ())
        ),
        exact=frozenset(parts),
    )


def default_recipe(path: Path) -> Path:
    """``NAME.yaml`` for ``NAME.test.yaml``: beside it, or in the folder above (``tests/``)."""
    stem = path.name
    for suffix in (".test.yaml", ".test.yml"):
        stem = stem.removesuffix(suffix)
    for folder in (path.parent, path.parent.parent):
        for ext in (".yaml", ".yml"):
            candidate = folder / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return path.parent / f"{stem}.yaml"


def load_test_file(path: str | Path) -> TestFile:
    """Load and check the test file at ``path``; raises :class:`SpecError`."""
    file = Path(path)
    loaded = _load(file, TEST_FILE)
    data = loaded.data
    name = str(file)
    problems: list[Problem] = []
    if data.get("recipe"):
        recipe = file.parent / data["recipe"]
        if not recipe.is_file():
            problems.append(Problem(loaded.location("$.recipe"), f"no such recipe file: {recipe}"))
    else:
        recipe = default_recipe(file)
        if not recipe.is_file():
            message = f"no recipe {recipe.name} beside this file or in the folder above; name it in recipe:"
            problems.append(Problem(loaded.location("$"), message))
    file_env = env_text(data.get("env") or {})
    file_now = data.get("now", DEFAULT_NOW)
    shared = _responses(data.get("responses"), "$.responses", loaded)
    tests: list[TestCase] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(data["tests"]):
        at = f"$.tests[{index}]"
        test_name = raw["name"]
        if test_name in seen:
            message = f"a second test named {test_name!r} (the first is at {loaded.location(seen[test_name])})"
            problems.append(Problem(loaded.location(f"{at}.name"), message))
        seen[test_name] = f"{at}.name"
        now_at = f"{at}.now" if "now" in raw else "$.now"
        try:
            moment = _moment(loaded, raw.get("now", file_now), now_at)
        except SpecError as exc:
            problems.extend(exc.problems)
            continue
        cassette = file.parent / raw["cassette"] if raw.get("cassette") else None
        tests.append(
            TestCase(
                name=test_name,
                at=at,
                event=raw.get("event"),
                env={**file_env, **env_text(raw.get("env") or {})},
                now=moment,
                links=tuple(
                    LinkSeed(
                        link["kind"], link["ghl_id"], link["connecteam_id"], link.get("meta") or {}
                    )
                    for link in raw.get("links") or ()
                ),
                runs=int(raw.get("runs", 1)),
                responses=(*_responses(raw.get("responses"), f"{at}.responses", loaded), *shared),
                cassette=cassette,
                expect=_expect(raw.get("expect") or {}, f"{at}.expect"),
            )
        )
    if problems:
        raise SpecError(problems)
    return TestFile(name, loaded, recipe, tuple(tests))


@dataclass(frozen=True)
class Cassette:
    path: str
    env: Mapping[str, str]
    responses: tuple[Response, ...]


def load_cassette(path: Path) -> Cassette:
    """Load the cassette at ``path``; raises :class:`SpecError`."""
    loaded = _load(path, CASSETTE)
    data = loaded.data
    responses = _responses(data["responses"], "$.responses", loaded)
    return Cassette(str(path), env_text(data.get("env") or {}), tuple(responses))
