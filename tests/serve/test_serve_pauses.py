"""A recipe paused from another process (``connector recipes pause``, a shell beside ``connector
serve``) holds the events the server accepts, and runs each once when resumed; the run id it was
given is the run it becomes, so a second release (another serving process, a crash between
queueing and forgetting) runs nothing again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import sqlalchemy as sa

from connector.persistence.pauses import Pauses
from connector.persistence.tables import held_table, runs_table
from tests.serve.conftest import HOOK_TOKEN, ROOT, wait_for

RECIPE = "pull-contact-on-select"
CONTACT = "ocQHyuzHvysMo5N5VsXc"


def connector(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The command line in a process of its own, on the served process's database."""
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _hook(url: str, key: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{url}/hooks/{RECIPE}",
        json={"contactId": CONTACT, "userId": 9001},
        headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Idempotency-Key": key},
    )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _runs(engine: sa.Engine) -> list[tuple[str, str, str | None]]:
    r = runs_table.c
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(r.id, r.status, r.finished_at).where(r.recipe == RECIPE).order_by(r.id)
        ).all()
    return [(str(a), str(b), c) for a, b, c in rows]


def test_a_pause_from_the_command_line_holds_and_resume_runs_each_once(serve_with: Any) -> None:
    served = serve_with(wire=False)
    db_env = {k: v for k, v in served.env.items() if k.startswith("CONNECTOR_")}
    engine = served.service.runtime.db.engine
    pauses = Pauses(engine)

    paused = connector(db_env, "recipes", "pause", RECIPE)
    assert paused.returncode == 0, paused.stderr
    first = _hook(served.url, "pause-1")
    again = _hook(served.url, "pause-1")  # the same event sent twice: one run, held once
    second = _hook(served.url, "pause-2")
    assert first == again == {"run_id": first["run_id"], "held": True}
    assert second["held"] is True
    assert pauses.counts() == {RECIPE: 2}
    assert _runs(engine) == []  # held, not run
    listed = connector(db_env, "recipes", "list").stdout
    assert [line.split()[:3] for line in listed.splitlines() if line.startswith(RECIPE)] == [
        [RECIPE, "paused", "2"]
    ]

    resumed = connector(db_env, "recipes", "resume", RECIPE)
    assert resumed.returncode == 0, resumed.stderr
    assert "its 2 held event(s) run now" in resumed.stdout
    wanted = sorted([first["run_id"], second["run_id"]])

    def ended() -> list[tuple[str, str, str | None]]:
        runs = _runs(engine)
        done = [r for r in runs if r[1] != "running" and r[2]]
        return runs if len(done) == 2 else []

    runs = wait_for(ended, 60)
    assert [r[0] for r in runs] == wanted
    assert {r[1] for r in runs} == {"succeeded"}
    assert pauses.counts() == {}

    # released again (as by a second process, or after a crash before the row went): nothing
    # runs twice; the run ids are queued once
    with engine.begin() as conn:
        conn.execute(
            sa.insert(held_table).values(
                run_id=first["run_id"],
                recipe=RECIPE,
                app="hook",
                type=RECIPE,
                key=f"hook:{RECIPE}:pause-1",
                subject=None,
                payload_json=json.dumps({"contactId": CONTACT, "userId": 9001}),
                held_at="2026-01-01T00:00:00Z",
            )
        )
    assert served.service.intake.release() == [first["run_id"]]
    served.settled()
    assert _runs(engine) == runs  # the same two runs, finished when they first finished
