"""The connection store's parts: sealing, the key, the refresh lease, and one refresh across
threads (the processes' case is tests/runtime/test_auth.py, over real HTTP)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from connector.connections import grants
from connector.connections.tokens import Credential, Tokens
from connector.errors import NotConnected
from connector.persistence.connections import Connection, ConnectionStore
from connector.persistence.database import close_all, open_database
from connector.persistence.sealing import KEY_ENV, SecretBox, SecretKeyError, load_key, new_key


@pytest.fixture()
def store(tmp_path: Path) -> ConnectionStore:
    env = {"CONNECTOR_HOME": str(tmp_path)}
    db = open_database(env)
    yield ConnectionStore(db.engine, SecretBox(*load_key(env, db.url)))
    close_all()


def location(expires_in: float = 86_000) -> Connection:
    return Connection(
        id="ghl:location:L1",
        app="ghl",
        kind="location",
        account="L1",
        scopes=("contacts.readonly",),
        expires_at=time.time() + expires_in,
        meta={"token_url": "http://127.0.0.1:9/oauth/token"},
    )


SECRET = {"access_token": "at-1", "refresh_token": "rt-1", "client_id": "c", "client_secret": "s"}


def test_the_key_file_is_made_0600_and_a_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    env = {"CONNECTOR_HOME": str(tmp_path)}
    key, where = load_key(env, "sqlite:///x")
    assert where == str(tmp_path / "secret.key")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert load_key(env, "sqlite:///x")[0] == key  # the same key the next time
    sealed = SecretBox(key, where).seal({"access_token": "at-secret"})
    assert "at-secret" not in sealed
    other = SecretBox(new_key().encode(), KEY_ENV)
    with pytest.raises(SecretKeyError, match="not the key they were sealed with"):
        other.open(sealed, "ghl:location:L1")
    with pytest.raises(SecretKeyError, match="CONNECTOR_SECRET_KEY is not a valid key"):
        load_key({KEY_ENV: "short"}, "sqlite:///x")


def test_the_lease_has_one_holder_and_needs_login_stops_it(store: ConnectionStore) -> None:
    store.put(location(), SECRET)
    [conn] = store.find("ghl")
    assert store.take_lease(conn.id, conn.version, "a", 60)
    assert not store.take_lease(conn.id, conn.version, "b", 60)  # held
    assert not store.finish_refresh(conn.id, "b", SECRET, expires_at=None)  # not b's
    assert store.finish_refresh(conn.id, "a", {**SECRET, "access_token": "at-2"}, expires_at=None)
    fresh = store.get(conn.id)
    assert fresh is not None and fresh.version == conn.version + 1
    assert store.secret(fresh)["access_token"] == "at-2"
    assert not store.take_lease(conn.id, conn.version, "b", 60)  # the version moved on
    assert store.take_lease(conn.id, fresh.version, "b", 60)
    store.fail_refresh(conn.id, "b", "invalid_grant")
    assert not store.take_lease(conn.id, fresh.version, "c", 60)
    marked = store.get(conn.id)
    assert marked is not None and marked.needs_login == "invalid_grant"


def test_a_dead_refreshers_lease_expires(store: ConnectionStore) -> None:
    store.put(location(), SECRET)
    conn = store.get("ghl:location:L1")
    assert conn is not None
    assert store.take_lease(conn.id, conn.version, "dead", 0.01)
    time.sleep(0.05)
    assert store.take_lease(conn.id, conn.version, "alive", 60)


def test_eight_threads_after_a_401_make_one_grant(
    store: ConnectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(location(), SECRET)
    calls: list[str] = []

    def refresh(url: str, cid: str, secret: str, refresh_token: str, **kw: object) -> grants.Grant:
        calls.append(refresh_token)
        time.sleep(0.2)  # slow enough that the others find the lease held
        return grants.Grant("at-2", "rt-2", time.time() + 86_000, ("contacts.readonly",))

    monkeypatch.setattr(grants, "ghl_refresh", refresh)
    tokens = Tokens(store, {})
    used = tokens.credential("ghl", "L1")
    assert used.value == "Bearer at-1"
    got: list[Credential | None] = []
    threads = [
        threading.Thread(target=lambda: got.append(Tokens(store, {}).refreshed(used)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["rt-1"]
    assert [c.value for c in got if c is not None] == ["Bearer at-2"] * 8
    assert store.secret(store.get("ghl:location:L1"))["refresh_token"] == "rt-2"  # type: ignore[arg-type]


def test_a_refused_refresh_marks_the_connection_and_every_later_ask_fails_at_once(
    store: ConnectionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put(location(expires_in=10), SECRET)  # within the refresh margin: refreshed first
    calls = []

    def refuse(*args: object, **kw: object) -> grants.Grant:
        calls.append(1)
        raise grants.GrantRefused("invalid_grant", "refresh token was already used")

    monkeypatch.setattr(grants, "ghl_refresh", refuse)
    learned: list[str] = []
    tokens = Tokens(store, {})
    tokens.watch(learned.append)
    with pytest.raises(
        NotConnected, match=r"needs a new login .*invalid_grant.*connector auth login ghl"
    ):
        tokens.credential("ghl", "L1")
    with pytest.raises(NotConnected, match="needs a new login"):
        Tokens(store, {}).credential("ghl", "L1")
    assert calls == [1]
    assert "rt-1" in learned  # the redactor was told the tokens it read


def test_no_connection_names_the_location_and_the_command(store: ConnectionStore) -> None:
    with pytest.raises(
        NotConnected, match="not connected for location L9: run `connector auth login ghl`"
    ):
        Tokens(store, {}).credential("ghl", "L9")
    with pytest.raises(NotConnected, match="Connecteam is not connected"):
        Tokens(store, {}).credential("connecteam", "")


def test_a_value_with_a_secret_is_kept_sealed_and_opened_again(tmp_path: Path) -> None:
    from connector.persistence.sealing import Vault
    from connector.sending.http import Redactor

    token = "tok-echoed-9f8e7d6c5b4a"
    box = SecretBox(new_key().encode(), "a test key")
    vault = Vault(Redactor([token]).value, lambda: box)
    answer = {"contact": {"id": "c1", "note": f"sent with {token}"}, "access_token": "at-123456"}
    kept = vault.seal(answer)
    assert token not in json.dumps(kept) and "at-123456" not in json.dumps(kept)
    assert kept["shown"]["contact"]["id"] == "c1"  # readable as the run record shows it
    assert vault.open(kept) == answer  # the run gets the real value back
    plain = {"contact": {"id": "c2"}}
    assert vault.seal(plain) == plain and vault.open(plain) == plain
    other = Vault(Redactor([token]).value, lambda: SecretBox(new_key().encode(), "another key"))
    with pytest.raises(SecretKeyError):
        other.open(kept)


def test_where_the_key_is_kept_is_warned_about(tmp_path: Path) -> None:
    from connector.persistence.sealing import key_warnings

    key = tmp_path / "secret.key"
    key.write_text("k")
    key.chmod(0o600)
    sqlite = f"sqlite:///{tmp_path / 'connector.sqlite3'}"
    assert key_warnings(str(key), sqlite) == []
    [beside] = key_warnings(str(key), sqlite, public=True)
    assert "beside the database" in beside and KEY_ENV in beside
    [shared] = key_warnings(str(key), "postgresql://db/connector")
    assert "shared PostgreSQL" in shared and KEY_ENV in shared
    key.chmod(0o644)
    [readable] = key_warnings(str(key), sqlite)
    assert "can be read by other users" in readable
    assert key_warnings(KEY_ENV, "postgresql://db/connector") == []
