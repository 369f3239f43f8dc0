"""The public API is exactly what ``connector.__all__`` lists, and every name in it exists."""

from __future__ import annotations

import connector


def test_all_names_exist_and_are_public() -> None:
    for name in connector.__all__:
        assert hasattr(connector, name), name
    public = {
        name
        for name, value in vars(connector).items()
        if not name.startswith("_") and not isinstance(value, type(connector))
    }
    assert public == set(connector.__all__) - {"__version__"}


def test_hookimpl_is_the_connector_marker() -> None:
    assert connector.hookimpl.project_name == "connector"
