"""The engine: steps in order over injected clients, if/foreach/on_error, outputs, records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from connector.apps import Action, RunContext
from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.language.plan import plan_recipe
from connector.persistence.runs import RunStore
from connector.records import RunRecord
from connector.runtime.engine import Engine
from connector.sending.http import Redactor, make_clients

HERE = Path(__file__).parent / "engine"
TOKEN = "ghl-secret-token-0123456789"
API_KEY = "ct-secret-key-0123456789"


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _ = default_registry()
    return reg


Handler = Callable[[httpx.Request], httpx.Response]


def run_recipe(
    registry: Registry,
    name: str,
    handler: Handler,
    *,
    event: Any = None,
    env: Mapping[str, str] | None = None,
    dry_run: bool = False,
    store: RunStore | None = None,
) -> tuple[RunRecord, list[httpx.Request]]:
    data = yaml.safe_load((HERE / name).read_text())
    plan = plan_recipe(data, registry, path=name)
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    env = dict(env or {"GHL_TOKEN": TOKEN, "CONNECTEAM_API_KEY": API_KEY})
    clients = make_clients(
        [registry.apps[a] for a in plan.apps], env, transport=httpx.MockTransport(record)
    )
    engine = Engine(
        registry=registry,
        clients=clients,
        env=env,
        recorder=store,
        redactor=Redactor([TOKEN, API_KEY]),
    )
    result = engine.run(plan, plan.sample if event is None else event, dry_run=dry_run)
    return result, seen


def ghl_ok(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":
        return httpx.Response(200, json={"contact": {"id": "c1", "email": "ada@example.com"}})
    if request.url.path.endswith("/tasks"):
        return httpx.Response(201, json={"task": {"id": "t1", "title": "Call back"}})
    return httpx.Response(201, json={"tags": ["x"]})


def test_steps_run_in_order_with_outputs_and_native_types(registry: Registry) -> None:
    record, seen = run_recipe(registry, "three_steps.yaml", ghl_ok)
    assert record.status == "succeeded"
    assert [r.method + " " + r.url.path for r in seen] == [
        "GET /contacts/c1",
        "POST /contacts/c1/tasks",
        "POST /contacts/c1/tags",
    ]
    # a single-expression template keeps its type: `completed` stays a boolean
    assert json.loads(seen[1].content) == {
        "title": "Call back",
        "dueDate": "2026-12-01T10:00:00Z",
        "completed": False,
    }
    assert json.loads(seen[2].content) == {"tags": ["vip-c1", "synced"]}
    assert record.output == {"email": "ada@example.com", "task_id": "t1", "tagged": True}
    assert [s.status for s in record.steps] == ["succeeded"] * 3


def test_headers_come_from_the_catalog_and_the_environment(registry: Registry) -> None:
    _, seen = run_recipe(registry, "three_steps.yaml", ghl_ok)
    for request in seen:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert request.headers["Version"] == "2021-07-28"
        assert request.url.host == "services.leadconnectorhq.com"


def test_base_url_from_the_environment(registry: Registry) -> None:
    env = {"GHL_TOKEN": TOKEN, "GHL_BASE_URL": "http://127.0.0.1:9/ghl"}
    _, seen = run_recipe(registry, "three_steps.yaml", ghl_ok, env=env)
    assert str(seen[0].url) == "http://127.0.0.1:9/ghl/contacts/c1"


def test_if_false_skips_the_step(registry: Registry) -> None:
    def no_email(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"contact": {"id": "c1", "email": None}})
        return ghl_ok(request)

    record, seen = run_recipe(registry, "three_steps.yaml", no_email)
    assert record.status == "succeeded"
    assert len(seen) == 2
    assert record.steps[2].status == "skipped"
    assert record.output == {"email": None, "task_id": "t1", "tagged": False}


def test_foreach_runs_per_item_and_on_error_continue_goes_on(registry: Registry) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "/bad/" in request.url.path:
            return httpx.Response(
                400,
                json={"statusCode": 400, "message": "Contact not found", "error": "Bad Request"},
            )
        return ghl_ok(request)

    record, seen = run_recipe(registry, "foreach_continue.yaml", handler)
    # the run went on, but it is not a plain success: it says which step failed
    assert record.status == "failed"
    assert record.error == "steps failed (on_error: continue): tag"
    tag = record.steps[0]
    assert tag.status == "failed"
    assert tag.items is not None
    assert [i.status for i in tag.items] == ["succeeded", "failed", "succeeded"]
    assert tag.items[1].error == "HTTP 400 from GoHighLevel: Contact not found"
    assert [json.loads(r.content)["tags"] for r in seen[:3]] == [
        ["batch-0"],
        ["batch-1"],
        ["batch-2"],
    ]
    assert record.steps[1].status == "succeeded"
    assert record.output == {"tagged": 2, "codes": [201, 400, 201]}
    as_json = record.to_json()["steps"][0]
    assert [i["status_code"] for i in as_json["items"]] == [201, 400, 201]


def test_a_failed_step_stops_the_run_with_the_api_message(registry: Registry) -> None:
    def unprocessable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422,
            json={"statusCode": 422, "message": ["title must be longer"], "error": "Unprocessable"},
        )

    record, seen = run_recipe(registry, "fail_stops.yaml", unprocessable)
    assert record.status == "failed"
    assert len(seen) == 1
    assert record.steps[0].status == "failed"
    assert record.steps[0].status_code == 422
    assert record.error == "HTTP 422 from GoHighLevel: title must be longer"
    assert record.steps[1].status == "skipped"
    assert "not run" in (record.steps[1].error or "")


def test_an_undefined_name_at_run_time_is_a_clear_step_failure(registry: Registry) -> None:
    record, seen = run_recipe(registry, "runtime_undefined.yaml", ghl_ok)
    assert seen == []
    assert record.status == "failed"
    assert "contact_id" in (record.steps[0].error or "")


def test_location_id_is_filled_and_connecteam_gets_its_key(registry: Registry) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"contacts": [], "data": {"users": []}})

    env = {"GHL_TOKEN": TOKEN, "CONNECTEAM_API_KEY": API_KEY, "GHL_LOCATION_ID": "loc123"}
    record, seen = run_recipe(registry, "location_and_connecteam.yaml", handler, env=env)
    assert record.status == "succeeded", record.error
    assert seen[0].url.params["locationId"] == "loc123"
    assert seen[0].url.params["query"] == "ada@example.com"
    assert seen[1].url.host == "api.connecteam.com"
    assert seen[1].headers["X-API-KEY"] == API_KEY
    assert "authorization" not in seen[1].headers


def test_a_missing_location_id_fails_the_step_with_advice(registry: Registry) -> None:
    record, seen = run_recipe(
        registry, "location_and_connecteam.yaml", ghl_ok, env={"GHL_TOKEN": TOKEN}
    )
    assert seen == []
    assert record.status == "failed"
    assert "GHL_LOCATION_ID" in (record.error or "")


def test_custom_actions_sync_and_async(registry: Registry) -> None:
    reg = Registry(**{**registry.__dict__, "actions": dict(registry.actions)})

    def double(params: Mapping[str, Any], context: RunContext) -> Any:
        assert context.recipe == "custom-actions"
        return {"n": params["n"] * 2}

    async def add(params: Mapping[str, Any], context: RunContext) -> Any:
        await asyncio.sleep(0)
        return params["a"] + params["b"]

    def boom(params: Mapping[str, Any], context: RunContext) -> Any:
        raise RuntimeError("the plugin broke")

    for action in (
        Action("test.double", double),
        Action("test.async-add", add),
        Action("test.boom", boom),
    ):
        reg.actions[action.name] = action
    record, _ = run_recipe(reg, "custom_actions.yaml", ghl_ok)
    assert record.status == "failed"  # boom failed; on_error: continue went on
    assert record.error == "steps failed (on_error: continue): boom"
    assert record.output == 14
    assert record.steps[2].status == "failed"
    assert record.steps[2].error == "RuntimeError: the plugin broke"


def test_a_hostile_template_ends_as_a_step_failure(registry: Registry) -> None:
    record, seen = run_recipe(registry, "hostile.yaml", ghl_ok)
    assert seen == []
    assert record.status == "failed"
    assert "template stopped" in (record.error or "")


def test_dry_run_sends_nothing_and_redacts(registry: Registry) -> None:
    record, seen = run_recipe(registry, "three_steps.yaml", ghl_ok, dry_run=True)
    assert seen == []
    assert [s.status for s in record.steps] == ["planned"] * 3
    first = record.steps[0]
    assert first.method == "GET"
    assert first.url == "https://services.leadconnectorhq.com/contacts/c1"
    assert first.request_headers is not None
    assert first.request_headers["authorization"] == "Bearer ***"
    assert TOKEN not in json.dumps(record.to_json())
    # later steps see placeholders for outputs not known in a dry run
    assert record.output == {
        "email": "<steps.contact.output.contact.email>",
        "task_id": "<steps.task.output.task.id>",
        "tagged": False,
    }


def test_the_run_store_keeps_every_step_and_no_secret(registry: Registry, tmp_path: Path) -> None:
    def echo_secret(request: httpx.Request) -> httpx.Response:
        # a hostile or careless API that echoes the token back
        return httpx.Response(200, json={"contact": {"id": "c1", "note": TOKEN}, "token": "t"})

    with RunStore.open(tmp_path) as store:
        record, _ = run_recipe(registry, "three_steps.yaml", echo_secret, store=store)
        stored = store.get(record.id)
        assert stored is not None
        assert stored.to_json()["steps"] == record.to_json()["steps"]
        assert stored.status == record.status
        assert stored.recipe == "three-steps"
        assert len(stored.recipe_hash) == 64
        assert [r.id for r in store.list()] == [record.id]
        assert store.get(record.id[:10]) is not None
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert TOKEN.encode() not in blob
    assert b"Bearer ***" in blob


def test_null_body_fields_are_left_out(registry: Registry) -> None:
    event = {"contactId": "c1", "title": None, "done": False}
    record, seen = run_recipe(registry, "three_steps.yaml", ghl_ok, event=event)
    assert json.loads(seen[1].content) == {"dueDate": "2026-12-01T10:00:00Z", "completed": False}
    assert record.steps[1].request_body == {"dueDate": "2026-12-01T10:00:00Z", "completed": False}


def test_nulls_are_left_out_at_every_depth_of_the_body_and_recorded_as_sent(
    registry: Registry,
) -> None:
    """Issue: nulls were dropped from a body's top level but sent inside list items (Connecteam
    answers 422), and a whole-body operation was recorded as {"body": [...]}."""
    from connector.sending.http import build_request

    op = registry.operation("connecteam.create-users")
    assert op is not None and op.whole_body
    users = [
        {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "phoneNumber": None,
            "customFields": [{"customFieldId": 501, "value": None}],
        }
    ]
    with httpx.Client(base_url="https://api.connecteam.com/") as client:
        request = build_request(client, registry.apps["connecteam"], op, {"body": users})
    assert json.loads(request.content) == [
        {"firstName": "Ada", "lastName": "Lovelace", "customFields": [{"customFieldId": 501}]}
    ]


def test_engine_close_closes_cached_services(registry: Registry) -> None:
    class Service:
        closed = False

        def close(self) -> None:
            self.closed = True

    service = Service()
    engine = Engine(registry=registry, clients={}, services={"links": service})
    engine.close()
    assert service.closed
    assert engine.services == {}


def test_a_template_failing_at_run_time_names_the_parameter_and_its_line(
    registry: Registry,
) -> None:
    """Issue: a run-time template error was raw Jinja (`'dict object' has no attribute 'phone'`),
    without the step's parameter or where it is in the file."""
    from connector.runtime.prepare import prepare

    path = HERE / "missing_field_at_run_time.yaml"
    prepared = prepare(path, registry)
    assert prepared.plan is not None, prepared.problems
    clients = make_clients(
        [registry.apps["ghl"]], {"GHL_TOKEN": TOKEN}, transport=httpx.MockTransport(ghl_ok)
    )
    engine = Engine(registry=registry, clients=clients, env={"GHL_TOKEN": TOKEN})
    record = engine.run(prepared.plan, prepared.plan.sample)
    assert record.status == "failed"
    assert record.steps[1].error == (
        f"template in with.phone ({path}:13:14): the object has no field 'mobile_number'"
    )


