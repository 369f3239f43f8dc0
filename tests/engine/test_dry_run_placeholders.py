"""Dry runs compute with what they cannot know: placeholders for earlier steps' outputs.

A placeholder's fields, ``.get()``, ``.items()``, string methods, filters and comparisons give
placeholders, never an error; an ``if:`` that depends on one is unknown, and the step is shown as
it would run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from connector.apps.plugins import default_registry
from connector.apps.registry import Registry
from connector.cli import cli
from connector.language.placeholder import Placeholder, watching
from connector.language.plan import plan_recipe
from connector.records import RunRecord, StepRecord
from connector.runtime.engine import Engine
from connector.sending.http import make_clients

HEAD = """
name: placeholders
description: dry-run placeholders
trigger: {app: manual, event: test, sample: {contactId: c1}}
steps:
  - id: contact
    action: ghl.get-contact
    with: {contactId: "{{ trigger.contactId }}"}
  - id: tasks
    action: ghl.get-all-tasks
    with: {contactId: "{{ trigger.contactId }}"}
"""


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg, _ = default_registry()
    return reg


def run(
    registry: Registry,
    steps: str,
    output: str = "",
    dry_run: bool = True,
    handler: Any = None,
    head: str = HEAD,
    env: dict[str, str] | None = None,
    sent: list[httpx.Request] | None = None,
) -> RunRecord:
    data = yaml.safe_load(head + steps + output)
    plan = plan_recipe(data, registry, path="placeholders.yaml")
    sent = [] if sent is None else sent

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return handler(request) if handler else httpx.Response(200, json={})

    env = {"GHL_TOKEN": "t", "GHL_LOCATION_ID": "loc1"} if env is None else env
    clients = make_clients(
        [registry.apps[a] for a in plan.apps], env, transport=httpx.MockTransport(answer)
    )
    record = Engine(registry=registry, clients=clients, env=env).run(
        plan, plan.sample, dry_run=dry_run
    )
    if dry_run:
        assert sent == []
    return record


def step(record: RunRecord, step_id: str) -> StepRecord:
    return next(s for s in record.steps if s.id == step_id)


def test_get_of_a_placeholder_is_the_field_it_names(registry: Registry) -> None:
    record = run(
        registry,
        """
  - id: tag
    action: ghl.add-tags
    with:
      contactId: c1
      tags:
        - "{{ steps.contact.output.contact.get('email') }}"
        - "{{ steps.contact.output.contact.get('phone', 'none given') }}"
        - "{{ steps.contact.output.contact.get('first name') }}"
""",
    )
    tag = step(record, "tag")
    assert tag.status == "planned", tag.error
    assert tag.request_body == {
        "tags": [
            "<steps.contact.output.contact.email>",
            "<steps.contact.output.contact.phone>",
            "<steps.contact.output.contact['first name']>",
        ]
    }
    assert record.status == "succeeded"


def test_dict_and_text_methods_of_a_placeholder_give_placeholders(registry: Registry) -> None:
    record = run(
        registry,
        "",
        """
output:
  keys: "{{ steps.contact.output.contact.keys() | list }}"
  values: "{{ steps.contact.output.contact.values() | list }}"
  pairs: "{% for k, v in steps.contact.output.contact.items() %}{{ k }}={{ v }};{% endfor %}"
  sorted: "{% for k, v in steps.contact.output.contact | dictsort %}{{ k }}={{ v }}{% endfor %}"
  lower: "{{ steps.contact.output.contact.email.lower() }}"
  parts: "{{ steps.contact.output.contact.name.split(' ') }}"
  known_split: "{{ 'a,b'.split(steps.contact.output.contact.sep) }}"
