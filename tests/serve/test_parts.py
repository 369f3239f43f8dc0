"""The serving parts on their own: echo matching, rate-limit overrides, the changed_from filter,
cron checking and the scheduler's firing rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connector.builtins.filters import changed_from
from connector.errors import TemplateError
from connector.language.validate import cron_is_valid
from connector.persistence.budgets import Limit, app_limits, limit_overrides
from connector.persistence.cursors import Cursors
from connector.persistence.echoes import Echoes, same_value
from connector.persistence.tables import metadata
from connector.serve.events import Event
from connector.serve.schedules import Scheduler, last_due


@pytest.fixture()
def engine(tmp_path: Path) -> sa.Engine:
    import connector.persistence.cursors
    import connector.persistence.echoes  # noqa: F401

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    metadata.create_all(engine)
    return engine


def test_an_echo_is_the_event_that_shows_what_was_written_and_is_used_up(engine: sa.Engine) -> None:
    now = [1000.0]
    echoes = Echoes(engine, clock=lambda: now[0])
    echoes.expect([("ghl:contact:c1", {"email": "A@X.example", "lastName": "Lee"})])
    # another record, or a field that differs, is not the echo
    assert not echoes.consume("ghl:contact:c2", {"email": "a@x.example", "lastName": "Lee"})
    assert not echoes.consume("ghl:contact:c1", {"email": "b@x.example", "lastName": "Lee"})
    # the vendor's normalised copy of it is (case, surrounding space), once
    shown = {"email": " a@x.example", "lastName": "Lee", "firstName": "Jo"}
    assert echoes.consume("ghl:contact:c1", shown)
    assert not echoes.consume("ghl:contact:c1", shown)
    # an expectation whose echo never came expires
    echoes.expect([("ghl:contact:c3", {"email": "c@x.example"})])
    now[0] += 7200
    assert not echoes.consume("ghl:contact:c3", {"email": "c@x.example"})
    assert echoes.prune() == 1


def test_custom_fields_match_when_each_written_one_is_shown() -> None:
    written = [{"customFieldId": 501, "value": "c1"}]
    shown = [
        {"customFieldId": 502, "value": "x"},
        {"customFieldId": 501, "value": "c1", "type": "str"},
    ]
    assert same_value(written, shown)
    assert not same_value(written, [{"customFieldId": 501, "value": "c2"}])
    assert same_value(["b", "a"], ["a", "b"]) and same_value(3, 3.0)


def test_rate_limit_overrides_replace_and_add_by_name() -> None:
    overrides = limit_overrides("connecteam:minute=200/60, connecteam:hour=5000/3600")
    limits = app_limits(((100, 60.0, "minute"), (10_000, 86_400.0, "day")), overrides["connecteam"])
    assert limits == [
        Limit(200, 60.0, "minute"),
        Limit(10_000, 86_400.0, "day"),
        Limit(5000, 3600.0, "hour"),
    ]
    for bad in ("connecteam=200/60", "connecteam:minute=lots/60", "ghl:burst=0/10"):
        with pytest.raises(ValueError, match="CONNECTOR_RATE_LIMITS"):
            limit_overrides(bad)


def test_changed_from_keeps_what_differs_and_the_id() -> None:
    wanted = {
        "userId": 9,
        "email": "A@x.example",
        "lastName": "Lee",
        "phoneNumber": None,
        "firstName": "",
    }
    current = {"userId": 9, "email": "a@x.example", "lastName": "Avery"}
    assert changed_from(wanted, current) == {"lastName": "Lee"}
    assert changed_from(wanted, current, keep=["userId"]) == {"userId": 9, "lastName": "Lee"}
    with pytest.raises(TemplateError):
        changed_from(["not", "an", "object"], current)


def test_cron_expressions_are_checked_by_the_parser_that_fires_them() -> None:
    for good in ("*/15 * * * *", "@daily", "*/2 * * * * *", "0 9 * * mon-fri"):
        assert cron_is_valid(good), good
    for bad in ("every night", "61 * * * *", "* * *", "* * * * * * * *"):
        assert not cron_is_valid(bad), bad


def test_a_schedule_fires_once_per_due_time_and_only_the_latest_after_downtime(
    engine: sa.Engine,
) -> None:
    class Plan:
        name, trigger_app, cron = "every-minute", "schedule", "* * * * *"

    now = [60.0 * 1000 + 5]
    fired: list[Event] = []

    def fire(plan: Any, event: Event) -> str:
        fired.append(event)
        return event.key

    scheduler = Scheduler([Plan()], Cursors(engine), fire, clock=lambda: now[0])  # type: ignore[list-item]
    assert scheduler.tick() == []  # first sight: from now on
    now[0] += 30
    assert scheduler.tick() == []  # not due yet
    now[0] += 30
    [one] = scheduler.tick()
    assert scheduler.tick() == []  # the same due time again: nothing
    now[0] += 600  # down for ten minutes: the latest due time fires, once
    [two] = scheduler.tick()
    assert fired[1].payload["scheduledAt"].endswith("T16:51:00Z") and one != two
    assert last_due("* * * * *", 120.0) == 120.0


def test_one_serving_process_per_executor_and_database(engine: sa.Engine) -> None:
    from connector.errors import ConnectorError
    from connector.persistence.executors import ExecutorLock, held

    assert not held(engine, "connector-serve")
    first = ExecutorLock(engine, "connector-serve")
    first.acquire()
    assert held(engine, "connector-serve")
    with pytest.raises(ConnectorError, match="another `connector serve`"):
        ExecutorLock(engine, "connector-serve").acquire()
    other = ExecutorLock(engine, "serve-b")  # another executor id is another lock
    other.acquire()
    other.release()
    first.release()
    assert not held(engine, "connector-serve")


def test_the_liveness_lock_on_postgresql_is_free_once_released(
    postgres_database: Any,
) -> None:
    # a probe or a release gives its session back to the pool: the lock must not stay with it
    from connector.errors import ConnectorError
    from connector.persistence.executors import ExecutorLock, held

    engine = sa.create_engine(postgres_database().replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert not held(engine, "serve-x")
        assert not held(engine, "serve-x")  # the probe did not keep it
        lock = ExecutorLock(engine, "serve-x")
        lock.acquire()
        assert held(engine, "serve-x") and lock.alive()
        with pytest.raises(ConnectorError):
            ExecutorLock(engine, "serve-x").acquire()
        lock.release()
        assert not held(engine, "serve-x")
        other = sa.create_engine(engine.url)
        assert not held(other, "serve-x")  # nor any session of another process
        other.dispose()
    finally:
        engine.dispose()


def test_a_trigger_if_sees_the_template_environment_not_the_secrets(registry: Any) -> None:
    """`trigger.if` was rendered with the whole process environment, tokens included: one
    condition per secret character would have read a token out. It sees what every other
    template sees (GHL_LOCATION_ID, CONNECTOR_VAR_*)."""
    from connector.language.plan import plan_recipe
    from connector.serve.intake import Router

    def plan(name: str, condition: str) -> Any:
        recipe = {
            "name": name,
            "trigger": {"app": "ghl", "event": "ContactCreate", "if": condition},
            "steps": [{"id": "n", "action": "ghl.get-contact", "with": {"contactId": "c1"}}],
        }
        return plan_recipe(recipe, registry)

    plans = [
        plan("token", "{{ env.GHL_TOKEN is defined or env.get('GHL_TOKEN') }}"),
        plan("location", "{{ env.GHL_LOCATION_ID == 'loc1' and env.CONNECTOR_VAR_X == 'x' }}"),
    ]
    env = {"GHL_TOKEN": "pit-secret", "GHL_LOCATION_ID": "loc1", "CONNECTOR_VAR_X": "x"}
    router = Router(plans, env, registry.template_variables)
    event = Event("ghl", "ContactCreate", {"type": "ContactCreate", "id": "c1"}, "ghl:1")
    matched, filtered = router.match(event)
    assert [p.name for p in matched] == ["location"]
    assert filtered == 1
