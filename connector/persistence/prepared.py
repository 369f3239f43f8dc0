"""Statements of the hot path, compiled once and handed to the database driver as they are.

SQLAlchemy's Core spends, on each ``conn.execute(statement, params)``, several times what SQLite
takes to run a short statement: it keys the statement for its compiled cache, looks it up, and
builds the parameters. A :class:`Prepared` statement is compiled once per dialect (SQLite,
PostgreSQL) into the SQL text SQLAlchemy itself writes for it, and each execution is one call to
the driver's cursor, inside the caller's transaction (a ``sa.Connection``'s), with the
parameters in the driver's style (``?`` positions for sqlite3, ``%(name)s`` for psycopg); the
values a statement holds itself (a literal such as the ``0`` of ``coalesce(x, 0)``) go with them.

What SQLAlchemy would do around the driver is kept: a value is converted by the column type's
bind processor where the type has one (a boolean, a float on SQLite), and an error of the driver
is raised as SQLAlchemy raises it (``sa.exc.OperationalError`` and its kin, the original as
``.orig``; a lost connection invalidated), so :func:`connector.persistence.database.retrying`
and the stores' error messages see what they saw before. Column defaults are not filled in:
every parameter the statement names must be given.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

__all__ = ["Prepared"]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order the SQL text takes them
    positional: bool  # ``?`` (a tuple of values) rather than ``%(name)s`` (a dict)
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]  # name -> bind processor
    fixed: dict[str, Any]  # the values the statement holds itself (a literal, ``coalesce(x, 0)``)


Statement = sa.Executable | Callable[[str], sa.Executable]


class Prepared:
    """``statement`` (or, when it is written in a dialect's own words, the function that
    makes it for a dialect's name), compiled once per dialect, run through the driver's cursor.
    ``keys``: the columns an ``INSERT`` or an ``UPDATE`` sets, each a parameter of that name."""

    def __init__(self, statement: Statement, keys: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.keys = list(keys) if keys is not None else None
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: sa.Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            statement = self.statement
            if not isinstance(statement, sa.Executable):
                statement = statement(dialect.name)
            compiled = statement.compile(  # type: ignore[attr-defined]
                dialect=dialect, column_keys=self.keys
            )
            if compiled.positional:
                names = tuple(compiled.positiontup or ())
            else:
                names = tuple(compiled.bind_names.values())
            processors = tuple(
                (name, proc)
                for name, proc in compiled._bind_processors.items()
                if proc is not None and name in names
            )
            fixed = {
                name: bind.effective_value
                for name, bind in compiled.binds.items()
                if name in names and not bind.required
            }
            found = self._compiled[dialect.name] = _Compiled(
                compiled.string, names, bool(compiled.positional), processors, fixed
            )
        return found

    def _args(self, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        if compiled.fixed:
            params = {**compiled.fixed, **params}
        if compiled.processors:
            params = dict(params)
            for name, proc in compiled.processors:
                value = params[name]
                params[name] = None if value is None else proc(value)
        if compiled.positional:
            return tuple([params[name] for name in compiled.names])
        return {name: params[name] for name in compiled.names}

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> int:
        """Run it once with ``params``, in ``conn``'s transaction; returns the rows it changed."""
        return self._run(conn, params, fetch=False)[1]

    def first(self, conn: sa.Connection, params: Mapping[str, Any]) -> Any:
        """Run it once with ``params``; its first row (what ``RETURNING`` or a ``SELECT``
        gives, a tuple), or None."""
        return self._run(conn, params, fetch=True)[0]

    def _run(self, conn: sa.Connection, params: Mapping[str, Any], *, fetch: bool) -> Any:
        compiled = self._for(conn.dialect)
        args = self._args(compiled, params)
        with _cursor(conn, compiled.sql, args) as cursor:
            cursor.execute(compiled.sql, args)
            row = cursor.fetchone() if fetch else None
            return row, cursor.rowcount

    def executemany(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run it once for every row of ``rows`` (none: nothing), in ``conn``'s transaction."""
        if not rows:
            return
        compiled = self._for(conn.dialect)
        args = [self._args(compiled, row) for row in rows]
        with _cursor(conn, compiled.sql, args) as cursor:
            cursor.executemany(compiled.sql, args)


@contextlib.contextmanager
def _cursor(conn: sa.Connection, sql: str, args: Any) -> Iterator[Any]:
    """A cursor of ``conn``'s driver connection, closed after; an error of the driver raised as
    SQLAlchemy raises it (:func:`_wrapped`)."""
    cursor = conn.connection.cursor()
    try:
        yield cursor
    except Exception as exc:
        wrapped = _wrapped(conn, sql, args, exc)
        if wrapped is exc:
            raise
        raise wrapped from exc
    finally:
        with contextlib.suppress(Exception):  # a connection lost: the error says so
            cursor.close()


def _wrapped(conn: sa.Connection, sql: str, args: Any, exc: Exception) -> BaseException:
    """The driver's error ``exc`` as SQLAlchemy raises it (a lost connection invalidated)."""
    dialect = conn.dialect
    dbapi_error = dialect.loaded_dbapi.Error
    if not isinstance(exc, dbapi_error):  # not the database's: raised as it is
        return exc
    lost = False
    try:
        lost = bool(dialect.is_disconnect(exc, conn.connection.dbapi_connection, None))
    except Exception:
        lost = False
    if lost and not conn.invalidated:
        conn.invalidate(exc)
    return sa.exc.DBAPIError.instance(
        sql, args, exc, dbapi_error, dialect=dialect, connection_invalidated=lost
    )
