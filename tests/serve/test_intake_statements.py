"""What taking one webhook costs the database, counted by SQLite itself (its trace callback sees
every statement any connection runs: the intake's and DBOS's enqueue, ``COMMIT`` included).

A delivery of one event about a contact that one recipe takes, counted in the thread that takes it: the duplicate check, the echo
and burst checks, the run's id, the paused check, the run put on the durable queue and the
delivery marked seen. At most :data:`COMMITS` commits and :data:`STATEMENTS` other statements
(``BEGIN`` not counted) on average, after a delivery that warms up. Each delivery is a new event
about a new contact, as a busy server sees them; the runs stay queued (no worker takes them),
and the test checks that each delivery put exactly one run on the queue.
"""

from __future__ import annotations

import threading
from pathlib import Path

from dbos import DBOS

from connector.apps.events import Event
from connector.apps.plugins import default_registry
from connector.persistence.database import close_all
from connector.runtime.durable import Runtime
from connector.runtime.prepare import prepare
from connector.runtime.worker import RUN_QUEUE
from connector.serve.intake import Intake
from connector.serve.metrics import Metrics
from tests.sqlite_trace import Trace

RECIPE = Path(__file__).parent / "recipes" / "note_contact_version.yaml"
COMMITS = 3
STATEMENTS = 8
DELIVERIES = 8


def _delivery(n: int) -> tuple[str, list[Event]]:
    contact = f"contact{n:04d}"
    payload = {"type": "ContactUpdate", "id": contact, "locationId": "loc1", "version": n}
    event = Event("ghl", "ContactUpdate", payload, f"wh-{n}:0", f"ghl:contact:{contact}")
    return f"wh-{n}", [event]


def test_taking_a_webhook_is_a_few_statements(tmp_path: Path, trace: Trace) -> None:
    registry, _ = default_registry([], home=Path("/nonexistent"))
    prepared = prepare(RECIPE, registry)
    assert prepared.plan is not None, prepared.problems
    runtime = Runtime(registry, {"CONNECTOR_HOME": str(tmp_path / "home")})
    try:
        intake = Intake(runtime, [prepared.plan], metrics=Metrics())
        first = intake.accept("ghl", *_delivery(0))
        assert len(first.runs) == 1
        trace.thread = threading.get_ident()  # the intake's own statements and the enqueue's
        trace.on = True
        runs = [intake.accept("ghl", *_delivery(n)).runs for n in range(1, DELIVERIES + 1)]
        trace.on = False
        queued = DBOS.list_workflows(queue_name=RUN_QUEUE, status="ENQUEUED", load_input=False)
        assert sorted(w.workflow_id for w in queued) == sorted(
            first.runs + [r for rs in runs for r in rs]
        )
        assert all(len(r) == 1 for r in runs)
        commits = trace.commits / DELIVERIES
        statements = trace.statements / DELIVERIES
        assert commits <= COMMITS, (commits, dict(trace.seen))
        assert statements <= STATEMENTS, (statements, dict(trace.seen))
        # a delivery sent again is recognised, and queues nothing more
        again = intake.accept("ghl", *_delivery(1))
        assert again.duplicate and not again.runs
    finally:
        runtime.close()
        close_all()
