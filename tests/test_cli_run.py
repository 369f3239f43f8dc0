"""``connector run`` and ``connector runs`` through the command line."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli

HERE = Path(__file__).parent / "cli"
SECRET = "real-looking-token-abcdef0123456789"


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    for name in ("GHL_TOKEN", "GHL_BASE_URL", "GHL_LOCATION_ID", "CONNECTEAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_run_against_the_sandbox_prints_the_contract_json(home: Path) -> None:
    code, out, _ = invoke("run", str(HERE / "sandbox_contact.yaml"), "--sandbox", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert record["id"].startswith("run_")
    assert record["output"]["email"]
    assert "cli-test" in record["output"]["tags"]
    steps = record["steps"]
    assert [s["id"] for s in steps] == ["contact", "tag", "never"]
    assert [s["status"] for s in steps] == ["succeeded", "succeeded", "skipped"]
    first = steps[0]
    assert first["action"] == "ghl.get-contact"
    assert first["method"] == "GET"
    assert first["url"].endswith("/ghl/contacts/ocQHyuzHvysMo5N5VsXc")
    assert first["status_code"] == 200
    assert first["output"]["contact"]["id"] == "ocQHyuzHvysMo5N5VsXc"
    assert steps[1]["status_code"] == 201


def test_a_failed_run_exits_1_with_the_api_message(home: Path) -> None:
    code, out, _ = invoke("run", str(HERE / "missing_contact.yaml"), "--sandbox")
    assert code == 1
    assert "failed" in out
    assert "HTTP 400" in out


def test_an_invalid_recipe_exits_2_with_located_problems(home: Path) -> None:
    code, _, err = invoke("run", str(HERE / "invalid.yaml"))
    assert code == 2
    lines = err.splitlines()
    assert any(
        line.startswith(f"{HERE / 'invalid.yaml'}:6:13: error: $.steps[0].action") for line in lines
    )
    assert any("'triger' is undefined" in line for line in lines)
    assert not (home / "runs.sqlite3").exists()


def test_broken_yaml_exits_2_without_a_traceback(home: Path) -> None:
    code, out, err = invoke("run", str(HERE / "broken.yaml"))
    assert code == 2
    assert "YAML syntax error" in err
    assert "Traceback" not in out + err


def test_a_missing_file_is_a_usage_error(home: Path) -> None:
    code, _, err = invoke("run", str(HERE / "nope.yaml"))
    assert code == 2
    assert "no such recipe" in err


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("[1, 2]", "must be an object"),
        (
            "{oops: [",
            "cannot be read as JSON or YAML: 2:1: YAML syntax error: did not find expected node"
            " content (while parsing a flow node); a [...] list or {...} mapping before line 2 is"
            " not closed",
        ),
        ("- a\n- b\n", "1:1: an event is a mapping (an object), but this file holds a list"),
        ("", "must be an object"),
    ],
)
def test_a_malformed_event_is_a_usage_error(home: Path, event: str, message: str) -> None:
    code, _, err = invoke("run", str(HERE / "sandbox_contact.yaml"), "--event", "-", input=event)
    assert code == 2
    assert message in err


def test_the_event_comes_from_a_file_or_stdin(home: Path) -> None:
    code, out, _ = invoke(
        "run",
        str(HERE / "sandbox_contact.yaml"),
        "--sandbox",
        "--json",
        "--event",
        str(HERE / "event.json"),
    )
    assert code == 0
    assert json.loads(out)["trigger"]["payload"] == {"contactId": "ocQHyuzHvysMo5N5VsXc"}
    code, out, _ = invoke(
        "run",
        str(HERE / "missing_contact.yaml"),
        "--sandbox",
        "--json",
        "--event",
        "-",
        input='{"contactId": "ocQHyuzHvysMo5N5VsXc"}',
    )
    assert code == 0, out


class _Counter(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        self.send_response(500)
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def counting_server() -> Iterator[tuple[str, type[_Counter]]]:
    handler = type("Counter", (_Counter,), {"hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ghl", handler
    server.shutdown()
    server.server_close()


def test_dry_run_sends_nothing_and_redacts_the_token(
    home: Path, monkeypatch: pytest.MonkeyPatch, counting_server: tuple[str, type[_Counter]]
) -> None:
    url, handler = counting_server
    monkeypatch.setenv("GHL_BASE_URL", url)
    monkeypatch.setenv("GHL_TOKEN", SECRET)
    code, out, _ = invoke("run", str(HERE / "sandbox_contact.yaml"), "--dry-run")
    assert code == 0
    assert handler.hits == 0
    assert f"GET {url}/contacts/ocQHyuzHvysMo5N5VsXc" in out
    assert "authorization: Bearer ***" in out
    assert "version: 2021-07-28" in out
    assert SECRET not in out
    code, out, _ = invoke("run", str(HERE / "sandbox_contact.yaml"), "--dry-run", "--json")
    assert code == 0
    assert handler.hits == 0
    assert SECRET not in out
    assert json.loads(out)["steps"][0]["status"] == "planned"


def test_a_dry_run_shows_what_it_could_not_know_instead_of_failing(
    home: Path, counting_server: tuple[str, type[_Counter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: `run recipes/create-contact-from-connecteam.yaml --dry-run` (the docs' "what would
    be sent") exited 1 with "locationId is required" when GHL_LOCATION_ID was not set."""
    url, handler = counting_server
    monkeypatch.setenv("GHL_BASE_URL", url)
    recipe = str(HERE.parent.parent / "tests" / "workloads" / "create-contact-from-connecteam.yaml")
    code, out, _ = invoke("run", recipe, "--dry-run", "--json")
    assert code == 0, out
    record = json.loads(out)
    upsert = record["steps"][0]
    assert upsert["status"] == "planned"
    assert upsert["request"]["body"]["locationId"] == "<env.GHL_LOCATION_ID: not set>"
    assert "set GHL_LOCATION_ID" in upsert["note"]
    assert handler.hits == 0


