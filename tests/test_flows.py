"""The six shipped recipes, end to end: through the command line, against the embedded sandbox.

Each test starts a fresh sandbox, runs a recipe with ``connector run RECIPE --json`` pointed at it
(twice, to prove a rerun duplicates nothing), and checks both sides through the sandbox's
``/_sandbox`` inspection endpoints and the id-link store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from tests.runtime.e2e_support import LOCAL

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "tests" / "workloads"  # the one-way flows, as they shipped (tests/workloads)
SHIPPED = ROOT / "recipes"
EVENTS = Path(__file__).parent / "data" / "flows"
CONTACT = "ocQHyuzHvysMo5N5VsXc"  # the sandbox's GoHighLevel contact Jordan Avery
USER = 9001  # the Connecteam user paired with it

# skipped (failed under CI) without the engine and the sandbox: see tests/conftest.py
pytestmark = pytest.mark.needs_modules("connector.runtime.engine", "connector.sandbox.server")


class Flow:
    """A sandbox, a CONNECTOR_HOME, and the command line pointed at both."""

    def __init__(self, url: str, env: dict[str, str], home: Path) -> None:
        self.url = url
        self.env = {**env, "CONNECTOR_HOME": str(home)}

    def cli(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = CliRunner().invoke(cli, list(args), env={**self.env, **(env or {})})
        return result

    def run(self, recipe: str, event: str | None = None, **env: str) -> dict[str, Any]:
        args = ["run", str(RECIPES / f"{recipe}.yaml"), "--json"]
        if event:
            args += ["--event", str(EVENTS / event)]
        result = self.cli(*args, env=env)
        assert result.exit_code == 0, result.output
        record: dict[str, Any] = json.loads(result.stdout)
        assert record["status"] == "succeeded", record.get("error")
        return record

    def state(self) -> dict[str, Any]:
        return dict(LOCAL.get(f"{self.url}/_sandbox/state").json())

    def contact(self, contact_id: str = CONTACT) -> dict[str, Any]:
        return next(c for c in self.state()["ghl"]["contacts"] if c["id"] == contact_id)

    def ghl_tasks(self, contact_id: str = CONTACT) -> list[dict[str, Any]]:
        return list(self.state()["ghl"]["tasks"].get(contact_id, []))

    def user(self, user_id: int = USER) -> dict[str, Any]:
        return next(u for u in self.state()["connecteam"]["users"] if u["userId"] == user_id)

    def user_notes(self, user_id: int = USER) -> list[dict[str, Any]]:
        reply = LOCAL.get(f"{self.url}/_sandbox/connecteam/users/{user_id}/notes")
        return list(reply.json()["notes"])

    def board_tasks(self, user_id: int, board: str = "7001") -> list[dict[str, Any]]:
        tasks = self.state()["connecteam"]["tasks"][board]
        return [t for t in tasks if user_id in t["userIds"]]

    def links(self, kind: str) -> list[dict[str, Any]]:
        result = self.cli("links", "list", "--kind", kind, "--json")
        assert result.exit_code == 0, result.output
        return list(json.loads(result.stdout))


@pytest.fixture
def flow(tmp_path: Path) -> Iterator[Flow]:
    from connector.sandbox.server import start_in_thread

    with start_in_thread() as sandbox:
        yield Flow(sandbox.url, dict(sandbox.env), tmp_path / "home")


def _field(user: dict[str, Any], field_id: int) -> Any:
    return next(
        (f["value"] for f in user.get("customFields", []) if f["customFieldId"] == field_id), None
    )


# --- 1. pull-contact-on-select ---------------------------------------------------------------------


def test_pull_populates_the_user_and_a_rerun_adds_nothing(flow: Flow) -> None:
    tags_before = flow.contact()["tags"]
    first = flow.run("pull-contact-on-select")
    out = first["output"]
    assert out["read_from_gohighlevel"] == {
        "contact": "Jordan Avery",
        "email": "jordan.avery@example.com",
        "tasks": 2,
        "notes": 2,
        "appointments": 2,
    }
    written = out["written_to_connecteam"]
    assert written["notes_created"] == 2 and written["appointment_notes_created"] == 2
    # The seed already has the two tasks on the user's board: they are adopted, not copied again.
    assert written["tasks_adopted"] == 2 and written["tasks_created"] == 0

    second = flow.run("pull-contact-on-select")
    again = second["output"]["written_to_connecteam"]
    assert again["notes_created"] == again["appointment_notes_created"] == 0
    assert again["tasks_created"] == again["tasks_adopted"] == 0

    user = flow.user()
    assert _field(user, 501) == CONTACT
    assert _field(user, 502) == "Avery Landscaping"
    titles = [n.get("title") for n in flow.user_notes()]
    assert sorted(titles) == sorted(
        [
            "Onboarding",
            "GoHighLevel note",
            "Insurance",
            "Appointment: Checkup",
            "Appointment: Follow-up",
        ]
    )
    texts = [n["text"] for n in flow.user_notes()]
    assert "Prefers morning appointments." in texts
    assert any("2024-03-12T15:00:00Z" in t for t in texts)
    assert len(flow.board_tasks(USER)) == 2
    assert flow.contact()["tags"] == tags_before  # pulling writes nothing to GoHighLevel
    assert [(x["ghl_id"], x["connecteam_id"]) for x in flow.links("contact")] == [(CONTACT, USER)]
    assert len(flow.links("note")) == 2
    assert len(flow.links("appointment")) == 2
    assert len(flow.links("task")) == 2


def test_pull_creates_quick_tasks_once(flow: Flow) -> None:
    first = flow.run("pull-contact-on-select", "select-priya.json")
    assert first["output"]["written_to_connecteam"]["tasks_created"] == 1
    flow.run("pull-contact-on-select", "select-priya.json")
    tasks = flow.board_tasks(9002)
    assert [t["title"] for t in tasks] == ["Confirm new address"]
    assert tasks[0]["status"] == "published"
    assert tasks[0]["dueDate"] == 1710072000  # 2024-03-10T12:00:00Z in Unix seconds
    link = flow.links("task")[0]
    assert link["connecteam_id"] == tasks[0]["id"]


def test_pull_a_contact_with_no_tasks_notes_or_appointments(flow: Flow) -> None:
    record = flow.run("pull-contact-on-select", "select-no-tasks.json")
    read = record["output"]["read_from_gohighlevel"]
    assert read["tasks"] == read["notes"] == read["appointments"] == 0
    assert flow.user_notes(9003) == []
    assert flow.board_tasks(9003) == []


# --- 2. push-contact-edits -------------------------------------------------------------------------


def test_push_edits_updates_the_contact_and_its_tasks(flow: Flow) -> None:
    flow.run("push-contact-edits")
    record = flow.run("push-contact-edits")
    assert record["output"]["updated"]["tasks_edited"] == 1

    contact = flow.contact()
    assert (contact["firstName"], contact["lastName"]) == ("Jordan A.", "Avery")
    assert contact["email"] == "Jordan.Avery@avery-landscaping.example"
    assert contact["phone"] == "+15555550199"
    assert contact["tags"] == ["patient", "connecteam", "vip"]  # added once, none replaced
    tasks = {t["id"]: t for t in flow.ghl_tasks()}
    assert tasks["xtpYlSXpfKtHF4vUCsMe"]["title"] == "Call back about the estimate (two visits)"
    assert tasks["xtpYlSXpfKtHF4vUCsMe"]["body"] == "Wants a quote for two visits"  # kept
    assert tasks["xtpYlSXpfKtHF4vUCsMe"]["dueDate"].startswith("2024-03-09T17:00:00")
    assert tasks["hGAkWvj7FAc9QeWJKY40"]["completed"] is False  # reopened
    assert len(tasks) == 2
    assert [(x["ghl_id"], x["connecteam_id"]) for x in flow.links("contact")] == [(CONTACT, USER)]


def test_push_edits_for_an_unlinked_user_changes_nothing(flow: Flow) -> None:
    before = flow.contact("oaF1LlqsajAIxNKu8iS2")
    record = flow.run("push-contact-edits", "edits-unlinked.json")
    assert "has no linked GoHighLevel contact" in record["output"]["skipped_because"]
    assert flow.contact("oaF1LlqsajAIxNKu8iS2") == before


def test_push_edits_leaves_out_an_unusable_email_and_phone(flow: Flow) -> None:
    record = flow.run("push-contact-edits", "edits-bad-email.json")
    assert record["output"]["ignored"] == {"email": "not an email", "phone": "n/a"}
    contact = flow.contact()
    assert contact["email"] == "jordan.avery@example.com"
    assert contact["phone"] == "+15555550101"
    assert (contact["firstName"], contact["lastName"]) == ("Jordan", "Avery-Lee")


# --- 3. create-contact-from-connecteam -------------------------------------------------------------


def _contacts_named(flow: Flow, last: str) -> list[dict[str, Any]]:
    return [c for c in flow.state()["ghl"]["contacts"] if c.get("lastName") == last]


def test_create_contact_once_with_its_tasks(flow: Flow) -> None:
    first = flow.run("create-contact-from-connecteam")
    assert first["output"]["created_new_contact"] is True
    second = flow.run("create-contact-from-connecteam")
    assert second["output"]["done_before"] is True
    assert second["output"]["created_new_contact"] is False

    [contact] = _contacts_named(flow, "van der Berg")
    assert contact["firstName"] == "Mary Ann"
    assert contact["email"] == "MaryAnn@vanderberg-bakery.example"
    assert contact["phone"] == "+15555550144"
    assert contact["companyName"] == "Van der Berg Bakery"
    assert contact["locationId"] == flow.env["GHL_LOCATION_ID"]
    assert contact["tags"] == ["new-customer", "connecteam"]
    tasks = flow.ghl_tasks(contact["id"])
    assert sorted(t["title"] for t in tasks) == ["Send the price list", "Welcome call"]
    assert [(x["ghl_id"], x["connecteam_id"]) for x in flow.links("contact")] == [
        (contact["id"], 9010)
    ]
    assert second["output"]["contact_id"] == contact["id"]


def test_create_contact_without_an_email(flow: Flow) -> None:
    record = flow.run("create-contact-from-connecteam", "created-no-email.json")
    contact = flow.contact(record["output"]["contact_id"])
    assert contact["firstName"] == "Ada"
    assert "email" not in contact or not contact["email"]
    assert flow.ghl_tasks(contact["id"]) == []


def test_create_contact_reuses_a_contact_with_the_same_email(flow: Flow) -> None:
    count = len(flow.state()["ghl"]["contacts"])
    record = flow.run("create-contact-from-connecteam", "created-existing-email.json")
    assert record["output"]["contact_id"] == "oaF1LlqsajAIxNKu8iS2"
    assert record["output"]["created_new_contact"] is False
    assert len(flow.state()["ghl"]["contacts"]) == count


# --- 4. create-task-from-connecteam ----------------------------------------------------------------


def test_create_task_once_on_the_linked_contact(flow: Flow) -> None:
    # a bare task object (as `connector run --event` takes it), naming its contact and description
    first = flow.run("create-task-from-connecteam", "task-created-bare.json")
    assert first["output"]["created"] is True
    second = flow.run("create-task-from-connecteam", "task-created-bare.json")
    assert second["output"]["done_before"] is True
    assert second["output"]["created"] is False

    made = [t for t in flow.ghl_tasks() if t["title"] == "Measure the back garden"]
    assert len(made) == 1
    assert made[0]["dueDate"].startswith("2024-03-20T16:00:00")
    assert made[0]["body"] == "Bring the long tape; the client wants a sketch too."
    assert made[0]["completed"] is False
    [link] = flow.links("task")
    assert (link["ghl_id"], link["connecteam_id"]) == (made[0]["id"], "65f1a2b3c4d5e6f708192a40")
    assert second["output"]["ghl_task_id"] == made[0]["id"]


def test_create_task_from_the_webhook_finds_the_contact_in_the_users_field(flow: Flow) -> None:
    # the sample is Connecteam's task_published envelope: no contactId, no description; the
    # user's "GHL contact id" custom field names the contact, and the pairing is remembered
    record = flow.run("create-task-from-connecteam")
    assert record["output"]["created"] is True
    [made] = [t for t in flow.ghl_tasks() if t["title"] == "Measure the back garden"]
    assert made["contactId"] == "ocQHyuzHvysMo5N5VsXc"
    assert made["dueDate"].startswith("2024-03-20T16:00:00")
    assert [str(link["connecteam_id"]) for link in flow.links("contact")] == ["9001"], flow.links(
        "contact"
    )


def test_create_task_for_an_unlinked_user_is_reported(flow: Flow) -> None:
    before = flow.state()["ghl"]["tasks"]
    record = flow.run("create-task-from-connecteam", "task-unlinked.json")
    assert record["output"]["created"] is False
    assert "has no linked GoHighLevel contact" in record["output"]["skipped_because"]
    assert flow.state()["ghl"]["tasks"] == before


# --- 5. tag-contact-on-activity --------------------------------------------------------------------


def test_tag_on_activity_adds_the_tag_once(flow: Flow) -> None:
    flow.run("tag-contact-on-activity")
    record = flow.run("tag-contact-on-activity")
    assert record["output"]["tagged_contacts"] == [CONTACT]
    assert flow.contact()["tags"] == ["patient", "connecteam", "connecteam-task-completed"]
    # The user was found through the "GHL contact id" custom field, and the pair remembered.
    assert [(x["ghl_id"], x["connecteam_id"]) for x in flow.links("contact")] == [(CONTACT, USER)]


def test_tag_on_activity_reports_users_without_a_contact(flow: Flow) -> None:
    record = flow.run(
        "tag-contact-on-activity", "activity-group.json", CONNECTOR_VAR_ACTIVITY_TAG="busy"
    )
    assert record["output"]["tagged_contacts"] == [CONTACT]
    assert record["output"]["users_without_contact"] == [9002, 9003]
    assert flow.contact()["tags"][-1] == "busy"
    assert "busy" not in flow.contact("oaF1LlqsajAIxNKu8iS2")["tags"]


# --- 6. archive-user-on-contact-delete -------------------------------------------------------------


def test_contact_delete_archives_the_user(flow: Flow) -> None:
    first = flow.run("archive-user-on-contact-delete")
    assert first["output"]["archived"] is True
    assert first["output"]["found_by"] == "email"  # no link yet: the active user with that email
    second = flow.run("archive-user-on-contact-delete")
    assert second["output"]["archived"] is False

    user = flow.user()
    assert user["isArchived"] is True
    assert flow.links("contact") == []  # the pair is forgotten with the contact
    assert [u["userId"] for u in flow.state()["connecteam"]["users"] if u["isArchived"]] == [USER]


def test_contact_delete_can_keep_the_user_and_mark_it_inactive(flow: Flow) -> None:
    assert flow.cli("links", "put", "contact", CONTACT, str(USER)).exit_code == 0
    mode = {"CONNECTOR_VAR_ON_CONTACT_DELETE": "mark-inactive"}
    first = flow.run("archive-user-on-contact-delete", **mode)
    assert first["output"]["found_by"] == "id-link store"
    second = flow.run("archive-user-on-contact-delete", **mode)
    assert first["output"]["note_written"] is True
    assert second["output"]["note_written"] is False

    user = flow.user()
    assert user["isArchived"] is False
    assert _field(user, 503) == [{"id": 2}]  # the "inactive" option of the Status field
    notes = [n for n in flow.user_notes() if n.get("title") == "GoHighLevel contact deleted"]
    assert len(notes) == 1 and "Jordan Avery" in notes[0]["text"]
    [link] = flow.links("contact")
    assert link["meta"]["ghlDeleted"] is True


def test_contact_delete_without_a_user_changes_nothing(flow: Flow) -> None:
    before = flow.state()["connecteam"]
    record = flow.run("archive-user-on-contact-delete", "delete-unknown.json")
    assert record["output"]["connecteam_user"] is None
    assert "no active Connecteam user" in record["output"]["problem"]
    assert flow.state()["connecteam"] == before


# --- every recipe, as a newcomer runs it ------------------------------------------------------------


SHIPPED_RECIPES = sorted(p for p in SHIPPED.glob("*.yaml") if not p.name.endswith(".sync.yaml"))


@pytest.mark.parametrize("recipe", [p.stem for p in SHIPPED_RECIPES])
def test_each_shipped_recipe_runs_green_with_sandbox(recipe: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["run", str(SHIPPED / f"{recipe}.yaml"), "--sandbox", "--json"],
        env={"CONNECTOR_HOME": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["status"] == "succeeded"
    assert all(step["status"] != "failed" for step in record["steps"])


@pytest.mark.needs_modules("connector.cli.validate")
def test_the_shipped_recipes_and_sync_validate_clean() -> None:
    result = CliRunner().invoke(cli, ["validate", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert [p.name for p in SHIPPED_RECIPES] == [
        "copy-note-to-connecteam.yaml",
        "pull-contact-on-select.yaml",
        "tag-contact-on-activity.yaml",
    ]
    assert [p.name for p in SHIPPED.glob("*.sync.yaml")] == ["people-and-tasks.sync.yaml"]


def test_the_shipped_recipes_follow_the_house_style() -> None:
    for path in [*SHIPPED_RECIPES, *RECIPES.glob("*.yaml")]:
        text = path.read_text(encoding="utf-8")
        schema = "../schemas/" if path.parent == SHIPPED else "../../schemas/"
        assert text.startswith(f"# yaml-language-server: $schema={schema}recipe.schema.json\n"), (
            path
        )
        assert f"\nname: {path.stem}\n" in text, path
        assert "\ndescription:" in text and "\n  sample:" in text, path
    for path in SHIPPED.glob("*.sync.yaml"):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=../schemas/sync.schema.json\n")
        assert f"\nsync: {path.name.removesuffix('.sync.yaml')}\n" in text, path


# --- 7. sync-contact-to-connecteam -----------------------------------------------------------------


def test_sync_contact_writes_only_what_differs_and_then_nothing(flow: Flow) -> None:
    first = flow.run("sync-contact-to-connecteam")
    # the sample's contact has the seed user's email; the pair is learned from it
    assert first["output"]["user"] == USER
    assert first["output"]["updated"] == ["lastName"]
    user = flow.user()
    assert (user["firstName"], user["lastName"]) == ("Jordan", "Avery-Lee")
    second = flow.run("sync-contact-to-connecteam")
    assert second["output"]["updated"] == []
    [step] = [s for s in second["steps"] if s["id"] == "update_user"]
    assert step["status"] == "skipped"
