"""``connector test --record``: cassettes recorded from the sandbox, secrets redacted, readable;
the test is then green and sends nothing at all."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import yaml
from recipe_tests_support import connector

from connector.sandbox.state import load_seed


def _no_network(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("connector test opened a connection")


@pytest.mark.parametrize("name", ["pull-contact-on-select", "archive-user-on-contact-delete"])
def test_record_then_test_is_green_and_sends_nothing(
    name: str, copy_recipe: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = copy_recipe(name)
    cassettes = recipe.parent / "tests" / "cassettes" / name
    for old in cassettes.glob("*.cassette.yaml"):
        old.unlink()
    tests = recipe.parent / "tests" / f"{name}.test.yaml"
    missing = connector("test", str(tests))
    assert missing.exit_code == 1
    assert "no cassette" in missing.stdout and "connector test --record" in missing.stdout

    recorded = connector("test", "--record", str(tests))
    assert recorded.exit_code == 0, recorded.output
    assert "REC  " in recorded.stdout
    files = sorted(cassettes.glob("*.cassette.yaml"))
    assert files
    seed = load_seed(None)
    secrets = [seed["connecteam"]["api_key"], seed["ghl"]["locations"][0]["token"]]
    for path in files:
        text = path.read_text()
        assert text.startswith("# Recorded by `connector test --record`")
        for secret in secrets:
            assert secret not in text, (path, secret)
        doc = yaml.safe_load(text)
        assert doc["env"] == {"GHL_LOCATION_ID": "ve9EPM428h8vShlRW1KT"}
        assert all({"request", "status"} <= set(r) for r in doc["responses"])
        assert all("127.0.0.1" not in r["request"]["path"] for r in doc["responses"])

    # the second time nothing may reach any network: no transport, no socket
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    again = connector("test", str(tests))
    assert again.exit_code == 0, again.output
    assert "FAIL" not in again.stdout


def test_record_only_with_sandbox_unless_live_and_live_warns(
    copy_recipe: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert connector("test", "--live", "recipes").exit_code == 2
    recipe = copy_recipe("push-task-edits")  # inline responses only: nothing to record
    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", _no_network)
    result = connector("test", "--record", "--live", str(recipe))
    assert result.exit_code == 0, result.output
    assert "warning: recording against live accounts" in result.stderr
    assert "REC" not in result.stdout


def test_a_cassette_redacts_tokens_and_secret_headers(tmp_path: Path) -> None:
    from connector.sending.http import Redactor
    from connector.testing.cassette import Exchange, write_cassette
    from connector.testing.compare import Sent

    exchange = Exchange(
        Sent("ghl", "POST", "/oauth/token", {"key": "s3cr3t-key"}, {"code": "x"}),
        200,
        {"content-type": "application/json", "location": "https://x.example/?t=s3cr3t-key"},
        {
            "access_token": "tok-123456",
            "note": "uses s3cr3t-key",
            "nested": {"refresh_token": "r-999999"},
        },
    )
    path = tmp_path / "c.cassette.yaml"
    write_cassette(path, [exchange], Redactor(["s3cr3t-key"]), source="sandbox", env={}, test="t")
    text = path.read_text()
    for secret in ("s3cr3t-key", "tok-123456", "r-999999"):
        assert secret not in text
    doc = yaml.safe_load(text)
    (entry,) = doc["responses"]
    assert entry["body"]["access_token"] == "***"
    assert entry["request"] == {
        "app": "ghl",
        "method": "POST",
        "path": "/oauth/token",
        "query": {"key": "***"},
    }
