"""The vendors' answers kept: a refusal's body on the step's record, in `runs show`, and in the
error, which names the vendor and what it said."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli

HERE = Path(__file__).parent / "cli"
SECRET = "real-looking-token-abcdef0123456789"


class _Refusing(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and ``body``."""

    status = 503
    body: bytes = b""

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def vendor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Refusing]]:
    handler = type("Refusing", (_Refusing,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GHL_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}/ghl")
    monkeypatch.setenv("GHL_TOKEN", SECRET)
    monkeypatch.setenv("CONNECTOR_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("CONNECTOR_RETRY_BASE_DELAY", "0.01")
    for name in ("GHL_LOCATION_ID", "CONNECTEAM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    yield handler
    server.shutdown()
    server.server_close()


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def _run(handler: type[_Refusing], status: int, body: object) -> dict:
    handler.status = status
    handler.body = json.dumps(body).encode()
    code, out = invoke("run", str(HERE / "sandbox_contact.yaml"), "--json")
    assert code == 1, out
    return json.loads(out)


def test_a_503_keeps_its_body_and_the_error_says_what_the_vendor_said(
    vendor: type[_Refusing],
) -> None:
    body = {"statusCode": 503, "message": "Service Unavailable", "echo": f"token {SECRET}"}
    record = _run(vendor, 503, body)
    step = record["steps"][0]
    assert step["error"] == (
        "HTTP 503 from GoHighLevel: Service Unavailable (gave up after 2 attempts)"
    )
    assert record["error"] == step["error"]
    assert step["response"]["body"]["message"] == "Service Unavailable"
    assert SECRET not in json.dumps(record)
    (wait,) = step["waits"]
    assert (wait["message"], wait["attempt"], wait["of"]) == ("Service Unavailable", 2, 2)

    code, out = invoke("runs", "show", record["id"])
    assert code == 0
    assert "HTTP 503 from GoHighLevel: Service Unavailable" in out
    assert '"message": "Service Unavailable"' in out  # the body, under its step
    assert SECRET not in out
    assert "details: connector runs show" not in out  # not told to run what was just run


def test_a_400_keeps_its_body_in_the_record_and_runs_show(vendor: type[_Refusing]) -> None:
    record = _run(vendor, 400, {"statusCode": 400, "message": "Contact not found"})
    step = record["steps"][0]
    assert step["error"] == "HTTP 400 from GoHighLevel: Contact not found"
    assert step["attempts"] == 1
    assert step["response"]["body"] == {"statusCode": 400, "message": "Contact not found"}
    _, out = invoke("runs", "show", "--json", record["id"])
    assert json.loads(out)["steps"][0]["response"]["body"]["message"] == "Contact not found"
    _, out = invoke("runs", "show", record["id"])
    assert '"message": "Contact not found"' in out


def test_a_huge_refusal_is_kept_cut_with_the_cut_marked(vendor: type[_Refusing]) -> None:
    record = _run(vendor, 400, {"message": "too big", "junk": "x" * 100_000})
    kept = record["steps"][0]["response"]["body"]
    assert isinstance(kept, str) and len(kept) < 20_000
    assert kept.endswith("characters in all]") and "[cut: " in kept
    assert record["steps"][0]["error"] == "HTTP 400 from GoHighLevel: too big"


def test_a_write_of_unknown_outcome_says_what_the_vendor_said(vendor: type[_Refusing]) -> None:
    vendor.status = 503
    vendor.body = json.dumps({"statusCode": 503, "message": "Service Unavailable"}).encode()
    code, out = invoke("run", str(HERE / "note_contact.yaml"), "--json")
    assert code == 1, out
    step = json.loads(out)["steps"][0]
    assert step["error"].startswith(
        "outcome unknown: HTTP 503 from GoHighLevel (Service Unavailable) after the request was sent"
    )
    assert step["response"]["body"]["message"] == "Service Unavailable"


def test_a_huge_answer_to_a_request_that_succeeded_is_kept_cut_with_the_cut_marked(
    vendor: type[_Refusing],
) -> None:
    vendor.status = 200
    contact = {"email": "huge@example.com", "notes": "x" * 100_000, "echo": f"token {SECRET}"}
    vendor.body = json.dumps({"contact": contact, "tags": ["cli-test"]}).encode()
    code, out = invoke("run", str(HERE / "sandbox_contact.yaml"), "--json")
    assert code == 0, out
    record = json.loads(out)
    for doc in (record, json.loads(invoke("runs", "show", "--json", record["id"])[1])):
        kept = doc["steps"][0]["output"]
        assert isinstance(kept, str) and len(kept) < 17_000
        assert kept.endswith(" characters in all]")
        assert "[cut: " in kept and SECRET not in json.dumps(doc)
        # the later step and the output computed with the whole answer, not the kept cut
        assert doc["output"]["email"] == "huge@example.com"
        assert doc["steps"][1]["status"] == "succeeded"
