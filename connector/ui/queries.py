"""The run history page's reads: runs by filter and search, counts, the queue, a run's relatives.

Every list is newest first, ``(started_at, id)`` descending, and paged by keyset: the next page
starts below the last row shown (``?before=STARTED~ID``), so page 2,000 costs what page 1 costs.
Each query walks an index in that order: ``runs_started``, ``runs_recipe``, ``runs_status`` or
``runs_trigger`` for the filters, and ``run_terms_newest`` for a search
(:mod:`connector.persistence.history`), which is an exact match on a lower-cased id or email. A search that
looks like a run id (``run_...``) finds that run and the runs with that id as prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from connector.persistence.history import marks_table, names_of, normalize, terms_table
from connector.persistence.incidents import close_run, fixed_by, fixes
from connector.persistence.links import links_table
from connector.persistence.runs import forks_table, recipes_table, runs_table
from connector.records import now_iso

__all__ = ["STATUSES", "Filters", "History", "Page", "RunRow", "bad_time"]

STATUSES = ("running", "waiting", "failed", "succeeded")
PAGE_SIZE = 50
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?)?")

_ROW_COLUMNS = (
    runs_table.c.id,
    runs_table.c.recipe,
    runs_table.c.status,
    runs_table.c.trigger_app,
    runs_table.c.trigger_event,
    runs_table.c.started_at,
    runs_table.c.duration_ms,
    runs_table.c.error,
    runs_table.c.parent,
    runs_table.c.person,
)


def bad_time(text: str | None) -> bool:
    """Whether a time filter is not an ISO date or date-time (``2026-07-01``, ``…T10:00``)."""
    return bool(text) and not _TIME.fullmatch(str(text))


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; every field is optional. ``trigger`` is an event type
    (``user_created``) or ``app event``; ``since``/``until`` are UTC ISO times."""

    recipe: str | None = None
    status: str | None = None
    trigger: str | None = None
    since: str | None = None
    until: str | None = None
    q: str | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> Filters:
        def get(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            return value or None

        status = get("status")
        return cls(
            recipe=get("recipe"),
            status=status if status in STATUSES else None,
            trigger=get("trigger"),
            since=get("since"),
            until=get("until"),
            q=get("q"),
        )

    @property
    def any(self) -> bool:
        return any((self.recipe, self.status, self.trigger, self.since, self.until, self.q))

    def as_query(self, **changes: str | None) -> dict[str, str]:
        data = {**self.__dict__, **changes}
        return {k: v for k, v in data.items() if v}


@dataclass(frozen=True)
class RunRow:
    id: str
    recipe: str
    status: str
    trigger_app: str
    trigger_event: str
    started_at: str
    duration_ms: float | None
    error: str | None
    parent: str | None
    person: str | None = None  # who the run was about: a name, else an email
    resolved: bool = False
    fixed: bool = False  # a failed run a retry or replay of it fixed (it succeeded)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Page:
    runs: list[RunRow]
    before: str | None  # the cursor of the next (older) page; None: this is the last
    counts: dict[str, int]


def _cursor(row: RunRow) -> str:
    return f"{row.started_at}~{row.id}"


def _parse_cursor(text: str | None) -> tuple[str, str] | None:
    if not text or "~" not in text:
        return None
    started, _, run_id = text.partition("~")
    return (started, run_id) if started and run_id else None


_LINK_CURSOR = "~"  # a link's cursor: updated_at~kind~ghl_id (neither a time nor a kind has ~)


def _parse_link_cursor(text: str | None) -> tuple[str, str, str] | None:
    parts = (text or "").split(_LINK_CURSOR, 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 and all(parts[:2]) else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class History:
    """The reads of the page over the one database (a connection per call)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _rows(self, query: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(query).all())

    # the list ------------------------------------------------------------------------------------

    def _narrowed(self, query: Any, filters: Filters, *, status: bool = True) -> Any:
        """``query`` (over ``runs``, joined to ``run_terms`` for a search) with the filters."""
        r = runs_table.c
        if filters.recipe:
            query = query.where(r.recipe == filters.recipe)
        if status and filters.status:
            query = query.where(r.status == filters.status)
        if filters.trigger:
            app, _, event = filters.trigger.strip().rpartition(" ")
            query = query.where(r.trigger_event == event)
            if app:
                query = query.where(r.trigger_app == app.strip())
        if filters.since and not bad_time(filters.since):
            query = query.where(r.started_at >= filters.since)
        if filters.until and not bad_time(filters.until):
            query = query.where(r.started_at < filters.until)
        return query

    def _searched(self, columns: Sequence[Any], filters: Filters) -> tuple[Any, Any, Any]:
        """A select of ``columns`` for ``filters.q``, and the (started_at, id) columns it is
        ordered by."""
        query = sa.select(*columns)
        q = (filters.q or "").strip()
        if not q:
            return query, runs_table.c.started_at, runs_table.c.id
        if q.startswith("run_"):
            pattern = _escape_like(q) + "%"
            query = query.where(runs_table.c.id.like(pattern, escape="\\"))
            return query, runs_table.c.started_at, runs_table.c.id
        t = terms_table.c
        query = query.select_from(terms_table.join(runs_table, runs_table.c.id == t.run_id)).where(
            t.term == normalize(q)
        )
        return query, t.started_at, t.run_id

    def page(self, filters: Filters, before: str | None = None, size: int = PAGE_SIZE) -> Page:
        query, started, run_id = self._searched(_ROW_COLUMNS, filters)
        query = self._narrowed(query, filters)
        cursor = _parse_cursor(before)
        if cursor is not None:
            query = query.where(
                started <= cursor[0], sa.or_(started < cursor[0], run_id < cursor[1])
            )
        query = query.order_by(started.desc(), run_id.desc()).limit(size + 1)
        rows = [RunRow(*row) for row in self._rows(query)]
        more = len(rows) > size
        rows = self._with_marks(rows[:size])
        return Page(rows, _cursor(rows[-1]) if more and rows else None, self.counts(filters))

    def counts(self, filters: Filters) -> dict[str, int]:
        """Runs by status under ``filters`` (its status aside), and ``all``."""
        query, _, _ = self._searched((runs_table.c.status, sa.func.count()), filters)
        query = self._narrowed(query, filters, status=False).group_by(runs_table.c.status)
        counts = {status: 0 for status in STATUSES}
        for status, count in self._rows(query):
            counts[str(status)] = int(count)
        counts["all"] = sum(counts.values())
        return counts

    def _with_marks(self, rows: list[RunRow]) -> list[RunRow]:
        failed = [r.id for r in rows if r.status == "failed"]
        if not failed:
            return rows
        m = marks_table.c
        marked = {r[0] for r in self._rows(sa.select(m.run_id).where(m.run_id.in_(failed)))}
        c = runs_table.c
        fixed = {
            r[0]
            for r in self._rows(
                sa.select(c.parent).where(c.parent.in_(failed), c.status == "succeeded")
            )
        }
        return [
            replace(r, resolved=r.id in marked, fixed=r.id in fixed)
            if r.id in marked or r.id in fixed
            else r
            for r in rows
        ]

    def newest(self, limit: int = 100, watch: Sequence[str] = ()) -> list[RunRow]:
        """The newest runs (and the runs ``watch`` names): what the live updates compare."""
        query = sa.select(*_ROW_COLUMNS).order_by(
            runs_table.c.started_at.desc(), runs_table.c.id.desc()
        )
        rows = [RunRow(*row) for row in self._rows(query.limit(limit))]
        seen = {r.id for r in rows}
        wanted = [w for w in watch if w not in seen][:200]
        if wanted:
            more = sa.select(*_ROW_COLUMNS).where(runs_table.c.id.in_(wanted))
            rows.extend(RunRow(*row) for row in self._rows(more))
        return rows

    def recipe_runs(self, recipe: str, limit: int = 5) -> list[RunRow]:
        """The newest runs of ``recipe`` (a recipe's or a sync's name), newest first."""
        r = runs_table.c
        query = (
            sa.select(*_ROW_COLUMNS)
            .where(r.recipe == recipe)
            .order_by(r.started_at.desc(), r.id.desc())
            .limit(limit)
        )
        return [RunRow(*row) for row in self._rows(query)]

    def newest_of(self, recipes: Sequence[str], limit: int = 20) -> list[RunRow]:
        """The newest runs of any of ``recipes``."""
        if not recipes:
            return []
        r = runs_table.c
        query = (
            sa.select(*_ROW_COLUMNS)
            .where(r.recipe.in_(list(recipes)))
            .order_by(r.started_at.desc(), r.id.desc())
            .limit(limit)
        )
        return self._with_marks([RunRow(*row) for row in self._rows(query)])

    def recipes(self) -> list[str]:
        """The names of every recipe a run was started with (for the recipe filter)."""
        query = sa.select(recipes_table.c.name).distinct().order_by(recipes_table.c.name)
        return [str(r[0]) for r in self._rows(query)]

    # the queue -----------------------------------------------------------------------------------

    def queue(self, before: str | None = None, size: int = PAGE_SIZE) -> Page:
        """Failed and waiting runs to work: not marked resolved, and not retried or replayed by
        a run that succeeded."""
        r = runs_table.c
        child = runs_table.alias("child")
        # the runs made from others are few: found once through runs_parent (`parent > ''`
        # walks that index; the status is compared through coalesce so that the planner does
        # not take runs_status instead and read every succeeded run); a retry of a retry that
        # succeeded supersedes every failed run of the chain it was made from
        fixed = (
            sa.select(child.c.parent.label("id"))
            .where(child.c.parent > "", sa.func.coalesce(child.c.status, "") == "succeeded")
            .cte("fixed", recursive=True)
        )
        up = runs_table.alias("up")
        fixed = fixed.union_all(  # a chain of forks has no circle
            sa.select(up.c.parent).where(
                up.c.id == fixed.c.id,
                up.c.parent > "",
                up.c.status.in_(("failed", "waiting")),
            )
        )
        superseded = sa.select(fixed.c.id)
        query = sa.select(*_ROW_COLUMNS).where(
            r.status.in_(("failed", "waiting")),
            r.id.not_in(superseded),
            ~sa.exists().where(marks_table.c.run_id == r.id),
        )
        waiting = query.subquery()
        counts = {"failed": 0, "waiting": 0}
        by_status = sa.select(waiting.c.status, sa.func.count()).group_by(waiting.c.status)
        for status, count in self._rows(by_status):
            counts[str(status)] = int(count)
        cursor = _parse_cursor(before)
        if cursor is not None:
            query = query.where(
                r.started_at <= cursor[0], sa.or_(r.started_at < cursor[0], r.id < cursor[1])
            )
        query = query.order_by(r.started_at.desc(), r.id.desc()).limit(size + 1)
        rows = [RunRow(*row) for row in self._rows(query)]
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, _cursor(rows[-1]) if more and rows else None, counts)

    def mark_resolved(self, run_id: str, note: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(marks_table).where(marks_table.c.run_id == run_id))
            conn.execute(
                sa.insert(marks_table).values(run_id=run_id, resolved_at=now_iso(), note=note)
            )
            close_run(conn, run_id, note)  # its incident: the "resolved" message goes out

    def reopen(self, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(marks_table).where(marks_table.c.run_id == run_id))

    # one run -------------------------------------------------------------------------------------

    def mark(self, run_id: str) -> tuple[str, str | None] | None:
        """When the run was marked resolved, and the note, or None."""
        m = marks_table.c
        rows = self._rows(sa.select(m.resolved_at, m.note).where(m.run_id == run_id))
        return (str(rows[0][0]), rows[0][1]) if rows else None

    def person(self, run_id: str) -> str | None:
        """Who the run was about (a name, else an email), when known."""
        rows = self._rows(sa.select(runs_table.c.person).where(runs_table.c.id == run_id))
        return str(rows[0][0]) if rows and rows[0][0] else None

    def fork_kind(self, run_id: str) -> str | None:
        """ "retry" or "replay" when the run was made from another one."""
        f = forks_table.c
        rows = self._rows(sa.select(f.kind).where(f.run_id == run_id))
        return str(rows[0][0]) if rows else None

    def children(self, run_id: str) -> list[tuple[RunRow, str | None]]:
        """The runs made from this one (its retries and replays), oldest first, with their kind."""
        f = forks_table.c
        query = (
            sa.select(*_ROW_COLUMNS, f.kind)
            .select_from(runs_table.outerjoin(forks_table, f.run_id == runs_table.c.id))
            .where(runs_table.c.parent == run_id)
            .order_by(runs_table.c.started_at, runs_table.c.id)
        )
        return [(RunRow(*row[:-1]), row[-1]) for row in self._rows(query)]

    def fixed(self, run_id: str) -> tuple[str | None, list[str]]:
        """The run that fixed the failed ``run_id`` (a later retry or replay that succeeded),
        and the failed runs the succeeded ``run_id`` fixed."""
        with self.engine.connect() as conn:
            return fixed_by(conn, run_id), fixes(conn, run_id)

    def terms(self, run_id: str, limit: int = 300) -> list[str]:
        """The ids and emails the run touched (for search links), in order."""
        t = terms_table.c
        query = sa.select(t.term).where(t.run_id == run_id).order_by(t.term).limit(limit)
        return [str(r[0]) for r in self._rows(query)]

    def links_among(self, terms: Sequence[str], limit: int = 100) -> list[dict[str, Any]]:
        """The id links whose GoHighLevel or Connecteam id is one of ``terms`` (lower-cased)."""
        if not terms:
            return []
        lk = links_table.c
        wanted = list(terms)[:500]
        query = (
            sa.select(lk.kind, lk.ghl_id, lk.connecteam_id, lk.updated_at)
            .where(sa.or_(sa.func.lower(lk.ghl_id).in_(wanted), lk.connecteam_id.in_(wanted)))
            .order_by(lk.updated_at.desc())
            .limit(limit)
        )
        return self._named(
            [
                {"kind": k, "ghl_id": g, "connecteam_id": c, "updated_at": u}
                for k, g, c, u in self._rows(query)
            ]
        )

    def _named(self, links: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``links`` with the ``name`` of the person either side is (None when unknown), from
        the people the runs met (:func:`~connector.persistence.history.names_of`)."""
        if not links:
            return links
        ids = [str(link[side]) for link in links for side in ("ghl_id", "connecteam_id")]
        with self.engine.connect() as conn:
            names = names_of(conn, ids)
        for link in links:
            link["name"] = names.get(normalize(str(link["ghl_id"]))) or names.get(
                normalize(str(link["connecteam_id"]))
            )
        return links

    def links(
        self, kind: str | None, q: str | None, before: str | None = None, limit: int = 200
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The id links (of ``kind``, with ``q`` as either id), newest first, ``limit`` a page
        from the cursor ``before``; and the cursor of the next (older) page, ``None`` at the
        last."""
        lk = links_table.c
        order = (lk.updated_at, lk.kind, lk.ghl_id)
        query = sa.select(lk.kind, lk.ghl_id, lk.connecteam_id, lk.created_at, lk.updated_at)
        if kind:
            query = query.where(lk.kind == kind)
        if q:
            query = query.where(sa.or_(lk.ghl_id == q.strip(), lk.connecteam_id == q.strip()))
        after = _parse_link_cursor(before)
        if after is not None:
            query = query.where(sa.tuple_(*order) < sa.tuple_(*after))
        query = query.order_by(*(c.desc() for c in order)).limit(limit + 1)
        keys = ("kind", "ghl_id", "connecteam_id", "created_at", "updated_at")
        rows = [dict(zip(keys, row, strict=True)) for row in self._rows(query)]
        if len(rows) <= limit:
            return self._named(rows), None
        last = rows[limit - 1]
        return self._named(rows[:limit]), _LINK_CURSOR.join(
            (last["updated_at"], last["kind"], last["ghl_id"])
        )

    def link_kinds(self) -> list[str]:
        query = sa.select(links_table.c.kind).distinct().order_by(links_table.c.kind)
        return [str(r[0]) for r in self._rows(query)]
