"""Comparing what a test expects with what happened, and saying how they differ.

Matching is partial by default: a mapping names only the keys it cares about (the actual value may
have more), a list matches item by item (the same length, each item partially), a scalar must be
equal (``1`` and ``1.0`` are equal; ``true`` and ``1`` are not; a string is never a number).
``exact=True`` makes mappings whole: a key the expectation does not name is a difference too.

Each :class:`Difference` says where inside the value it is (``.contact.email``, ``[2]``), so the
runner can point at the line of the test file that states it.

:class:`Sent` is one request as the run sent it; :func:`request_differences` compares it with a
:class:`~connector.testing.spec.RequestMatch`, and :func:`match_requests` an expected list with
the requests sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.language.paths import child_path
from connector.testing.spec import ABSENT, RequestMatch

__all__ = ["Difference", "Sent", "differences", "match_requests", "request_differences", "shown"]


@dataclass(frozen=True)
class Difference:
    """One way the actual value differs from the expected one, at ``where`` inside it."""

    where: str
    message: str
    expected: Any = ABSENT
    actual: Any = ABSENT


def shown(value: Any, limit: int = 300) -> str:
    """A value as one line of JSON (strings quoted), cut at ``limit`` characters."""
    if value is ABSENT:
        return "(nothing)"
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return float(expected) == float(actual)
    return type(expected) is type(actual) and bool(expected == actual)


def _key(where: str, key: Any) -> str:
    return child_path(where, str(key))


def differences(
    expected: Any, actual: Any, *, exact: bool = False, where: str = ""
) -> list[Difference]:
    """How ``actual`` differs from ``expected`` (empty: it matches)."""
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [Difference(where, f"expected a mapping, got {shown(actual)}", expected, actual)]
        out: list[Difference] = []
        for key, value in expected.items():
            here = _key(where, key)
            if key not in actual:
                has = ", ".join(map(str, actual)) or "none"
                out.append(Difference(here, f"missing (the keys there: {has})", value))
            else:
                out.extend(differences(value, actual[key], exact=exact, where=here))
        if exact:
            for key in actual:
                if key not in expected:
                    here = _key(where, key)
                    message = f"not expected, but is {shown(actual[key])}"
                    out.append(Difference(here, message, actual=actual[key]))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [Difference(where, f"expected a list, got {shown(actual)}", expected, actual)]
        if len(expected) != len(actual):
            message = f"expected {len(expected)} items, got {len(actual)}: {shown(actual)}"
            return [Difference(where, message, expected, actual)]
        out = []
        for index, (one, other) in enumerate(zip(expected, actual, strict=True)):
            out.extend(differences(one, other, exact=exact, where=f"{where}[{index}]"))
        return out
    if not _same(expected, actual):
        return [
            Difference(where, f"expected {shown(expected)}, got {shown(actual)}", expected, actual)
        ]
    return []


@dataclass(frozen=True)
class Sent:
    """One request as it was sent: the app, method, path under the app's base URL, query, body."""

    app: str | None
    method: str
    path: str
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None

    def describe(self) -> str:
        text = f"{self.method} {self.path}"
        if self.query:
            text += "?" + "&".join(
                f"{k}={v}"
                for k, vs in self.query.items()
                for v in (vs if isinstance(vs, list) else [vs])
            )
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"app": self.app, "method": self.method, "path": self.path}
        if self.query:
            out["query"] = dict(self.query)
        if self.body is not None:
            out["body"] = self.body
        return out


def _path_matches(pattern: str, path: str) -> bool:
    want = pattern.rstrip("/").split("/")
    have = path.rstrip("/").split("/")
    return len(want) == len(have) and all(w in ("*", h) for w, h in zip(want, have, strict=True))


def _query_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_query_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def request_differences(match: RequestMatch, sent: Sent) -> list[Difference]:
    """How ``sent`` differs from ``match`` (empty: it is such a request)."""
    out = []
    if match.app and match.app != sent.app:
        out.append(Difference(".app", f"expected app {match.app}, got {sent.app}"))
    if match.method and match.method != sent.method:
        out.append(Difference(".method", f"expected {match.method}, got {sent.method}"))
    if match.path and not _path_matches(match.path, sent.path):
        out.append(Difference(".path", f"expected {match.path}, got {sent.path}"))
    if match.query is not None:
        wanted = {str(k): _query_text(v) for k, v in match.query.items()}
        out.extend(differences(wanted, dict(sent.query), exact=match.exact, where=".query"))
    if match.body is not ABSENT:
        out.extend(differences(match.body, sent.body, exact=match.exact, where=".body"))
    return out


@dataclass(frozen=True)
class Unmatched:
    """An expected request that was not sent, and the sent request closest to it (if any)."""

    match: RequestMatch
    closest: tuple[int, Sent, list[Difference]] | None


def _closest(
    match: RequestMatch, sent: Sequence[Sent]
) -> tuple[int, Sent, list[Difference]] | None:
    best: tuple[int, Sent, list[Difference]] | None = None
    for index, one in enumerate(sent):
        found = request_differences(match, one)
        same_target = not any(d.where in (".method", ".path", ".app") for d in found)
        if same_target and (best is None or len(found) < len(best[2])):
            best = (index, one, found)
    return best


def match_requests(
    expected: Sequence[RequestMatch], sent: Sequence[Sent], *, exact: bool = False
) -> tuple[list[Unmatched], list[tuple[int, Sent]]]:
    """Which expected requests were not sent (in order: each after the one before it), and,
    with ``exact`` (exactly these requests, in this order; each body still partial unless the
    request says ``exact``), which sent requests no expectation accounts for."""
    missing: list[Unmatched] = []
    if exact:
        extra = [(i, s) for i, s in enumerate(sent) if i >= len(expected)]
        for index, match in enumerate(expected):
            if index >= len(sent):
                missing.append(Unmatched(match, _closest(match, sent)))
                continue
            found = request_differences(match, sent[index])
            if found:
                missing.append(Unmatched(match, (index, sent[index], found)))
        return missing, extra
    position = 0
    for match in expected:
        for index in range(position, len(sent)):
            if not request_differences(match, sent[index]):
                position = index + 1
                break
        else:
            missing.append(Unmatched(match, _closest(match, sent)))
    return missing, []
