"""Scale-out across locations: three `connector serve` processes on one PostgreSQL database, an
agency connection for 20 locations, 1,000 `ContactUpdate` webhooks (five versions of each of 200
contacts, each contact's versions sent in order, the webhooks spread round-robin over the
processes), one process killed with SIGKILL half-way. A note whose answer the killed process never saw is
resolved by the step's `once.lookup` (the contact's notes), never sent blindly again.

Afterwards, by the sandbox's own record: every version is noted on its contact exactly once and
in the order it was sent; no location received more than its request budget in any 10-s window
(nor a single 429); each location's requests carried that location's token; and the survivors
finished the killed process's runs."""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.connections import forget_tokens
from connector.persistence.database import close_all
from connector.persistence.sealing import new_key
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.serve.wiring import sandbox_env
from tests.runtime.e2e_support import LOCAL, RequestLog, login
from tests.serve.served_events import SEED, Balancer, Server, ended_runs, free_port

RECIPE = Path(__file__).parent / "recipes" / "note_contact_version.yaml"
PROCESSES = 3
LOCATIONS = 20
CONTACTS_PER_LOCATION = 10
VERSIONS = 5  # 20 x 10 x 5 = 1,000 webhooks
BUDGET = 40  # requests per location per 10 s: the runs' budget and the sandbox's limit alike
WINDOW = 10.0


def location_id(i: int) -> str:
    return f"loc{i:02d}".ljust(20, "L")


def contact_id(location: int, n: int) -> str:
    return f"c{location:02d}n{n:02d}".ljust(20, "C")


def seed() -> dict[str, Any]:
    data = yaml.safe_load(SEED.read_text())
    ghl = data["ghl"]
    for i in range(LOCATIONS - len(ghl["locations"])):
        ghl["locations"].append(
            {
                "id": location_id(i),
                "name": f"Location {i} (sandbox)",
                "allowDuplicateContact": True,
                "timezone": "UTC",
            }
        )
    locations = [loc["id"] for loc in ghl["locations"]]
    for li, loc in enumerate(locations):
        for n in range(CONTACTS_PER_LOCATION):
            ghl["contacts"].append(
                {
                    "id": contact_id(li, n),
                    "locationId": loc,
                    "firstName": f"C{li}-{n}",
                    "email": f"c{li}n{n}@scale.example",
                    "dateAdded": "2024-03-01T15:04:05.000Z",
                }
            )
    return data


@pytest.fixture()
def cluster(
    tmp_path: Path, postgres_database: Callable[[], str]
) -> Iterator[tuple[RunningSandbox, list[Server], dict[str, str]]]:
    url = postgres_database()
    limits = RateLimitConfig(ghl_burst_max=BUDGET, ghl_burst_interval_ms=int(WINDOW * 1000))
    with start_in_thread(seed=seed(), limits=limits) as sandbox:
        base = {
            **os.environ,
            **sandbox_env(sandbox),
            "GHL_TOKEN": "",  # the agency's connection, one token per location
            "GHL_CLIENT_ID": "sandbox-client-id",
            "GHL_CLIENT_SECRET": "sandbox-client-secret",
            "GHL_AUTH_URL": f"{sandbox.url}/ghl/oauth/chooselocation",
            "CONNECTOR_DATABASE_URL": url,
            "CONNECTOR_HOME": str(tmp_path / "home"),
            "CONNECTOR_SECRET_KEY": new_key(),  # every process (machine) shares the key
            "CONNECTOR_RETRY_BASE_DELAY": "0.05",
            "CONNECTOR_RATE_LIMITS": f"ghl:burst={BUDGET}/{int(WINDOW)}",
        }
        done = login(base, "--user-type", "Company")
        assert done.returncode == 0, done.stderr
        servers = []
        for n in range(PROCESSES):
            logs = tmp_path / f"p{n}"
            logs.mkdir()
            env = {
                **base,
                "CONNECTOR_EXECUTOR_ID": f"serve-{n}",
                "CONNECTOR_HOME": str(logs / "home"),
            }
            servers.append(Server(env, free_port(), logs, [RECIPE]))
        yield sandbox, servers, base
        for server in servers:
            if server.proc is not None and server.proc.poll() is None:
                server.kill()
        sandbox.app.close()
    forget_tokens()
    close_all()


def test_twenty_locations_three_processes_one_killed(
    cluster: tuple[RunningSandbox, list[Server], dict[str, str]],
) -> None:
    sandbox, servers, env = cluster
    state = sandbox.state
    with state.lock:
        where = {
            cid: c["locationId"] for cid, c in state.ghl.contacts.items() if cid.startswith("c")
        }
    assert len(set(where.values())) == LOCATIONS and len(where) == LOCATIONS * CONTACTS_PER_LOCATION
    for server in servers:
        server.start()
    log = RequestLog(sandbox)
    total = len(where) * VERSIONS
    balancer = Balancer(sandbox, env, servers)

    def deliver_versions(contact: str) -> None:
        """One contact's versions, in order: each answered before the next is sent."""
        for version in range(1, VERSIONS + 1):
            body = {
                "type": "ContactUpdate",
                "id": contact,
                "locationId": where[contact],
                "webhookId": str(uuid.uuid4()),
                "version": version,
                "firstName": f"v{version}",
            }
            balancer.deliver(("ghl", json.dumps(body).encode(), {}))  # signed as it goes

    contacts = sorted(where)
    with balancer.killing(servers[0], after=total // 2), ThreadPoolExecutor(12) as pool:
        list(pool.map(deliver_versions, contacts))
    runs = ended_runs(env, timeout=600, total=total)
    for server in servers[1:]:
        assert server.terminate() == 0
    assert [(r.id, r.error) for r in runs if r.status != "succeeded"] == []
    # every version noted once, in the order sent
    notes = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()["ghl"]["notes"]
    for contact in contacts:
        bodies = [n["body"] for n in notes.get(contact, [])]
        assert bodies == [f"v{k}" for k in range(1, VERSIONS + 1)], (contact, bodies)
    # no location over its budget: not one 429, and no 10-s window with more than BUDGET
    requests = log.requests(prefix="/ghl/contacts/")
    assert [r for r in requests if r.status == 429] == []
    by_location: dict[str, list[float]] = defaultdict(list)
    for r in requests:
        contact = r.path.split("/")[3]
        by_location[where[contact]].append(r.at)
    assert len(by_location) == LOCATIONS
    for location, times in by_location.items():
        times.sort()
        busiest = max(
            sum(1 for t in times[i:] if t - start < WINDOW) for i, start in enumerate(times)
        )
        assert busiest <= BUDGET, (location, busiest)
    # each location's token came from the agency, once per location and process at most
    grants = httpx.get(f"{sandbox.url}/_sandbox/oauth").json()["grants"]
    exchanged = [g["location_id"] for g in grants if g["grant_type"] == "location_token"]
    assert set(exchanged) == set(where.values())
    assert len(exchanged) <= LOCATIONS * PROCESSES
    logs = [(s.logs / "serve-1.log").read_text() for s in servers]
    assert all("recipe=" in text for text in logs), "a process ran nothing"
    assert "recovered" in "".join(logs[1:]), "no survivor recovered the killed process's runs"
