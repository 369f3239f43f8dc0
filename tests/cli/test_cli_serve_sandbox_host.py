"""``connector serve --sandbox`` on every interface: the sandbox's webhooks are registered with a
loopback URL of the server (the sandbox, like Connecteam, takes plain http only to loopback), and
an address the sandbox cannot send to is refused before anything listens."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.sandbox.connecteam_webhooks import url_problem

RECIPE = Path(__file__).parents[2] / "recipes" / "pull-contact-on-select.yaml"


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[list[str], subprocess.Popen[str]]]:
    """``connector serve --sandbox --host 0.0.0.0`` in a subprocess; its stderr up to the line
    that says it is serving (or to its end, if it stopped)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "CONNECTEAM_"))}
    env.pop("CONNECTOR_DATABASE_URL", None)
    env["CONNECTOR_HOME"] = str(tmp_path / "home")
    command = [sys.executable, "-m", "connector", "serve", str(RECIPE), "--sandbox"]
    proc = subprocess.Popen(
        [*command, "--host", "0.0.0.0", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("serving "):
            break
    try:
        yield lines, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.communicate()


def test_on_every_interface_the_webhooks_come_back_over_loopback(
    served: tuple[list[str], subprocess.Popen[str]],
) -> None:
    lines, proc = served
    text = "".join(lines)
    assert proc.poll() is None, text
    assert "URL scheme not permitted" not in text and "internal error" not in text
    port = re.search(r"serving 1 recipe\(s\) at http://0\.0\.0\.0:(\d+)", text)
    sandbox = re.search(r"sandbox: GoHighLevel and Connecteam fakes at (\S+)", text)
    key = re.search(r"X-API-KEY: (\S+?)'", text)
    assert port and sandbox and key, text
    listed = httpx.get(
        f"{sandbox[1]}/connecteam/settings/v1/webhooks",
        params={"featureType": "users"},
        headers={"X-API-KEY": key[1]},
    )
    assert listed.status_code == 200, listed.text
    [hook] = listed.json()["data"]["webhooks"]
    prefix = f"http://127.0.0.1:{port[1]}/webhooks/connecteam/"
    assert hook["url"].startswith(prefix)
    # the URL registered reaches this server
    assert httpx.get(f"http://127.0.0.1:{port[1]}/healthz").status_code == 200


def test_an_address_the_sandbox_cannot_send_to_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["serve", str(RECIPE), "--sandbox", "--host", "192.0.2.7", "--port", "0"],
        env={"CONNECTOR_HOME": str(tmp_path / "home")},
    )
    assert result.exit_code == 2, result.output
    assert "--sandbox with --host 192.0.2.7" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("http://127.0.0.1:8000/hook", True),
        ("http://127.0.0.2:8000/hook", True),
        ("http://[::1]:8000/hook", True),
        ("http://localhost/hook", True),
        ("https://example.com/hook", True),
        ("http://0.0.0.0:8000/hook", False),
        ("http://192.0.2.7/hook", False),
    ],
)
def test_the_sandbox_takes_plain_http_only_to_loopback(url: str, accepted: bool) -> None:
    assert (url_problem(url) is None) is accepted
