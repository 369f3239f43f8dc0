"""No secret at rest in clear: every shipped flow runs under `connector serve` after the sandbox's
OAuth login, with recognisable fake secrets, and an API that echoes the credentials it is given
back in its answers (GoHighLevel does, in some fields). Then every byte of the database files
(the main file, its WAL), the server's log, `connector runs show --json`, the page's HTML and
`/metrics` are searched for each secret: none is found."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.connections import forget_tokens
from connector.persistence.database import close_all
from connector.persistence.runs import RunStore
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.server import Service, bind
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.runtime.e2e_support import login
from tests.serve.conftest import shipped, wait_for

CONTACT = "ocQHyuzHvysMo5N5VsXc"
USER = 9001
FAKE = {
    "GHL_CLIENT_SECRET": "FAKESECRET-client-secret-3f9a1c7e",
    "CONNECTEAM_API_KEY": "FAKESECRET-connecteam-key-8b2d4e6f",
    "CONNECTOR_HOOK_TOKEN": "FAKESECRET-hook-token-5c1e9a0b",
    "CONNECTEAM_WEBHOOK_SECRET": "FAKESECRET-webhook-path-7d3f2a1c",
}


class Echoing(httpx.BaseTransport):
    """The vendors' APIs as a careless one answers: every JSON object answer carries back the
    credentials of its request, in an innocent-looking field and in a token-named one."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.echoed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        given = request.headers.get("authorization") or request.headers.get("x-api-key")
        if not given or "json" not in response.headers.get("content-type", ""):
            return response
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        if not isinstance(body, dict):
            return response
        credential = given.removeprefix("Bearer ").strip()
        body["note"] = f"received with {credential}"
        body["meta"] = {"accessToken": credential, "echo": [credential]}
        self.echoed += 1
        headers = {
            k: v for k, v in response.headers.items() if k.lower() not in ("content-length",)
        }
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=json.dumps(body).encode(),
            request=request,
        )

    def close(self) -> None:
        self.inner.close()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.text: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore")):  # the test's own client
            self.text.append(logging.Formatter().format(record))


@pytest.fixture()
def sandbox() -> Iterator[RunningSandbox]:
    running = start_in_thread()
    yield running
    running.stop()


def test_no_secret_is_kept_or_shown_in_clear(
    sandbox: RunningSandbox, tmp_path: Path, registry: Any
) -> None:
    state = sandbox.state
    with state.lock:
        state.ghl.oauth_clients["sandbox-client-id"]["client_secret"] = FAKE["GHL_CLIENT_SECRET"]
        account = state.ct.api_keys[state.default_api_key]
        state.ct.api_keys[FAKE["CONNECTEAM_API_KEY"]] = account
    home = tmp_path / "home"
    env = {
        **sandbox_env(sandbox),
        **FAKE,
        "GHL_CLIENT_ID": "sandbox-client-id",
        "GHL_AUTH_URL": f"{sandbox.url}/ghl/oauth/chooselocation",
        "GHL_TOKEN": "",  # the OAuth connection is used
        "CONNECTOR_HOME": str(home),
    }
    logged = login(env)
    assert logged.returncode == 0, logged.stderr

    lines = Lines()
    root = logging.getLogger()
    saved = root.level
    root.addHandler(lines)
    root.setLevel(logging.DEBUG)
    echo = Echoing()
    service = Service(registry, shipped(registry), env, workers=4, transport=echo)
    try:
        service.start()
        sock = bind("127.0.0.1", 0)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        thread = threading.Thread(
            target=service.serve, args=(sock,), kwargs={"install_signal_handlers": False}
        )
        thread.start()
        wait_for(lambda: _healthy(url), 30)
        wire_sandbox(sandbox, url, FAKE["CONNECTEAM_WEBHOOK_SECRET"])
        store = RunStore(service.runtime.db.engine)
        _every_flow(sandbox, url, env, service)
        runs = store.list(limit=1000)
        by_recipe = {r.recipe for r in runs}
        served = {plan.name for plan in service.plans}
        assert by_recipe == served, served - by_recipe
        assert echo.echoed > 0
        issued = _issued(sandbox)
        assert issued
        secrets = [*FAKE.values(), *issued]

        shown = [_show(env, run.id) for run in runs]
        with httpx.Client(base_url=url) as client:
            pages = [client.get("/").text, client.get("/ui/queue").text]
            pages += [client.get(f"/ui/runs/{run.id}").text for run in runs]
            pages += [client.get("/ui/connections").text, client.get("/ui/links").text]
            metrics = client.get("/metrics").text
        files_while_serving = _database_bytes(home)
        assert any(p.name.endswith("-wal") for p in home.rglob("*"))  # the WAL is searched too
        service.stop()
        thread.join(timeout=60)
        files_after = _database_bytes(home)
    finally:
        service.stop()
        root.removeHandler(lines)
        root.setLevel(saved)
        forget_tokens()
        close_all()

    places = {
        "the database files while serving": files_while_serving,
        "the database files after": files_after,
        "the log": "\n".join(lines.text).encode(),
        "the login's output": (logged.stdout + logged.stderr).encode(),
        "runs show --json": "\n".join(shown).encode(),
        "the page": "\n".join(pages).encode(),
        "/metrics": metrics.encode(),
    }
    found = [
        (where, secret[:18]) for where, data in places.items() for secret in secrets
        if secret.encode() in data
    ]  # fmt: skip
    assert found == []
    # the runs used the real values: every one succeeded
    assert all(run.status == "succeeded" for run in runs), [
        (r.recipe, r.status, r.error) for r in runs if r.status != "succeeded"
    ]


