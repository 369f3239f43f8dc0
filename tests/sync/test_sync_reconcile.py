"""`connector sync reconcile`: the initial sync of two apps that already hold the same people,
a dry run that plans exactly what the real run then does and writes nothing, and a second run
that only reads. Judged by both apps' state and the requests the sandbox received."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connector.cli import cli
from connector.persistence.database import close_all
from connector.sandbox.ratelimit import RateLimitConfig
from connector.sandbox.server import RunningSandbox, start_in_thread
from tests.sync.conftest import HERE, Apps
from tests.sync.test_sync_initial import NO_BUDGET

DECLARATION = str(HERE / "people.sync.yaml")


class Writes:
    """The writes (anything but a read or a search) the sandbox receives."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[str] = []

    def wrap(self, app: Any) -> Any:
        async def logged(scope: Any, receive: Any, send: Any) -> None:
            path = str(scope.get("path", ""))
            method = str(scope.get("method", ""))
            if (
                scope["type"] == "http"
                and not path.startswith("/_sandbox")
                and method != "GET"
                and not path.endswith("/search")
            ):
                with self.lock:
                    self.seen.append(f"{method} {path}")
            await app(scope, receive, send)

        return logged

    def take(self) -> list[str]:
        with self.lock:
            out, self.seen = self.seen, []
        return out


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[tuple[RunningSandbox, Writes, dict[str, str]]]:
    writes = Writes()
    with start_in_thread(wrap=writes.wrap, limits=RateLimitConfig(enabled=False)) as sandbox:
        env = {
            **sandbox.env,
            "CONNECTOR_HOME": str(tmp_path / "home"),
            # the vendors' rate limits are the subject of other tests: here the budget lets
            # every request go (at Connecteam's 100 a minute, the test waited a minute for it)
            "CONNECTOR_RATE_LIMITS": NO_BUDGET,
        }
        yield sandbox, writes, env
    close_all()


def _reconcile(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    done = CliRunner().invoke(cli, ["sync", "reconcile", DECLARATION, "--json", *args], env=env)
    assert done.exit_code in (0, 1), done.output
    return done.exit_code, json.loads(done.stdout)["syncs"]["people"]


def test_the_first_reconcile_pairs_creates_and_a_second_changes_nothing(
    world: tuple[RunningSandbox, Writes, dict[str, str]],
) -> None:
    sandbox, writes, env = world
    apps = Apps(sandbox)
    # both apps hold people already: some the same (by email, or by phone only), some on one
    # side only, and one email two Connecteam users share
    for n in range(8):  # the same people, by email; two with another last name in Connecteam
        apps.new_contact(firstName=f"Same{n}", lastName="Email", email=f"same{n}@example.org")
        last = "Email" if n >= 2 else "Changed"
        apps.new_user(firstName=f"Same{n}", lastName=last, email=f"same{n}@example.org",
                      phoneNumber=f"+1444111{n:04d}")  # fmt: skip
    for n in range(4):  # the same people, by phone only
        apps.new_contact(firstName=f"Phone{n}", lastName="Only", phone=f"+1444222{n:04d}")
        apps.new_user(firstName=f"Phone{n}", lastName="Only", phoneNumber=f"+1444222{n:04d}")
    for n in range(5):
        apps.new_contact(firstName=f"Ghl{n}", lastName="Side", email=f"ghl{n}@example.org",
                         phone=f"+1444333{n:04d}")  # fmt: skip
    for n in range(3):
        apps.new_user(firstName=f"Ct{n}", lastName="Side", email=f"ct{n}@example.org",
                      phoneNumber=f"+1444444{n:04d}")  # fmt: skip
    for n in range(2):
        apps.new_user(firstName="Twin", lastName=str(n), email="twin@example.org",
                      phoneNumber=f"+1444555{n:04d}")  # fmt: skip
    apps.new_contact(firstName="Twin", lastName="Contact", email="twin@example.org")
    contacts_before = len(apps.contacts())
    users_before = len(apps.users())
    writes.take()

    code, planned = _reconcile(env, "--dry-run")
    assert writes.take() == []  # a dry run writes nothing
    # the contact and the two users that share the twins' email
    assert code == 1 and planned["ambiguous"] == 3

    code, done = _reconcile(env)
    assert code == 1  # the twins need a person
    for key in ("paired", "created", "updated", "ambiguous", "unmatched", "in_sync"):
        assert done[key] == planned[key], (key, planned[key], done[key])
    made = writes.take()
    assert made and all(w.split()[0] in ("POST", "PUT") for w in made)

    # every person once on each side, paired, the two with another last name as newest says
    contacts, users = apps.contacts(), [u for u in apps.users() if not u["isArchived"]]
    emails = [c.get("email") for c in contacts if c.get("email")]
    assert len(emails) == len(set(emails))
    assert len([u for u in users if u.get("email") == "twin@example.org"]) == 2
    assert len(contacts) == contacts_before + done["created"]["ghl"]
    assert len(users) == users_before + done["created"]["connecteam"]
    assert done["created"]["connecteam"] >= 5  # the five contacts of GoHighLevel's side alone
    from connector.persistence.database import open_database
    from connector.persistence.links import LinkStore

    links = LinkStore(open_database(env).engine)
    for contact in contacts:
        link = links.get("contact", ghl_id=contact["id"])
        if contact.get("email") == "twin@example.org":
            assert link is None
            continue
        if link is None:  # Connecteam takes no user without a phone number
            assert not contact.get("phone"), contact
            assert not [u for u in users if u.get("email") == contact.get("email")]
            continue
        user = apps.user(link.connecteam_id)
        assert (user["firstName"], user["lastName"]) == (contact["firstName"], contact["lastName"])

    # run again: everything in sync, nothing written
    code, again = _reconcile(env)
    assert writes.take() == []
    assert again["created"] == {"ghl": 0, "connecteam": 0}
    assert again["updated"] == {"ghl": 0, "connecteam": 0}
    assert again["paired"] == 0
    apps.ghl.close()
    apps.ct.close()
