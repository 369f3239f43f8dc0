"""``connector catalog``: what a user sees from list, show, search and generate."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from connector.apps.plugins import LoadReport, default_registry
from connector.apps.registry import Registry
from connector.catalog import DATA_DIR
from connector.cli import cli

HERE = Path(__file__).parent
PLUGINS = HERE / "catalog" / "plugins"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONNECTOR_PLUGINS_DIR", raising=False)


@functools.cache
def _registry() -> tuple[Registry, LoadReport]:
    """The shipped apps without plugins, built once for the tests that go through every
    operation (the validator's caches live on it)."""
    return default_registry([], home=Path("/nonexistent"))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["catalog", *args], catch_exceptions=False)


def test_show_an_operation_prints_what_a_recipe_needs() -> None:
    result = run("show", "ghl.get-contact")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("ghl.get-contact  GET /contacts/{contactId}")
    assert "contacts.readonly" in out
    assert "2021-07-28" in out
    assert "contactId*  path  string" in out
    assert "action: ghl.get-contact" in out


def test_show_marks_body_fields_and_gives_a_pasteable_step() -> None:
    result = run("show", "ghl.create-task")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "POST /contacts/{contactId}/tasks" in out
    body = out.split("body fields", 1)[1]
    assert "title*" in body and "dueDate*" in body and "completed*" in body
    assert "assignedTo " in body  # optional: no mark
    example = out.split("example step (paste under steps:):\n", 1)[1]
    step = yaml.safe_load(example)[0]
    assert step["action"] == "ghl.create-task"
    assert {"contactId", "title", "dueDate", "completed"} <= set(step["with"])
    assert "assignedTo" not in step["with"]  # optional ones are commented out


