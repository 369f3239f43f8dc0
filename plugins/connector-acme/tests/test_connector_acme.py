"""connector-acme's app as the registry, the validator and the retry policy see it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import connector_acme
import pytest

from connector.apps.events import Rejected
from connector.apps.plugins import BUILTIN_PLUGINS
from connector.apps.registry import Registry, registry_from_plugins
from connector.runtime.prepare import prepare
from connector.sending.retry import is_throttled, rate_limit_wait

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "note-on-widget-update.yaml"
BODY = json.dumps({"id": "d1", "type": "widget.updated", "widget": {"id": "w1"}}).encode()


def registry() -> Registry:
    builtins = {f"builtin:{m}": importlib.import_module(m) for m in BUILTIN_PLUGINS}
    return registry_from_plugins({**builtins, "acme": connector_acme})


def test_the_app_declares_its_webhook_poll_and_rate_limit_headers() -> None:
    app = registry().apps["acme"]
    assert [w.path for w in app.webhooks] == ["acme"]
    assert list(app.polls) == ["widget.updated"]
    assert app.rate_limit_headers.header_names() >= {"x-acme-calls-left", "x-acme-calls-reset-ms"}


def test_the_example_recipe_is_valid_with_its_poll() -> None:
    prepared = prepare(EXAMPLE, registry())
    assert prepared.plan is not None, prepared.problems
    assert prepared.plan.poll == {"every": 10}


def test_a_poll_of_an_event_the_app_does_not_declare_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("event: widget.updated", "event: other")
    recipe = tmp_path / "other.yaml"
    recipe.write_text(text, encoding="utf-8")
    problems = [str(p) for p in prepare(recipe, registry()).problems]
    assert any("acme other cannot be polled" in p and "acme widget.updated" in p for p in problems)


def test_the_signature_is_an_hmac_of_the_body() -> None:
    webhook = connector_acme.WEBHOOK
    assert webhook.verify is not None
    secret = webhook.settings({"ACME_WEBHOOK_SECRET": "s"})
    webhook.verify(secret, BODY, {"x-acme-signature": connector_acme.sign("s", BODY)})
    for headers in ({}, {"X-Acme-Signature": connector_acme.sign("t", BODY)}):
        with pytest.raises(Rejected) as refused:
            webhook.verify(secret, BODY, headers)
        assert refused.value.status == 401
    with pytest.raises(Rejected, match="ACME_WEBHOOK_SECRET is not set"):
        webhook.verify(webhook.settings({}), BODY, {"X-Acme-Signature": "sha256=00"})


def test_a_delivery_is_one_event_about_its_widget() -> None:
    delivered = connector_acme.WEBHOOK.parse(None, json.loads(BODY), 0.0)
    (event,) = delivered.events
    assert (event.app, event.type, event.key, event.subject) == (
        "acme",
        "widget.updated",
        "acme:d1",
        "acme:widget:w1",
    )
    assert delivered.delivery_id == "d1"
    with pytest.raises(Rejected) as refused:
        connector_acme.WEBHOOK.parse(None, {"type": "widget.updated"}, 0.0)
    assert refused.value.status == 400


def test_a_spent_window_waits_for_its_reset() -> None:
    rules = connector_acme.RATE_LIMIT_HEADERS
    spent = {"X-Acme-Calls-Left": "0", "X-Acme-Calls-Reset-Ms": "2500"}
    assert rate_limit_wait(rules, spent, 0.0) == 2.5
    assert rate_limit_wait(rules, {**spent, "X-Acme-Calls-Left": "3"}, 0.0) is None
    # another vendor's headers mean nothing to Acme
    assert rate_limit_wait(rules, {"X-RateLimit-Remaining": "0"}, 0.0) is None
    assert not is_throttled(rules, 200, {"detail": "Too many requests"})