""",
    )
    assert record.status == "succeeded", record.error
    out = record.output
    assert out["keys"] == ["<steps.contact.output.contact.keys()[0]>"]
    assert out["values"] == ["<steps.contact.output.contact.values()[0]>"]
    assert out["pairs"] == (
        "<steps.contact.output.contact.items()[0][0]>=<steps.contact.output.contact.items()[0][1]>;"
    )
    assert out["sorted"] == out["pairs"].rstrip(";")
    assert out["lower"] == "<steps.contact.output.contact.email.lower()>"
    assert out["parts"] == "<steps.contact.output.contact.name.split(' ')>"
    assert "steps.contact.output.contact.sep" in out["known_split"]


def test_text_filters_show_themselves_instead_of_rewriting_the_placeholder(
    registry: Registry,
) -> None:
    record = run(
        registry,
        "",
        """
output:
  lower: "{{ steps.contact.output.contact.firstName | default('') | lower }}"
  json: "{{ steps.contact.output.contact | tojson }}"
  rounded: "{{ steps.contact.output.contact.score | round(1) }}"
  number: "{{ steps.contact.output.contact.age | int + 1 }}"
  ids: "{{ steps.tasks.output.tasks | map(attribute='id') | list }}"
  count: "{{ steps.tasks.output.tasks | length }}"
""",
    )
    assert record.status == "succeeded", record.error
    out = record.output
    # not '<steps.contact.output.contact.firstname>': the path keeps its case
    assert out["lower"] == "<steps.contact.output.contact.firstName | lower>"
    assert out["json"] == "<steps.contact.output.contact | tojson>"
    assert out["rounded"] == "<steps.contact.output.contact.score | round(1)>"
    assert out["number"] == "<steps.contact.output.contact.age | int + 1>"
    assert out["ids"] == ["<steps.tasks.output.tasks[0].id>"]
    assert out["count"] == 1  # a placeholder list stands for one item, as foreach shows it


@pytest.mark.parametrize(
    "condition",
    [
        "{{ not item.completed }}",
        "{{ item.completed is none }}",
        "{{ item.completed == false }}",
        "{% if item.completed %}{% else %}yes{% endif %}",
        "{{ item.title | default('') | lower | length == 0 }}",
        "{{ item.get('completed') is sameas false }}",
    ],
)
def test_a_condition_on_a_placeholder_is_unknown_and_the_step_would_run(
    registry: Registry, condition: str
) -> None:
    record = run(
        registry,
        f"""
  - id: complete
    action: ghl.update-task-completed
    foreach: "{{{{ steps.tasks.output.tasks }}}}"
    if: {json.dumps(condition)}
    with:
      contactId: c1
      taskId: "{{{{ item.id }}}}"
      completed: true
""",
    )
    complete = step(record, "complete")
    assert complete.status == "planned"
    [item] = complete.items or []
    assert item.status == "planned"
    assert item.url is not None and item.url.endswith(
        "/contacts/c1/tasks/%3Csteps.tasks.output.tasks%5B0%5D.id%3E/completed"
    )
    assert item.note is not None
    assert item.note.startswith("would run (condition unknown: ")
    assert "depends on <steps.tasks.output.tasks[0]" in item.note


def test_a_known_condition_still_decides_in_a_dry_run(registry: Registry) -> None:
    record = run(
        registry,
        """
  - id: never
    if: "{{ trigger.contactId == 'someone else' }}"
    action: ghl.get-contact
    with: {contactId: c1}
  - id: unknown_but_false_part_first
    if: "{{ trigger.contactId == 'someone else' and steps.contact.output.contact.email }}"
    action: ghl.get-contact
    with: {contactId: c1}
""",
    )
    assert step(record, "never").status == "skipped"
    # `and` stopped at the known false part: the placeholder was never looked at
    assert step(record, "unknown_but_false_part_first").status == "skipped"


def test_a_real_run_decides_the_same_condition(registry: Registry) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/tasks"):
            return httpx.Response(
                200, json={"tasks": [{"id": "t1", "completed": True}, {"id": "t2"}]}
            )
        return httpx.Response(200, json={"contact": {"id": "c1"}})

    record = run(
        registry,
        """
  - id: complete
    action: ghl.update-task-completed
    foreach: "{{ steps.tasks.output.tasks }}"
    if: "{{ not item.get('completed') }}"
    with: {contactId: c1, taskId: "{{ item.id }}", completed: true}
