"""``connector serve recipes/ --sandbox``, as the README tells a newcomer to run it: the shipped
declaration keeps people and tasks the same both ways through the sandbox's own webhooks.

Everything is done as a person would do it, through the two apps' APIs, and judged by what the
apps hold afterwards: a user made in Connecteam gets one GoHighLevel contact; an edit of that
contact reaches the user; a task made in GoHighLevel appears once on the user in Connecteam, and
completing it there completes it in GoHighLevel."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def _until(probe: Callable[[], T | None], what: str, seconds: float = 60.0) -> T:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")


@pytest.fixture()
def sandbox(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """Serve the shipped recipes/ on a fresh sandbox; the sandbox's URL and credentials, as the
    banner prints them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "CONNECTEAM_"))}
    for name in ("CONNECTOR_DATABASE_URL", "CONNECTOR_HOOK_TOKEN", "CONNECTOR_VAR_TASK_BOARD_ID"):
        env.pop(name, None)
    env["CONNECTOR_HOME"] = str(tmp_path / "home")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connector",
            "serve",
            str(ROOT / "recipes"),
            "--sandbox",
            "--port",
            "0",
        ],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
    )
    assert proc.stderr is not None
    banner = []
    for line in proc.stderr:
        banner.append(line)
        if line.startswith("serving "):
            break
    text = "".join(banner)
    try:
        found = re.search(r"fakes at (\S+)", text)
        keys = re.search(r"'Authorization: Bearer (\S+)'.*'X-API-KEY: (\S+)'", text)
        assert found and keys, text
        assert "try sync people-and-tasks" in text, text
        yield found[1], keys[1], keys[2]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


class Apps:
    def __init__(self, url: str, token: str, key: str) -> None:
        state = httpx.get(f"{url}/_sandbox/state").json()
        self.location = state["ghl"]["locations"][0]["id"]
        self.ghl = httpx.Client(
            base_url=f"{url}/ghl",
            headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"},
        )
        self.ct = httpx.Client(base_url=f"{url}/connecteam", headers={"X-API-KEY": key})

    def contacts(self, email: str) -> list[dict[str, Any]]:
        body = {"locationId": self.location, "pageLimit": 100, "query": email}
        found: list[dict[str, Any]] = self.ghl.post("/contacts/search", json=body).json()[
            "contacts"
        ]
        return [c for c in found if (c.get("email") or "").lower() == email]

    def user(self, user_id: int) -> dict[str, Any]:
        params = {"userIds": [user_id], "userStatus": "all"}
        [user] = self.ct.get("/users/v1/users", params=params).json()["data"]["users"]
        return dict(user)

    def board_tasks(self, user_id: int) -> list[dict[str, Any]]:
        params = {"userIds": [user_id], "status": "all", "limit": 100}
        answer = self.ct.get("/tasks/v1/taskboards/7001/tasks", params=params).json()
        return list(answer["data"]["tasks"])


def test_the_shipped_sync_served_on_the_sandbox_works_both_ways(
    sandbox: tuple[str, str, str],
) -> None:
    apps = Apps(*sandbox)
    email = "grace.hopper@example.com"
    made = apps.ct.post(
        "/users/v1/users",
        json=[
            {
                "firstName": "Grace",
                "lastName": "Hopper",
                "email": email,
                "phoneNumber": "+15555550142",
                "userType": "user",
            }
        ],
    )
    made.raise_for_status()
    user_id = int(made.json()["data"]["results"][0]["userId"])

    # Connecteam -> GoHighLevel: one contact for the new user
    [contact] = _until(lambda: apps.contacts(email), "a GoHighLevel contact for the new user")
    assert (contact["firstName"], contact["lastName"]) == ("Grace", "Hopper")

    # GoHighLevel -> Connecteam: an edit of the contact reaches the user
    apps.ghl.put(
        f"/contacts/{contact['id']}", json={"lastName": "Hopper-Murray"}
    ).raise_for_status()
    _until(lambda: apps.user(user_id)["lastName"] == "Hopper-Murray", "the user's new last name")

    # a task born in GoHighLevel appears once on the user in Connecteam
    task = apps.ghl.post(
        f"/contacts/{contact['id']}/tasks",
        json={"title": "Ship the compiler", "dueDate": "2026-12-20T15:00:00Z", "completed": False},
    )
    task.raise_for_status()
    ghl_task = task.json()["task"]
    [ct_task] = _until(
        lambda: [t for t in apps.board_tasks(user_id) if t["title"] == "Ship the compiler"],
        "the task in Connecteam",
    )
    # completing it in Connecteam completes it in GoHighLevel
    body = {"userIds": ct_task["userIds"], "title": ct_task["title"]}
    apps.ct.put(
        f"/tasks/v1/taskboards/7001/tasks/{ct_task['id']}", json={**body, "status": "completed"}
    ).raise_for_status()

    def completed() -> bool:
        got = apps.ghl.get(f"/contacts/{contact['id']}/tasks/{ghl_task['id']}").json()["task"]
        return bool(got["completed"])

    _until(completed, "the task completed in GoHighLevel")
    time.sleep(1.0)  # whatever echoes are still on their way arrive, and must copy nothing
    assert len(apps.contacts(email)) == 1
    assert len([t for t in apps.board_tasks(user_id) if t["title"] == "Ship the compiler"]) == 1
