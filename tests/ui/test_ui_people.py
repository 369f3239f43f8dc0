"""Who each run was about, on the page: the person's name (else email) in the list and on the
run's page, from the trigger or from the people the trigger's ids name; names beside the ids of
the Links page; the trigger event below the steps, collapsed; times as ``<time>`` elements that
read in UTC without script."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa

from connector.persistence.history import people_in, person_of, trigger_ids
from connector.persistence.links import LinkStore
from connector.persistence.migrations import migrate
from connector.persistence.tables import metadata, runs_table
from connector.records import RunRecord, StepRecord
from tests.ui.conftest import Page

Record = Callable[..., RunRecord]


def row_of(html: str, run_id: str) -> str:
    found = re.search(rf'<tr data-run-id="{run_id}".*?</tr>', html, re.S)
    assert found, f"no row for {run_id}"
    return found.group(0)


def test_person_of_reads_the_events_record_or_its_data() -> None:
    assert person_of({"data": {"userId": 9010, "fullName": "  Mary Ann   van der Berg "}}) == (
        "Mary Ann van der Berg"
    )
    assert person_of({"id": "c1", "firstName": "Ada", "lastName": "Lovelace"}) == "Ada Lovelace"
    assert person_of({"contactId": "c1", "email": "ada@example.com"}) == "ada@example.com"
    # a task, a tag: a name but no person
    assert person_of({"id": "t1", "title": "Call", "name": "Welcome call"}) is None
    assert person_of({"contactId": "c1"}) is None
    assert people_in({"contact": {"id": "AbC123", "firstName": "Ada"}}) == {"abc123": "Ada"}
    assert trigger_ids({"id": "task1", "assignedTo": "staff9", "contactId": "Con42"})[0] == "con42"


def test_a_runs_row_and_page_name_its_person(page: Page, record: Record) -> None:
    run = record(trigger={"type": "ContactCreate", "id": "c77x", "firstName": "Grace",
                          "lastName": "Hopper", "email": "grace@example.com"})  # fmt: skip
    html = page.client.get("/").text
    assert "Grace Hopper" in row_of(html, run.id)
    detail = page.client.get(f"/ui/runs/{run.id}").text
    assert re.search(r'<dt>about</dt><dd class="person">Grace Hopper</dd>', detail)


def test_a_trigger_that_names_nobody_gets_the_name_its_ids_are_known_by(
    page: Page, record: Record
) -> None:
    # an earlier run read the contact: its response named her
    step = StepRecord(id="contact", action="ghl.get-contact", status="succeeded",
                      output={"contact": {"id": "CoNtAcT9", "firstName": "Ada",
                                          "lastName": "Lovelace"}})  # fmt: skip
    record(trigger={"contactId": "CoNtAcT9"}, steps=[step])
    task = record(trigger={"id": "task5", "assignedTo": "staff1", "contactId": "CoNtAcT9"},
                  trigger_event="TaskCreate")  # fmt: skip
    assert "Ada Lovelace" in row_of(page.client.get("/").text, task.id)
    unknown = record(trigger={"contactId": "nobody42"})
    assert '<td data-label="about" class="person"></td>' in row_of(
        page.client.get("/").text, unknown.id
    )


def test_the_list_reads_the_person_from_the_runs_row_not_its_trigger(
    page: Page, record: Record
) -> None:
    run = record(trigger={"id": "c1x", "firstName": "Grace"})
    with page.runtime.db.engine.begin() as conn:  # the stored column is what the list shows
        conn.execute(
            sa.update(runs_table).where(runs_table.c.id == run.id).values(person="Stored Name")
        )
    assert "Stored Name" in row_of(page.client.get("/").text, run.id)


def test_the_links_page_names_both_sides(page: Page, record: Record) -> None:
    record(trigger={"data": {"userId": 9010, "fullName": "Mary Ann van der Berg",
                             "email": "mary@example.com"}},
           trigger_app="connecteam", trigger_event="user_created")  # fmt: skip
    links = LinkStore(page.runtime.db.engine)
    links.put("contact", "GhlContact1", 9010)
    links.put("contact", "GhlOther2", 4242)
    html = page.client.get("/ui/links").text
    row = re.search(r"<tr>.*?GhlContact1.*?</tr>", html, re.S)
    assert row and "Mary Ann van der Berg" in row.group(0)
    other = re.search(r"<tr>.*?GhlOther2.*?</tr>", html, re.S)
    assert other and '<td data-label="who" class="person"></td>' in other.group(0)


def test_the_trigger_is_collapsed_below_the_steps(page: Page, record: Record) -> None:
    step = StepRecord(id="contact", action="ghl.get-contact", status="succeeded")
    run = record(trigger={"contactId": "zz999", "marker": "the-trigger-body"}, steps=[step])
    html = page.client.get(f"/ui/runs/{run.id}").text
    trigger = html.index('<details class="trigger" id="trigger">')
    assert html.index('id="step-contact"') < trigger < html.index("the-trigger-body")
    assert '<details class="trigger" id="trigger" open' not in html


def test_times_are_time_elements_that_read_in_utc_without_script(
    page: Page, record: Record
) -> None:
    run = record(started_at="2026-07-01T10:00:03.000Z")
    row = row_of(page.client.get("/").text, run.id)
    assert (
        '<time datetime="2026-07-01T10:00:03.000Z" title="2026-07-01 10:00:03 UTC">'
        "2026-07-01 10:00:03 UTC</time>"
    ) in row
    assert '<script src="/ui/static/times.js" defer></script>' in page.client.get("/").text


def test_migration_6_names_the_runs_stored_before_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    migrate(engine)
    with engine.begin() as conn:  # as a database of schema 5 was: no person, no people
        conn.execute(sa.text("DROP TABLE people"))
        conn.execute(sa.text("ALTER TABLE runs DROP COLUMN person"))
        conn.execute(sa.text("UPDATE connector_schema SET version = 5"))
        conn.execute(
            sa.text(
                "INSERT INTO runs (id, recipe, recipe_hash, recipe_path, trigger_app,"
                " trigger_event, trigger_json, status, dry_run, sandbox, started_at) VALUES"
                " ('run_old', 'r', 'h', 'p', 'ghl', 'ContactCreate',"
                ' \'{"id": "c1old", "firstName": "Old", "lastName": "Timer"}\','
                " 'succeeded', 0, 0, '2026-01-01T00:00:00Z')"
            )
        )
    applied = migrate(engine)
    assert applied[0].version == 6  # and those after it
    with engine.connect() as conn:
        person = conn.execute(sa.text("SELECT person FROM runs WHERE id = 'run_old'")).scalar()
        named = conn.execute(sa.select(metadata.tables["people"].c.name)).scalars().all()
    assert person == "Old Timer"
    assert named == ["Old Timer"]
    engine.dispose()
