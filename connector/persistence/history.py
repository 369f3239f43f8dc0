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

Who a run was about (``runs.person``: a name, else an email) is read from its trigger when it
starts (:func:`person_of`: the event's record, or its ``data``, ``contact`` or ``user``); a
trigger that names nobody (a task event, a deleted contact) gets, when the run ends, the name
that ``people`` knows for one of the trigger's ids (:func:`settle_person`). ``people`` keeps, for
every id of a record seen with a name or an email (a contact in a response, a user in a trigger:
:func:`people_in`), that name, lower-cased like a term; the Links page names both sides of a
pair from it. The list reads the column: no payload is parsed to show it.

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
from connector.persistence.prepared import Prepared
from connector.persistence.tables import (
    MAX_PERSON_LENGTH,
    MAX_TERM_LENGTH,
    marks_table,
    metadata,
    people_table,
    runs_table,
    terms_table,
)
from connector.records import now_iso

__all__ = [
    "MAX_TERM_LENGTH",
    "backfill",
    "backfill_people",
    "marks_table",
    "names_of",
    "normalize",
    "people_in",
    "person_of",
    "set_person",
    "settle_person",
    "settled_person",
    "terms_table",
    "touched",
    "trigger_ids",
    "write_people",
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


_insert_terms = Prepared(
    lambda dialect: insert(dialect, terms_table).on_conflict_do_nothing(),
    keys=("term", "run_id", "started_at"),
)


def write_terms(conn: sa.Connection, run_id: str, started_at: str, terms: Iterable[str]) -> None:
    """Add ``terms`` for the run (inside the caller's transaction); a term already there stays."""
    rows = [{"term": t, "run_id": run_id, "started_at": started_at} for t in terms]
    _insert_terms.executemany(conn, rows)


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


# who a run was about -----------------------------------------------------------------------------

MAX_PEOPLE_PER_RECORD = 200  # person-like objects looked at in one document
_PERSON_ID_KEYS = ("userId", "contactId", "user_id", "contact_id", "id")
_FULL_NAME_KEYS = ("fullName", "full_name", "contactName", "displayName")
_SPACES = re.compile(r"\s+")


def _clean(text: Any) -> str:
    return _SPACES.sub(" ", text).strip() if isinstance(text, str) else ""


def _person(obj: Mapping[str, Any]) -> str | None:
    """The name (else the email) of a record that is a person, or None: a first or last name, a
    full name, or a ``name`` beside an email or a phone (a tag, a task or a company has a
    ``name`` too, and no email)."""
    first = _clean(obj.get("firstName") or obj.get("first_name"))
    last = _clean(obj.get("lastName") or obj.get("last_name"))
    name = f"{first} {last}".strip()
    if not name:
        name = next((_clean(obj.get(k)) for k in _FULL_NAME_KEYS if _clean(obj.get(k))), "")
    email = _clean(obj.get("email"))
    email = email if "@" in email and len(email) < 320 else ""
    if not name and (email or _clean(obj.get("phone")) or _clean(obj.get("phoneNumber"))):
        name = _clean(obj.get("name"))
    found = name or email
    return found[:MAX_PERSON_LENGTH] if found else None


def person_of(trigger: Any) -> str | None:
    """Who a trigger event is about: the person of the event itself, or of its ``data``
    (Connecteam's), ``contact`` or ``user``; None when it names nobody."""
    if not isinstance(trigger, Mapping):
        return None
    candidates: list[Any] = [trigger]
    for key in ("data", "contact", "user"):
        inner = trigger.get(key)
        if isinstance(inner, list) and len(inner) == 1:
            inner = inner[0]
        candidates.append(inner)
    for candidate in candidates:
        if isinstance(candidate, Mapping) and (found := _person(candidate)):
            return found
    return None


def people_in(*documents: Any) -> dict[str, str]:
    """The people in ``documents`` (JSON values) by id: every record with an id (``userId``,
    ``contactId``, ``id``) and a name or an email, the id lower-cased as a term."""
    out: dict[str, str] = {}
    budget = [MAX_PEOPLE_PER_RECORD]

    def walk(value: Any, depth: int) -> None:
        if budget[0] <= 0 or depth > 6:
            return
        if isinstance(value, Mapping):
            budget[0] -= 1
            found = _person(value)
            if found:
                for key in _PERSON_ID_KEYS:
                    ident = value.get(key)
                    if isinstance(ident, str | int) and not isinstance(ident, bool):
                        term = normalize(str(ident))
                        if len(term) >= MIN_TERM_LENGTH:
                            out.setdefault(term, found)
                        break
            for item in value.values():
                if isinstance(item, Mapping | list):
                    walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                walk(item, depth + 1)

    for document in documents:
        walk(document, 0)
    return out


def step_people(step: Mapping[str, Any]) -> dict[str, str]:
    """The people of one step's record (its ``to_json()``): in its request body and its output,
    its ``foreach`` items' included."""
    documents: list[Any] = []

    def collect(record: Mapping[str, Any]) -> None:
        request = record.get("request")
        if isinstance(request, Mapping):
            documents.append(request.get("body"))
        documents.append(record.get("output"))
        for item in record.get("items") or []:
            if isinstance(item, Mapping):
                collect(item)

    collect(step)
    return people_in(*documents)


def trigger_ids(trigger: Any) -> list[str]:
    """The ids a trigger names, as terms, those of a contact or a user first (a task's
    ``contactId`` before its ``assignedTo``)."""
    first: list[str] = []
    rest: list[str] = []

    def walk(value: Any, depth: int) -> None:
        if depth > 3:
            return
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str) and _id_key(key):
                    lowered = key.lower()
                    into = first if ("contact" in lowered or "user" in lowered) else rest
                    into.extend(normalize(t) for t in _scalars(item))
                elif isinstance(item, Mapping | list):
                    walk(item, depth + 1)
        elif isinstance(value, list):
            for item in value[:50]:
                walk(item, depth + 1)

    walk(trigger, 0)
    ordered = dict.fromkeys(t for t in first + rest if len(t) >= MIN_TERM_LENGTH)
    return list(ordered)


def _people_upsert(dialect: str) -> Any:
    base = insert(dialect, people_table)
    return base.on_conflict_do_update(
        index_elements=["term"],
        set_={"name": base.excluded.name, "updated_at": base.excluded.updated_at},
        # a name that did not change is not written again (``updated_at``: when it last did),
        # so a run that meets a known person changes no page of ``people``
        where=people_table.c.name != base.excluded.name,
    )


_upsert_people = Prepared(_people_upsert, keys=("term", "name", "updated_at"))


def write_people(conn: sa.Connection, people: Mapping[str, str], at: str) -> None:
    """Keep ``people`` (term -> name) inside the caller's transaction: the newest name wins
    (and ``updated_at`` says when a term's name last changed)."""
    rows = [{"term": t, "name": n, "updated_at": at} for t, n in sorted(people.items())]
    _upsert_people.executemany(conn, rows)


def names_of(conn: sa.Connection, terms: Iterable[str]) -> dict[str, str]:
    """The names ``people`` knows for ``terms`` (lower-cased ids)."""
    wanted = sorted({normalize(t) for t in terms if t})
    found: dict[str, str] = {}
    p = people_table.c
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for term, name in conn.execute(sa.select(p.term, p.name).where(p.term.in_(chunk))):
            found[str(term)] = str(name)
    return found


_name_of = Prepared(
    sa.select(people_table.c.name).where(people_table.c.term == sa.bindparam("b_term"))
)
_set_person = Prepared(
    sa.update(runs_table)
    .where(runs_table.c.id == sa.bindparam("b_id"), runs_table.c.person.is_(None))
    .values(person=sa.bindparam("b_person"))
)


def settled_person(
    conn: sa.Connection, trigger: Any, written: Mapping[str, str] | None = None
) -> str | None:
    """The name ``people`` knows for one of the trigger's ids (a contact's, a user's first),
    None when none is known. ``written``: people (term -> name) the caller's transaction writes
    too (:func:`write_people`), which win over what ``people`` holds, as the newest names; they
    are looked up without asking the database."""
    ids = trigger_ids(trigger)
    written = written or {}
    first = next((i for i, t in enumerate(ids) if t in written), len(ids))
    asked = ids[:first]  # the ids before the first the caller knows: ``people`` may know them
    if len(asked) == 1:
        row = _name_of.first(conn, {"b_term": asked[0]})
        if row is not None:
            return str(row[0])
    elif asked:
        known = names_of(conn, asked)
        found = next((known[t] for t in asked if t in known), None)
        if found is not None:
            return found
    return written[ids[first]] if first < len(ids) else None


def settle_person(conn: sa.Connection, run_id: str, trigger: Any) -> str | None:
    """For a run whose trigger names nobody: the name ``people`` knows for one of the trigger's
    ids (a contact's, a user's first), written on the run; None when none is known."""
    person = settled_person(conn, trigger)
    if person is not None:
        set_person(conn, run_id, person)
    return person


def set_person(conn: sa.Connection, run_id: str, person: str) -> None:
    """Name who the run was about, unless it names someone already."""
    _set_person.execute(conn, {"b_id": run_id, "b_person": person})


def backfill_people(conn: sa.Connection) -> None:
    """Who the runs stored before migration 6 were about, from their triggers (inside the
    migration's transaction)."""
    runs = metadata.tables["runs"]
    updates: list[dict[str, str]] = []
    people: dict[str, str] = {}
    for run_id, trigger in conn.execute(sa.select(runs.c.id, runs.c.trigger_json)):
        data = _loads(trigger)
        person = person_of(data)
        if person is not None:
            updates.append({"b_id": run_id, "b_person": person})
        people.update(people_in(data))
    if updates:
        conn.execute(
            sa.update(runs)
            .where(runs.c.id == sa.bindparam("b_id"))
            .values(person=sa.bindparam("b_person")),
            updates,
        )
    write_people(conn, people, now_iso())
