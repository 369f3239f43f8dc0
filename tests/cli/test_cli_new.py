"""``connector new recipe|test|sync``: each file validates as written, the test file runs under
``connector test`` as written, and nothing is overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from connector.cli import cli
from connector.persistence.database import close_all


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONNECTOR_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONNECTOR_PLUGINS_DIR", raising=False)
    (tmp_path / "recipes").mkdir()


def connector(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_a_new_recipe_validates_fills_required_parameters_and_links_the_docs() -> None:
    made = connector(
        "new", "recipe", "welcome-task", "--trigger", "connecteam.user_created",
        "--action", "ghl.upsert-contact", "--action", "ghl.create-task",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    path = Path("recipes/welcome-task.yaml")
    assert f"wrote {path}" in made.output
    checked = connector("validate", str(path))
    assert checked.exit_code == 0, checked.output
    text = path.read_text()
    assert "docs/recipes.md" in text and "connector catalog show ghl.create-task" in text
    recipe = yaml.safe_load(text)
    assert (recipe["trigger"]["app"], recipe["trigger"]["event"]) == ("connecteam", "user_created")
    assert recipe["trigger"]["sample"]["data"]["userId"] == 9001  # the event's user
    upsert, task = recipe["steps"]
    assert upsert["with"] == {"locationId": "{{ env.GHL_LOCATION_ID }}"}
    # the task goes on the contact the step before made; every required field is there
    assert task["with"]["contactId"] == "{{ steps.upsert_contact.output.contact.id }}"
    assert {"title", "dueDate", "completed"} <= set(task["with"])
    assert "# assignedTo:" in text  # optional ones commented out


@pytest.mark.parametrize(
    ("trigger", "actions"),
    [
        ("ghl.ContactCreate", ["ghl.get-contact", "ghl.add-tags", "connecteam.get-users"]),
        ("connecteam.contact.selected", ["ghl.get-all-tasks", "links.put"]),
        ("schedule.cron", ["connecteam.get-users"]),
        ("manual.go", []),
        ("ghl.TaskComplete", ["ghl.update-task-completed"]),
    ],
)
def test_new_recipes_of_every_kind_of_trigger_validate_as_written(
    trigger: str, actions: list[str]
) -> None:
    args = ["new", "recipe", "made", "--trigger", trigger]
    for action in actions:
        args += ["--action", action]
    made = connector(*args)
    assert made.exit_code == 0, made.output
    checked = connector("validate", "recipes/made.yaml")
    assert checked.exit_code == 0, checked.output + Path("recipes/made.yaml").read_text()


def test_every_trigger_event_of_the_catalog_makes_a_valid_recipe() -> None:
    from connector.apps.plugins import default_registry
    from connector.language.load import load_recipe_text
    from connector.language.scaffold import recipe_text
    from connector.language.validate import validate_recipe

    registry, _ = default_registry([], home=Path("/nonexistent"))
    problems = []
    for event in registry.triggers.values():
        action = "ghl.get-contact" if event.app == "ghl" else "connecteam.get-users"
        text = recipe_text("made", event, [action], registry, "schema.json")
        loaded = load_recipe_text(text, f"{event.name}.yaml")
        problems += [str(p) for p in validate_recipe(loaded, registry) if p.severity == "error"]
    assert len(registry.triggers) > 50
    assert problems == []


def test_the_new_test_file_runs_under_connector_test_and_passes() -> None:
    connector(
        "new", "recipe", "welcome-task", "--trigger", "connecteam.user_created",
        "--action", "ghl.upsert-contact", "--action", "ghl.create-task",
    )  # fmt: skip
    made = connector("new", "test", "recipes/welcome-task.yaml")
    assert made.exit_code == 0, made.output
    path = Path("recipes/tests/welcome-task.test.yaml")
    assert path.is_file()
    ran = CliRunner().invoke(cli, ["test", "recipes/"], catch_exceptions=False)
    close_all()
    assert ran.exit_code == 0, ran.output + path.read_text()
    assert "PASS recipes/tests/welcome-task.test.yaml::the sample event runs every step" in (
        ran.output
    )
    assert "1 passed, 0 failed" in ran.output


def test_the_new_test_of_a_hand_written_recipe_states_every_step() -> None:
    shipped = Path(__file__).parent.parent.parent / "recipes" / "pull-contact-on-select.yaml"
    Path("recipes/pull.yaml").write_text(shipped.read_text())
    made = connector("new", "test", "recipes/pull.yaml")
    assert made.exit_code == 0, made.output
    doc = yaml.safe_load(Path("recipes/tests/pull.test.yaml").read_text())
    steps = yaml.safe_load(shipped.read_text())["steps"]
    expected = {s["id"] for s in steps if "if" not in s}
    assert set(doc["tests"][0]["expect"]["steps"]) == expected
    assert all(r["repeat"] for r in doc["responses"])


def test_nothing_is_overwritten() -> None:
    Path("recipes/taken.yaml").write_text("name: taken\n")
    made = connector("new", "recipe", "taken", "--trigger", "ghl.ContactCreate")
    assert made.exit_code == 1
    assert "recipes/taken.yaml exists; not overwritten" in made.output
    assert Path("recipes/taken.yaml").read_text() == "name: taken\n"


def test_dir_and_the_current_folder_without_recipes(tmp_path: Path) -> None:
    made = connector("new", "recipe", "elsewhere", "--trigger", "ghl.ContactCreate", "--dir", "x")
    assert made.exit_code == 0, made.output
    assert Path("x/elsewhere.yaml").is_file()
    Path("recipes").rmdir()
    made = connector("new", "sync", "people")
    assert Path("people.sync.yaml").is_file(), made.output


def test_bad_names_say_what_to_give() -> None:
    made = connector("new", "recipe", "Bad Name", "--trigger", "ghl.ContactCreate")
    assert made.exit_code == 2 and "lowercase letters, digits and dashes" in made.output
    made = connector("new", "recipe", "ok", "--trigger", "ghl.ContactCreat")
    assert made.exit_code == 2 and "did you mean ghl.ContactCreate" in made.output
    made = connector("new", "recipe", "ok", "--trigger", "ghl.ContactCreate", "--action", "ghl.x")
    assert made.exit_code == 2 and "unknown action 'ghl.x'" in made.output
    assert not Path("recipes/ok.yaml").exists()


@pytest.mark.parametrize("tasks", [False, True])
def test_a_new_sync_validates_as_written(tasks: bool) -> None:
    made = connector("new", "sync", "people", *(["--tasks"] if tasks else []))
    assert made.exit_code == 0, made.output
    checked = connector("validate", "recipes/people.sync.yaml")
    assert checked.exit_code == 0, checked.output
    doc = yaml.safe_load(Path("recipes/people.sync.yaml").read_text())
    assert [p["kind"] for p in doc["pairs"]] == (["contact", "task"] if tasks else ["contact"])


def test_help_teaches_with_examples() -> None:
    out = connector("new", "--help").output
    assert "connector new recipe tag-new-contacts --trigger ghl.ContactCreate" in out
    out = connector("new", "recipe", "--help").output
    assert "--trigger APP.EVENT" in out and "connector validate recipes/welcome-task.yaml" in out
