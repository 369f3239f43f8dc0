"""Faults on purpose (each kind, reproducible by seed, scoped by path and method), the control
endpoints, signed webhooks, and the `connector sandbox` command."""

from __future__ import annotations

import email.utils
import json
import os
import signal
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import pytest

from connector.errors import UsageError
from connector.sandbox import FaultConfig, RunningSandbox, parse_fault, start_in_thread
from connector.sandbox.webhooks import verify
from tests.runtime.e2e_support import LOCAL

if TYPE_CHECKING:
    from sandbox.fixtures import FakeClock

pytest_plugins = ["sandbox.fixtures"]

JORDAN = "ocQHyuzHvysMo5N5VsXc"
LOC = "ve9EPM428h8vShlRW1KT"
HERE = Path(__file__).parent


def _faults(sb: RunningSandbox, *specs: str, seed: int = 1) -> None:
    r = LOCAL.post(f"{sb.url}/_sandbox/faults", json={"seed": seed, "specs": list(specs)})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_in_each_vendor_shape(
    sandbox: RunningSandbox, ghl: httpx.Client, ct: httpx.Client, status: int
) -> None:
    _faults(sandbox, f"{status}:1")
    r = ghl.get(f"/contacts/{JORDAN}")
    assert r.status_code == status and r.json()["statusCode"] == status
    assert ct.get("/tasks/v1/taskboards").status_code == status


def test_429_with_retry_after_in_seconds_and_as_http_date(
    sandbox: RunningSandbox, ghl: httpx.Client, clock: FakeClock
) -> None:
    _faults(sandbox, "429:1,retry_after=7")
    r = ghl.get(f"/contacts/{JORDAN}")
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    _faults(sandbox, "429:1,retry_after=30,retry_form=date")
    r = ghl.get(f"/contacts/{JORDAN}")
    when = email.utils.parsedate_to_datetime(r.headers["Retry-After"]).timestamp()
    assert r.status_code == 429 and when == clock.now + 30


def test_slow_responses_are_late_but_complete(sandbox: RunningSandbox, ghl: httpx.Client) -> None:
    _faults(sandbox, "slow:1,delay=0.3")
    r = ghl.get(f"/contacts/{JORDAN}")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.3


def test_dropped_before_the_write_leaves_state_unchanged(
    sandbox: RunningSandbox, ghl: httpx.Client
) -> None:
    _faults(sandbox, "drop-before:1,method=POST")
    with pytest.raises(httpx.TransportError):
        ghl.post(f"/contacts/{JORDAN}/tags", json={"tags": ["dropped"]})
    _faults(sandbox)
    assert "dropped" not in ghl.get(f"/contacts/{JORDAN}").json()["contact"]["tags"]


def test_dropped_after_the_write_keeps_the_write(
    sandbox: RunningSandbox, ghl: httpx.Client
) -> None:
    _faults(sandbox, "drop-after:1,path=/ghl/contacts/,method=POST")
    with pytest.raises(httpx.TransportError):
        ghl.post(f"/contacts/{JORDAN}/tags", json={"tags": ["applied"]})
    assert "applied" in ghl.get(f"/contacts/{JORDAN}").json()["contact"]["tags"]  # GET: not faulted


