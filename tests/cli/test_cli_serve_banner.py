"""What ``connector serve --sandbox`` says to try follows what is loaded, and what it says works:
the printed curl makes the change, and the printed ``connector sandbox show`` shows just the
record that appears on the other side."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from connector.apps.plugins import default_registry
from connector.cli.serve_hints import Credentials, sandbox_hints

ROOT = Path(__file__).resolve().parents[2]
SYNC = ROOT / "tests" / "sync" / "people.sync.yaml"
CREDS = Credentials("http://sandbox:1", "http://server:2", "tok", "loc", "key")


def _plan(name: str, app: str, event: str, *actions: str, **extra: Any) -> Any:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    steps = [SimpleNamespace(target=registry.operation(a)) for a in actions]
    fields = {"cron": None, "poll": None, "sample": {}, "path": f"recipes/{name}.yaml"}
    return SimpleNamespace(
        name=name, trigger_app=app, trigger_event=event, steps=steps, **{**fields, **extra}
    )


def test_the_hints_follow_the_recipes_loaded() -> None:
    """Issue 29: the banner always said "Try a new Connecteam user", whatever was loaded."""
    nightly = _plan("nightly", "schedule", "cron", "connecteam.get-users", cron="0 3 * * *")
    lines = sandbox_hints(CREDS, [nightly], [], hook_token_set=False)
    assert lines == ["recipe nightly runs on its schedule (0 3 * * *): connector runs list"]

    copy = _plan("copy-contacts", "ghl", "ContactCreate", "connecteam.create-users")
    [text] = sandbox_hints(CREDS, [copy], [], hook_token_set=False)
    assert text.startswith(
        "try recipe copy-contacts: create a contact in the sandbox's GoHighLevel"
    )
    assert "curl -s -X POST http://sandbox:1/ghl/contacts/ -H 'Authorization: Bearer tok'" in text
    assert text.endswith(
        "then see its Connecteam user: connector sandbox show connecteam users"
        " email=grace@example.com --url http://sandbox:1"
    )
    assert "Connecteam user\n" not in text and "/_sandbox/state" not in text


def test_a_hook_recipe_gets_its_sample_only_when_hooks_are_open() -> None:
    picked = _plan(
        "pick", "connecteam", "contact.selected", "ghl.get-contact", sample={"contactId": "c1"}
    )
    [closed] = sandbox_hints(CREDS, [picked], [], hook_token_set=False)
    assert "set CONNECTOR_HOOK_TOKEN" in closed and "connector run recipes/pick.yaml" in closed
    [opened] = sandbox_hints(CREDS, [picked], [], hook_token_set=True)
    assert "curl -s http://server:2/hooks/pick" in opened
    assert '"Authorization: Bearer $CONNECTOR_HOOK_TOKEN"' in opened  # the name, never a value
    assert """-d '{"contactId": "c1"}'""" in opened


def test_one_change_that_starts_several_is_said_once() -> None:
    one = _plan("one", "connecteam", "user_created", "ghl.upsert-contact")
    two = _plan("two", "connecteam", "user_created", "ghl.create-contact")
    lines = sandbox_hints(CREDS, [one, two], [], hook_token_set=False)
    assert len(lines) == 1 and lines[0].startswith("try recipe one, recipe two: create a user")


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``connector serve tests/sync/people.sync.yaml --sandbox``: its banner, and a folder whose
    ``connector`` runs this checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    launcher = bin_dir / "connector"
    launcher.write_text(f'#!/bin/sh\nexec {sys.executable} -m connector "$@"\n')
    launcher.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "CONNECTEAM_"))}
    env.pop("CONNECTOR_DATABASE_URL", None)
    env.pop("CONNECTOR_HOOK_TOKEN", None)
    env["CONNECTOR_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector", "serve", str(SYNC), "--sandbox", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if line.startswith("serving "):
            break
    try:
        yield "".join(lines), bin_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate()


def test_the_printed_commands_make_the_user_and_show_just_its_contact(
    served: tuple[str, Path],
) -> None:
    banner, bin_dir = served
    assert "Try a new Connecteam user" not in banner
    found = re.search(
        r"try sync people \(contact\): create a user in the sandbox's Connecteam:\n"
        r"    (curl .*?\n.*?)\n  then see its GoHighLevel contact: (connector sandbox show .*)\n",
        banner,
    )
    assert found, banner
    curl, show = found[1], found[2]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    made = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, check=True)
    [user] = json.loads(made.stdout)["data"]["results"]
    assert user["email"] == "ada@example.com"

    sandbox = re.search(r"--url (\S+)", show)
    assert sandbox
    contacts: list[dict[str, Any]] = []
    for _ in range(300):  # the sync runs from the sandbox's webhook, a moment later
        state = httpx.get(f"{sandbox[1]}/_sandbox/state").json()
        contacts = [c for c in state["ghl"]["contacts"] if c.get("email") == "ada@example.com"]
        if contacts:
            break
        time.sleep(0.1)
    assert len(contacts) == 1, "no contact was made for the new user"
    shown = subprocess.run(shlex.split(show), env=env, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == contacts  # just that record, as the sandbox holds it
    assert len(shown.stdout) < 3000  # not the sandbox's whole state

    nothing = subprocess.run(
        [*shlex.split(show)[:5], "email=nobody@example.com", "--url", sandbox[1]],
        env=env,
        capture_output=True,
        text=True,
    )
    assert nothing.returncode == 1 and "no ghl contacts with email=nobody@example.com" in (
        nothing.stderr
    )
