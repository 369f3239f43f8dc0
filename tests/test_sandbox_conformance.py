"""The response validator that every sandbox test relies on is itself checked here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from sandbox.fixtures import Conformance

pytest_plugins = ["sandbox.fixtures"]


def test_the_conformance_check_rejects_a_body_that_breaks_the_document(
    conformance: Conformance,
) -> None:
    """The validator is not a no-op: a task whose `completed` is a string breaks TaskSchema."""
    request = httpx.Request("GET", "http://sandbox/ghl/contacts/abc/tasks")
    bad = httpx.Response(200, json={"tasks": [{"id": "x", "completed": "yes"}]}, request=request)
    with pytest.raises(AssertionError, match="breaks"):
        conformance.check(bad)
    good = httpx.Response(200, json={"tasks": [{"id": "x", "completed": True}]}, request=request)
    conformance.check(good)
