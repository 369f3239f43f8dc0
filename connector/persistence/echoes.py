"""Echoes: a change the runtime itself wrote must not come back as a new run.

A two-way sync writes to GoHighLevel because of a Connecteam event (flow 2) and to Connecteam
because of a GoHighLevel event (flow 7). Each vendor then reports the write as a change
(``ContactUpdate``, ``user_updated``), which would start the opposite flow, which writes back, and
so on. So before a write goes out, the caller records what the vendor will report: the record
(its *subject*, ``ghl:contact:ID``) and the fields the write sets. When an event about that
subject arrives and shows every one of those fields with the value written, it is the write's
echo: it is acknowledged, counted (``echo`` in /metrics) and runs nothing. The expectation is
used up by it; an edit a person makes afterwards, or one that changes a field the write set to
something else, runs as usual.

Expectations expire after ``ECHO_SECONDS`` if no echo comes: a write that changed nothing may
be reported by no event at all (Connecteam reports changes only), and its expectation must not
swallow a person's edit long after. The price of the short window: an echo delivered later (a
vendor's retry) runs the opposite flow once, which finds nothing to change
(a recipe that writes only the fields that differ), so a loop still ends.

Which writes echo, and how, is the app's knowledge (:attr:`connector.apps.App.echoes`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from connector.persistence.dialects import insert
from connector.persistence.tables import echoes_table

__all__ = ["ECHO_SECONDS", "Echoes", "echoes_table", "same_value"]

# how long an expected echo is waited for (GoHighLevel and Connecteam send within seconds)
ECHO_SECONDS = 120.0

_t = echoes_table.c
# Built once: every event received asks it.
_EXPECTED = sa.select(_t.fingerprint, _t.fields).where(
    _t.subject == sa.bindparam("subject"), _t.expires_at >= sa.bindparam("now")
)
_USE_UP = sa.delete(echoes_table).where(
    _t.subject == sa.bindparam("subject"), _t.fingerprint == sa.bindparam("fingerprint")
)


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, list):
        items = [_norm(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def same_value(written: Any, shown: Any) -> bool:
    """Whether an event shows the value written: strings compared without case or surrounding
    space, numbers as numbers, lists of values as sets (vendors normalise what they store); an
    object written is shown when each of its fields is, and a list of objects (custom fields)
    when each object written is shown among them."""
    if isinstance(written, dict):
        return isinstance(shown, dict) and all(
            k in shown and same_value(v, shown[k]) for k, v in written.items()
        )
    if isinstance(written, list) and any(isinstance(v, dict) for v in written):
        return isinstance(shown, list) and all(
            any(same_value(w, s) for s in shown) for w in written
        )
    return bool(_norm(written) == _norm(shown))


class Echoes:
    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def expect(self, expected: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """Record that each ``(subject, fields)`` will be reported back by its vendor."""
        rows = []
        for subject, fields in expected:
            if not fields:
                continue
            text = json.dumps(dict(fields), sort_keys=True, default=str)
            fingerprint = hashlib.sha256(text.encode()).hexdigest()
            rows.append((subject[:200], fingerprint, text))
        if not rows:
            return
        expires = self.clock() + ECHO_SECONDS
        with self.engine.begin() as conn:
            for subject, fingerprint, text in rows:
                statement = insert(conn.dialect.name, echoes_table).values(
                    subject=subject, fingerprint=fingerprint, fields=text, expires_at=expires
                )
                conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=["subject", "fingerprint"], set_={"expires_at": expires}
                    )
                )

    def consume(
        self,
        subject: str | None,
        shown: Mapping[str, Any] | None,
        conn: sa.Connection | None = None,
    ) -> bool:
        """Whether an event about ``subject`` showing ``shown`` is the echo of a write; the
        expectation it matches is used up (so only one event is taken for each write). With
        ``conn``, in the caller's transaction."""
        if not subject or shown is None:
            return False
        if conn is None:
            with self.engine.begin() as own:
                return self.consume(subject, shown, own)
        rows = conn.execute(_EXPECTED, {"subject": subject[:200], "now": self.clock()}).all()
        for fingerprint, text in rows:
            fields = json.loads(text)
            if same_value(fields, shown):
                deleted = conn.execute(
                    _USE_UP, {"subject": subject[:200], "fingerprint": fingerprint}
                )
                if deleted.rowcount:
                    return True
        return False

    def prune(self) -> int:
        """Forget expectations whose echo never came."""
        with self.engine.begin() as conn:
            result = conn.execute(
                sa.delete(echoes_table).where(echoes_table.c.expires_at < self.clock())
            )
            return int(result.rowcount or 0)
