"""Fixtures of the sync tests: the registry, a fresh sandbox, a durable runtime on a database of
the test's own, the declaration of tests/sync, and the two vendors' APIs as a person would use
them (what a test does to either side goes through the sandbox's own API, and what it asserts is
read back from there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.config import tls_context
from connector.language.sync_spec import SyncSpec, load_sync
from connector.language.template_env import template_env
from connector.persistence.database import close_all
from connector.records import RunRecord, new_run_id
from connector.runtime.durable import Runtime, RuntimeOptions
from connector.sandbox.server import RunningSandbox, start_in_thread
from connector.sync.engine import sync_job

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _ = default_registry([], home=Path("/nonexistent"))
    return reg


@pytest.fixture()
def sandbox() -> Iterator[RunningSandbox]:
    with start_in_thread() as running:
        yield running
    close_all()


@pytest.fixture()
def env(tmp_path: Path, sandbox: RunningSandbox) -> Iterator[dict[str, str]]:
    # a faulted request is retried after 0.05 s, not the default 0.5 s doubling: what the sync
    # tests judge is what the retries achieve, not how long they wait (a 429's Retry-After is
    # still honoured as the sandbox sends it)
    yield {
        **sandbox.env,
        "CONNECTOR_HOME": str(tmp_path / "home"),
        "CONNECTOR_RETRY_BASE_DELAY": "0.05",
    }
    close_all()


class Apps:
    """Both sandboxed apps through their own APIs."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        state = sandbox.state
        self.location = state.default_location_id
        self.ghl = httpx.Client(
            base_url=f"{sandbox.url}/ghl",
            headers={"Authorization": f"Bearer {state.default_token}", "Version": "2021-07-28"},
            verify=tls_context(),
        )
        self.ct = httpx.Client(
            base_url=f"{sandbox.url}/connecteam",
            headers={"X-API-KEY": state.default_api_key},
            verify=tls_context(),
        )

    def advance(self, seconds: float) -> None:
        self.sandbox.clock.advance(seconds)

    def new_contact(self, **fields: Any) -> dict[str, Any]:
        answer = self.ghl.post("/contacts/", json={"locationId": self.location, **fields})
        answer.raise_for_status()
        contact: dict[str, Any] = answer.json()["contact"]
        return self.contact(contact["id"])

    def contact(self, contact_id: str) -> dict[str, Any]:
        answer = self.ghl.get(f"/contacts/{contact_id}")
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()["contact"]
        return found

    def edit_contact(self, contact_id: str, **fields: Any) -> dict[str, Any]:
        self.ghl.put(f"/contacts/{contact_id}", json=fields).raise_for_status()
        return self.contact(contact_id)

    def contacts(self, **query: Any) -> list[dict[str, Any]]:
        body = {"locationId": self.location, "pageLimit": 100, **query}
        answer = self.ghl.post("/contacts/search", json=body)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["contacts"]
        return found

    def new_user(self, **fields: Any) -> dict[str, Any]:
        answer = self.ct.post("/users/v1/users", json=[{"userType": "user", **fields}])
        answer.raise_for_status()
        user: dict[str, Any] = answer.json()["data"]["results"][0]
        return self.user(user["userId"])

    def user(self, user_id: Any) -> dict[str, Any]:
        answer = self.ct.get("/users/v1/users", params={"userIds": [user_id], "userStatus": "all"})
        answer.raise_for_status()
        users = answer.json()["data"]["users"]
        assert len(users) == 1, users
        found: dict[str, Any] = users[0]
        return found

    def edit_user(self, user_id: Any, **fields: Any) -> dict[str, Any]:
        self.ct.put("/users/v1/users", json=[{"userId": int(user_id), **fields}]).raise_for_status()
        return self.user(user_id)

    def users(self, **query: Any) -> list[dict[str, Any]]:
        answer = self.ct.get("/users/v1/users", params={"userStatus": "all", "limit": 500, **query})
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["data"]["users"]
        return found


@pytest.fixture()
def apps(sandbox: RunningSandbox) -> Iterator[Apps]:
    both = Apps(sandbox)
    yield both
    both.ghl.close()
    both.ct.close()


@pytest.fixture()
def spec(registry: Registry) -> SyncSpec:
    loaded, problems = load_sync(HERE / "people.sync.yaml", registry)
    assert loaded is not None, problems
    return loaded


class Syncer:
    """Sync runs of one runtime, one per event, as `connector serve` would queue them."""

    def __init__(self, runtime: Runtime, spec: SyncSpec, env: dict[str, str]) -> None:
        self.runtime = runtime
        self.spec = spec
        self.env = env
        runtime.keep_sync(spec)

    def event(
        self, side: str, event: str, payload: dict[str, Any], kind: str = "contact"
    ) -> RunRecord:
        pair = self.spec.pair(kind)
        record = dict(pair.record(side).event_record(payload))  # as `connector serve` gives it
        record_id = pair.record(side).event_id(record)
        assert record_id, payload
        job = sync_job(
            self.spec,
            pair,
            side,
            record_id,
            event,
            record,
            run_id=new_run_id(),
            env=template_env(self.env, self.runtime.registry.template_variables),
        )
        return self.runtime.run_job(job)


@pytest.fixture()
def syncer(registry: Registry, env: dict[str, str], spec: SyncSpec) -> Iterator[Syncer]:
    with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
        yield Syncer(runtime, spec, env)
