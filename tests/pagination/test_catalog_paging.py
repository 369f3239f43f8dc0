"""`connector catalog show` states how each list operation pages, in every style."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import cli


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CONNECTOR_PLUGINS_DIR", raising=False)


def _pagination_line(name: str) -> str:
    result = CliRunner().invoke(cli, ["catalog", "show", name], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(line for line in result.output.splitlines() if line.startswith("pagination:"))


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("ghl.get-contacts", "cursor (limit, startAfter, startAfterId); limit at most 100"),
        ("ghl.get-contacts-by-businessId", "offset (limit, skip)"),
        ("connecteam.get-users", "offset (limit, offset); limit at most 500"),
        (
            "ghl.search-contacts-advanced",
            "search_after (pageLimit, searchAfter in the body); or page, up to 10,000 items"
            " (`pages: {by: page}`); pageLimit at most 500",
        ),
        ("ghl.get-appointment-notes", "offset (limit, offset); limit at most 20"),
        (
            "ghl.fetch-calendar-resources",
            "offset (limit, skip); its list of items is not known: `pages:` cannot walk it",
        ),
        ("ghl.get-contact", "-"),
    ],
)
def test_catalog_show_states_the_paging_style(name: str, shown: str) -> None:
    assert _pagination_line(name).removeprefix("pagination:").strip() == shown


def test_a_walks_count_is_worded_for_one_and_for_many() -> None:
    from connector.sending.paging import PageCount

    assert str(PageCount(pages=1, items=1)) == "1 item in 1 page"
    assert str(PageCount(pages=25, items=2500)) == "2500 items in 25 pages"
    assert str(PageCount()) == "0 items in 0 pages"
