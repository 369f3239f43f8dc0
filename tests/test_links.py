"""The id-link store (connector.persistence.links) and its recipe actions (connector.builtins.links).

The store tests run on SQLite in a temporary CONNECTOR_HOME, and on PostgreSQL too when
``CONNECTOR_TEST_POSTGRES_URL`` names a server (``postgresql://user@host/db``): each test on a
fresh database of its own there (the ``postgres_database`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pluggy
import pytest

from connector import hookspecs
from connector.apps import Action, RunContext
from connector.apps.registry import build_registry
from connector.builtins import links as links_plugin
from connector.errors import StoreError
from connector.persistence.database import DATABASE_FILENAME, close_all, database_url, make_engine
from connector.persistence.links import LinkError, LinkStore
from connector.persistence.migrations import upgrade

CONTACT = "ocQHyuzHvysMo5N5VsXc"
POSTGRES_ENV = "CONNECTOR_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", *(["postgresql"] if os.environ.get(POSTGRES_ENV) else [])]
WORKER = Path(__file__).with_name("links_worker.py")


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    """Each test's databases are its own: dispose of the engines it opened when it ends."""
    yield
    close_all()


@pytest.fixture(params=BACKENDS)
def db_env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The environment of an empty database: SQLite under a temporary home, or PostgreSQL."""
    if request.param == "sqlite":
        return {"CONNECTOR_HOME": str(tmp_path / "home")}
    return {"CONNECTOR_DATABASE_URL": request.getfixturevalue("postgres_database")()}


@pytest.fixture
def store(db_env: dict[str, str]) -> Iterator[LinkStore]:
    with LinkStore.for_env(db_env) as s:
        yield s


def sqlite_env(home: Path) -> dict[str, str]:
    return {"CONNECTOR_HOME": str(home)}


def test_put_then_get_from_either_side(store: LinkStore) -> None:
    store.put("contact", CONTACT, 9001, {"locationId": "loc1"})
    by_ghl = store.get("contact", ghl_id=CONTACT)
    by_ct = store.get("contact", connecteam_id=9001)
    assert by_ghl == by_ct
    assert by_ghl is not None
    assert by_ghl.connecteam_id == 9001  # integers come back as integers
    assert by_ghl.ghl_id == CONTACT
    assert by_ghl.meta == {"locationId": "loc1"}
    assert by_ghl.created_at.endswith("Z")


def test_lookup_ignores_string_or_integer_form(store: LinkStore) -> None:
    store.put("contact", CONTACT, 9001)
    link = store.get("contact", connecteam_id="9001")
    assert link is not None and link.connecteam_id == 9001


def test_kinds_are_separate(store: LinkStore) -> None:
    store.put("contact", "g1", 1)
    store.put("note", "g1", 2)
    assert store.get("note", ghl_id="g1").connecteam_id == 2  # type: ignore[union-attr]
    assert store.get("contact", ghl_id="g1").connecteam_id == 1  # type: ignore[union-attr]
    assert store.get("task", ghl_id="g1") is None


def test_put_is_idempotent_and_merges_meta(store: LinkStore) -> None:
    first = store.put("task", "t1", "ct-1", {"taskBoardId": "b1"})
    again = store.put("task", "t1", "ct-1", {"status": "done"})
    assert len(store.list_links("task")) == 1
    assert again.meta == {"taskBoardId": "b1", "status": "done"}
    assert again.created_at == first.created_at


def test_put_replaces_links_that_reuse_either_id(store: LinkStore) -> None:
    store.put("contact", "g1", 1)
    store.put("contact", "g2", 2)
    store.put("contact", "g1", 2)  # g1 is now user 2; g2's old pairing with 2 is gone
    assert [(link.ghl_id, link.connecteam_id) for link in store.list_links()] == [("g1", 2)]
    assert store.get("contact", ghl_id="g2") is None


def test_delete_returns_what_was_removed(store: LinkStore) -> None:
    store.put("contact", CONTACT, 9001)
    removed = store.delete("contact", connecteam_id=9001)
    assert removed is not None and removed.ghl_id == CONTACT
    assert store.get("contact", ghl_id=CONTACT) is None
    assert store.delete("contact", ghl_id=CONTACT) is None


def test_find_answers_in_the_order_asked(store: LinkStore) -> None:
    store.put("note", "n2", 20)
    store.put("note", "n1", 10)
    found = store.find("note", ghl_ids=["n1", "nx", "n2", "n1"])
    assert [link.ghl_id for link in found] == ["n1", "n2"]


def test_find_many_ids(store: LinkStore) -> None:
    for i in range(1200):
        store.put("note", f"n{i}", i + 1)
    found = store.find("note", connecteam_ids=list(range(1, 1300)))
    assert len(found) == 1200


def test_list_filters_by_kind_newest_first(store: LinkStore) -> None:
    store.put("contact", "a", 1)
    store.put("task", "t", "x")
    store.put("contact", "b", 2)
    assert [link.ghl_id for link in store.list_links("contact")] == ["b", "a"]
    assert len(store.list_links()) == 3
    assert len(store.list_links(limit=1)) == 1


def test_survives_a_restart(tmp_path: Path) -> None:
    url = database_url(sqlite_env(tmp_path))
    first = make_engine(url)  # one process...
    upgrade(first)
    LinkStore(first).put("contact", CONTACT, 9001, {"locationId": "loc1"})
    first.dispose()
    second = make_engine(url)  # ...and the next
    link = LinkStore(second).get("contact", ghl_id=CONTACT)
    second.dispose()
    assert link is not None and link.meta == {"locationId": "loc1"}
    assert (tmp_path / DATABASE_FILENAME).is_file()


def test_uses_wal(tmp_path: Path) -> None:
    LinkStore.for_env(sqlite_env(tmp_path)).put("contact", "g", 1)
    db = sqlite3.connect(tmp_path / DATABASE_FILENAME)
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    assert mode == "wal"


def test_concurrent_writers_lose_nothing(db_env: dict[str, str]) -> None:
    url = database_url(db_env)
    LinkStore.for_env(db_env)  # the tables exist before the writers start
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        engine = make_engine(url)  # an engine per writer, as separate processes have
        try:
            s = LinkStore(engine)
            for i in range(50):
                s.put("note", f"w{n}-{i}", n * 1000 + i)
                s.put("contact", "shared", 1)  # everyone upserts the same pair
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = LinkStore.for_env(db_env)
    assert len(s.list_links("note")) == 200
    assert len(s.list_links("contact")) == 1


def test_one_store_serves_many_threads(store: LinkStore) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            for i in range(25):
                put = store.put("note", f"t{n}-{i}", n * 1000 + i, {"thread": n})
                got = store.get("note", connecteam_id=n * 1000 + i)
                assert got == put, (got, put)
                store.put("contact", "shared", 1, {"thread": n})
                assert store.get("contact", ghl_id="shared") is not None
                if i % 5 == 0:
                    mine = store.find("note", ghl_ids=[f"t{n}-{j}" for j in range(i + 1)])
                    assert len(mine) == i + 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len(store.list_links("note")) == 200
    [shared] = store.list_links("contact")
    assert (shared.ghl_id, shared.connecteam_id) == ("shared", 1)


def test_put_says_what_it_replaced(store: LinkStore) -> None:
    first = store.put("contact", "g1", 1)
    assert first.replaced == ()
    assert store.put("contact", "g1", 1, {"again": True}).replaced == ()  # same pair: an update
    store.put("contact", "g2", 2)
    moved = store.put("contact", "g1", 2)  # g1 is now user 2: both older pairings go
    assert [(x.ghl_id, x.connecteam_id) for x in moved.replaced] == [("g1", 1), ("g2", 2)]
    assert moved.replaced[0].meta == {"again": True}
    assert "replaced" not in moved.to_json()
    assert moved == store.get("contact", ghl_id="g1")  # `replaced` is not part of the link
    assert store.put("contact", "g3", 2).replaced == (moved,)


def test_put_in_commits_with_the_callers_transaction(store: LinkStore) -> None:
    with store.engine.begin() as conn:
        link = store.put_in(conn, "task", "t1", "ct-1", {"board": "b1"})
        assert store.get_in(conn, "task", ghl_id="t1") == link  # visible inside it already
    assert store.get("task", connecteam_id="ct-1") == link


def test_put_in_rolled_back_leaves_no_link(store: LinkStore) -> None:
    store.put("contact", "g1", 1, {"old": True})
    with store.engine.connect() as conn:
        transaction = conn.begin()
        store.put_in(conn, "contact", "g2", 2)
        moved = store.put_in(conn, "contact", "g1", 2)  # replaces both, inside the transaction
        assert len(moved.replaced) == 2
        assert store.get_in(conn, "contact", ghl_id="g1") == moved
        transaction.rollback()
    assert store.get("contact", ghl_id="g2") is None
    assert store.get("contact", connecteam_id=2) is None
    kept = store.get("contact", ghl_id="g1")  # what was replaced is back
    assert kept is not None and kept.connecteam_id == 1 and kept.meta == {"old": True}


def test_put_in_refuses_bad_input_without_touching_the_transaction(store: LinkStore) -> None:
    with store.engine.begin() as conn:
        with pytest.raises(LinkError):
            store.put_in(conn, "contact", "g", True)
        store.put_in(conn, "contact", "g", 1)
    assert store.get("contact", ghl_id="g") is not None


def _race(url: str, pairs: list[tuple[str, str, str]], rounds: int = 40) -> None:
    """Run one worker per (kind, ghl_id, connecteam_id), their puts overlapping; all must succeed."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, kind, ghl, ct, str(rounds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for kind, ghl, ct in pairs
    ]

    def kill_all() -> None:
        for worker in workers:
            worker.kill()

    # a bound on the whole race: a worker stuck before "ready" would block readline() for ever
    watchdog = threading.Timer(120, kill_all)
    watchdog.start()
    try:
        for worker in workers:  # every worker has its store open...
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready", worker.communicate(timeout=30)
        for worker in workers:  # ...then all start at once
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [worker.communicate(timeout=60) for worker in workers]
    finally:
        watchdog.cancel()
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "done", (out, err)


