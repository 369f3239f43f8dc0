"""Sync declarations: loading a ``NAME.sync.yaml`` with positions, checking it, and the typed
:class:`SyncSpec` the sync (:mod:`connector.sync`) runs.

A declaration pairs record types of the two apps (a GoHighLevel contact with a Connecteam user),
maps their fields with a direction and a transform each, names the keys that match records that
exist on both sides and the rule that decides a conflict. ``connector validate`` checks it like a
recipe: every problem in one pass, each at its ``FILE:LINE:COL`` and JSON path. The record types
and their fields are what the apps declare (:class:`connector.apps.RecordType`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator

from connector.apps.records import RecordType
from connector.apps.registry import Registry
from connector.errors import Problem, RecipeLoadError
from connector.language.alert_targets import AlertTargets, alert_problems, alert_targets
from connector.language.load import Document, LoadedRecipe, load_recipe, load_recipe_text
from connector.language.paths import child_path
from connector.language.schema import did_you_mean, error_problems, read_schema

__all__ = [
    "SIDES",
    "FieldSpec",
    "PairSpec",
    "SyncSpec",
    "is_sync_file",
    "load_sync",
    "load_sync_text",
    "sync_problems",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "sync.schema.json"
SYNC = Document("sync declaration", "sync file", "(sync:, pairs:)", "sync and pairs")
SIDES = ("ghl", "connecteam")
Side = Literal["ghl", "connecteam"]
Rule = Literal["newest", "ghl", "connecteam", "manual"]


def is_sync_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a sync declaration (``*.sync.yaml`` or ``*.sync.yml``)."""
    return str(path).endswith((".sync.yaml", ".sync.yml"))


@dataclass(frozen=True)
class FieldSpec:
    """One mapped field: its name in the declaration and on each side."""

    name: str
    ghl: str
    connecteam: str
    direction: Literal["both", "to_connecteam", "to_ghl"] = "both"
    transform: Callable[[Any], Any] | None = None
    transform_name: str | None = None
    conflict: Rule | None = None

    def on(self, side: str) -> str:
        """The field's name on ``side``."""
        return self.ghl if side == "ghl" else self.connecteam

    def flows_from(self, side: str) -> bool:
        """Whether a change on ``side`` is sent to the other side."""
        if self.direction == "both":
            return True
        return self.direction == ("to_connecteam" if side == "ghl" else "to_ghl")

    def normal(self, value: Any) -> Any:
        """The value as compared and written: transformed, and an empty text as none."""
        if value == "" or value is None:
            return None
        if self.transform is not None:
            try:
                value = self.transform(value)
            except Exception:  # a value the filter refuses is compared as it is
                return value
        return None if value == "" else value


@dataclass(frozen=True)
class PairSpec:
    """One pair of record types kept the same."""

    kind: str
    ghl: RecordType
    connecteam: RecordType
    fields: tuple[FieldSpec, ...]
    match: tuple[str, ...] = ()
    conflict: Rule = "newest"
    create: Mapping[str, bool] | None = None
    delete: Mapping[str, str] | None = None
    parent: str | None = None  # the kind of the pair these records belong to (a task's contact)

    def record(self, side: str) -> RecordType:
        return self.ghl if side == "ghl" else self.connecteam

    def creates_from(self, side: str) -> bool:
        """Whether a record born on ``side`` gets a counterpart."""
        return bool((self.create or {}).get(side, True))

    def on_delete(self, side: str) -> str:
        """What a delete on ``side`` does to the counterpart: keep, archive or propagate."""
        return str((self.delete or {}).get(side, "keep"))

    def rule(self, field: FieldSpec) -> Rule:
        return field.conflict or self.conflict

    def field(self, name: str) -> FieldSpec:
        return next(f for f in self.fields if f.name == name)