def _every_flow(sandbox: RunningSandbox, url: str, env: dict[str, str], service: Service) -> None:
    ghl = httpx.Client(
        base_url=env["GHL_BASE_URL"] + "/",
        headers={"Authorization": f"Bearer {sandbox.state.default_token}", "Version": "2021-07-28"},
    )
    ct = httpx.Client(
        base_url=env["CONNECTEAM_BASE_URL"] + "/", headers={"X-API-KEY": FAKE["CONNECTEAM_API_KEY"]}
    )
    store = RunStore(service.runtime.db.engine)

    def ran(recipe: str) -> bool:
        return any(r.recipe == recipe for r in store.list(limit=1000))

    def settled() -> None:
        def quiet() -> bool:
            sandbox.app.flush()
            return service.runtime.unfinished() == 0 and all(
                r.status != "running" for r in store.list(limit=1000)
            )

        wait_for(quiet, 90)

    with ghl, ct:
        edited = ct.put("users/v1/users", json=[{"userId": USER, "lastName": "Avery-Lee"}])
        assert edited.status_code == 200, edited.text
        wait_for(lambda: ran("push-contact-edits"))
        settled()
        sandbox.app.clock.advance(2)
        assert ghl.put(f"contacts/{CONTACT}", json={"firstName": "Jordy"}).status_code == 200
        wait_for(lambda: ran("sync-contact-to-connecteam"))
        settled()
        hook = httpx.post(
            f"{url}/hooks/pull-contact-on-select",
            json={"contactId": CONTACT, "userId": USER},
            headers={"authorization": f"Bearer {FAKE['CONNECTOR_HOOK_TOKEN']}"},
        )
        assert hook.status_code == 202, hook.text
        wait_for(lambda: ran("pull-contact-on-select"))
        settled()
        made = ct.post(
            "users/v1/users",
            json=[{"firstName": "Mary Ann", "lastName": "van der Berg",
                   "email": "maryann@bakery.example", "phoneNumber": "+15555550144",
                   "userType": "user"}],
        )  # fmt: skip
        assert made.status_code == 200, made.text
        wait_for(lambda: ran("create-contact-from-connecteam"))
        settled()
        [poller] = [p for p in service.pollers if p.plan.name == "push-task-edits"]
        poller.poll()  # the first poll only looks
        task = ct.post(
            "tasks/v1/taskboards/7001/tasks",
            json={"title": "Fix the gate", "status": "published", "userIds": [USER]},
        )
        assert task.status_code in (200, 201), task.text
        wait_for(lambda: ran("create-task-from-connecteam"))
        settled()
        poller.poll()
        # an edit on the board (no webhook: found by the poll) that completes it (a webhook)
        edit = {"title": "Fix the gate today", "status": "completed", "userIds": [USER]}
        task_id = task.json()["data"]["id"]
        assert ct.put(f"tasks/v1/taskboards/7001/tasks/{task_id}", json=edit).status_code == 200
        assert poller.poll()
        wait_for(lambda: ran("push-task-edits") and ran("tag-contact-on-activity"))
        settled()
        assert ghl.delete(f"contacts/{CONTACT}").status_code == 200
        wait_for(lambda: ran("archive-user-on-contact-delete"))
        settled()


def _issued(sandbox: RunningSandbox) -> list[str]:
    """Every OAuth token the sandbox issued (access and refresh)."""
    state = sandbox.state
    with state.lock:
        tokens = [t for t, info in state.ghl.tokens.items() if info.kind != "private"]
        refresh = list(state.ghl.refresh_tokens)
    return [*tokens, *refresh]


def _show(env: dict[str, str], run_id: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "connector", "runs", "show", run_id, "--json"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def _database_bytes(home: Path) -> bytes:
    """Every byte of every file under ``home`` but the key (the database, its WAL, locks)."""
    return b"".join(
        p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file() and p.name != "secret.key"
    )


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