def test_two_processes_upserting_one_pair_leave_one_link(db_env: dict[str, str]) -> None:
    store = LinkStore.for_env(db_env)  # the tables exist before the workers start
    _race(database_url(db_env), [("contact", "g-shared", "4242")] * 2)
    [link] = store.list_links()
    assert (link.kind, link.ghl_id, link.connecteam_id) == ("contact", "g-shared", 4242)
    assert link.meta == {"round": 39}


def test_two_processes_claiming_one_user_leave_one_link(db_env: dict[str, str]) -> None:
    store = LinkStore.for_env(db_env)
    _race(database_url(db_env), [("contact", "g-a", "4242"), ("contact", "g-b", "4242")])
    [link] = store.list_links()  # whoever put last holds user 4242; the other pairing is gone
    assert link.ghl_id in ("g-a", "g-b") and link.connecteam_id == 4242


@pytest.mark.parametrize(
    ("kind", "ghl_id", "ct_id"),
    [
        ("", "g", 1),
        ("x" * 65, "g", 1),
        ("contact", "", 1),
        ("contact", "g", True),
        ("contact", "g", 1.5),
        ("contact", "g" * 257, 1),
        ("contact", None, 1),
    ],
)
def test_rejects_bad_input(store: LinkStore, kind: str, ghl_id: Any, ct_id: Any) -> None:
    with pytest.raises(LinkError):
        store.put(kind, ghl_id, ct_id)


