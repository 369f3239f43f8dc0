"""The decision of a two-way sync, field by field, with no I/O.

Given the last synced value of every mapped field (the *base*) and each side's current values
with the vendor's time of its last change, :func:`merge` says what changed on each side since
the last sync, what to write to each side, the new base, and the conflicts: a field changed on
both sides to different values. A conflict is decided by the field's rule: ``newest`` (the later
change by the vendors' clocks, compared in whole seconds because Connecteam keeps no finer time;
a tie goes to GoHighLevel), a side that owns the field (``ghl``, ``connecteam``), or ``manual``
(nothing is written and the conflict waits for a person).

A field whose direction keeps one side from sending (``to_connecteam``, ``to_ghl``) ignores that
side's changes. An emptied field is not emptied on the other side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connector.language.sync_spec import PairSpec

__all__ = ["MISSING", "Decision", "Merge", "SideState", "merge", "values_of"]

MISSING: Any = object()  # a field with no base yet (a pair made a moment ago)


@dataclass(frozen=True)
class SideState:
    """One side's record as the sync compares it: mapped values (transformed) and change time."""

    values: Mapping[str, Any]
    at: float | None


@dataclass(frozen=True)
class Decision:
    """A conflict and how it was decided."""

    field: str
    base: Any
    ghl: Any
    connecteam: Any
    rule: str
    winner: str | None  # None: manual, left for a person


@dataclass
class Merge:
    to_ghl: dict[str, Any] = field(default_factory=dict)  # by the declaration's field names
    to_connecteam: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    changed: dict[str, list[str]] = field(default_factory=dict)  # side -> fields it changed
    conflicts: list[Decision] = field(default_factory=list)
    round: int = 1  # the run's first merge, or a later one over its writes' answers

    def to(self, side: str) -> dict[str, Any]:
        return self.to_ghl if side == "ghl" else self.to_connecteam

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "to_ghl": self.to_ghl,
            "to_connecteam": self.to_connecteam,
            "conflicts": [d.__dict__ for d in self.conflicts],
        }


def values_of(pair: PairSpec, side: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The mapped fields of ``record`` (a ``side`` record as its app sends it), by the
    declaration's names: decoded by its record type, each through its transform."""
    decoded = pair.record(side).decode(record)
    return {f.name: f.normal(decoded.get(f.on(side))) for f in pair.fields}


def _newest(ghl_at: float | None, connecteam_at: float | None) -> str:
    g = math.floor(ghl_at) if ghl_at is not None else -math.inf
    c = math.floor(connecteam_at) if connecteam_at is not None else -math.inf
    return "connecteam" if c > g else "ghl"


def merge(pair: PairSpec, base: Mapping[str, Any], ghl: SideState, connecteam: SideState) -> Merge:
    """What to write where, and the new base (see the module)."""
    out = Merge(changed={"ghl": [], "connecteam": []})
    for spec in pair.fields:
        name = spec.name
        g, c = ghl.values.get(name), connecteam.values.get(name)
        b = base.get(name, MISSING)
        if b is MISSING:
            # a new pair: no agreed value yet; equal values agree, else the rule decides
            g_changed = c_changed = g != c
        else:
            g_changed = g != b
            c_changed = c != b
        g_changed = g_changed and spec.flows_from("ghl") and g is not None
        c_changed = c_changed and spec.flows_from("connecteam") and c is not None
        if g_changed:
            out.changed["ghl"].append(name)
        if c_changed:
            out.changed["connecteam"].append(name)
        if g_changed and c_changed and g != c:
            rule = pair.first_rule(spec) if b is MISSING else pair.rule(spec)
            if rule == "manual":
                winner = None
            elif rule == "newest":
                winner = _newest(ghl.at, connecteam.at)
            else:
                winner = rule
            out.conflicts.append(Decision(name, None if b is MISSING else b, g, c, rule, winner))
            if winner is None:
                if b is not MISSING:
                    out.base[name] = b
                continue
            g_changed, c_changed = winner == "ghl", winner == "connecteam"
        if g_changed and g != c:
            out.to_connecteam[name] = g
            out.base[name] = g
        elif c_changed and c != g:
            out.to_ghl[name] = c
            out.base[name] = c
        elif g == c:
            out.base[name] = g
        elif b is not MISSING:
            out.base[name] = b
    return out
