"""The page's conflicts view: a conflict waiting for a person is shown with both values, and
choosing a side (a POST with the page's CSRF token) writes that side's value to the other app."""

from __future__ import annotations

import re
import warnings
from typing import Any

from starlette.applications import Starlette

from connector.language.sync_spec import load_sync
from connector.runtime.durable import Runtime, RuntimeOptions
from connector.ui import mount
from tests.sync.conftest import HERE, Apps, Syncer
from tests.sync.test_sync_contacts import _ghl_event, _pair

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


def test_a_waiting_conflict_is_resolved_from_the_page(
    apps: Apps, registry: Any, env: dict[str, str]
) -> None:
    spec, problems = load_sync(HERE / "by-hand.sync.yaml", registry)
    assert spec is not None, problems
    with Runtime(registry, env, RuntimeOptions(budgets=False)) as runtime:
        syncer = Syncer(runtime, spec, env)
        contact, user = _pair(apps, syncer)
        apps.advance(5)
        on_ghl = apps.edit_contact(contact["id"], lastName="Byron")
        apps.advance(5)
        on_ct = apps.edit_user(user["userId"], lastName="King")
        syncer.event("ghl", "ContactUpdate", _ghl_event(on_ghl))
        syncer.event("connecteam", "user_updated", on_ct)
        app = Starlette()
        ui = mount(app, runtime, {})
        ui.access.host = "127.0.0.1"
        with TestClient(app, base_url="http://127.0.0.1:8000") as client:
            shown = client.get("/ui/conflicts?status=open")
            assert shown.status_code == 200
            (row,) = re.findall(r'<tr id="conflict-(\d+)" class="open">', shown.text)
            assert "Byron" in shown.text and "King" in shown.text
            refused = client.post(f"/ui/conflicts/{row}/resolve", data={"winner": "connecteam"})
            assert refused.status_code == 403
            assert apps.contact(contact["id"])["lastName"] == "Byron"  # nothing was written
            token = re.search(r'name="csrf" value="([^"]+)"', shown.text)
            assert token is not None
            done = client.post(
                f"/ui/conflicts/{row}/resolve",
                data={"winner": "connecteam", "csrf": token.group(1)},
            )
            assert done.status_code == 200, done.text
            assert f"conflict #{row} resolved" in done.text
            assert apps.contact(contact["id"])["lastName"] == "King"
            assert apps.user(user["userId"])["lastName"] == "King"
            assert 'class="open"' not in client.get("/ui/conflicts").text