def test_same_seed_same_faults_and_scoping(
    sandbox: RunningSandbox, ghl: httpx.Client, ct: httpx.Client
) -> None:
    def run() -> list[int]:
        _faults(sandbox, "503:0.5,path=/ghl", seed=42)
        return [ghl.get(f"/contacts/{JORDAN}").status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second and 503 in first and 200 in first
    assert all(ct.get("/tasks/v1/taskboards").status_code == 200 for _ in range(5))  # out of scope
    state = LOCAL.get(f"{sandbox.url}/_sandbox/faults").json()
    assert state["seed"] == 42 and state["fired"]["503"] >= 1
    assert LOCAL.delete(f"{sandbox.url}/_sandbox/faults").json()["rules"] == []


def test_faults_from_flags_and_environment() -> None:
    rule = parse_fault("429:0.25,path=/ghl/contacts,method=get,retry_after=3,retry_form=date")
    assert (rule.kind, rule.rate, rule.path, rule.method, rule.retry_after) == (
        "429",
        0.25,
        "/ghl/contacts",
        "GET",
        3,
    )
    config = FaultConfig.from_env(
        {"CONNECTOR_SANDBOX_FAULTS": "500:0.1;slow:1,delay=2", "CONNECTOR_SANDBOX_FAULT_SEED": "9"}
    )
    assert [r.kind for r in config.rules] == ["500", "slow"] and config.seed == 9
    for bad in ("teapot:1", "500:2", "500:0.1,colour=red"):
        with pytest.raises(UsageError):
            parse_fault(bad)


def test_faults_given_at_start(conformance: Any, clock: FakeClock) -> None:
    with start_in_thread(
        faults=FaultConfig.from_specs(["502:1,path=/connecteam"]), clock=clock
    ) as sb:
        assert (
            LOCAL.get(
                f"{sb.url}/connecteam/tasks/v1/taskboards",
                headers={"X-API-KEY": sb.env["CONNECTEAM_API_KEY"]},
            ).status_code
            == 502
        )


def test_state_dump_and_reset(sandbox: RunningSandbox, ghl: httpx.Client) -> None:
    ghl.post("/contacts/", json={"locationId": LOC, "firstName": "Temp"})
    dumped = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()
    assert len([c for c in dumped["ghl"]["contacts"] if c["locationId"] == LOC]) == 5
    LOCAL.post(f"{sandbox.url}/_sandbox/reset")
    assert ghl.get("/contacts/", params={"locationId": LOC}).json()["count"] == 4


def test_own_seed_file(conformance: Any) -> None:
    with start_in_thread(seed=HERE / "sandbox" / "tiny-seed.yaml") as sb:
        assert sb.env["GHL_LOCATION_ID"] == "TinyLocation00000001"
        r = LOCAL.get(
            f"{sb.env['GHL_BASE_URL']}/contacts/TinyContact000000001",
            headers={"Authorization": f"Bearer {sb.env['GHL_TOKEN']}", "Version": "2021-07-28"},
        )
        assert r.json()["contact"]["firstName"] == "Tiny"


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[bytes, str]]] = []
    ed: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["content-length"]))
        _Receiver.got.append((raw, self.headers["x-wh-signature"]))
        _Receiver.ed.append(self.headers["x-ghl-signature"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_webhooks_are_signed_like_ghl(sandbox: RunningSandbox, ghl: httpx.Client) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        LOCAL.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": url})
        created = ghl.post("/contacts/", json={"locationId": LOC, "firstName": "Hooked"}).json()[
            "contact"
        ]
        ghl.delete(f"/contacts/{created['id']}")
        sandbox.app.webhooks.flush()
        pem = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks/public-key").content
        events = [json.loads(raw) for raw, _ in _Receiver.got]
        assert [e["type"] for e in events] == ["ContactCreate", "ContactDelete"]
        assert events[0]["id"] == created["id"] and events[0]["locationId"] == LOC
        assert all(verify(pem, raw, sig) for raw, sig in _Receiver.got)
        assert not verify(pem, _Receiver.got[0][0] + b" ", _Receiver.got[0][1])
        # and as a receiver checks them: Ed25519 first, with the sandbox's keys set as a user would
        from connector.builtins.ghl_signatures import WebhookKeys, verify_ghl

        both = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks/public-keys").json()
        assert both["rsa"] == pem.decode()
        assert (
            both["ed25519"]
            == LOCAL.get(f"{sandbox.url}/_sandbox/webhooks/public-key?scheme=ed25519").text
        )
        keys = WebhookKeys.from_env(
            {"GHL_WEBHOOK_PUBLIC_KEY": both["ed25519"], "GHL_WEBHOOK_RSA_PUBLIC_KEY": both["rsa"]}
        )
        for (raw, legacy), current in zip(_Receiver.got, _Receiver.ed, strict=True):
            headers = {"X-GHL-Signature": current, "X-WH-Signature": legacy}
            assert verify_ghl(raw, headers, keys) == "ed25519"
            assert verify_ghl(raw, {"X-WH-Signature": legacy}, keys) == "rsa"
        bad = LOCAL.get(f"{sandbox.url}/_sandbox/webhooks/public-key?scheme=dsa")
        assert bad.status_code == 400
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_cli_prints_the_environment_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "CONNECTOR_HOME": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "sandbox", "--port", "0", "--fault", "503:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Press Ctrl-C"):
            break
    text = "".join(lines)
    url = text.split("Sandbox serving on ")[1].split()[0]
    assert f"export GHL_BASE_URL={url}/ghl" in text and "export GHL_TOKEN=pit-sandbox-" in text
    assert "sandbox credentials" in text
    assert LOCAL.get(f"{url}/_sandbox/state").status_code == 200
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err and "Sandbox stopped." in out


def test_cli_refuses_a_bad_fault_spec() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "connector", "sandbox", "--fault", "teapot:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        proc.returncode == 1
        and "unknown fault kind" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_lose_webhook_loses_a_share_of_one_vendors_deliveries_and_logs_them() -> None:
    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    faults = FaultConfig.from_specs(["lose-webhook:0.5,path=/ghl"], seed=3)
    try:
        with start_in_thread(
            faults=faults, webhook_url=f"http://127.0.0.1:{hook.server_port}/"
        ) as sb:
            location = sb.state.default_location_id
            headers = {"Authorization": f"Bearer {sb.state.default_token}", "Version": "2021-07-28"}
            with httpx.Client(base_url=f"{sb.url}/ghl", headers=headers) as ghl:
                for n in range(40):
                    made = ghl.post(
                        "/contacts/", json={"locationId": location, "firstName": f"L{n}"}
                    )
                    assert made.status_code in (200, 201), made.text
                # a request is never touched by the rule: only deliveries are lost
                assert ghl.get("/contacts/", params={"locationId": location}).status_code == 200
            assert sb.app.flush(30)
            log = LOCAL.get(f"{sb.url}/_sandbox/webhooks").json()["sent"]
            fired = LOCAL.get(f"{sb.url}/_sandbox/faults").json()["fired"]
    finally:
        hook.shutdown()
    lost = [e for e in log if e.get("lost")]
    sent = [e for e in log if not e.get("lost")]
    assert len(lost) + len(sent) == 40 and 8 <= len(lost) <= 32  # about half of 40 events
    assert fired == {"lose-webhook": len(lost)}
    assert all(e["attempt"] == 0 and e["vendor"] == "ghl" for e in lost)
    assert len(received) == len(sent)  # the lost ones never arrived, and none was retried
    assert parse_fault("lose-webhook:0.3,path=/connecteam").path == "/connecteam"
