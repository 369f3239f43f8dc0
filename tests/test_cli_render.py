"""How run records are printed (``connector run``, ``runs show``)."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from connector.cli.render import print_run
from connector.records import RunRecord


def test_an_output_that_is_not_plain_data_is_printed_as_its_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`output: "{{ trigger | tojson }}"` is Markup, which the YAML printer refused (exit 70)."""
    record = RunRecord(
        id="run_1",
        recipe="r",
        recipe_hash="h",
        recipe_path="r.yaml",
        trigger_app="manual",
        trigger_event="t",
        trigger={},
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
    record = RunRecord(
        id="run_2",
        recipe="r",
        recipe_hash="h",
        recipe_path="r.yaml",
        trigger_app="manual",
        trigger_event="t",
        trigger={},
        status="failed",
        error="HTTP 400: bad \ud800 name",
        output={"name": "\ud800x"},
    )
    print_run(record)
    out = capsys.readouterr().out
    assert "bad \\ud800 name" in out
    assert 'name: "\\uD800x"' in out
