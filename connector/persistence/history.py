"""What the run history page reads beside the run store: who a run touched, and what was settled.

"What happened to this person?" is one search on the page (``GET /?q=ID``), so the run store
keeps, for every run, the ids and emails that it *touched* in either system: a GoHighLevel
contact id, a Connecteam user id, an email, wherever they appear in the trigger event, in a
step's request (URL, query, body) or in its response. They are rows of ``run_terms``
(``term``, ``run_id``, ``started_at``), lower-cased, written in the same transaction as the step
they came from (:meth:`connector.persistence.runs.RunStore.step_finished`), and indexed by term and start
time, so a search is an index range read newest first, with keyset paging, at any number of
runs.

What counts as touched (:func:`touched`):

- the value of any field whose name says it is an id (``id``, ``contactId``, ``user_id``,
  ``assignedTo``, ``userIds``: a string, an integer, or a list of them);
- any string that is an email address, whatever its field;
- the path segments of a request URL that look like ids (letters and digits with at least one
  digit, such as ``ocQHyuzHvysMo5N5VsXc`` or ``9001``), and id and email query parameters;

each of 3 to 200 characters (a ``1`` or a ``42``, a page size or a field number, would find
everything and tell nothing), at most 2,000 from one record.

``run_marks`` holds the failed runs a person marked as resolved from the page's queue. Migration
3 (:data:`connector.persistence.database.MIGRATIONS`) creates both tables and the indexes the page queries (runs by
parent, by trigger), and indexes the runs already stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import sqlalchemy as sa

from connector.persistence.dialects import insert
from connector.persistence.tables import MAX_TERM_LENGTH, marks_table, metadata, terms_table

__all__ = [
    "MAX_TERM_LENGTH",
    "backfill",
    "marks_table",
    "normalize",
    "terms_table",
    "touched",
    "write_terms",
]

MIN_TERM_LENGTH = 3  # "1" or "42" (a page size, a field number) finds everything and nothing
MAX_TERMS_PER_RECORD = 2000  # a list response of thousands of records: the first ones count


_EMAIL = re.compile(r"[^@\s<>(),;:\"']{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ID_SEGMENT = re.compile(r"(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{4,64}")
_ID_KEY = re.compile(r"(?i:^ids?$|_ids?$|^e?mail$|^assignedTo$)|[a-z0-9](?:Ids?|IDs?)$")


def normalize(text: str) -> str:
    """A term as it is stored and looked up: trimmed, lower-cased, at most 200 characters."""
    return text.strip().lower()[:MAX_TERM_LENGTH]


def _id_key(key: str) -> bool:
    return bool(_ID_KEY.search(key))


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, str | int):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str | int) and not isinstance(item, bool):
                yield str(item)


def _walk(value: Any, out: set[str], budget: list[int]) -> None:
    if budget[0] <= 0:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and _id_key(key):
                for text in _scalars(item):
                    _add(text, out, budget)
            if isinstance(item, Mapping | list | str):
                _walk(item, out, budget)
    elif isinstance(value, list):
        for item in value:
            _walk(item, out, budget)
    elif isinstance(value, str) and "@" in value and len(value) < 320:
        for match in _EMAIL.findall(value):
            _add(match, out, budget)


def _add(text: str, out: set[str], budget: list[int]) -> None:
    term = normalize(text)
    if len(term) >= MIN_TERM_LENGTH and len(text.strip()) <= MAX_TERM_LENGTH and term not in out:
        out.add(term)
        budget[0] -= 1


def _url(url: str, out: set[str], budget: list[int]) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    for segment in parts.path.split("/"):
        if _ID_SEGMENT.fullmatch(segment):
            _add(segment, out, budget)
    for key, value in parse_qsl(parts.query):
        if _id_key(key) or "@" in value:
            _walk({key: value}, out, budget)


def touched(*documents: Any, urls: Iterable[str] = ()) -> set[str]:
    """The terms (ids and emails) found in ``documents`` (JSON values) and request ``urls``."""
    out: set[str] = set()
    budget = [MAX_TERMS_PER_RECORD]
    for url in urls:
        _url(url, out, budget)
    for document in documents:
        _walk(document, out, budget)
    return out


def step_terms(step: Mapping[str, Any]) -> set[str]:
    """The terms of one step's record (its ``to_json()``), its ``foreach`` items included."""
    urls: list[str] = []
    documents: list[Any] = []

    def collect(record: Mapping[str, Any]) -> None:
        if isinstance(record.get("url"), str):
            urls.append(record["url"])
        request = record.get("request")
        if isinstance(request, Mapping):
            documents.append(request.get("body"))
        documents.append(record.get("output"))
        for item in record.get("items") or []:
            if isinstance(item, Mapping):
                collect(item)

    collect(step)
    return touched(*documents, urls=urls)


_inserts: dict[str, Any] = {}


def write_terms(conn: sa.Connection, run_id: str, started_at: str, terms: Iterable[str]) -> None:
    """Add ``terms`` for the run (inside the caller's transaction); a term already there stays."""
    rows = [{"term": t, "run_id": run_id, "started_at": started_at} for t in terms]
    if not rows:
        return
    dialect = conn.dialect.name
    statement = _inserts.get(dialect)
    if statement is None:
        statement = _inserts[dialect] = insert(dialect, terms_table).on_conflict_do_nothing()
    conn.execute(statement, rows)


def backfill(conn: sa.Connection) -> None:
    """Index the runs stored before migration 3 (inside the migration's transaction)."""
    runs = metadata.tables["runs"]
    steps = metadata.tables["run_steps"]
    started: dict[str, str] = {}
    for run_id, started_at, trigger in conn.execute(
        sa.select(runs.c.id, runs.c.started_at, runs.c.trigger_json)
    ):
        started[run_id] = started_at
        write_terms(conn, run_id, started_at, touched(_loads(trigger)))
    for run_id, record in conn.execute(sa.select(steps.c.run_id, steps.c.record_json)):
        data = _loads(record)
        if run_id in started and isinstance(data, Mapping):
            write_terms(conn, run_id, started[run_id], step_terms(data))


def _loads(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
