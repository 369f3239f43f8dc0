"""The id-link store (connector.links) and its recipe actions (connector.builtins.links)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import jsonschema
import pluggy
import pytest

from connector import hookspecs
from connector.apps import Action, RunContext
from connector.builtins import links as links_plugin
from connector.links import LinkError, LinkStore, links_path
from connector.registry import build_registry

CONTACT = "ocQHyuzHvysMo5N5VsXc"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with LinkStore(links_path(tmp_path)) as s:
        yield s


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
    with LinkStore(links_path(tmp_path)) as s:
        s.put("contact", CONTACT, 9001, {"locationId": "loc1"})
    with LinkStore(links_path(tmp_path)) as s:
        link = s.get("contact", ghl_id=CONTACT)
    assert link is not None and link.meta == {"locationId": "loc1"}
    assert (tmp_path / "links.sqlite3").is_file()


def test_uses_wal(tmp_path: Path) -> None:
    with LinkStore(links_path(tmp_path)):
        pass
    mode = sqlite3.connect(links_path(tmp_path)).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = links_path(tmp_path)
    LinkStore(path).close()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            with LinkStore(path) as s:  # one connection per writer, as separate processes have
                for i in range(50):
                    s.put("note", f"w{n}-{i}", n * 1000 + i)
                    s.put("contact", "shared", 1)  # everyone upserts the same pair
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with LinkStore(path) as s:
        assert len(s.list_links("note")) == 200
        assert len(s.list_links("contact")) == 1


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
    db = sqlite3.connect(links_path(tmp_path))
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(LinkError, match="newer connector"):
        LinkStore(links_path(tmp_path))


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
    context = RunContext(run_id="r1", recipe="test", home=tmp_path / "home")
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
    assert not (ctx.home / "links.sqlite3").exists()  # reading creates nothing


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
