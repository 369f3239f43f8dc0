"""A write whose answer was lost and that nothing can look up (a Connecteam user note): the run
stops, says what to check and how to settle it; `runs settle` and `runs retry` finish it with the
note there exactly once, whichever way the person found it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from e2e_support import set_faults

from connector.cli import cli
from connector.sandbox.server import RunningSandbox
from tests.runtime.e2e_support import LOCAL

RECIPE = Path(__file__).parent / "recipes" / "note_once.yaml"
NOTES = "/connecteam/users/v1/users/9001/notes"

pytestmark = pytest.mark.needs_modules("dbos", "connector.sandbox.server")


def _cli(sandbox: RunningSandbox, home: Path, *args: str) -> Any:
    env = {**sandbox.env, "CONNECTOR_HOME": str(home), "CONNECTOR_RETRY_BASE_DELAY": "0.01"}
    return CliRunner().invoke(cli, list(args), env=env)


def _notes(sandbox: RunningSandbox) -> list[dict[str, Any]]:
    reply = LOCAL.get(f"{sandbox.url}/_sandbox/connecteam/users/9001/notes")
    return [n for n in reply.json()["notes"] if n.get("title") == "Called back"]


@pytest.mark.parametrize(("fault", "there"), [("drop-after", 1), ("drop-before", 0)])
def test_an_unknown_note_is_settled_by_a_person_and_finished_by_retry(
    sandbox: RunningSandbox, tmp_path: Path, fault: str, there: int
) -> None:
    set_faults(sandbox, f"{fault}:1,method=POST,path={NOTES}")
    failed = _cli(sandbox, tmp_path, "run", str(RECIPE), "--json")
    assert failed.exit_code == 1, failed.output
    record = json.loads(failed.stdout)
    assert record["status"] == "failed"
    error = record["error"]
    assert "outcome unknown" in error and f"check POST {NOTES}" in error
    assert f"connector runs settle {record['id']} --written" in error
    assert len(_notes(sandbox)) == there  # drop-after: the API has it; drop-before: it does not
    set_faults(sandbox)

    # retrying before anyone looked sends nothing: the outcome is still unknown
    blind = _cli(sandbox, tmp_path, "runs", "retry", record["id"], "--json")
    assert blind.exit_code == 1 and "outcome unknown" in json.loads(blind.stdout)["error"]
    assert len(_notes(sandbox)) == there

    flag = "--written" if there else "--not-written"
    settled = _cli(sandbox, tmp_path, "runs", "settle", record["id"], flag)
    assert settled.exit_code == 0, settled.output
    assert "note:n-1" in settled.output and f"runs retry {record['id']}" in settled.output

    done = _cli(sandbox, tmp_path, "runs", "retry", record["id"], "--json")
    assert done.exit_code == 0, done.output
    finished = json.loads(done.stdout)
    assert finished["status"] == "succeeded" and finished["parent"] == record["id"]
    assert finished["output"] == {"written_now": not there, "done_before": bool(there)}
    assert len(_notes(sandbox)) == 1  # exactly once either way

    # and a later run of the same event writes nothing
    again = _cli(sandbox, tmp_path, "run", str(RECIPE), "--json")
    assert json.loads(again.stdout)["output"]["done_before"] is True
    assert len(_notes(sandbox)) == 1


def test_settle_needs_a_verdict_and_a_run_with_something_to_settle(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    ok = _cli(sandbox, tmp_path, "run", str(RECIPE), "--json")
    run_id = json.loads(ok.stdout)["id"]
    none = _cli(sandbox, tmp_path, "runs", "settle", run_id)
    assert none.exit_code == 2 and "--written or --not-written" in none.output
    nothing = _cli(sandbox, tmp_path, "runs", "settle", run_id, "--written")
    assert nothing.exit_code == 1 and "nothing to settle" in nothing.output
    unknown = _cli(sandbox, tmp_path, "runs", "settle", "run_nope", "--written")
    assert unknown.exit_code == 1 and "no run" in unknown.output
    assert "Traceback" not in none.output + nothing.output + unknown.output


def _ghl_notes(sandbox: RunningSandbox, contact: str) -> int:
    notes = LOCAL.get(f"{sandbox.url}/_sandbox/state").json()["ghl"]["notes"][contact]
    return sum(1 for n in notes if n["body"] == "Visited on the spring round")


def test_a_retry_does_not_write_again_what_the_failed_run_wrote(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A foreach of plain writes (no once:) fails at its third item; the retry re-runs the step
    from its start, and the first two items get the failed run's results instead of a second
    note each. A replay, asked to do the step again, does write again."""
    recipe = str(Path(__file__).parent / "recipes" / "notes_foreach.yaml")
    contacts = ["ocQHyuzHvysMo5N5VsXc", "oaF1LlqsajAIxNKu8iS2", "gEOzdmenCkhvMdgaKjIg"]
    set_faults(sandbox, f"429:1,retry_after=1,path=/ghl/contacts/{contacts[2]}/notes")
    env = {"CONNECTOR_RETRY_ATTEMPTS": "1"}
    failed = CliRunner().invoke(
        cli,
        ["run", recipe, "--json"],
        env={**sandbox.env, "CONNECTOR_HOME": str(tmp_path), **env},
    )
    record = json.loads(failed.stdout)
    assert record["status"] == "failed", record
    assert [_ghl_notes(sandbox, c) for c in contacts] == [1, 1, 0]
    set_faults(sandbox)

    done = _cli(sandbox, tmp_path, "runs", "retry", record["id"], "--json")
    assert done.exit_code == 0, done.output
    items = json.loads(done.stdout)["steps"][0]["items"]
    assert [i.get("done_before", False) for i in items] == [True, True, False]
    assert [_ghl_notes(sandbox, c) for c in contacts] == [1, 1, 1]  # none twice

    replayed = _cli(sandbox, tmp_path, "runs", "replay", record["id"], "--from", "notes")
    assert replayed.exit_code == 0, replayed.output
    assert [_ghl_notes(sandbox, c) for c in contacts] == [2, 2, 2]  # asked for: again