def test_an_event_lacking_a_required_field_fails_before_anything_is_sent(
    registry: Registry,
) -> None:
    """Issue: `contact.selected` without `userId` ran 4 requests before failing."""
    from connector.runtime.prepare import prepare

    prepared = prepare(
        HERE.parent.parent / "tests" / "workloads" / "pull-contact-on-select.yaml", registry
    )
    assert prepared.plan is not None, prepared.problems
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ghl_ok(request)

    env = {"GHL_TOKEN": TOKEN, "CONNECTEAM_API_KEY": API_KEY, "GHL_LOCATION_ID": "loc1"}
    clients = make_clients(
        [registry.apps[a] for a in prepared.plan.apps], env, transport=httpx.MockTransport(record)
    )
    engine = Engine(registry=registry, clients=clients, env=env)
    result = engine.run(prepared.plan, {"contactId": "ocQHyuzHvysMo5N5VsXc"})
    assert result.status == "failed"
    assert result.error is not None
    assert result.error.startswith(
        "the trigger event has no 'userId', which connecteam contact.selected requires"
    )
    assert seen == []
    assert {s.status for s in result.steps} == {"skipped"}


def test_an_unset_environment_variable_is_named_as_such(registry: Registry) -> None:
    """`{{ env.GHL_LOCATION_ID }}` (what `catalog show` examples use) without the variable set
    said `the object has no field 'GHL_LOCATION_ID'`."""
    recipe = {
        "name": "env-unset",
        "trigger": {"app": "manual", "event": "go"},
        "steps": [
            {
                "id": "dupe",
                "action": "ghl.get-duplicate-contact",
                "with": {"locationId": "{{ env.GHL_LOCATION_ID }}"},
            }
        ],
    }
    sent: list[httpx.Request] = []
    clients = make_clients(
        [registry.apps["ghl"]],
        {"GHL_TOKEN": TOKEN},
        transport=httpx.MockTransport(lambda r: sent.append(r) or ghl_ok(r)),
    )
    engine = Engine(registry=registry, clients=clients, env={"GHL_TOKEN": TOKEN})
    record = engine.run(plan_recipe(recipe, registry), {})
    assert record.status == "failed"
    assert record.steps[0].error is not None
    assert "the environment variable GHL_LOCATION_ID is not set" in record.steps[0].error
    assert "env.GHL_LOCATION_ID | default(" in record.steps[0].error
    assert sent == []
