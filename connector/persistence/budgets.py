"""Request-level rate budgets, shared through the one database by every process and thread.

A request first asks :meth:`Budget.reserve` for room under its key's limits; it goes when the
answer is ``0.0`` (and is then counted) and otherwise waits the seconds returned and asks again, so
requests wait for budget instead of meeting 429s. After the response, :meth:`Budget.observe` reads
the vendor's rate-limit headers and raises our counts to what the API says is spent, because other
clients of the same account spend the same budget.

A key is one vendor budget: ``<app>:<credential fingerprint>:<location or account>`` (see
:func:`budget_key`). Its limits are :class:`Limit` values, from what the app declares
(:func:`app_limits`: its ``rate_limits``, and the response headers that report each window, from
its ``rate_limit_headers``), with ``CONNECTOR_RATE_LIMITS`` applied.

Two tables on :data:`connector.persistence.tables.metadata` hold the counts:

``rate_requests (id, key, at, n, expires)``
    Short windows (up to :data:`MAX_SLIDING_WINDOW`) are sliding: one row per granted request
    (``n`` = 1) at its time ``at``, and a limit is full when the rows of its key with
    ``at >= now - window`` add up to its capacity, so no key exceeds its budget in *any* window of
    that length. The rows in the future (a peer whose clock runs ahead) count too, which is the
    safe side. A correction from :meth:`Budget.observe` is one row with ``n`` > 1. ``expires`` is
    ``at`` plus the longest short window of the key's limits: :meth:`Budget.prune` deletes the rows
    past it, whichever process wrote them and whatever windows it used. Index: ``(key, at)``.
``rate_days (key, day, used)``
    Day limits (a window of exactly 86,400 s) are one counter per key and UTC day (``day`` = days
    since the epoch), incremented, so 200,000 requests a day are one row, not 200,000.

:meth:`Budget.reserve` is one short transaction of at most three statements after the lock: one
``SELECT`` reads every window's sum and oldest time and the day counter, then, if every limit has
room, one ``INSERT`` of the request row and one upsert of the day counter. The transaction is
atomic across processes: on SQLite the engine begins every transaction with ``BEGIN IMMEDIATE``,
which serialises writers; on PostgreSQL it first takes ``pg_advisory_xact_lock`` on a 64-bit hash
of the key, so only requests of the same key wait for each other. The clock is read after the lock
is held, so ``now`` is never stale.

A full limit answers the exact wait: for a sliding window, until the oldest counted request that
must leave has left it, plus :data:`MARGIN`; for a day counter, until the next UTC midnight, plus
:data:`MARGIN`. The longest wait of the full limits wins.

:meth:`Budget.take` is what the runtime asks: the same reservation for up to :data:`MAX_BATCH`
requests at once (a tenth of the smallest capacity at most), counted in one row a little ahead
of now and handed out by this process one by one, so that a busy process reserves once for
several requests; the limit still holds across processes (see its docstring).

Pruning is opportunistic: each :class:`Budget` prunes after every :data:`PRUNE_EVERY` reserves,
counting from a random start so that many short-lived processes prune too. Day counters older
than yesterday go with it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connector.errors import StoreError
from connector.persistence.dialects import insert
from connector.persistence.prepared import Prepared
from connector.persistence.tables import MAX_KEY_LENGTH, rate_days, rate_requests

__all__ = [
    "DAY",
    "MARGIN",
    "MAX_KEY_LENGTH",
    "MAX_SLIDING_WINDOW",
    "PRUNE_EVERY",
    "Budget",
    "Limit",
    "app_limits",
    "budget_key",
    "limit_overrides",
    "rate_days",
    "rate_requests",
]

DAY = 86_400.0
MAX_SLIDING_WINDOW = 3_600.0  # the longest window counted as one row per request
MARGIN = 0.001  # added to every wait, so that the request that must leave has left
PRUNE_EVERY = 500
# Batches (Budget.take): a process reserves up to this many requests of one key per transaction,
# never more than a tenth of the smallest sliding capacity (GoHighLevel's 100 per 10 s: 10), so
# a key whose limits are small is reserved one request at a time, as before
MAX_BATCH = 16
BATCH_SHARE = 10
BATCH_LEAD = 1.0  # seconds ahead a batch's row is counted at, at most (a tenth of the window)
_DIALECTS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Limit:
    """At most ``capacity`` requests in any ``window`` seconds (a day: per UTC day).

    ``reported_by``: the (remaining, size) response headers by which the API reports what is
    left of this window, lower case, the first present one read; a size header may be None (the
    capacity is the size then). :meth:`Budget.observe` reads them.
    """

    capacity: int
    window: float  # seconds
    name: str  # "burst", "minute", "day"
    reported_by: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise ValueError(f"limit {self.name!r}: capacity must be an integer")
        if self.capacity < 1:
            raise ValueError(f"limit {self.name!r}: capacity must be at least 1")
        if not (0 < self.window <= MAX_SLIDING_WINDOW or self.window == DAY):
            raise ValueError(
                f"limit {self.name!r}: the window must be at most {MAX_SLIDING_WINDOW:g} s"
                f" (sliding) or exactly {DAY:g} s (per UTC day), not {self.window!r}"
            )

    @property
    def daily(self) -> bool:
        """Whether this limit is counted per UTC day rather than per request."""
        return self.window == DAY


def budget_key(app: str, credential: str, scope: str) -> str:
    """The key of one vendor budget: ``app:credential:scope``, hashed when that is too long.

    ``credential`` is already a fingerprint (never a token); ``scope`` is the location or account.
    A key of :data:`MAX_KEY_LENGTH` characters or more becomes ``app:#<sha256 of the key>``.
    """
    key = f"{app}:{credential}:{scope}"
    if len(key) < MAX_KEY_LENGTH:
        return key
    return f"{app[:64]}:#{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass(frozen=True)
class _Split:
    """The limits of one call, split into sliding windows and day counters."""

    short: tuple[Limit, ...]
    daily: tuple[Limit, ...]

    @property
    def horizon(self) -> float:
        """The longest sliding window: how long a request row matters."""
        return max((limit.window for limit in self.short), default=0.0)


def _split(limits: Sequence[Limit]) -> _Split:
    if isinstance(limits, tuple):  # the runtime's, the same tuple at every request
        return _split_once(limits)
    return _split_limits(limits)


@functools.lru_cache(maxsize=64)
def _split_once(limits: tuple[Limit, ...]) -> _Split:
    return _split_limits(limits)


def _split_limits(limits: Sequence[Limit]) -> _Split:
    names = [limit.name for limit in limits]
    if len(set(names)) != len(names):
        raise ValueError(f"limit names must be distinct: {names}")
    return _Split(
        short=tuple(limit for limit in limits if not limit.daily),
        daily=tuple(limit for limit in limits if limit.daily),
    )


@dataclass(frozen=True)
class _Usage:
    """What one key has spent: per sliding limit its sum and oldest time, and today's count."""

    used: dict[str, int]
    oldest: dict[str, float | None]
    today: int


