"""The key that encrypts stored credentials, and the encryption itself (Fernet: AES-128-CBC with
HMAC-SHA256, from ``cryptography``).

Where the key comes from, first found wins:

1. ``CONNECTOR_SECRET_KEY``: a Fernet key (``connector auth key`` prints a new one). Every process
   of a scale-out deployment needs the same key, so this is how they share it.
2. The OS keyring (service ``connector``, user: the database), where the ``keyring`` package is
   installed and has a working backend.
3. ``secret.key`` in ``CONNECTOR_HOME``, created 0600 on first use.

A token is never written anywhere in clear: the database holds only what :class:`SecretBox` makes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from connector.config import connector_home
from connector.errors import ConnectorError

__all__ = [
    "KEY_ENV",
    "KEY_FILENAME",
    "SecretBox",
    "SecretKeyError",
    "Vault",
    "key_warnings",
    "load_key",
    "new_key",
]

KEY_ENV = "CONNECTOR_SECRET_KEY"
KEY_FILENAME = "secret.key"
KEYRING_SERVICE = "connector"


class SecretKeyError(ConnectorError):
    """The encryption key is missing, malformed, or not the one the credentials were sealed with."""


def new_key() -> str:
    """A fresh Fernet key, as text."""
    return Fernet.generate_key().decode()


def _checked(key: str, where: str) -> bytes:
    raw = key.strip().encode()
    try:
        Fernet(raw)
    except (ValueError, TypeError):
        raise SecretKeyError(
            f"{where} is not a valid key (32 url-safe base64-encoded bytes);"
            " `connector auth key` prints a new one"
        ) from None
    return raw


def _from_keyring(account: str) -> bytes | None:
    try:
        import keyring  # type: ignore[import-not-found, unused-ignore]
        from keyring.backends import fail  # type: ignore[import-not-found, unused-ignore]
    except Exception:  # not installed, or broken: the key file is used
        return None
    try:
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or "null" in type(backend).__module__.lower():
            return None
        stored = keyring.get_password(KEYRING_SERVICE, account)
        if stored is None:
            stored = new_key()
            keyring.set_password(KEYRING_SERVICE, account, stored)
        return _checked(stored, "the key in the OS keyring")
    except SecretKeyError:
        raise
    except Exception:  # a locked or absent keyring daemon: the key file is used
        return None


def _from_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        try:
            return _checked(path.read_text(), f"the key file {path}")
        except OSError as exc:
            raise SecretKeyError(f"cannot read the key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as out:
        out.write(new_key() + "\n")
    return _checked(path.read_text(), f"the key file {path}")


def load_key(env: Mapping[str, str], database: str) -> tuple[bytes, str]:
    """The key for the credentials in ``database`` (its URL), and where it came from."""
    if env.get(KEY_ENV):
        return _checked(env[KEY_ENV], KEY_ENV), KEY_ENV
    account = hashlib.sha256(database.encode()).hexdigest()[:16]
    key = _from_keyring(account)
    if key is not None:
        return key, "the OS keyring"
    path = connector_home(env) / KEY_FILENAME
    return _from_file(path), str(path)


class SecretBox:
    """Seals JSON values for the database and opens them again."""

    def __init__(self, key: bytes, source: str) -> None:
        self._fernet = Fernet(key)
        self.source = source

    def __repr__(self) -> str:
        return f"SecretBox(from {self.source})"

    def seal(self, value: Mapping[str, Any]) -> str:
        return self._fernet.encrypt(
            json.dumps(dict(value), separators=(",", ":")).encode()
        ).decode()

    def open(self, sealed: str, what: str) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            raise SecretKeyError(
                f"cannot decrypt the stored credentials of {what} with the key from {self.source}:"
                f" it is not the key they were sealed with (set {KEY_ENV} to that key, or log in"
                " again)"
            ) from None
        if not isinstance(data, dict):
            raise SecretKeyError(f"the stored credentials of {what} are damaged: log in again")
        return data


SEALED = "__sealed__"


class Vault:
    """Values kept at rest (DBOS's checkpoints, the journal of writes) as the run record shows
    them: a value with a secret in it (a token an API echoed back, an OAuth answer) is kept as
    ``{"__sealed__": <the value, sealed>, "shown": <the value redacted>}``, and :meth:`open`
    gives the real value back to the run that needs it. A value without a secret is kept as it
    is. ``redact`` is the run record's redaction; the box is opened on first need (the key
    from :func:`load_key`)."""

    def __init__(self, redact: Callable[[Any], Any], box: Callable[[], SecretBox]) -> None:
        self.redact = redact
        self._make_box = box
        self._box: SecretBox | None = None

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            self._box = self._make_box()
        return self._box

    def seal(self, value: Any) -> Any:
        shown = self.redact(value)
        if shown == value:
            return value
        return {SEALED: self.box.seal({"value": value}), "shown": shown}

    def open(self, kept: Any) -> Any:
        if isinstance(kept, dict) and SEALED in kept and set(kept) <= {SEALED, "shown"}:
            return self.box.open(str(kept[SEALED]), "a run's checkpoint")["value"]
        return kept


def key_warnings(source: str, database_url: str, *, public: bool = False) -> list[str]:
    """What is unsafe about where the key of ``database_url`` is kept (``source``: where
    :func:`load_key` found it): a key file others may read, a key file of a process on a shared
    PostgreSQL database (each process would make its own, and it is not where the database's
    backups say it is), and, for a server on a public address (``public``), a key file beside
    the SQLite file it seals (one copy of the folder has both)."""
    if source == KEY_ENV or source == "the OS keyring":
        return []
    path = Path(source)
    found: list[str] = []
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:
            found.append(f"the sealing key {path} can be read by other users: `chmod 600 {path}`")
    if database_url.startswith("postgresql"):
        found.append(
            f"the sealing key is the file {path} of this machine, and the database is a shared"
            f" PostgreSQL one: give every process the same key in {KEY_ENV} (from a secret"
            " store), kept apart from the database and its backups"
        )
    elif public and database_url.startswith("sqlite:///"):
        database = Path(database_url.removeprefix("sqlite:///"))
        with contextlib.suppress(OSError):
            if database.parent.resolve() == path.parent.resolve():
                found.append(
                    f"the sealing key {path} sits beside the database it seals ({database}): a"
                    f" copy of that folder has both. Set {KEY_ENV} (or keep the key in the OS"
                    " keyring), and keep it out of the database's backups"
                )
    return found
