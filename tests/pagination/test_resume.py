"""A durable walk of every page, killed (SIGKILL) after its seventh page, resumed: it goes on from
the eighth page, never asks for a page it had, and every contact is linked once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from paging_support import counted_sandbox

from connector.apps.plugins import default_registry
from connector.persistence.links import LinkStore
from connector.runtime.durable import Runtime, RuntimeOptions
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.seeding import seed_contacts

HERE = Path(__file__).parent
RUN = "run_pagingresume000001"
PAGE = 50
KILLED_AT = 8


def test_a_walk_killed_mid_way_resumes_at_the_next_page(tmp_path: Path) -> None:
    with counted_sandbox(limits=RateLimitConfig(enabled=False)) as sandbox:
        state = sandbox.state
        seed_contacts(state, state.default_location_id, 1_000)
        lid = state.default_location_id
        contacts = [c["id"] for c in state.ghl.contacts.values() if c["locationId"] == lid]
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "CONNECTEAM_"))},
            **sandbox.env,
            "CONNECTOR_HOME": str(tmp_path / "home"),
        }
        env.pop("CONNECTOR_DATABASE_URL", None)
        worker = subprocess.Popen(
            [sys.executable, str(HERE / "walk_worker.py"), str(HERE / "crash_walk.yaml"), RUN],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        sandbox.counting.kill_at = (
            "/ghl/contacts/",
            KILLED_AT,
            lambda: os.kill(worker.pid, signal.SIGKILL),
        )
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == -signal.SIGKILL, (out, err)
        before = [q for m, p, q, _ in sandbox.requests if p == "/ghl/contacts/"]
        assert len(before) == KILLED_AT - 1  # the eighth was never answered
        sandbox.counting.kill_at = None

        registry, _ = default_registry([], home=tmp_path / "home")
        with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
            assert runtime.resume() == [RUN]
            record = runtime.store.get(RUN)
            assert record is not None and record.status == "succeeded", record and record.error
            links = LinkStore(runtime.db.engine).find("contact", ghl_ids=contacts)

        pages = [q for m, p, q, _ in sandbox.requests if p == "/ghl/contacts/"]
        assert pages[: KILLED_AT - 1] == before
        assert len(pages) == len(set(pages)), "a page was asked for again"
        assert len(pages) == -(-len(contacts) // PAGE)
        assert len(links) == len(contacts)
        assert sorted(str(link.ghl_id) for link in links) == sorted(contacts)
