"""connector.persistence.history: which ids and emails a run touched (the page's search), written with the
run's records, kept through a resume and a prune, and indexed for the runs stored before
migration 3, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from connector.persistence.database import make_engine
from connector.persistence.history import step_terms, terms_table, touched
from connector.persistence.migrations import MIGRATIONS, migrate
from connector.persistence.runs import RunStore
from connector.persistence.tables import metadata
from connector.records import RunRecord, StepRecord


def test_ids_and_emails_are_what_a_run_touched() -> None:
    found = touched(
        {
            "contact": {"id": "ocQHyuzHvysMo5N5VsXc", "email": "Ada@Example.com", "paid": "no"},
            "userIds": [9001, 9002],
            "assignedTo": "u-77",
            "notes": "call bob@example.org first",
            "valid": True,
            "firstName": "Ada",
        },
        urls=["https://x/contacts/aB3dE5fG7hI9/tasks?locationId=loc42&limit=20"],
    )
    assert found == {
        "ocqhyuzhvysmo5n5vsxc", "ada@example.com", "9001", "9002", "u-77",
        "bob@example.org", "ab3de5fg7hi9", "loc42",
    }  # fmt: skip


def test_a_foreach_steps_items_count() -> None:
    item = StepRecord(
        id="t", action="ghl.create-task", status="succeeded", index=0, method="POST",
        url="https://x/contacts/cX123456/tasks", request_body={"assignedTo": "user-1"},
        output={"task": {"id": "task99"}},
    )  # fmt: skip
    step = StepRecord(id="t", action="ghl.create-task", status="succeeded", items=[item])
    assert step_terms(step.to_json()) == {"cx123456", "user-1", "task99"}


def _run(run_id: str, trigger: object) -> RunRecord:
    return RunRecord(
        id=run_id, recipe="r", recipe_hash="h" * 64, recipe_path="r.yaml", trigger_app="ghl",
        trigger_event="ContactUpdate", trigger=trigger, started_at="2026-07-01T10:00:00.000Z",
    )  # fmt: skip


def terms_of(engine: sa.Engine, run_id: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(terms_table.c.term).where(terms_table.c.run_id == run_id))
        return {r[0] for r in rows}


def test_terms_are_written_with_the_run_and_go_with_a_prune(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=2)
    try:
        migrate(engine)
        store = RunStore(engine)
        run = _run("run_a", {"contactId": "cA1234"})
        store.run_started(run)
        step = StepRecord(id="s", action="ghl.get-contact", status="succeeded",
                          output={"contact": {"id": "cA1234", "email": "a@b.co"}})  # fmt: skip
        run.steps.append(step)
        store.step_finished(run, step)
        store.run_started(run)  # resumed: its steps are recorded again
        store.step_finished(run, step)
        assert terms_of(engine, "run_a") == {"ca1234", "a@b.co"}
        run.status = "succeeded"
        store.run_finished(run)
        assert store.prune("2027-01-01") == ["run_a"]
        assert terms_of(engine, "run_a") == set()
    finally:
        engine.dispose()


def test_migration_3_indexes_the_runs_stored_before_it(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=2)
    try:
        schema = metadata.tables["connector_schema"]
        runs, steps = metadata.tables["runs"], metadata.tables["run_steps"]
        with engine.begin() as conn:  # a database as schema 2 left it, with a run in it
            for migration in MIGRATIONS[:2]:
                migration.apply(conn)
            schema.create(conn, checkfirst=True)
            conn.execute(sa.insert(schema).values(id=1, version=2))
            conn.execute(sa.text("DROP INDEX IF EXISTS runs_parent"))
            conn.execute(sa.text("DROP INDEX IF EXISTS runs_trigger"))
            conn.execute(
                sa.insert(runs).values(
                    id="run_old",
                    recipe="r",
                    recipe_hash="h",
                    recipe_path="r.yaml",
                    trigger_app="connecteam",
                    trigger_event="user_created",
                    trigger_json='{"data": [{"userId": 9001}]}',
                    status="succeeded",
                    dry_run=False,
                    sandbox=False,
                    started_at="2026-01-01T00:00:00.000Z",
                )
            )
            conn.execute(
                sa.insert(steps).values(
                    run_id="run_old",
                    seq=0,
                    step_id="s",
                    status="succeeded",
                    record_json='{"id": "s", "url": "https://x/contacts/gHL12345", "output": {}}',
                )
            )
        applied = migrate(engine)
        assert [m.version for m in applied] == [m.version for m in MIGRATIONS[2:]]
        assert terms_of(engine, "run_old") == {"9001", "ghl12345"}
        with engine.connect() as conn:
            names = {i["name"] for i in sa.inspect(conn).get_indexes("runs")}
        assert {"runs_parent", "runs_trigger"} <= names
    finally:
        engine.dispose()
