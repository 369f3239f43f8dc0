"""``connector links``: list, get, put and delete pairs of ids from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.persistence.database import DATABASE_FILENAME, close_all

CONTACT = "ocQHyuzHvysMo5N5VsXc"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONNECTOR_DATABASE_URL", raising=False)
    yield tmp_path / "home"
    close_all()  # the database was this test's own


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["links", *args])


def test_an_empty_store_lists_nothing_and_creates_nothing(home: Path) -> None:
    result = run("list")
    assert result.exit_code == 0
    assert result.output.strip() == "no links"
    assert json.loads(run("list", "--json").output) == []
    assert not home.exists()


def test_put_then_list_and_get(home: Path) -> None:
    put = run("put", "contact", CONTACT, "9001", "--meta", '{"locationId": "loc1"}')
    assert put.exit_code == 0, put.output
    assert CONTACT in put.output and "9001" in put.output
    run("put", "task", "ghl-task-1", "ct-task-1")

    listed = run("list", "--kind", "contact")
    assert listed.exit_code == 0
    assert CONTACT in listed.output and "ghl-task-1" not in listed.output

    as_json = json.loads(run("list", "--json").output)
    assert {(x["kind"], x["ghl_id"], x["connecteam_id"]) for x in as_json} == {
        ("contact", CONTACT, 9001),  # an all-digit Connecteam id is stored as a number
        ("task", "ghl-task-1", "ct-task-1"),
    }

    got = json.loads(run("get", "contact", "9001", "--json").output)  # either side finds it
    assert got["ghl_id"] == CONTACT and got["meta"] == {"locationId": "loc1"}
    assert json.loads(run("get", "contact", CONTACT, "--json").output)["connecteam_id"] == 9001


def test_get_side_restricts_the_lookup(home: Path) -> None:
    run("put", "contact", CONTACT, "9001")
    assert run("get", "contact", "9001", "--side", "ghl").exit_code == 1
    assert run("get", "contact", "9001", "--side", "connecteam").exit_code == 0


def test_get_missing_is_exit_1_with_a_message(home: Path) -> None:
    run("put", "contact", CONTACT, "9001")
    result = run("get", "contact", "nobody")
    assert result.exit_code == 1
    assert "error: no contact link for 'nobody'" in result.output


def test_delete(home: Path) -> None:
    run("put", "contact", CONTACT, "9001")
    result = run("delete", "contact", "9001")
    assert result.exit_code == 0 and "deleted" in result.output
    assert run("get", "contact", CONTACT).exit_code == 1
    assert run("delete", "contact", "9001").exit_code == 1


def test_put_rejects_bad_meta(home: Path) -> None:
    assert run("put", "contact", CONTACT, "9001", "--meta", "{nope").exit_code == 2
    assert run("put", "contact", CONTACT, "9001", "--meta", "[1]").exit_code == 2


def test_a_store_error_is_one_line_not_a_traceback(home: Path) -> None:
    result = run("put", "x" * 65, CONTACT, "9001")
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "Traceback" not in result.output


def test_help_shows_examples() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "connector links put contact" in result.output


def test_an_unusable_home_is_an_error_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("CONNECTOR_HOME", str(blocker))
    result = run("put", "contact", CONTACT, "9001")
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot open the id-link store")


def test_put_says_what_it_replaced(home: Path) -> None:
    first = run("put", "contact", CONTACT, "9001")
    assert "replaced" not in first.output
    assert "replaced" not in run("put", "contact", CONTACT, "9001").output  # same pair
    moved = run("put", "contact", "other-contact", "9001")
    assert moved.exit_code == 0, moved.output
    assert moved.output.splitlines() == [
        f"replaced contact {CONTACT} <-> 9001",
        "linked contact other-contact (GoHighLevel) <-> 9001 (Connecteam)",
    ]
    assert run("get", "contact", CONTACT).exit_code == 1


def test_the_store_is_the_connector_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    url = "sqlite:///" + str(tmp_path / "db" / "elsewhere.sqlite3")
    monkeypatch.setenv("CONNECTOR_DATABASE_URL", url)
    try:
        assert run("put", "contact", CONTACT, "9001").exit_code == 0
        assert (tmp_path / "db" / "elsewhere.sqlite3").is_file()
        assert not (tmp_path / "home" / DATABASE_FILENAME).exists()
        assert run("get", "contact", CONTACT).exit_code == 0
    finally:
        close_all()
