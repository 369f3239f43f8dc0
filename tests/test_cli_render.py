"""How run records are printed (``connector run``, ``runs show``)."""

from __future__ import annotations

from typing import Any

import pytest
from markupsafe import Markup

from connector.cli.render import print_run
from connector.records import RunRecord, StepRecord


def _record(**fields: Any) -> RunRecord:
    """A run record of a manual trigger with ``fields`` (id, status, output, steps, ...)."""
    return RunRecord(
        recipe="r",
        recipe_hash="h",
        recipe_path="r.yaml",
        trigger_app="manual",
        trigger_event="t",
        trigger={},
        **fields,
    )


def test_an_output_that_is_not_plain_data_is_printed_as_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`output: "{{ trigger | tojson }}"` is Markup, which the YAML printer refused (exit 70)."""
    record = _record(
        id="run_1",
        status="succeeded",
        output={"json": Markup('{"a": 1}'), "numbers": range(2), "kept": [1, None, "x"]},
    )
    print_run(record)
    out = capsys.readouterr().out
    assert "json: '{\"a\": 1}'" in out
    assert "numbers: range(0, 2)" in out
    assert "kept:\n  - 1\n  - null\n  - x" in out


def test_a_lone_surrogate_from_an_api_is_printed_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """JSON's "\\ud800" (an API's message, a field of its answer) is a str no terminal can
    encode: printing it stopped `connector run` with UnicodeEncodeError (exit 70)."""
    record = _record(
        id="run_2",
        status="failed",
        error="HTTP 400: bad \ud800 name",
        output={"name": "\ud800x"},
    )
    print_run(record)
    out = capsys.readouterr().out
    assert "bad \\ud800 name" in out
    assert 'name: "\\uD800x"' in out


def test_a_steps_note_is_printed_under_it(capsys: pytest.CaptureFixture[str]) -> None:
    """What a step's record notes (the pages a paged step fetched and the step that walked them,
    a write an earlier run did) is printed under the step, not only in `runs show --json`."""
    record = _record(
        id="run_3",
        status="succeeded",
        steps=[
            StepRecord(
                id="contacts",
                action="ghl.get-contacts",
                status="succeeded",
                note="2500 items in 25 pages, walked by step 'each'",
            ),
            StepRecord(
                id="tag",
                action="ghl.add-tags",
                status="succeeded",
                note="done before: the recorded result, not sent again",
            ),
        ],
    )
    print_run(record)
    lines = capsys.readouterr().out.splitlines()
    at = next(
        i for i, line in enumerate(lines) if "contacts" in line and "ghl.get-contacts" in line
    )
    assert lines[at + 1].strip() == "2500 items in 25 pages, walked by step 'each'"
    at = next(i for i, line in enumerate(lines) if "ghl.add-tags" in line)
    assert lines[at + 1].strip() == "done before: the recorded result, not sent again"
