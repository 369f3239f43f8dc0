"""A sync served by two `connector serve` processes on one PostgreSQL database.

The sandbox's webhooks reach the two processes through a round-robin proxy, as a load balancer
spreads them: the events of one pair land on both processes, often at once (a GoHighLevel edit
and a Connecteam edit of one person a moment apart). The pair's synced state is in the one
database, and the two processes' runs for one pair must not interleave their read, compare and
write: when they do, one edit is lost or reverted.

Every change is made through the two apps' APIs, one at a time, each a little later by the
vendors' clocks than the one before, much faster than the sync keeps up (its runs meet events
long after later edits were made); the test keeps its own log of them, and afterwards both apps
must hold, for every person and field, the value of the last edit, and every person exactly
once on each side."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.persistence.database import close_all
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.wiring import sandbox_env, wire_sandbox
from tests.runtime.e2e_support import CHAOS_LIMITS
from tests.serve.conftest import wait_for
from tests.serve.served_events import SCALED, Server, free_port
from tests.sync.conftest import Apps

SYNC = Path(__file__).parent / "people.sync.yaml"
PEOPLE = 12
EDITS = 72
FIELDS = ("firstName", "lastName")


class RoundRobin:
    """An HTTP proxy that sends each request, as it came (body and headers, so signatures still
    hold), to the next of ``ports``; the answer goes back as the server gave it."""

    def __init__(self, ports: list[int]) -> None:
        turn = count()
        client = httpx.Client(timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                port = ports[next(turn) % len(ports)]
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                try:
                    answer = client.post(
                        f"http://127.0.0.1:{port}{self.path}", content=body, headers=headers
                    )
                    status, content = answer.status_code, answer.content
                except httpx.HTTPError:
                    status, content = 502, b""
                self.send_response(status)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def cluster(
    tmp_path: Path, postgres_database: Callable[[], str]
) -> Iterator[tuple[RunningSandbox, list[Server]]]:
    url = postgres_database()
    # the vendors' limits scaled up (the test's own reads and edits count against them too)
    with start_in_thread(limits=CHAOS_LIMITS) as sandbox:
        base = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "CONNECTEAM_"))},
            **sandbox_env(sandbox),
            "CONNECTOR_DATABASE_URL": url,
            **SCALED,
        }
        base.pop("CONNECTOR_HOOK_TOKEN", None)
        servers = []
        for n in range(2):
            logs = tmp_path / f"p{n}"
            logs.mkdir()
            env = {**base, "CONNECTOR_EXECUTOR_ID": f"serve-{n}"}
            servers.append(Server(env, free_port(), logs, recipes=[SYNC]))
        for server in servers:
            server.start()
        proxy = RoundRobin([s.port for s in servers])
        wire_sandbox(sandbox, proxy.url, base["CONNECTEAM_WEBHOOK_SECRET"])
        try:
            yield sandbox, servers
        finally:
            for server in servers:
                if server.proc is not None and server.proc.poll() is None:
                    server.terminate()
            proxy.close()
            sandbox.app.close()
    close_all()


def _user_of(apps: Apps, email: str) -> list[dict[str, Any]]:
    return [u for u in apps.users() if (u.get("email") or "").lower() == email]


def test_two_processes_on_one_database_keep_every_edit_of_both_sides(
    cluster: tuple[RunningSandbox, list[Server]],
) -> None:
    sandbox, servers = cluster
    apps = Apps(sandbox)
    rng = random.Random(20261207)
    people = []
    for n in range(PEOPLE):
        email = f"person{n}@example.com"
        contact = apps.new_contact(
            firstName=f"First{n}", lastName=f"Last{n}", email=email, phone=f"+1555556{n:04d}"
        )
        people.append({"email": email, "contact": contact["id"]})
    # the sync makes each contact's Connecteam user
    for person in people:
        [user] = wait_for(lambda p=person: _user_of(apps, p["email"]), timeout=120, every=0.2)
        person["user"] = user["userId"]

    expected = {p["email"]: {"firstName": None, "lastName": None} for p in people}
    for person in people:
        contact = apps.contact(person["contact"])
        expected[person["email"]] = {f: contact[f] for f in FIELDS}
    # each person's first name is edited on one side and last name on the other, so both
    # sides of one pair change at once and their events land on both processes; the vendors
    # give no per-field change times, so a field edited on both sides is left to the merge's
    # own tests (tests/sync/test_sync_contacts.py), which can order those events
    for n in range(EDITS):
        index = rng.randrange(PEOPLE)
        person = people[index]
        field = rng.choice(FIELDS)
        value = f"{field[:1].upper()}{n}"
        apps.advance(1.1)  # each edit later than the last by both vendors' clocks
        if (index + FIELDS.index(field)) % 2 == 0:
            apps.edit_contact(person["contact"], **{field: value})
        else:
            apps.edit_user(person["user"], **{field: value})
        expected[person["email"]][field] = value

    def differing() -> list[tuple[str, str, Any, Any, Any]]:
        """(email, field, expected, GoHighLevel's, Connecteam's) wherever a side differs; read
        from the sandbox's own state, so no request budget is spent on it."""
        out = []
        state = sandbox.state
        with state.lock:
            for person in people:
                want = expected[person["email"]]
                contact = state.ghl.contacts[person["contact"]]
                user = state.ct.users[int(person["user"])]
                for f in FIELDS:
                    if contact.get(f) != want[f] or user.get(f) != want[f]:
                        out.append((person["email"], f, want[f], contact.get(f), user.get(f)))
        return out

    try:
        wait_for(lambda: not differing(), timeout=180, every=0.5)
    except AssertionError:
        raise AssertionError(f"not converged: {differing()}") from None
    for person in people:  # nobody copied on either side
        assert len(_user_of(apps, person["email"])) == 1
        assert len(apps.contacts(query=person["email"])) == 1
    # both processes ran sync runs: the pairs' events really were shared
    logs = [(s.logs / "serve-1.log").read_text() for s in servers]
    assert all("recipe=people" in text for text in logs), "a process ran no sync run"