def test_rejects_meta_that_is_not_plain_json(store: LinkStore) -> None:
    with pytest.raises(LinkError, match="metadata"):
        store.put("contact", "g", 1, {"when": object()})
    with pytest.raises(LinkError, match="larger"):
        store.put("contact", "g", 1, {"blob": "x" * 70_000})


def test_needs_exactly_one_side(store: LinkStore) -> None:
    with pytest.raises(LinkError):
        store.get("contact")
    with pytest.raises(LinkError):
        store.get("contact", ghl_id="g", connecteam_id=1)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DATABASE_FILENAME)
    db.execute("CREATE TABLE connector_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
    db.execute("INSERT INTO connector_schema VALUES (1, 99)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer connector"):
        LinkStore.for_env(sqlite_env(tmp_path))


def test_reading_a_missing_database_creates_nothing(tmp_path: Path) -> None:
    assert LinkStore.existing_for_env(sqlite_env(tmp_path / "home")) is None
    assert not (tmp_path / "home").exists()
    LinkStore.for_env(sqlite_env(tmp_path / "home"))
    assert LinkStore.existing_for_env(sqlite_env(tmp_path / "home")) is not None


def test_a_database_error_is_a_store_error(tmp_path: Path) -> None:
    engine = make_engine(database_url(sqlite_env(tmp_path)))  # no tables: never upgraded
    try:
        with pytest.raises(StoreError, match="id-link store") as info:
            LinkStore(engine).get("contact", ghl_id="g")
        assert not isinstance(info.value, LinkError)
        assert "SELECT" not in str(info.value)
    finally:
        engine.dispose()


# --- the actions ---------------------------------------------------------------------------------


@pytest.fixture
def actions() -> dict[str, Action]:
    """The actions as the registry sees them: registered through the plugin hook."""
    pm = pluggy.PluginManager("connector")
    pm.add_hookspecs(hookspecs)
    pm.register(links_plugin, name="builtin:links")
    return build_registry(pm).actions


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    home = tmp_path / "home"
    context = RunContext(run_id="r1", recipe="test", home=home, env=sqlite_env(home))
    yield context
    store = context.services.get("links")
    if store is not None:
        store.close()


def call(actions: dict[str, Action], name: str, ctx: RunContext, **params: Any) -> Any:
    action = actions[name]
    assert action.params_schema is not None
    jsonschema.validate(params, action.params_schema)
    return action.run(params, ctx)


def test_actions_are_registered_with_schemas(actions: dict[str, Action]) -> None:
    assert {"links.get", "links.put", "links.delete", "links.find"} <= set(actions)
    assert not actions["links.get"].writes and not actions["links.find"].writes
    assert actions["links.put"].writes and actions["links.delete"].writes
    for action in actions.values():
        jsonschema.Draft202012Validator.check_schema(action.params_schema)  # type: ignore[arg-type]


def test_get_without_a_link_is_found_false(actions: dict[str, Action], ctx: RunContext) -> None:
    out = call(actions, "links.get", ctx, kind="contact", ghl_id=CONTACT)
    assert out == {
        "found": False,
        "kind": "contact",
        "ghl_id": None,
        "connecteam_id": None,
        "meta": {},
        "created_at": None,
        "updated_at": None,
    }
    assert not ctx.home.exists()  # reading creates nothing


def test_get_with_a_null_id_is_found_false(actions: dict[str, Action], ctx: RunContext) -> None:
    call(actions, "links.put", ctx, kind="contact", ghl_id=CONTACT, connecteam_id=9001)
    assert call(actions, "links.get", ctx, kind="contact", ghl_id=None)["found"] is False


def test_put_get_delete_round_trip(actions: dict[str, Action], ctx: RunContext) -> None:
    put = call(
        actions,
        "links.put",
        ctx,
        kind="contact",
        ghl_id=CONTACT,
        connecteam_id=9001,
        meta={"locationId": "loc1"},
    )
    assert put["found"] is True and put["connecteam_id"] == 9001
    got = call(actions, "links.get", ctx, kind="contact", connecteam_id=9001)
    assert got["found"] is True
    assert got["ghl_id"] == CONTACT and got["meta"] == {"locationId": "loc1"}
    gone = call(actions, "links.delete", ctx, kind="contact", ghl_id=CONTACT)
    assert gone["deleted"] is True and gone["connecteam_id"] == 9001
    again = call(actions, "links.delete", ctx, kind="contact", ghl_id=CONTACT)
    assert again["deleted"] is False
    assert call(actions, "links.get", ctx, kind="contact", connecteam_id=9001)["found"] is False


def test_the_store_is_opened_once_per_run(actions: dict[str, Action], ctx: RunContext) -> None:
    call(actions, "links.put", ctx, kind="note", ghl_id="n1", connecteam_id=1)
    first = ctx.services["links"]
    call(actions, "links.get", ctx, kind="note", ghl_id="n1")
    assert ctx.services["links"] is first


def test_find_tells_what_is_missing(actions: dict[str, Action], ctx: RunContext) -> None:
    call(actions, "links.put", ctx, kind="note", ghl_id="n1", connecteam_id=11)
    out = call(actions, "links.find", ctx, kind="note", ghl_ids=["n1", "n2", None, "n3", "n2"])
    assert out["linked"] == ["n1"]
    assert out["missing"] == ["n2", "n3"]
    assert out["partners"] == {"n1": 11}
    by_ct = call(actions, "links.find", ctx, kind="note", connecteam_ids=[11, 12])
    assert by_ct["partners"] == {"11": "n1"} and by_ct["missing"] == [12]


def test_find_on_an_empty_home(actions: dict[str, Action], ctx: RunContext) -> None:
    out = call(actions, "links.find", ctx, kind="task", ghl_ids=["t1"])
    assert out["missing"] == ["t1"] and out["links"] == []


def test_put_refuses_a_null_id(actions: dict[str, Action], ctx: RunContext) -> None:
    with pytest.raises(LinkError, match="connecteam_id is null"):
        actions["links.put"].run({"kind": "contact", "ghl_id": "g", "connecteam_id": None}, ctx)


def test_put_refuses_to_store_a_secret(actions: dict[str, Action], tmp_path: Path) -> None:
    ctx = RunContext(run_id="r", recipe="t", home=tmp_path, env={"GHL_TOKEN": "pit-secret-123"})
    with pytest.raises(LinkError, match="GHL_TOKEN") as info:
        actions["links.put"].run(
            {
                "kind": "contact",
                "ghl_id": "g",
                "connecteam_id": 1,
                "meta": {"auth": "Bearer pit-secret-123"},
            },
            ctx,
        )
    assert "pit-secret-123" not in str(info.value)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("links.get", {"kind": "contact"}),
        ("links.get", {"kind": "contact", "ghl_id": "g", "emial": 1}),
        ("links.put", {"kind": "contact", "ghl_id": "g"}),
        ("links.find", {"kind": "note", "ghl_ids": "n1"}),
    ],
)
def test_schemas_catch_recipe_mistakes(
    actions: dict[str, Action], name: str, params: dict[str, Any]
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(params, actions[name].params_schema)  # type: ignore[arg-type]


def test_put_says_whether_it_replaced(actions: dict[str, Action], ctx: RunContext) -> None:
    first = call(actions, "links.put", ctx, kind="contact", ghl_id="g1", connecteam_id=1)
    assert first["replaced"] is False and first["replaced_links"] == []
    again = call(actions, "links.put", ctx, kind="contact", ghl_id="g1", connecteam_id=1)
    assert again["replaced"] is False
    moved = call(actions, "links.put", ctx, kind="contact", ghl_id="g2", connecteam_id=1)
    assert moved["replaced"] is True
    assert [(x["ghl_id"], x["connecteam_id"]) for x in moved["replaced_links"]] == [("g1", 1)]
    assert moved["ghl_id"] == "g2" and moved["found"] is True


def test_the_store_comes_from_the_runs_env(actions: dict[str, Action], tmp_path: Path) -> None:
    url = "sqlite:///" + str(tmp_path / "elsewhere" / "links.db")
    home = tmp_path / "home"
    ctx = RunContext(
        run_id="r",
        recipe="t",
        home=home,
        env={"CONNECTOR_HOME": str(home), "CONNECTOR_DATABASE_URL": url},
    )
    call(actions, "links.put", ctx, kind="contact", ghl_id="g", connecteam_id=1)
    assert LinkStore.for_env({"CONNECTOR_DATABASE_URL": url}).get("contact", ghl_id="g")
    assert not (home / DATABASE_FILENAME).exists()


def test_a_store_in_services_is_used(actions: dict[str, Action], tmp_path: Path) -> None:
    injected = LinkStore.for_env(sqlite_env(tmp_path / "injected"))
    home = tmp_path / "home"
    ctx = RunContext(
        run_id="r", recipe="t", home=home, env=sqlite_env(home), services={"links": injected}
    )
    call(actions, "links.put", ctx, kind="note", ghl_id="n1", connecteam_id=5)
    assert call(actions, "links.get", ctx, kind="note", connecteam_id=5)["found"] is True
    assert injected.get("note", ghl_id="n1") is not None
    assert not home.exists()


def test_an_action_home_of_its_own_keeps_its_links(
    actions: dict[str, Action], tmp_path: Path
) -> None:
    """A runner that gives actions another home than CONNECTOR_HOME (``run --sandbox`` today)
    keeps the links there: not in CONNECTOR_HOME, not in CONNECTOR_DATABASE_URL."""
    url = "sqlite:///" + str(tmp_path / "real" / "real.db")
    env = {"CONNECTOR_HOME": str(tmp_path / "real"), "CONNECTOR_DATABASE_URL": url}
    ctx = RunContext(run_id="r", recipe="t", home=tmp_path / "scratch", env=env)
    call(actions, "links.put", ctx, kind="contact", ghl_id="g", connecteam_id=1)
    assert LinkStore.for_env(sqlite_env(tmp_path / "scratch")).get("contact", ghl_id="g")
    assert not (tmp_path / "real").exists()