def test_show_json_is_the_catalog_entry() -> None:
    result = run("show", "connecteam.get-users", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert (data["method"], data["path"]) == ("GET", "/users/v1/users")
    assert data["scopes"] == ["users.read"]
    assert data["pagination"]["style"] == "offset"


def test_show_a_trigger_event_prints_its_payload_fields() -> None:
    result = run("show", "connecteam.contact.selected")
    assert result.exit_code == 0, result.output
    assert "contactId*" in result.output and "userId*" in result.output
    assert "event: contact.selected" in result.output
    ghl = run("show", "ghl.ContactCreate", "--json")
    assert json.loads(ghl.output)["payload_schema"]["properties"]["locationId"]["type"] == "string"
    manual = run("show", "manual.*")
    assert manual.exit_code == 0 and "any event name" in manual.output


def test_unknown_name_exits_1_with_the_closest_matches() -> None:
    result = CliRunner().invoke(cli, ["catalog", "show", "ghl.get-contct"])
    assert result.exit_code == 1
    assert "error: unknown operation or event 'ghl.get-contct'" in result.output
    assert "ghl.get-contact" in result.output


def test_list_prints_one_operation_per_line() -> None:
    result = run("list", "--app", "connecteam")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 145
    assert all(line.startswith("connecteam.") for line in lines)
    assert any(
        line.split()[:3] == ["connecteam.get-users", "GET", "/users/v1/users"] for line in lines
    )


def test_list_triggers() -> None:
    result = run("list", "--triggers")
    assert result.exit_code == 0
    names = {line.split()[0] for line in result.output.splitlines()}
    assert {
        "ghl.ContactCreate",
        "connecteam.contact.selected",
        "schedule.cron",
        "manual.*",
    } <= names
    assert len(names) == 62


def test_list_json_holds_every_operation_and_trigger() -> None:
    result = run("list", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    names = [op["name"] for op in data["operations"]]
    assert sum(n.startswith("ghl.") for n in names) == 185
    assert sum(n.startswith("connecteam.") for n in names) == 145
    assert len(data["triggers"]) == 62
    only = json.loads(run("list", "--triggers", "--json").output)
    assert set(only) == {"triggers"}


def test_list_unknown_app_exits_1() -> None:
    result = CliRunner().invoke(cli, ["catalog", "list", "--app", "ghll"])
    assert result.exit_code == 1
    assert "unknown app 'ghll'" in result.output and "ghl" in result.output


def test_search_ranks_by_words_in_name_path_and_summary() -> None:
    result = run("search", "contact", "tasks")
    assert result.exit_code == 0
    top = [line.split()[0] for line in result.output.splitlines()[:6]]
    assert "ghl.get-all-tasks" in top and "ghl.create-task" in top
    none = CliRunner().invoke(cli, ["catalog", "search", "zzzqqq"])
    assert none.exit_code == 1


def test_plugin_apps_are_listed_and_shown() -> None:
    args = ["--plugins-dir", str(PLUGINS), "catalog"]
    listed = CliRunner().invoke(cli, [*args, "list", "--app", "weather"])
    assert listed.exit_code == 0, listed.output
    assert "weather.get-forecast" in listed.output
    shown = CliRunner().invoke(cli, [*args, "show", "weather.get-forecast"])
    assert shown.exit_code == 0
    assert "GET /forecast/{city}" in shown.output and "city*" in shown.output


@pytest.mark.needs_specs
def test_generate_writes_the_catalog_and_check_says_it_is_current(tmp_path: Path) -> None:
    check = run("generate", "--check")
    assert check.exit_code == 0 and "up to date" in check.output
    result = run("generate", "--out", str(tmp_path))
    assert result.exit_code == 0
    assert (tmp_path / "ghl.json").read_bytes() == (DATA_DIR / "ghl.json").read_bytes()
    (tmp_path / "ghl.json").write_text("{}\n")
    stale = CliRunner().invoke(cli, ["catalog", "generate", "--check", "--out", str(tmp_path)])
    assert stale.exit_code == 1 and "ghl.json" in stale.output


def test_generate_from_a_folder_without_documents_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(
        cli, ["catalog", "generate", "--ghl", str(tmp_path / "empty"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "error: no GoHighLevel documents" in result.output


def test_show_a_plugin_action_lists_its_with_fields() -> None:
    args = ["--plugins-dir", str(PLUGINS), "catalog", "show", "weather.to-fahrenheit"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "celsius*  number  Degrees Celsius." in result.output
    assert "action: weather.to-fahrenheit" in result.output


def test_every_printed_example_validates_as_pasted_with_the_location_from_the_environment() -> None:
    """Issue: `catalog show ghl.get-duplicate-contact` printed `id: get-duplicate-contact` (not an
    identifier), a hard-coded locationId and lorem-ipsum values."""
    from connector.catalog.examples import LOREM
    from connector.language.load import load_recipe_text
    from connector.language.validate import validate_recipe

    loaded = _registry()
    registry = loaded[0]
    names = [n for n in registry.action_names() if registry.operation(n) is not None]
    assert len(names) > 300
    failures = []
    for name in names:
        # the command as a user runs it, given this registry (the one it would build) once
        shown = CliRunner().invoke(cli, ["catalog", "show", name], obj={"registry": loaded})
        assert shown.exit_code == 0, shown.output
        out = shown.output
        example = out.split("example step (paste under steps:):\n", 1)[1]
        text = "name: pasted\ntrigger: {app: manual, event: go, sample: {}}\nsteps:\n" + example
        errors = [
            str(p)
            for p in validate_recipe(load_recipe_text(text, f"{name}.yaml"), registry)
            if p.severity == "error"
        ]
        failures.extend(errors)
        step = yaml.safe_load(example)[0]
        values = json.dumps(step.get("with") or {}).lower()
        words = set(
            re.findall(r"[a-z]+", " ".join(str(v) for v in (step.get("with") or {}).values()))
        )
        if words and words <= LOREM:
            failures.append(f"{name}: filler values {values}")
        if name.startswith("ghl.") and "locationId" in (step.get("with") or {}):
            assert step["with"]["locationId"] == "{{ env.GHL_LOCATION_ID }}", name
    assert failures == []
    out = run("show", "ghl.get-duplicate-contact").output
    assert "- id: get_duplicate_contact" in out and "sadadya1u12basyhasd" not in out


def test_search_ranks_whole_words_first_and_ignores_passing_mentions() -> None:
    """Issue: `catalog search task` left ghl.update-task-completed out of its results, and
    `catalog search opportunity` listed message exports that mention the word."""
    names = [line.split()[0] for line in run("search", "task").output.splitlines()]
    assert "ghl.update-task-completed" in names  # within the default 20
    assert names.index("ghl.create-task") < names.index("connecteam.create-subtask")
    found = [line.split()[0] for line in run("search", "opportunity").output.splitlines()]
    assert found and all("opportunit" in name for name in found)


def test_show_a_deprecated_operation_names_its_replacement() -> None:
    result = run("show", "ghl.get-contacts")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("deprecated:")]
    assert lines == [
        "deprecated:  yes: use ghl.search-contacts-advanced (POST /contacts/search) instead"
    ]
    data = json.loads(run("show", "ghl.get-contacts", "--json").output)
    assert (data["deprecated"], data["replaced_by"]) == (True, "ghl.search-contacts-advanced")


def test_show_a_deprecated_operation_without_a_named_replacement_says_so() -> None:
    result = run("show", "connecteam.generate-download-url")
    assert result.exit_code == 0, result.output
    assert "deprecated:  yes (its API document says so, and names no replacement)" in (
        result.output.splitlines()
    )
    data = json.loads(run("show", "connecteam.generate-download-url", "--json").output)
    assert (data["deprecated"], data["replaced_by"]) == (True, None)


def test_an_operation_in_use_has_no_deprecated_line_and_no_replacement() -> None:
    result = run("show", "ghl.get-contact")
    assert not any(line.startswith("deprecated:") for line in result.output.splitlines())
    assert json.loads(run("show", "ghl.get-contact", "--json").output)["replaced_by"] is None


def test_list_json_names_each_deprecated_operations_replacement() -> None:
    ops = json.loads(run("list", "--json").output)["operations"]
    replaced = {op["name"]: op["replaced_by"] for op in ops if op["deprecated"]}
    assert replaced == {
        "ghl.get-contacts": "ghl.search-contacts-advanced",
        "ghl.get-user-by-location": "ghl.search-users",
        "connecteam.generate-download-url": None,
    }
    assert all(op["replaced_by"] is None for op in ops if not op["deprecated"])


def test_showing_a_deprecated_operation_loads_no_recipe_or_template_code() -> None:
    """``catalog show`` starts quickly: finding the replacement needs the catalog only."""
    code = (
        "import sys\n"
        "from connector.cli import cli\n"
        "try:\n"
        "    cli(['catalog', 'show', 'ghl.get-contacts'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('connector.language', 'connector.language.templates', 'jinja2')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "deprecated:  yes: use ghl.search-contacts-advanced" in out.stdout, out.stderr
    assert out.stderr.strip() == "[]"


def test_show_lists_the_versions_of_an_operation_and_how_their_fields_differ() -> None:
    result = run("show", "ghl.update-contact")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "versions:    2021-07-28 (sent by default), v3" in out
    differs = out.split("v3 differs from 2021-07-28:\n", 1)[1].split("\n\n", 1)[0]
    assert "response succeded: only in 2021-07-28 (boolean)" in differs
    assert "response succeeded: only in v3 (boolean)" in differs
    assert "body dndSettings.email: only in v3 (object)" in differs
    # a field only one version has is listed once, not with everything inside it
    assert "dndSettings.email.status" not in differs


def test_show_version_shows_the_operation_as_that_version_documents_it() -> None:
    result = run("show", "ghl.remove-contact-from-every-campaign", "--version", "v3")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(
        "ghl.remove-contact-from-every-campaign (Version v3)  "
        "DELETE /contacts/{contactId}/campaigns/remove-all"
    )
    assert "source:      contacts-v3.json" in out
    assert "path: 2021-07-28 DELETE /contacts/{contactId}/campaigns/removeAll; v3 DELETE" in out
    step = yaml.safe_load(out.split("example step (paste under steps:):\n", 1)[1])[0]
    assert step["version"] == "v3"


def test_show_an_unknown_version_says_which_versions_there_are() -> None:
    result = CliRunner().invoke(cli, ["catalog", "show", "ghl.get-contacts", "--version", "v3"])
    assert result.exit_code == 1
    assert "ghl.get-contacts has no version 'v3' (it has 2021-07-28)" in result.output
    assert "Traceback" not in result.output


def test_show_json_carries_the_other_versions() -> None:
    result = run("show", "ghl.get-contact", "--json")
    data = json.loads(result.output)
    assert data["version"] == "2021-07-28"
    assert data["versions"]["v3"]["source"] == "contacts-v3.json"
    assert data["versions"]["v3"]["version"] == "v3"


def test_every_example_uncommented_is_still_valid_yaml_and_a_valid_with_block() -> None:
    """Issue 29: `catalog show connecteam.get-users` printed `with: {}` followed by commented keys
    that were not YAML once uncommented."""
    from connector.catalog.examples import example_with
    from connector.language.load import load_recipe_text
    from connector.language.validate import validate_recipe

    registry, _ = _registry()
    failures = []
    checked = 0
    for name in registry.action_names():
        op = registry.operation(name)
        if op is None:
            continue
        app = registry.apps[op.app]
        location = (app.location_param, app.location_env) if app.location_env else None
        lines = example_with(op, location=location if app.location_param else None)
        uncommented = [re.sub(r"^(\s*)# ", r"\1", line) for line in lines]
        step = yaml.safe_load("\n".join(uncommented))[0]
        optional = [p.name for p in op.parameters if not p.required]
        assert set(optional) <= set(step.get("with") or {}), name  # every key came back
        text = "name: pasted\ntrigger: {app: manual, event: go, sample: {}}\nsteps:\n" + "\n".join(
            "  " + line for line in uncommented
        )
        loaded = load_recipe_text(text, f"{name}.yaml")
        failures += [str(p) for p in validate_recipe(loaded, registry) if p.severity == "error"]
        checked += 1
    assert checked > 300
    assert failures == []
    shown = run("show", "connecteam.get-users").output
    assert "with: {}" not in shown and "    # with:\n    #   limit: 10" in shown


def test_a_search_that_stops_at_its_limit_says_how_many_more() -> None:
    """Issue 29: `catalog search task` stopped at 20 of 21 results without saying so."""
    every = CliRunner().invoke(cli, ["catalog", "search", "task", "--limit", "1000"])
    total = len(every.stdout.splitlines())
    assert total > 20 and every.stderr == ""
    result = CliRunner().invoke(cli, ["catalog", "search", "task"])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 20
    assert result.stderr.strip() == f"{total - 20} more; use --limit {total} to see them all"