@dataclass(frozen=True)
class SyncSpec:
    """A checked sync declaration."""

    name: str
    path: str
    text: str
    pairs: tuple[PairSpec, ...]
    alerts: AlertTargets | None = None  # its own alert targets (`alerts:`)

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def pair(self, kind: str) -> PairSpec:
        return next(p for p in self.pairs if p.kind == kind)

    def pairs_for(self, app: str, event: str) -> list[PairSpec]:
        """The pairs whose record type on ``app`` has the webhook event ``event``."""
        return [p for p in self.pairs if event in p.record(app).events and app in SIDES]

    def operations(self) -> list[str]:
        """The catalog operations this sync may call (reads, writes, searches, walks), in order:
        what the credentials it runs with must be allowed to do."""
        out: list[str] = []
        for pair in self.pairs:
            for side in SIDES:
                out.extend(_operations(pair.record(side), side, pair))
        return list(dict.fromkeys(out))


def _operations(rt: RecordType, side: str, pair: PairSpec) -> list[str]:
    """The operations of ``rt``'s requests, each made with placeholder ids (a request's
    operation does not depend on the values it carries)."""
    fields = [getattr(f, side) for f in pair.fields]
    makers: list[Callable[[], Any]] = [
        lambda: rt.read("0", {"contactId": "0", "taskBoardId": "0"}),
        lambda: rt.update("0", {}, {}, {"contactId": "0", "taskBoardId": "0"}),
        lambda: rt.walk(None, {}) if rt.walk else None,
        lambda: rt.remove("0", {"contactId": "0", "taskBoardId": "0"}) if rt.remove else None,
        lambda: rt.archive("0", {"contactId": "0", "taskBoardId": "0"}) if rt.archive else None,
        lambda: rt.create({f: "x" for f in fields}, {}, "0") if rt.create else None,
        *((lambda f=f: rt.find(f, "x", {}) if rt.find else None) for f in fields),
    ]
    out = []
    for make in makers:
        try:
            request = make()
        except Exception:  # a request that needs more than placeholders: not one this can name
            continue
        if request is not None:
            out.append(str(request[0]))
    return out


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(read_schema(SCHEMA_PATH))


def load_sync(
    path: str | os.PathLike[str], registry: Registry
) -> tuple[SyncSpec | None, list[Problem]]:
    """Load and check the declaration at ``path``: the spec when it has no error, and every
    problem (warnings too)."""
    try:
        loaded = load_recipe(path, SYNC)
        text = Path(path).read_text(encoding="utf-8")
    except RecipeLoadError as exc:
        return None, [exc.problem]
    return _check(loaded, text, registry)


def load_sync_text(
    text: str, name: str, registry: Registry
) -> tuple[SyncSpec | None, list[Problem]]:
    try:
        loaded = load_recipe_text(text, name, SYNC)
    except RecipeLoadError as exc:
        return None, [exc.problem]
    return _check(loaded, text, registry)


def sync_problems(path: str | os.PathLike[str], registry: Registry) -> list[Problem]:
    """Every problem of the declaration at ``path`` (``connector validate``)."""
    return load_sync(path, registry)[1]


def _check(
    loaded: LoadedRecipe, text: str, registry: Registry
) -> tuple[SyncSpec | None, list[Problem]]:
    problems: list[Problem] = []
    for error in _validator().iter_errors(loaded.data):
        problems.extend(error_problems(loaded, error))
    if problems:
        return None, _sorted(problems)
    data: Mapping[str, Any] = loaded.data
    problems.extend(alert_problems(data.get("alerts"), loaded.location))
    pairs: list[PairSpec] = []
    kinds: set[str] = set()
    for index, raw in enumerate(data["pairs"]):
        at = f"$.pairs[{index}]"
        pair = _pair(loaded, raw, at, registry, problems)
        if pair is None:
            continue
        if pair.kind in kinds:
            problems.append(
                Problem(loaded.location(f"{at}.kind"), f"kind {pair.kind!r} is paired twice")
            )
        kinds.add(pair.kind)
        pairs.append(pair)
    if any(p.severity == "error" for p in problems):
        return None, _sorted(problems)
    alerts = alert_targets(data.get("alerts"))
    spec = SyncSpec(str(data["sync"]), loaded.path, text, tuple(pairs), alerts)
    return spec, _sorted(problems)


