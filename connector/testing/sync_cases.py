"""Reading sync test files (``NAME.sync.test.yaml``): YAML with positions, checked against
``connector/schemas/sync-test.schema.json``, turned into frozen values.

A sync test says which records exist (``given``), what happens to them through the apps' own
APIs and which of the events the apps send reach the sync, in what order (``do``), and what both
apps hold afterwards (``expect``). Names tie it together: ``given`` and ``create`` name records,
later actions and expectations use the names. Every value keeps ``at``, the JSON path it was
written at, so a failure is reported at its own line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from connector.errors import Problem
from connector.language.load import Document, LoadedRecipe, child_path
from connector.language.schema import read_schema
from connector.testing.spec import SpecError, env_text, load_checked

__all__ = [
    "SCHEMA_PATH",
    "Action",
    "NewRecord",
    "SyncCase",
    "SyncExpect",
    "SyncTestFile",
    "default_sync",
    "is_sync_test",
    "load_sync_test_file",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "sync-test.schema.json"
SUFFIXES = (".sync.test.yaml", ".sync.test.yml")
SYNC_TEST_FILE = Document("sync test file", "sync test file", "(tests:)")


def is_sync_test(path: Path) -> bool:
    return path.name.endswith(SUFFIXES)


@dataclass(frozen=True)
class NewRecord:
    """A record a test makes: its name, side and record type, its parent's name, its fields."""

    at: str
    name: str
    side: str
    type: str
    parent: str | None
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    """One step of ``do``: ``verb`` is create, edit, delete, archive, counterpart, wait, deliver
    or resolve;
    ``name`` the record (or the conflict's field) it is about; ``value`` its argument."""

    at: str
    verb: str
    name: str = ""
    value: Any = None
    record: NewRecord | None = None


@dataclass(frozen=True)
class SyncExpect:
    at: str
    records: Mapping[str, Any]  # name -> fields, or "gone"
    counterparts: Mapping[str, Any]  # name -> its counterpart's fields, or "gone"
    lists: Mapping[tuple[str, str], tuple[Mapping[str, Any], ...]]  # (side, type) -> items
    writes: int | tuple[str, ...] | None
    conflicts: tuple[Mapping[str, Any], ...] | None


@dataclass(frozen=True)
class SyncCase:
    __test__ = False

    name: str
    at: str
    env: Mapping[str, str]
    given: tuple[NewRecord, ...]
    actions: tuple[Action, ...]
    expect: SyncExpect


@dataclass(frozen=True)
class SyncTestFile:
    """A loaded sync test file: its tests, the declaration they test, where each value is."""

    __test__ = False

    path: str
    loaded: LoadedRecipe
    sync: Path
    tests: tuple[SyncCase, ...]

    def where(self, at: str) -> str:
        return str(self.loaded.location(at))


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(read_schema(SCHEMA_PATH))


def default_sync(path: Path) -> Path:
    """``NAME.sync.yaml`` for ``NAME.sync.test.yaml``: beside it, or in the folder above."""
    stem = path.name
    for suffix in SUFFIXES:
        stem = stem.removesuffix(suffix)
    for folder in (path.parent, path.parent.parent):
        for ext in (".sync.yaml", ".sync.yml"):
            candidate = folder / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return path.parent / f"{stem}.sync.yaml"


def _record(raw: Mapping[str, Any], name: str, at: str) -> NewRecord:
    side = "ghl" if "ghl" in raw else "connecteam"
    return NewRecord(at, name, side, str(raw[side]), raw.get("parent"), dict(raw.get("set") or {}))


def _action(raw: Mapping[str, Any], at: str) -> Action:
    if "create" in raw:
        record = _record(raw, str(raw["create"]), at)
        return Action(at, "create", record.name, record=record)
    for verb in ("edit", "delete", "archive"):
        if verb in raw:
            return Action(at, verb, str(raw[verb]), dict(raw.get("set") or {}))
    if "counterpart" in raw:
        return Action(at, "counterpart", str(raw["counterpart"]), str(raw["as"]))
    if "wait" in raw:
        return Action(at, "wait", value=float(raw["wait"]))
    if "deliver" in raw:
        return Action(at, "deliver", value=str(raw["deliver"]))
    return Action(at, "resolve", str(raw["resolve"]), raw.get("winner"))


