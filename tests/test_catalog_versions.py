"""Which version of an operation a step is sent with, and how two versions differ."""

from __future__ import annotations

import pytest

from connector.catalog import load_operations
from connector.catalog.versions import UnknownVersion, field_differences, pick_version

needs_specs = pytest.mark.needs_specs


@needs_specs
def test_a_steps_version_wins_then_the_recipes_then_the_default() -> None:
    ghl = load_operations("ghl")
    get = ghl["ghl.get-contact"]
    assert pick_version(get).version == "2021-07-28"
    assert pick_version(get, None, {"ghl": "v3"}).version == "v3"
    assert pick_version(get, "2021-07-28", {"ghl": "v3"}) is get
    assert pick_version(get, None, {"connecteam": "v3"}) is get  # another app's preference
    # an operation without the preferred version keeps its own
    assert pick_version(ghl["ghl.get-contacts"], None, {"ghl": "v3"}) is ghl["ghl.get-contacts"]
    calendar = next(op for op in ghl.values() if op.version == "2021-04-15")
    assert pick_version(calendar, None, {"ghl": "v3"}) is calendar
    with pytest.raises(UnknownVersion, match=r"ghl\.get-contacts has no version 'v3'"):
        pick_version(ghl["ghl.get-contacts"], "v3")


@needs_specs
def test_differences_name_the_version_that_has_each_field() -> None:
    ghl = load_operations("ghl")
    tasks = ghl["ghl.get-all-tasks"]
    assert field_differences(tasks, tasks.variants["v3"]) == []  # descriptions aside, the same
    business = ghl["ghl.get-contacts-by-businessId"]
    lines = field_differences(business, business.variants["v3"])
    assert "parameter startAfter: only in v3 (query, array of string)" in lines
    assert lines == ["parameter startAfter: only in v3 (query, array of string)"]
