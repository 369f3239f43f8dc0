"""End to end: connector-acme pip-installed into a fresh virtual environment, its example recipe
served by a real ``connector serve`` process, against a fake Acme API on a real port.

What is asserted is what Acme sees (its notes, and the requests it received, on its own clock),
not only what the runtime reports: a signed webhook makes the recipe read the widget and write a
note; a webhook with a wrong signature is refused (401) and writes nothing; a 429 whose
``X-Acme-Calls-Reset-Ms`` says 3 s is followed by the next attempt no sooner than 3 s later; a
change no webhook told of is found by the poll. Waits have no deadline: they end when Acme has
what the test waits for, or fail at once when the served process exits.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from connector_acme import SIGNATURE_HEADER, sign
from fake_acme import API_KEY, FakeAcme

PLUGIN = Path(__file__).resolve().parents[1]
EXAMPLES = PLUGIN / "examples"
SECRET = "acme-webhook-secret-7c1"
RESET_MS = 3000


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    fake: FakeAcme
    stderr: list[str] = field(default_factory=list)

    def until(self, what: Callable[[], Any]) -> Any:
        """``what()`` once it is truthy; fails at once if the served process has exited."""
        while True:
            value = what()
            if value:
                return value
            if self.process.poll() is not None:
                pytest.fail("connector serve exited:\n" + "".join(self.stderr[-40:]))
            time.sleep(0.05)

    def deliver(self, body: dict[str, Any], signature: str | None = "good") -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if signature == "good":
            headers[SIGNATURE_HEADER] = sign(SECRET, raw)
        elif signature is not None:
            headers[SIGNATURE_HEADER] = signature
        return httpx.post(f"{self.url}/webhooks/acme", content=raw, headers=headers)


def _sh(*args: str | Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd)


def _install(tmp: Path, env: dict[str, str]) -> Path:
    """A fresh venv that sees this environment's packages through a .pth file (so nothing is
    downloaded), with connector-acme pip-installed into it: its python."""
    made = _sh(sys.executable, "-m", "venv", "--without-pip", tmp / "venv", env=env, cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = tmp / "venv" / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = _sh(python, "-c", code, env=env, cwd=tmp).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    pth = f"import site; site.addsitedir({ours!r})\n"
    Path(purelib, "_connector_test_parent.pth").write_text(pth, encoding="utf-8")
    source = tmp / "connector-acme"  # build from a copy: pip writes build files in the tree
    shutil.copytree(
        PLUGIN, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    )
    pip = ("-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", source)
    installed = _sh(python, *pip, env=env, cwd=tmp)
    if installed.returncode != 0 and "No module named pip" in installed.stderr:
        pytest.skip("this environment has no pip to install the plugin with")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("acme")
    fake = FakeAcme().start()
    for widget_id, name in (("w1", "Sprocket"), ("w2", "Gear"), ("w3", "Flange"), ("w4", "Bolt")):
        fake.put_widget(widget_id, name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "CONNECTOR_"))}
    env.update(
        CONNECTOR_HOME=str(tmp / "home"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INDEX="1",
        SETUPTOOLS_USE_DISTUTILS="stdlib",
    )
    python = _install(tmp, env)
    env.update(ACME_BASE_URL=fake.url, ACME_API_KEY=API_KEY, ACME_WEBHOOK_SECRET=SECRET)
    process = subprocess.Popen(
        [str(python), "-m", "connector", "serve", str(EXAMPLES), "--port", "0", "--workers", "2"],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    lines: list[str] = []
    url = None
    for line in process.stderr:  # until it says where it serves (or exits)
        lines.append(line)
        found = re.search(r"serving \d+ recipe\(s\) at (http://\S+):", line)
        if found:
            url = found.group(1)
            break
    if url is None:
        process.wait()
        fake.stop()
        pytest.fail("connector serve did not start:\n" + "".join(lines[-40:]))
    drain = threading.Thread(target=lines.extend, args=(process.stderr,), daemon=True)
    drain.start()
    yield Served(url, process, fake, lines)
    process.send_signal(signal.SIGTERM)
    process.wait()
    fake.stop()


def test_a_signed_webhook_runs_the_recipe_against_acme(served: Served) -> None:
    body = {"id": "dlv-1", "type": "widget.updated", "widget": {"id": "w1", "version": 1}}
    answer = served.deliver(body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["runs"]) == 1
    assert served.until(lambda: served.fake.notes_of("w1")) == ["seen Sprocket at version 1"]
    asked = [(r.method, r.path) for r in served.fake.received() if "/w1" in r.path]
    assert asked == [("GET", "/widgets/w1"), ("POST", "/widgets/w1/notes")]
    again = served.deliver(body)  # the same delivery again: known, runs nothing more
    assert again.status_code == 200 and again.json().get("duplicate") is True


def test_a_wrong_signature_is_refused_and_runs_nothing(served: Served) -> None:
    forged = {"id": "dlv-2", "type": "widget.updated", "widget": {"id": "w2", "version": 66}}
    wrong = served.deliver(forged, signature=sign("not-the-secret", json.dumps(forged).encode()))
    assert wrong.status_code == 401
    assert "does not match" in wrong.json()["error"]
    missing = served.deliver(forged, signature=None)
    assert missing.status_code == 401
    # a good delivery about the same widget afterwards: its run is the only one (runs about one
    # widget run in the order their events came, so a run of the forged one would be done first)
    good = {"id": "dlv-3", "type": "widget.updated", "widget": {"id": "w2", "version": 2}}
    assert served.deliver(good).status_code == 200
    assert served.until(lambda: served.fake.notes_of("w2")) == ["seen Gear at version 2"]
    assert len(served.fake.received("GET", "/widgets/w2")) == 1
    metrics = httpx.get(f"{served.url}/metrics").text
    assert re.search(
        r'connector_events_refused_total\{reason="signature",source="acme"\} 2\.0', metrics
    ), metrics


def test_acmes_rate_limit_headers_are_honoured(served: Served) -> None:
    served.fake.throttle_notes(1, RESET_MS)
    body = {"id": "dlv-4", "type": "widget.updated", "widget": {"id": "w3", "version": 3}}
    assert served.deliver(body).status_code == 200
    assert served.until(lambda: served.fake.notes_of("w3")) == ["seen Flange at version 3"]
    writes = served.fake.received("POST", "/widgets/w3/notes")
    assert [w.status for w in writes] == [429, 201]
    # the attempt after the 429 came no sooner than X-Acme-Calls-Reset-Ms said (on Acme's clock)
    assert writes[1].at - writes[0].at >= RESET_MS / 1000


def test_a_poll_finds_a_change_no_webhook_told_of(served: Served) -> None:
    # the first poll only looks (the webhooks had the past); a change after it is found
    served.until(lambda: served.fake.received("GET", "/widgets"))
    changed = served.fake.put_widget("w4", "Bolt, longer")
    notes = served.until(lambda: served.fake.notes_of("w4"))
    assert notes == [f"seen Bolt, longer at version {changed['version']}"]
