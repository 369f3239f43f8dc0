"""The run history page's key and sessions, in the one database (shared by every serving process).

The key signs the page's session cookies and CSRF tokens. It is random, made on first use, and
kept sealed like a connection's secret (:class:`~connector.persistence.sealing.SecretBox`), so it
cannot be derived from the password and a copied database without its sealing key does not give
it away. Beside it is a fingerprint of the password it was last used with: when
``CONNECTOR_UI_PASSWORD`` changes, every session ends.

A session is a row (the SHA-256 of its cookie's nonce, and its expiry): logging out deletes it,
so a copied cookie is refused from then on, by every process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

import sqlalchemy as sa

from connector.persistence.sealing import SecretBox
from connector.persistence.tables import page_keys_table, page_sessions_table

__all__ = ["PageSessions"]

KEY_NAME = "page"


def _id(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


class PageSessions:
    def __init__(
        self,
        engine: sa.Engine,
        box: Callable[[], SecretBox],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self._box = box
        self.clock = clock

    def key(self, password: str) -> bytes:
        """The page's key (made and stored sealed on first use). When ``password`` is not the
        one the key was last used with, every session ends first."""
        box = self._box()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(page_keys_table.c.sealed).where(page_keys_table.c.name == KEY_NAME)
            ).first()
            if row is None:
                key = secrets.token_bytes(32)
                try:
                    with conn.begin_nested():
                        conn.execute(
                            sa.insert(page_keys_table).values(
                                name=KEY_NAME,
                                sealed=box.seal(self._data(key, password)),
                                updated_at=self.clock(),
                            )
                        )
                    return key
                except sa.exc.IntegrityError:  # another process made it meanwhile
                    row = conn.execute(
                        sa.select(page_keys_table.c.sealed).where(
                            page_keys_table.c.name == KEY_NAME
                        )
                    ).one()
            data = box.open(str(row[0]), "the run history page's key")
            key = base64.b64decode(str(data["key"]))
            if not hmac.compare_digest(
                str(data.get("password", "")), self._fingerprint(key, password)
            ):
                conn.execute(sa.delete(page_sessions_table))  # a new password: every session ends
                conn.execute(
                    sa.update(page_keys_table)
                    .where(page_keys_table.c.name == KEY_NAME)
                    .values(sealed=box.seal(self._data(key, password)), updated_at=self.clock())
                )
            return key

    @staticmethod
    def _fingerprint(key: bytes, password: str) -> str:
        return hmac.new(key, b"password:" + password.encode(), hashlib.sha256).hexdigest()

    def _data(self, key: bytes, password: str) -> dict[str, str]:
        return {
            "key": base64.b64encode(key).decode(),
            "password": self._fingerprint(key, password),
        }

    def start(self, nonce: str, expires_at: float) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(page_sessions_table).where(page_sessions_table.c.expires_at < now)
            )
            conn.execute(
                sa.insert(page_sessions_table).values(
                    id=_id(nonce), expires_at=expires_at, created_at=now
                )
            )

    def alive(self, nonce: str) -> bool:
        with self.engine.connect() as conn:
            until = conn.execute(
                sa.select(page_sessions_table.c.expires_at).where(
                    page_sessions_table.c.id == _id(nonce)
                )
            ).scalar()
        return until is not None and float(until) > self.clock()

    def end(self, nonce: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(page_sessions_table).where(page_sessions_table.c.id == _id(nonce))
            )
