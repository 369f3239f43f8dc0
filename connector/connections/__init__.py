"""Connections to app accounts: OAuth tokens and API keys, sealed in the one database.

- :mod:`~connector.persistence.sealing`: the key, and the sealing (in the persistence wing);
- :mod:`~connector.persistence.connections`: the ``connections`` table and its refresh lease;
- :mod:`~connector.connections.grants`: the token grants, through Authlib;
- :mod:`~connector.connections.tokens`: credentials for requests, refreshed once at a time;
- :mod:`~connector.connections.login`: ``connector auth login``'s loopback flow.

:func:`tokens_for` gives the process's :class:`~connector.connections.tokens.Tokens` for an
environment's database; nothing here opens the database before a request needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from connector.persistence.connections import Connection, ConnectionStore, connection_id

if TYPE_CHECKING:
    from connector.connections.tokens import Tokens

__all__ = [
    "Connection",
    "ConnectionStore",
    "connection_id",
    "forget_tokens",
    "open_store",
    "tokens_for",
]

_tokens: dict[str, Tokens] = {}
_tokens_lock = threading.Lock()


def open_store(env: Mapping[str, str], *, sealed: bool = True) -> ConnectionStore:
    """The connection store of ``env``'s database; ``sealed=False`` opens no key (the plain
    facts only: ``auth status``, ``validate``)."""
    from connector.persistence.database import open_database
    from connector.persistence.sealing import SecretBox, load_key

    db = open_database(env)
    box = SecretBox(*load_key(env, db.url)) if sealed else None
    return ConnectionStore(db.engine, box)


def tokens_for(env: Mapping[str, str]) -> Tokens:
    """The :class:`~connector.connections.tokens.Tokens` of ``env``'s database (one per process)."""
    from connector.connections.tokens import Tokens
    from connector.persistence.database import database_url

    url = database_url(env)
    with _tokens_lock:
        tokens = _tokens.get(url)
        if tokens is None:
            tokens = _tokens[url] = Tokens(open_store(env), env)
        return tokens


def forget_tokens() -> None:
    """Drop the cached :class:`Tokens` (tests, and after ``connector.persistence.database.close_all``)."""
    with _tokens_lock:
        _tokens.clear()
