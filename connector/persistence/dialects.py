"""Statements that differ between SQLite and PostgreSQL (imports only SQLAlchemy)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = ["insert"]


def insert(dialect: str, table: sa.Table) -> Any:
    """An ``INSERT`` into ``table`` that can say ``ON CONFLICT`` (``on_conflict_do_nothing`` or
    ``_do_update``), in the words of ``dialect``: PostgreSQL, or SQLite."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