""",
        dry_run=False,
        handler=answer,
    )
    items = step(record, "complete").items or []
    assert [i.status for i in items] == ["skipped", "succeeded"]
    assert items[1].url is not None and items[1].url.endswith("/tasks/t2/completed")


def test_the_dry_run_text_says_the_step_would_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GHL_LOCATION_ID", "loc1")
    recipe = tmp_path / "unknown.yaml"
    recipe.write_text(
        HEAD
        + """
  - id: tag
    if: "{{ not steps.contact.output.contact.get('email') }}"
    action: ghl.add-tags
    with: {contactId: c1, tags: [no-email]}
"""
    )
    result = CliRunner().invoke(cli, ["run", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert (
        "# tag: ghl.add-tags: would run (condition unknown: "
        "{{ not steps.contact.output.contact.get('email') }} depends on "
        "<steps.contact.output.contact.email>)"
    ) in result.stdout


def test_a_placeholder_stays_small_however_often_it_is_combined() -> None:
    value: Any = Placeholder("steps.a.output")
    for _ in range(64):
        value = value + value
    assert len(str(value)) < 400


def test_watching_names_the_field_a_computation_came_from() -> None:
    contact = Placeholder("steps.contact.output.contact")
    with watching() as seen:
        assert bool(contact.email.lower() == "x")
    assert seen[-1] == "steps.contact.output.contact.email"


UNSET = """
name: unset-env
trigger: {app: manual, event: go}
steps:
"""
UNSET_STEPS = """
  - id: dupe
    action: ghl.get-duplicate-contact
    with:
      locationId: "{{ env.GHL_LOCATION_ID }}"
      email: "{{ env.CONNECTOR_VAR_EMAIL | default('a@b.example') }}"
  - id: gated
    action: ghl.create-note
    if: "{{ env.CONNECTOR_VAR_ON is defined }}"
    with: {contactId: c1, body: x}
  - id: note
    action: ghl.create-note
    with:
      contactId: "{{ env['CONNECTOR_VAR_CONTACT'] }}"
      body: "{{ env.get('CONNECTOR_VAR_B', 'b') }} {{ env.CONNECTOR_VAR_Z | d('z') }}"
"""


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_unset_variable_is_shown_in_a_dry_run_and_fails_a_real_one(
    registry: Registry, dry_run: bool
) -> None:
    """A pasted catalog example (`locationId: "{{ env.GHL_LOCATION_ID }}"`) failed its dry run
    when the variable was not set; the location the runtime adds itself was shown instead."""
    sent: list[httpx.Request] = []
    record = run(
        registry, UNSET_STEPS, dry_run=dry_run, head=UNSET, env={"GHL_TOKEN": "t"}, sent=sent
    )
    dupe, gated, note = (step(record, s) for s in ("dupe", "gated", "note"))
    if not dry_run:
        assert record.status == "failed" and sent == []
        assert dupe.error is not None
        assert "the environment variable GHL_LOCATION_ID is not set" in dupe.error
        return
    assert sent == []
    assert record.status == "succeeded"
    assert dupe.status == "planned"
    assert dupe.url is not None
    assert "locationId=%3Cenv.GHL_LOCATION_ID%3A+not+set%3E" in dupe.url
    assert "email=a%40b.example" in dupe.url  # the default applies, as in a real run
    assert dupe.note == (
        "GHL_LOCATION_ID is not set: a real run needs it (or a default in the template)"
    )
    assert gated.status == "skipped"  # `is defined` is false, as in a real run
    assert note.url is not None and "%3Cenv.CONNECTOR_VAR_CONTACT%3A%20not%20set%3E" in note.url
    assert note.request_body == {"body": "b z"}