def _record(
    loaded: LoadedRecipe,
    registry: Registry,
    app: str,
    name: str,
    at: str,
    problems: list[Problem],
) -> RecordType | None:
    found = registry.apps.get(app)
    types = dict(found.records) if found is not None else {}
    record = types.get(name)
    if record is None:
        known = ", ".join(sorted(types)) or "none"
        hint = did_you_mean(name, types) or f" (its record types: {known})"
        problems.append(Problem(loaded.location(at), f"{app} has no record type {name!r}{hint}"))
    return record


def _pair(
    loaded: LoadedRecipe,
    raw: Mapping[str, Any],
    at: str,
    registry: Registry,
    problems: list[Problem],
) -> PairSpec | None:
    ghl = _record(loaded, registry, "ghl", str(raw["ghl"]), f"{at}.ghl", problems)
    connecteam = _record(
        loaded, registry, "connecteam", str(raw["connecteam"]), f"{at}.connecteam", problems
    )
    fields: list[FieldSpec] = []
    for name, spec in raw["fields"].items():
        where = child_path(f"{at}.fields", name)
        ok = True
        for side, record in (("ghl", ghl), ("connecteam", connecteam)):
            if record is None:
                continue
            given = str(spec[side])
            if given not in record.fields:
                hint = did_you_mean(given, record.fields) or (
                    f" (its fields: {', '.join(record.fields)})"
                )
                problems.append(
                    Problem(
                        loaded.location(f"{where}.{side}"),
                        f"a {record.title} has no field {given!r}{hint}",
                    )
                )
                ok = False
        transform = spec.get("transform")
        function = None
        if transform is not None:
            function = registry.filters.get(str(transform))
            if function is None:
                hint = did_you_mean(str(transform), registry.filters) or ""
                problems.append(
                    Problem(loaded.location(f"{where}.transform"), f"no filter {transform!r}{hint}")
                )
                ok = False
        if ok:
            fields.append(
                FieldSpec(
                    name=str(name),
                    ghl=str(spec["ghl"]),
                    connecteam=str(spec["connecteam"]),
                    direction=spec.get("direction", "both"),
                    transform=function,
                    transform_name=str(transform) if transform else None,
                    conflict=spec.get("conflict"),
                )
            )
    names = [str(n) for n in raw["fields"]]
    for position, key in enumerate(raw.get("match") or []):
        if key not in names:
            hint = did_you_mean(str(key), names) or f" (the fields: {', '.join(names)})"
            problems.append(
                Problem(
                    loaded.location(f"{at}.match[{position}]"),
                    f"match key {key!r} is not a mapped field{hint}",
                )
            )
        else:
            for side, record in (("ghl", ghl), ("connecteam", connecteam)):
                field_name = str(raw["fields"][key][side])
                if (
                    record is not None
                    and record.find is not None
                    and record.find(field_name, "x", {}) is None
                ):
                    problems.append(
                        Problem(
                            loaded.location(f"{at}.match[{position}]"),
                            f"a {record.title} cannot be looked up by {field_name!r}, so "
                            f"{key!r} cannot match records",
                        )
                    )
    delete = raw.get("delete") or {}
    if connecteam is not None and delete.get("ghl") == "archive" and connecteam.archive is None:
        problems.append(
            Problem(loaded.location(f"{at}.delete.ghl"), f"a {connecteam.title} cannot be archived")
        )
    if ghl is not None and delete.get("connecteam") == "archive" and ghl.archive is None:
        problems.append(
            Problem(
                loaded.location(f"{at}.delete.connecteam"),
                f"a {ghl.title} cannot be archived: use keep or propagate",
            )
        )
    if ghl is None or connecteam is None or any(p.severity == "error" for p in problems):
        return None
    return PairSpec(
        kind=str(raw["kind"]),
        ghl=ghl,
        connecteam=connecteam,
        fields=tuple(fields),
        match=tuple(str(m) for m in raw.get("match") or ()),
        conflict=raw.get("conflict", "newest"),
        create=raw.get("create"),
        delete=delete,
        parent=str(raw["parent"]) if raw.get("parent") else None,
    )


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.location.line, p.location.column))