def _expect(raw: Mapping[str, Any], at: str) -> SyncExpect:
    lists = {}
    for side in ("ghl", "connecteam"):
        for type_name, items in (raw.get(side) or {}).items():
            lists[(side, str(type_name))] = tuple(dict(i) for i in items)
    writes = raw.get("writes")
    conflicts = raw.get("conflicts")
    return SyncExpect(
        at,
        records=dict(raw.get("records") or {}),
        counterparts=dict(raw.get("counterparts") or {}),
        lists=lists,
        writes=writes if writes is None or isinstance(writes, int) else tuple(writes),
        conflicts=None if conflicts is None else tuple(dict(c) for c in conflicts),
    )


def _names(case: SyncCase, loaded: LoadedRecipe) -> list[Problem]:
    """Every name used is made before it is used, and made once."""
    problems: list[Problem] = []
    made: dict[str, str] = {}

    def use(name: str | None, at: str, what: str) -> None:
        if name and name not in made:
            known = ", ".join(sorted(made)) or "none yet"
            problems.append(
                Problem(loaded.location(at), f"no record named {name!r} {what} (known: {known})")
            )

    def make(record: NewRecord) -> None:
        use(record.parent, record.at, "as parent")
        if record.name in made:
            first = loaded.location(made[record.name])
            problems.append(
                Problem(
                    loaded.location(record.at),
                    f"a second record named {record.name!r} (the first is at {first})",
                )
            )
        made[record.name] = record.at

    for record in case.given:
        make(record)
    for action in case.actions:
        if action.record is not None:
            make(action.record)
        elif action.verb in ("edit", "delete", "archive"):
            use(action.name, action.at, f"to {action.verb}")
        elif action.verb == "counterpart":
            use(action.name, action.at, "to find the counterpart of")
            made[str(action.value)] = action.at
    for part in ("records", "counterparts"):
        for name in getattr(case.expect, part):
            use(name, child_path(f"{case.expect.at}.{part}", name), f"in {part}")
    return problems


def load_sync_test_file(path: str | Path) -> SyncTestFile:
    """Load and check the sync test file at ``path``; raises :class:`SpecError`."""
    file = Path(path)
    loaded = load_checked(file, SYNC_TEST_FILE, _validator())
    problems: list[Problem] = []
    data = loaded.data
    if data.get("sync"):
        sync = file.parent / data["sync"]
        if not sync.is_file():
            problems.append(Problem(loaded.location("$.sync"), f"no such sync declaration: {sync}"))
    else:
        sync = default_sync(file)
        if not sync.is_file():
            message = f"no declaration {sync.name} beside this file or in the folder above; name it in sync:"
            problems.append(Problem(loaded.location("$"), message))
    file_env = env_text(data.get("env") or {})
    cases: list[SyncCase] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(data["tests"]):
        at = f"$.tests[{index}]"
        name = raw["name"]
        if name in seen:
            message = (
                f"a second test named {name!r} (the first is at {loaded.location(seen[name])})"
            )
            problems.append(Problem(loaded.location(f"{at}.name"), message))
        seen[name] = f"{at}.name"
        given = tuple(
            _record(record, str(key), child_path(f"{at}.given", str(key)))
            for key, record in (raw.get("given") or {}).items()
        )
        actions = tuple(_action(a, f"{at}.do[{i}]") for i, a in enumerate(raw.get("do") or ()))
        case = SyncCase(
            name,
            at,
            {**file_env, **env_text(raw.get("env") or {})},
            given,
            actions,
            _expect(raw.get("expect") or {}, f"{at}.expect"),
        )
        problems.extend(_names(case, loaded))
        cases.append(case)
    if problems:
        raise SpecError(problems)
    return SyncTestFile(str(file), loaded, sync, tuple(cases))
