"""Error routes: a recipe's `on_failure` runs once when a run of it fails for good (after a
SIGKILL and `connector runs resume` too), with the failure as its trigger, and never when it
succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import set_faults

from connector.sandbox.server import RunningSandbox
from tests.runtime.e2e_support import LOCAL, Launcher, cli_here

HERE = Path(__file__).parent / "routes"
CONTACT = "ocQHyuzHvysMo5N5VsXc"
CLI = [sys.executable, "-m", "connector"]


def _runs(env: dict[str, str], recipe: str) -> list[dict[str, Any]]:
    done = cli_here(env, "runs", "list", "--recipe", recipe, "--json", expect=None)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["runs"])


def _tags(sandbox: RunningSandbox) -> list[str]:
    answer = LOCAL.get(
        f"{sandbox.url}/ghl/contacts/{CONTACT}",
        headers={"Authorization": f"Bearer {sandbox.env['GHL_TOKEN']}", "Version": "2021-07-28"},
    )
    return [t for t in answer.json()["contact"].get("tags") or [] if t.startswith("failed-")]


def _event(tmp_path: Path, missing: str) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"contactId": CONTACT, "missing": missing}))
    return str(path)


def test_a_failed_run_runs_its_route_once_with_the_failure_in_scope(
    tmp_path: Path, env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    done = launcher.cli(env, "run", str(HERE / "read-then-fail.yaml"), "--json", expect=None)
    assert done.returncode == 1, done.stderr
    failed = json.loads(done.stdout)
    [route] = _runs(env, "tell-someone")
    assert route["status"] == "succeeded"
    assert route["trigger"]["payload"]["run_id"] == failed["id"]
    assert route["output"] == {"said": failed["error"], "step": "missing"}
    assert "Contact not found" in failed["error"]
    assert _tags(sandbox) == [f"failed-{failed['id']}"]


def test_a_run_that_succeeds_runs_no_route(
    tmp_path: Path, env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    event = _event(tmp_path, CONTACT)  # the second read finds the contact too
    done = launcher.cli(
        env, "run", str(HERE / "read-then-fail.yaml"), "--event", event, "--json", expect=None
    )
    assert done.returncode == 0, done.stderr
    assert _runs(env, "tell-someone") == []
    assert _tags(sandbox) == []


def test_a_route_runs_once_after_a_sigkill_and_resume(
    tmp_path: Path, env: dict[str, str], sandbox: RunningSandbox, launcher: Launcher
) -> None:
    set_faults(sandbox, f"slow:1,delay=3,method=GET,path=/ghl/contacts/{CONTACT}")
    proc = subprocess.Popen(
        [*CLI, "run", str(HERE / "read-then-fail.yaml"), "--json"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the first read is at the sandbox
            fired = LOCAL.get(f"{sandbox.url}/_sandbox/faults").json().get("fired") or {}
            if any(count for count in fired.values()):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never sent its first read")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    set_faults(sandbox)
    assert _runs(env, "tell-someone") == []  # killed before it failed: no route yet
    done = launcher.cli(env, "runs", "resume", "--json", expect=None)
    assert done.returncode == 1, done.stderr  # the resumed run failed, for good
    [resumed] = [r for r in json.loads(done.stdout)["runs"] if r["recipe"] == "read-then-fail"]
    assert resumed["status"] == "failed"
    [route] = _runs(env, "tell-someone")
    assert (route["status"], route["trigger"]["payload"]["run_id"]) == ("succeeded", resumed["id"])
    again = launcher.cli(env, "runs", "resume", expect=None)
    assert "no interrupted runs" in again.stdout
    assert len(_runs(env, "tell-someone")) == 1
    assert _tags(sandbox) == [f"failed-{resumed['id']}"]


def test_serve_refuses_a_route_to_a_recipe_it_does_not_serve() -> None:
    from click.testing import CliRunner

    from connector.cli import cli

    result = CliRunner().invoke(cli, ["serve", str(HERE / "read-then-fail.yaml")])
    assert result.exit_code == 2
    assert "on_failure names the recipe 'tell-someone'" in result.stderr
    assert "nothing is served" in result.stderr
