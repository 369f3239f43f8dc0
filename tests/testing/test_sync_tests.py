"""``connector test`` on sync declarations: NAME.sync.test.yaml run on the embedded sandbox.

Each test here writes a sync test file (or uses the shipped one), runs ``connector test`` on it,
and checks what it reports: that the shipped declaration passes its own tests, that a wrong
expectation fails at its line with what differed, that a declaration changed under its tests is
caught, and that a file that names records it never made is refused before anything runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from recipe_tests_support import ROOT, connector

SYNC = ROOT / "recipes" / "people-and-tasks.sync.yaml"
TESTS = ROOT / "recipes" / "tests" / "people-and-tasks.sync.test.yaml"
BY_HAND = ROOT / "tests" / "sync" / "by-hand.sync.yaml"

PAIR = """\
    given:
      ada: {ghl: contact, set: {firstName: Ada, lastName: Lovelace, email: ada@example.com, phone: "+15555550100"}}
      ada-user: {connecteam: user, set: {firstName: Ada, lastName: Lovelace, email: ada@example.com, phoneNumber: "+15555550100"}}
    do:
      - edit: ada
        set: {firstName: Ada}
      - deliver: in-order
"""


def _file(tmp_path: Path, body: str, sync: Path = SYNC) -> Path:
    path = tmp_path / "t.sync.test.yaml"
    path.write_text(f"sync: {sync}\ntests:\n{body}")
    return path


def _run(path: Path) -> dict:
    result = connector("test", "--json", str(path))
    return {"exit": result.exit_code, **json.loads(result.stdout)}


def test_the_shipped_declaration_passes_its_tests() -> None:
    done = _run(SYNC)
    assert done["exit"] == 0, done
    names = [t["name"] for t in done["tests"]]
    assert len(names) >= 7 and all(t["status"] == "passed" for t in done["tests"])
    assert any("conflict" in n for n in names) and any("task" in n for n in names)


def test_a_wrong_expectation_fails_at_its_line_with_the_difference(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        "  - name: edit\n"
        + PAIR
        + "      - wait: 5\n      - edit: ada\n        set: {lastName: Byron}\n"
        "    expect:\n      records:\n        ada-user: {lastName: Lovelace}\n"
        "      writes: [connecteam.edit-users, ghl.update-contact]\n",
    )
    done = _run(path)
    assert done["exit"] == 1
    [test] = done["tests"]
    by_line = {f["line"]: f for f in test["failures"]}
    # the user got the new last name: the expectation of the old one fails at its own line
    assert "'ada-user' is not as expected" in by_line[16]["message"]
    assert any('expected "Lovelace", got "Byron"' in d for d in by_line[16]["detail"])
    # one write was sent, not two
    assert by_line[17]["message"] == "the writes sent differ"


def test_an_event_that_never_arrives_leaves_the_other_side_alone(tmp_path: Path) -> None:
    """`deliver: none` loses the events: the user made in Connecteam gets no contact, and a test
    that expects one fails saying no contact matches."""
    body = (
        "  - name: lost\n    do:\n      - create: bob\n        connecteam: user\n"
        "        set: {firstName: Bob, lastName: Stone, email: bob@example.com, phoneNumber: '+15555550111'}\n"
        "      - deliver: none\n"
        "    expect:\n      ghl:\n        contact:\n          - {email: bob@example.com}\n"
    )
    done = _run(_file(tmp_path, body))
    [failure] = done["tests"][0]["failures"]
    assert failure["message"].startswith("0 GoHighLevel contacts match")
    delivered = body.replace("deliver: none", "deliver: in-order")
    assert _run(_file(tmp_path, delivered))["exit"] == 0


def test_a_declaration_changed_under_its_tests_is_caught(tmp_path: Path) -> None:
    """The shipped tests pin `conflict: newest`: with GoHighLevel made the owner of every field,
    the test where Connecteam's newer change wins fails, and so does the tie (its conflict is
    recorded under another rule)."""
    folder = tmp_path / "recipes"
    (folder / "tests").mkdir(parents=True)
    text = SYNC.read_text().replace("conflict: newest", "conflict: ghl")
    assert text != SYNC.read_text()
    (folder / SYNC.name).write_text(text)
    shutil.copy(TESTS, folder / "tests" / TESTS.name)
    done = _run(folder / SYNC.name)
    assert done["exit"] == 1
    failed = [t["name"] for t in done["tests"] if t["status"] == "failed"]
    assert failed == [
        "the same field changed on both sides goes to the newer change, and the conflict is kept once",
        "the same field changed on both sides within one second goes to GoHighLevel",
        "an event that arrives after newer edits of its own side does not revert them",
    ]


def test_a_conflict_left_to_a_person_waits_until_resolved(tmp_path: Path) -> None:
    body = (
        "  - name: manual\n" + PAIR + "      - wait: 5\n"
        "      - edit: ada\n        set: {lastName: FromGHL}\n"
        "      - wait: 2\n"
        "      - edit: ada-user\n        set: {lastName: FromConnecteam}\n"
        "      - deliver: in-order\n"
        "      - resolve: lastName\n        winner: ghl\n"
        "    expect:\n      records:\n        ada: {lastName: FromGHL}\n        ada-user: {lastName: FromGHL}\n"
        "      conflicts:\n        - {field: lastName, rule: manual, status: resolved, winner: ghl}\n"
        "      writes: [connecteam.edit-users]\n"
    )
    done = _run(_file(tmp_path, body, BY_HAND))
    assert done["exit"] == 0, done["tests"][0]["failures"]
    # without the person's decision, both sides keep their own value and nothing is written
    waiting = body.replace("      - resolve: lastName\n        winner: ghl\n", "")
    waiting = waiting.replace("ada: {lastName: FromGHL}", "ada: {lastName: FromGHL}").replace(
        "ada-user: {lastName: FromGHL}", "ada-user: {lastName: FromConnecteam}"
    )
    waiting = waiting.replace("status: resolved, winner: ghl", "status: open, winner: null")
    waiting = waiting.replace("writes: [connecteam.edit-users]", "writes: 0")
    done = _run(_file(tmp_path, waiting, BY_HAND))
    assert done["exit"] == 0, done["tests"][0]["failures"]


def test_a_record_used_before_it_is_made_is_refused_at_its_line(tmp_path: Path) -> None:
    path = _file(
        tmp_path, "  - name: typo\n    do:\n      - edit: nobody\n        set: {firstName: X}\n"
    )
    result = connector("test", str(path))
    assert result.exit_code == 2
    assert f"{path}:5:9:" in result.output
    assert "no record named 'nobody' to edit (known: none yet)" in result.output


def test_a_wait_ends_at_the_start_of_a_whole_second() -> None:
    """A wait moves the sandbox clock at least the seconds asked, to a whole second: the edits
    after it then share one second (Connecteam's precision) however busy the machine is, where
    a wait ending at .997 made two edits a few milliseconds apart straddle a second's end."""
    from connector.testing.sync_runner import _to_whole_second

    for now, wait in ((1_796_651_447.997, 5), (1_796_651_447.0, 5), (100.25, 0), (100.5, 2.75)):
        moved = _to_whole_second(now, wait)
        assert moved >= wait and moved - wait < 1
        assert abs(now + moved - round(now + moved)) < 1e-6