def test_runs_list_and_show_read_the_store_which_holds_no_secret(
    home: Path, monkeypatch: pytest.MonkeyPatch, counting_server: tuple[str, type[_Counter]]
) -> None:
    code, out, _ = invoke("run", str(HERE / "sandbox_contact.yaml"), "--sandbox", "--json")
    assert code == 0
    run_id = json.loads(out)["id"]
    # a run against a server that fails, with a token that must never be stored
    url, handler = counting_server
    monkeypatch.setenv("GHL_BASE_URL", url)
    monkeypatch.setenv("GHL_TOKEN", SECRET)
    # a GET that meets 500s is retried as often as the policy allows, then fails
    monkeypatch.setenv("CONNECTOR_RETRY_ATTEMPTS", "3")
    monkeypatch.setenv("CONNECTOR_RETRY_BASE_DELAY", "0.01")
    code, out, _ = invoke("run", str(HERE / "sandbox_contact.yaml"), "--json")
    assert code == 1
    assert handler.hits == 3
    failed = json.loads(out)
    failed_id = failed["id"]
    assert failed["steps"][0]["attempts"] == 3
    assert [w["reason"] for w in failed["steps"][0]["waits"]] == ["HTTP 500", "HTTP 500"]
    assert "gave up after 3 attempts" in failed["error"]

    code, out, _ = invoke("runs", "list", "--json")
    assert code == 0
    listed = json.loads(out)["runs"]
    assert [r["id"] for r in listed] == [failed_id, run_id]
    assert [r["status"] for r in listed] == ["failed", "succeeded"]

    code, out, _ = invoke("runs", "show", run_id[:12], "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == run_id
    assert [s["id"] for s in shown["steps"]] == ["contact", "tag", "never"]
    assert shown["steps"][0]["request"]["headers"]["authorization"] == "Bearer ***"

    code, out, _ = invoke("runs", "show", failed_id)
    assert code == 0
    assert "HTTP 500" in out

    code, _, err = invoke("runs", "show", "run_doesnotexist")
    assert code == 1
    assert "no run" in err

    db = sqlite3.connect(home / "connector.sqlite3")
    dump = "\n".join(db.iterdump())
    db.close()
    assert SECRET not in dump
    assert "Bearer ***" in dump
    for path in home.iterdir():
        assert SECRET.encode() not in path.read_bytes()


def test_runs_list_on_a_fresh_home_says_how_to_start(home: Path) -> None:
    code, out, _ = invoke("runs", "list")
    assert code == 0
    assert "no runs yet" in out


def test_sandbox_runs_keep_their_id_links_with_the_sandbox(home: Path) -> None:
    recipe = str(
        Path(__file__).parent.parent / "tests" / "workloads" / "create-contact-from-connecteam.yaml"
    )
    first = json.loads(invoke("run", recipe, "--sandbox", "--json")[1])
    second = json.loads(invoke("run", recipe, "--sandbox", "--json")[1])
    assert first["status"] == second["status"] == "succeeded"
    # each fresh sandbox starts with no links: the second run creates its contact again
    assert first["output"] == second["output"]
    code, out, _ = invoke("links", "list", "--json")
    assert code == 0
    assert json.loads(out) == []


def test_run_json_on_an_invalid_recipe_prints_its_problems_as_json(home: Path) -> None:
    """Issue: `run --json` on an invalid recipe printed the problems as text only."""
    code, out, err = invoke("run", str(HERE / "broken.yaml"), "--json")
    assert code == 2
    doc = json.loads(out)
    assert doc["status"] == "invalid" and doc["problems"]
    first = doc["problems"][0]
    assert {"file", "line", "column", "path", "severity", "message"} <= set(first)
    assert first["message"] in err  # and the lines on stderr, as before


def test_a_step_skipped_by_its_if_says_why(
    home: Path, counting_server: tuple[str, type[_Counter]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: steps skipped because their `if:` was false did not say why."""
    url, handler = counting_server
    monkeypatch.setenv("GHL_BASE_URL", url)
    monkeypatch.setenv("GHL_LOCATION_ID", "loc1")
    recipe = str(HERE.parent.parent / "tests" / "workloads" / "create-contact-from-connecteam.yaml")
    code, out, _ = invoke("run", recipe, "--dry-run")
    assert code == 0, out
    assert (
        "# create_contact: ghl.create-contact (skipped: if: {{ vars.email is none }} was false)"
        in out
    )
    code, out, _ = invoke("run", recipe, "--dry-run", "--json")
    skipped = next(s for s in json.loads(out)["steps"] if s["id"] == "create_contact")
    assert skipped["note"] == "if: {{ vars.email is none }} was false"
    assert handler.hits == 0


def test_a_base_url_without_a_scheme_is_refused_before_any_run(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue: GHL_BASE_URL without http:// failed each step with UnsupportedProtocol."""
    monkeypatch.setenv("GHL_BASE_URL", "services.example.com")
    monkeypatch.setenv("GHL_TOKEN", SECRET)
    result = CliRunner().invoke(cli, ["run", str(HERE / "sandbox_contact.yaml")])
    assert result.exit_code != 0
    assert "GHL_BASE_URL='services.example.com' is not a URL: it needs http:// or https://" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (  # a YAML alias bomb: nine levels of nine aliases each, a few hundred bytes
            "a: &a [x, x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n"
                for a, b in zip("abcdefgh", "bcdefghi", strict=True)
            ),
            "alias bomb",
        ),
        ("[" * 100_000, "nested more than 64 levels deep"),
        ('{"a":' * 900 + "1" + "}" * 900, "nested more than 64 levels deep"),
    ],
)
def test_a_hostile_event_file_is_refused_with_the_limits_recipes_have(
    home: Path, tmp_path: Path, text: str, message: str
) -> None:
    """Issue: a 356-byte alias bomb given with --event took 60 s and 4.5 GB before it was killed."""
    event = tmp_path / "event.yaml"
    event.write_text(text)
    code, _, err = invoke("run", str(HERE / "sandbox_contact.yaml"), "--event", str(event))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_recipe_on_contacts_v3_runs_against_the_sandbox(home: Path) -> None:
    """`versions: {ghl: v3}` sends the contacts steps with Version: v3 (their v3 paths and
    shapes); a step's `version:` sends that one; both see the same contact."""
    code, out, err = invoke("run", str(HERE / "sandbox_contact_v3.yaml"), "--sandbox", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "succeeded"
    assert record["output"] == {
        "updated": True,
        "dnd_v3": "active",
        "dnd_2021": "active",
        "removed": True,
    }
    steps = {s["id"]: s for s in record["steps"]}
    assert steps["edit"]["request"]["headers"]["version"] == "v3"
    assert steps["before"]["request"]["headers"]["version"] == "2021-07-28"
    assert steps["campaigns"]["request"]["headers"]["version"] == "v3"
    assert steps["campaigns"]["url"].endswith("/campaigns/remove-all")  # v3's path


def test_a_v3_step_that_reads_a_field_only_2021_07_28_has_is_invalid(home: Path) -> None:
    code, out, _ = invoke("validate", str(HERE / "v3_reads_a_2021_field.yaml"))
    assert code == 1
    assert (
        "$.output.updated: steps.edit.output has no field 'succeded' in the response "
        "ghl.update-contact (Version v3) documents; did you mean 'succeeded'?"
    ) in out
    assert "$.steps[1].version: ghl.get-contacts has no version 'v3' (it has 2021-07-28)" in out
    code, out, err = invoke("run", str(HERE / "v3_reads_a_2021_field.yaml"), "--sandbox")
    assert code != 0 and "nothing was run" in out + err