def _utc_day(now: float) -> int:
    return int(now // DAY)


_advisory_lock = Prepared(
    sa.select(sa.func.pg_advisory_xact_lock(sa.bindparam("b_lock", type_=sa.BigInteger)))
)


def _lock_id(key: str) -> int:
    """A signed 64-bit hash of ``key``, for ``pg_advisory_xact_lock``."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# Statements are built once per shape and given their values as parameters: building and keying
# a statement costs SQLAlchemy several times what SQLite takes to run it.


@functools.lru_cache(maxsize=64)
def _usage_prepared(split: _Split) -> Prepared:
    """:func:`_usage_statement`, compiled once (connector.persistence.prepared)."""
    return Prepared(_usage_statement(split))


def _usage_statement(split: _Split) -> sa.Select[*tuple[Any, ...]]:
    """One ``SELECT``: per sliding limit the sum and oldest time in its window, then today's count.
    Parameters: ``b_key``, ``b_day``, ``b_since`` (the longest window's start) and ``b_since_<i>``
    (the start of the i-th sliding limit's window)."""
    key: sa.BindParameter[Any] = sa.bindparam("b_key")
    today = (
        sa.select(rate_days.c.used)
        .where(rate_days.c.key == key, rate_days.c.day == sa.bindparam("b_day"))
        .scalar_subquery()
    )
    columns: list[sa.ColumnElement[Any]] = []
    for i in range(len(split.short)):
        inside = rate_requests.c.at >= sa.bindparam(f"b_since_{i}")
        columns.append(sa.func.coalesce(sa.func.sum(sa.case((inside, rate_requests.c.n))), 0))
        columns.append(sa.func.min(sa.case((inside, rate_requests.c.at))))
    if split.daily:
        columns.append(sa.func.coalesce(today, 0))
    query = sa.select(*columns)
    if split.short:
        since: sa.BindParameter[Any] = sa.bindparam("b_since")
        query = query.where(rate_requests.c.key == key, rate_requests.c.at >= since)
    return query


def _usage_params(key: str, split: _Split, now: float) -> dict[str, Any]:
    params: dict[str, Any] = {"b_key": key, "b_day": _utc_day(now), "b_since": now - split.horizon}
    for i, limit in enumerate(split.short):
        params[f"b_since_{i}"] = now - limit.window
    return params


def _read_usage(conn: sa.Connection, key: str, split: _Split, now: float) -> _Usage:
    row = _usage_prepared(split).first(conn, _usage_params(key, split, now))
    used = {limit.name: int(row[2 * i]) for i, limit in enumerate(split.short)}
    oldest = {limit.name: _float(row[2 * i + 1]) for i, limit in enumerate(split.short)}
    today = int(row[-1]) if split.daily else 0
    return _Usage(used, oldest, today)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _leaving_at(conn: sa.Connection, key: str, limit: Limit, now: float, free: int) -> float:
    """When the requests in ``limit``'s window have freed ``free`` places: the time of the row
    where the running sum, oldest first, reaches ``free`` (only when a window is over capacity)."""
    running = sa.func.sum(rate_requests.c.n).over(order_by=(rate_requests.c.at, rate_requests.c.id))
    rows = (
        sa.select(rate_requests.c.at, running.label("running"))
        .where(rate_requests.c.key == key, rate_requests.c.at >= now - limit.window)
        .subquery()
    )
    query = sa.select(rows.c.at).where(rows.c.running >= free).order_by(rows.c.at).limit(1)
    at = conn.execute(query).scalar()
    return now if at is None else float(at)


def _sliding_wait(conn: sa.Connection, key: str, limit: Limit, usage: _Usage, now: float) -> float:
    used = usage.used[limit.name]
    if used < limit.capacity:
        return 0.0
    free = used - limit.capacity + 1
    oldest = usage.oldest[limit.name]
    leaving = (
        oldest if free == 1 and oldest is not None else _leaving_at(conn, key, limit, now, free)
    )
    return max(leaving + limit.window - now, 0.0) + MARGIN


def _day_wait(limit: Limit, usage: _Usage, now: float) -> float:
    if usage.today < limit.capacity:
        return 0.0
    return (_utc_day(now) + 1) * DAY - now + MARGIN


_insert_request = Prepared(
    sa.insert(rate_requests).returning(rate_requests.c.id), keys=("key", "at", "n", "expires")
)


def _add_requests(conn: sa.Connection, key: str, split: _Split, now: float, n: int) -> int:
    """Insert one row of ``n`` requests at ``now``; returns its id."""
    row = _insert_request.first(
        conn, {"key": key, "at": now, "n": n, "expires": now + split.horizon}
    )
    assert row is not None
    return int(row[0])


def _answered_statement() -> sa.Update:
    now: sa.BindParameter[float] = sa.bindparam("b_now", type_=sa.Double())
    return (
        sa.update(rate_requests)
        .where(
            rate_requests.c.id == sa.bindparam("b_row"),
            rate_requests.c.key == sa.bindparam("b_key"),
            rate_requests.c.at < now,
        )
        .values(at=now, expires=rate_requests.c.expires + (now - rate_requests.c.at))
    )


_answered_update = Prepared(_answered_statement())


def _answered(conn: sa.Connection, key: str, row: int, now: float) -> None:
    """Move the row of a granted request to ``now``, when its answer came: the API counted the
    request when it arrived, at some time between the grant and the answer, so the request holds
    its place until the latest time the API may have counted it. A grant is then never let into
    a window of the API's that still holds the request, however long the request took to arrive
    (a new connection, a slow network)."""
    _answered_update.execute(conn, {"b_row": row, "b_key": key, "b_now": now})


def _upsert_day_statement(dialect: str, add: bool) -> Any:
    stmt = insert(dialect, rate_days)
    new = stmt.excluded.used
    if add:
        used: sa.ColumnElement[int] = rate_days.c.used + new
    else:
        used = sa.case((new > rate_days.c.used, new), else_=rate_days.c.used)
    return stmt.on_conflict_do_update(
        index_elements=[rate_days.c.key, rate_days.c.day], set_={"used": used}
    )


_upsert_days = {
    add: Prepared(
        functools.partial(lambda add, dialect: _upsert_day_statement(dialect, add), add),
        keys=("key", "day", "used"),
    )
    for add in (True, False)
}


def _upsert_day(conn: sa.Connection, key: str, now: float, value: int, *, add: bool) -> None:
    """Today's counter of ``key``: plus ``value`` (``add``), or raised to ``value``."""
    _upsert_days[add].execute(conn, {"key": key, "day": _utc_day(now), "used": value})


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer header, or None when it is missing or garbage."""
    value = headers.get(name)
    if not isinstance(value, str):
        return None
    text = value.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def _reported_use(limit: Limit, headers: Mapping[str, str]) -> int | None:
    """How much of ``limit`` the API says is spent (at most its capacity), or None."""
    for remaining_name, max_name in limit.reported_by:
        remaining = _header_int(headers, remaining_name.lower())
        if remaining is None:
            continue
        size = _header_int(headers, max_name.lower()) if max_name else None
        ceiling = size or limit.capacity
        return min(max(ceiling - remaining, 0), limit.capacity)
    return None


def _plain_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig if orig is not None else exc).splitlines()[0]


@dataclass
class _Batch:
    """The requests of one key this process reserved at once and hands out one at a time."""

    left: int = 0  # not handed out yet
    until: float = 0.0  # handed out until this time, the row's (epoch seconds)
    row: int | None = None
    size: int = 1  # how many the next reservation asks for
    reserved: float = float("-inf")  # when the last reservation was made (epoch seconds)


@functools.lru_cache(maxsize=64)
def _batch_cap(split: _Split) -> int:
    """The most requests of one key a reservation takes at once (1: no batches)."""
    caps = [limit.capacity // BATCH_SHARE for limit in split.short]
    caps += [limit.capacity // (BATCH_SHARE * 100) for limit in split.daily]
    return max(1, min([MAX_BATCH, *caps]))


@functools.lru_cache(maxsize=64)
def _lead(split: _Split) -> float:
    """How far ahead a batch's row is counted: every request of the batch reaches the API before
    then (they are handed out in the first half of it)."""
    shortest = min((limit.window for limit in split.short), default=DAY)
    return min(BATCH_LEAD, shortest / BATCH_SHARE)


class Budget:
    """The rate budgets in ``engine``'s database; ``clock`` gives epoch seconds."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        if engine.dialect.name not in _DIALECTS:
            raise StoreError(f"rate budgets need SQLite or PostgreSQL, not {engine.dialect.name}")
        self._engine = engine
        self._clock = clock
        self._prune_lock = threading.Lock()
        self._until_prune = random.randint(1, PRUNE_EVERY)
        self._batches: dict[str, _Batch] = {}
        self._batches_lock = threading.Lock()

    def take(self, key: str, limits: Sequence[Limit]) -> tuple[float, int | None, float]:
        """One request's place, from a batch this process reserved: ``(wait, row, at)``.

        ``wait`` is as :meth:`reserve` answers; when it is ``0.0`` the request may go now, and
        ``row`` counts it in the sliding windows at ``at``. A reservation takes up to
        :func:`_batch_cap` requests in one transaction, checked against every limit as one
        request is, and counts them together in one row at ``at``, ahead of now by
        :func:`_lead`: the requests are handed out in the first half of that time, so each
        reaches the API before the time it is counted at, and the limit holds across every
        process as it does one request at a time. A request answered after ``at`` is moved to
        its answer (``observe(answered=row)``). The batch size doubles while batches run out
        before their time and halves when one is left unused, so a key spent slowly reserves one
        request at a time (at now, as :meth:`reserve_row` does) and wastes nothing of its day.
        """
        split = _split(limits)
        if not limits:
            return 0.0, None, 0.0
        cap = _batch_cap(split)
        if cap == 1:  # one at a time, its row moved to its answer whenever that comes
            wait, row = self.reserve_row(key, limits)
            return wait, row, 0.0
        with self._batches_lock:
            batch = self._batches.setdefault(key, _Batch())
            lead = _lead(split)
            if batch.left > 0 and self._clock() < batch.until - lead / 2:
                batch.left -= 1
                return 0.0, batch.row, batch.until
            if batch.left > 0:  # the last batch outlived its time: ask for fewer
                batch.size = max(1, batch.size // 2)
            elif self._clock() - batch.reserved < lead / 2:  # it ran out at once: ask for more
                batch.size = min(cap, batch.size * 2)
            batch.left = 0
            size = batch.size
        with self._transaction(key) as (conn, now):
            usage = _read_usage(conn, key, split, now)
            room = min(
                [limit.capacity - usage.used[limit.name] for limit in split.short]
                + [limit.capacity - usage.today for limit in split.daily]
            )
            if room < 1:
                wait = self._wait(conn, key, split, now)
                return wait, None, now
            n = min(size, room)
            at = now + (lead if n > 1 else 0.0)
            row = None
            if split.short:
                row = _add_requests(conn, key, split, at, n)
            if split.daily:
                _upsert_day(conn, key, now, n, add=True)
        with self._batches_lock:
            batch.left, batch.until, batch.row, batch.reserved = n - 1, at, row, now
        self._maybe_prune()
        return 0.0, row, at

    def now(self) -> float:
        """The budget's clock (epoch seconds)."""
        return self._clock()

    def reserve(self, key: str, limits: Sequence[Limit]) -> float:
        """``0.0``: one request may go now, and it is counted in every limit. More: the seconds
        to wait before asking again; nothing was counted."""
        return self.reserve_row(key, limits)[0]

    def reserve_row(self, key: str, limits: Sequence[Limit]) -> tuple[float, int | None]:
        """:meth:`reserve`, and the id of the row that counts the granted request in the sliding
        windows (None when it must wait, or has no sliding limit), for :meth:`observe`'s
        ``answered``."""
        split = _split(limits)
        if not limits:
            return 0.0, None
        row = None
        with self._transaction(key) as (conn, now):
            wait = self._wait(conn, key, split, now)
            if wait == 0.0:
                row = self._count(conn, key, split, now)
        self._maybe_prune()
        return wait, row

    def observe(
        self,
        key: str,
        limits: Sequence[Limit],
        headers: Mapping[str, str],
        *,
        answered: int | None = None,
    ) -> None:
        """Raise our counts to what the response's rate-limit headers say is spent.

        Header names are case-insensitive. A count is never lowered (other clients of the account
        may be spending it); missing or garbage headers change nothing. ``answered`` is the row
        (from :meth:`reserve_row`) of the request this response answers: it is moved to now (see
        :func:`_answered`).
        """
        split = _split(limits)
        lowered = {str(name).lower(): value for name, value in headers.items()}
        reported = {
            limit.name: use
            for limit in limits
            if (use := _reported_use(limit, lowered)) is not None and use > 0
        }
        if not reported and answered is None:
            return
        with self._transaction(key) as (conn, now):
            if answered is not None:
                _answered(conn, key, answered, now)
            self._raise_short(conn, key, split, now, reported)
            days = [reported[limit.name] for limit in split.daily if limit.name in reported]
            if days:
                _upsert_day(conn, key, now, max(days), add=False)

    def usage(self, key: str, limits: Sequence[Limit]) -> dict[str, int]:
        """What ``key`` has spent of each limit now, by limit name."""
        split = _split(limits)
        if not limits:
            return {}
        with self._transaction(key) as (conn, now):
            usage = _read_usage(conn, key, split, now)
        return {**usage.used, **{limit.name: usage.today for limit in split.daily}}

    def prune(self) -> int:
        """Delete the request rows past their longest window and the day counters older than
        yesterday; returns the rows deleted."""
        with self._transaction(None) as (conn, now):
            requests = conn.execute(sa.delete(rate_requests).where(rate_requests.c.expires < now))
            days = conn.execute(sa.delete(rate_days).where(rate_days.c.day < _utc_day(now) - 1))
        return int(requests.rowcount) + int(days.rowcount)

    @contextlib.contextmanager
    def _transaction(self, key: str | None) -> Iterator[tuple[sa.Connection, float]]:
        """One transaction holding ``key``'s lock, and the clock read once the lock is held."""
        try:
            with self._engine.begin() as conn:
                if key is not None and conn.dialect.name == "postgresql":
                    _advisory_lock.first(conn, {"b_lock": _lock_id(key)})
                yield conn, self._clock()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"the rate budget failed: {_plain_error(exc)}") from None

    def _wait(self, conn: sa.Connection, key: str, split: _Split, now: float) -> float:
        usage = _read_usage(conn, key, split, now)
        waits = [_sliding_wait(conn, key, limit, usage, now) for limit in split.short]
        waits += [_day_wait(limit, usage, now) for limit in split.daily]
        return max(waits, default=0.0)

    def _count(self, conn: sa.Connection, key: str, split: _Split, now: float) -> int | None:
        row = _add_requests(conn, key, split, now, 1) if split.short else None
        if split.daily:
            _upsert_day(conn, key, now, 1, add=True)
        return row

    def _raise_short(
        self, conn: sa.Connection, key: str, split: _Split, now: float, reported: dict[str, int]
    ) -> None:
        """One row at ``now`` that lifts every reported sliding window to what the API says."""
        limits = [limit for limit in split.short if limit.name in reported]
        if not limits:
            return
        usage = _read_usage(conn, key, split, now)
        missing = max(reported[limit.name] - usage.used[limit.name] for limit in limits)
        if missing > 0:
            _add_requests(conn, key, split, now, missing)

    def _maybe_prune(self) -> None:
        with self._prune_lock:
            self._until_prune -= 1
            if self._until_prune > 0:
                return
            self._until_prune = PRUNE_EVERY
        with contextlib.suppress(StoreError):  # housekeeping: the next round prunes again
            self.prune()


def limit_overrides(text: str) -> dict[str, dict[str, tuple[int, float]]]:
    """``CONNECTOR_RATE_LIMITS``: the request budgets of your plan, where they differ from what
    an app declares (Connecteam's depend on the plan: 5 a minute on SBP, 100 on Expert, 200 on
    Enterprise). ``APP:NAME=REQUESTS/SECONDS``, comma-separated:
    ``connecteam:minute=200/60,connecteam:day=20000/86400``. A name the app does not declare is
    added. Raises ValueError naming the part that is wrong."""
    out: dict[str, dict[str, tuple[int, float]]] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            key, value = part.split("=", 1)
            app, name = key.split(":", 1)
            count, seconds = value.split("/", 1)
            limit = (int(count), float(seconds))
        except ValueError:
            raise ValueError(
                f"CONNECTOR_RATE_LIMITS: {part!r} is not APP:NAME=REQUESTS/SECONDS "
                "(connecteam:minute=200/60)"
            ) from None
        if limit[0] < 1 or limit[1] <= 0:
            raise ValueError(f"CONNECTOR_RATE_LIMITS: {part!r} must allow at least 1 request")
        out.setdefault(app.strip(), {})[name.strip()] = limit
    return out


def app_limits(
    declared: Sequence[tuple[int, float, str]],
    overrides: Mapping[str, tuple[int, float]] | None = None,
    reported_by: Mapping[str, tuple[tuple[str, str | None], ...]] | None = None,
) -> list[Limit]:
    """An app's declared limits, with ``overrides`` (by name) applied, each with the headers
    that report it (``reported_by``, by name)."""
    table = {str(n): (int(c), float(w)) for c, w, n in declared}
    table.update(overrides or {})
    headers = reported_by or {}
    return [Limit(c, w, n, tuple(headers.get(n, ()))) for n, (c, w) in table.items()]
